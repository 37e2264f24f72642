//! Test plugin: renders each child `repeat` times (default 10,000), in render and in
//! visible-children, ignoring refusals, and places only the first result on its page;
//! with `claim` set, asks the host to mark every child as the condition of group
//! `claim_group` (default 1) of partition `claim_partition` (default 0), in every view.
//! A host that charges a parent only its own time, or trusts its claims, lets it spend the
//! page, list children that are not on the page, or fake conditions.

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
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            repeat: 10_000,
            claim: false,
            claim_partition: 0,
            claim_group: 1,
        }
    }
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
        html.push_str(&first.unwrap_or_default());
    }
    html.push_str("</div>");
    html
}

impl Block for Fanout {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        Ok(Fragment::html(fan_out(cx, view)))
    }

    fn visible_children(cx: &Context<'_, Fields>) -> BlockResult<Vec<String>> {
        fan_out(cx, View::Student);
        Ok(cx.children())
    }
}

xbhost_sdk::export_block!(Fanout);
