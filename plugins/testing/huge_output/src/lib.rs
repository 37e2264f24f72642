//! Test plugin: writes a tag, then returns 4 MiB of HTML.

use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct HugeOutput;

impl Block for HugeOutput {
    type Fields = serde_json::Value;

    fn render(cx: &Context<'_, Self::Fields>, _view: View) -> BlockResult<Fragment> {
        cx.set_course_tag("huge_output.touched", "yes")?;
        Ok(Fragment::html("<p>spam</p>".repeat((4 << 20) / 11)))
    }
}

xbhost_sdk::export_block!(HugeOutput);
