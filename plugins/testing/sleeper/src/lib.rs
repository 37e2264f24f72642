//! Test plugin: calls `std::thread::sleep` (on wasm32-wasip2 a monotonic-clock
//! subscription and a poll) for `ms` milliseconds (default 60 s) in render, in every
//! handler and in visible-children. A host that lets it wait stalls the thread it runs on.

use std::time::Duration;

use serde::Deserialize;
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Sleeper;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub ms: u64,
}

impl Default for Fields {
    fn default() -> Self {
        Fields { ms: 60_000 }
    }
}

fn nap(cx: &Context<'_, Fields>) {
    std::thread::sleep(Duration::from_millis(cx.fields().ms));
}

impl Block for Sleeper {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, _view: View) -> BlockResult<Fragment> {
        nap(cx);
        Ok(Fragment::html("<p>slept</p>"))
    }

    fn visible_children(cx: &Context<'_, Fields>) -> BlockResult<Vec<String>> {
        nap(cx);
        Ok(cx.children())
    }

    fn handle(
        cx: &Context<'_, Fields>,
        _name: &str,
        _payload: serde_json::Value,
    ) -> BlockResult<serde_json::Value> {
        nap(cx);
        Ok(serde_json::json!({"earned": 1.0, "possible": 1.0}))
    }
}

xbhost_sdk::export_block!(Sleeper);
