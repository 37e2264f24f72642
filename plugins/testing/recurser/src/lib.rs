//! Test plugin: renders its first child; with no children, tries to render itself.
//! Host errors are passed on, so the block that hits the limit fails with the host's reason.

use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Recurser;

impl Block for Recurser {
    type Fields = serde_json::Value;

    fn render(cx: &Context<'_, Self::Fields>, view: View) -> BlockResult<Fragment> {
        let target = cx
            .children()
            .into_iter()
            .next()
            .unwrap_or_else(|| cx.usage_id());
        let inner = cx.render_child(&target, view)?;
        Ok(Fragment::html(format!(
            "<div class=\"level\">{}</div>",
            inner.html
        )))
    }
}

xbhost_sdk::export_block!(Recurser);
