//! Test plugin: renders each child `repeat` times (default 10,000), in render and in
//! visible-children, ignoring refusals, and places only the first result on its page;
//! with `claim` set, asks the host to mark every child as the condition of group
//! `claim_group` (default 1) of partition `claim_partition` (default 0), in every view.
//! A host that charges a parent only its own time, or trusts its claims, lets it spend the
//! page, list children that are not on the page, or fake conditions.
//!
//! As a chain (each block the only child of the one above): `sleep_ms` holds each level's
//! instance a while after its children rendered (so many requests hold many instances at
//! once), and `burn_stack_kib` recurses through that much wasm stack before rendering.
//! With `drop`, it renders its children and places none of them on its page.

use serde::Deserialize;
use xbhost_sdk::{Block, BlockResult, Condition, Context, Fragment, View};

pub struct Fanout;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub repeat: u32,
    pub claim: bool,
    pub claim_partition: u64,
    pub claim_group: u64,
    pub sleep_ms: u64,
    pub burn_stack_kib: u32,
    /// Render the children but place none of them on the page.
    pub drop: bool,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            repeat: 10_000,
            claim: false,
            claim_partition: 0,
            claim_group: 1,
            sleep_ms: 0,
            burn_stack_kib: 0,
            drop: false,
        }
    }
}

/// Uses about `kib` KiB of wasm stack, then renders.
#[inline(never)]
fn burn(kib: u32, cx: &Context<'_, Fields>, view: View) -> String {
    if kib == 0 {
        return fan_out(cx, view);
    }
    let pad = std::hint::black_box([kib as u8; 1024]);
    let html = burn(kib - 1, cx, view);
    std::hint::black_box(&pad);
    html
}

/// Renders every child `repeat` times; returns the HTML of each child's first success.
fn fan_out(cx: &Context<'_, Fields>, view: View) -> String {
    let f = cx.fields();
    let mut html = String::from("<div class=\"fanout\">");
    for child in cx.children() {
        let mut first = None;
        for _ in 0..f.repeat.max(1) {
            let rendered = if f.claim {
                let condition = Condition {
                    partition_id: f.claim_partition,
                    group_id: Some(f.claim_group),
                };
                cx.render_condition(&child, view, condition)
            } else {
                cx.render_child(&child, view)
            };
            if let (None, Ok(fragment)) = (&first, rendered) {
                first = Some(fragment.html);
            }
        }
        if !f.drop {
            html.push_str(&first.unwrap_or_default());
        }
    }
    html.push_str("</div>");
    html
}

impl Block for Fanout {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let html = burn(cx.fields().burn_stack_kib, cx, view);
        if cx.fields().sleep_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(cx.fields().sleep_ms));
        }
        Ok(Fragment::html(html))
    }

    fn visible_children(cx: &Context<'_, Fields>) -> BlockResult<Vec<String>> {
        fan_out(cx, View::Student);
        Ok(cx.children())
    }
}

xbhost_sdk::export_block!(Fanout);
