//! Test plugin: never returns from render.

use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Looper;

impl Block for Looper {
    type Fields = serde_json::Value;

    fn render(_cx: &Context<'_, Self::Fields>, _view: View) -> BlockResult<Fragment> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

xbhost_sdk::export_block!(Looper);
