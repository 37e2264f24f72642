//! Test plugin: allocates a mebibyte at a time, forever. It only reserves (no writes), so it
//! reaches any memory limit in microseconds, well before any time limit.

use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct MemoryBomb;

impl Block for MemoryBomb {
    type Fields = serde_json::Value;

    fn render(_cx: &Context<'_, Self::Fields>, _view: View) -> BlockResult<Fragment> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(Vec::with_capacity(1 << 20));
            std::hint::black_box(&hoard);
        }
    }
}

xbhost_sdk::export_block!(MemoryBomb);
