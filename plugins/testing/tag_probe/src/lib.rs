//! Test plugin: on each render it tries valid and invalid tag calls, counts its visits in a
//! course tag and a global tag, and reports every answer as JSON inside the page, so tests
//! can check what the real host returned (error values, never traps).

use serde_json::{Value, json};
use xbhost_sdk::{Block, BlockResult, Context, Fragment, HostError, View};

pub struct TagProbe;

fn outcome<T: serde::Serialize>(r: Result<T, HostError>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "err": e.to_string() }),
    }
}

/// Increments a counter tag and returns the value it had before.
fn bump(
    get: Result<Option<String>, HostError>,
    set: impl FnOnce(&str) -> Result<(), HostError>,
) -> Value {
    let before = get.ok().flatten();
    let next = before
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    json!({ "before": before, "set": outcome(set(&next.to_string())) })
}

impl Block for TagProbe {
    type Fields = Value;

    fn render(cx: &Context<'_, Value>, _view: View) -> BlockResult<Fragment> {
        let report = json!({
            "user": cx.user().id,
            "empty_key": outcome(cx.set_course_tag("", "x")),
            "long_key": outcome(cx.set_course_tag(&"k".repeat(256), "x")),
            "get_long_key": outcome(cx.course_tag(&"k".repeat(256))),
            "max_key": outcome(cx.set_course_tag(&"k".repeat(255), "fits")),
            "long_value": outcome(cx.set_course_tag("big", &"v".repeat(1025))),
            "nul_value": outcome(cx.set_course_tag("nul", "a\0b")),
            "reserved": outcome(cx.set_course_tag("xblock.partition_service.partition_0", "1")),
            "course_visits": bump(cx.course_tag("visits"), |v| cx.set_course_tag("visits", v)),
            "global_visits": bump(cx.user_tag("visits"), |v| cx.set_user_tag("visits", v)),
        });
        Ok(Fragment::html(format!(
            "<script type=\"application/json\" class=\"probe\">{report}</script>"
        )))
    }
}

xbhost_sdk::export_block!(TagProbe);
