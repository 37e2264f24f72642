//! Test plugin: publishes 500 events and writes 500 tags, and reports how many the host
//! accepted and the first refusal of each.

use serde_json::{Value, json};
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Spammer;

/// Calls `op` until it fails or `n` times; returns (successes, first error).
fn until_refused(n: u32, mut op: impl FnMut(u32) -> Result<(), String>) -> Value {
    for i in 0..n {
        if let Err(e) = op(i) {
            return json!({ "accepted": i, "error": e });
        }
    }
    json!({ "accepted": n, "error": null })
}

impl Block for Spammer {
    type Fields = Value;

    fn render(cx: &Context<'_, Value>, _view: View) -> BlockResult<Fragment> {
        let events = until_refused(500, |i| {
            cx.publish("spammer.event", &json!({ "i": i }))
                .map_err(|e| e.to_string())
        });
        let tags = until_refused(500, |i| {
            cx.set_course_tag(&format!("spam.{i}"), "x")
                .map_err(|e| e.to_string())
        });
        let report = json!({ "events": events, "tags": tags });
        Ok(Fragment::html(format!(
            "<script type=\"application/json\" class=\"probe\">{report}</script>"
        )))
    }
}

xbhost_sdk::export_block!(Spammer);
