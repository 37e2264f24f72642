//! Test plugin: writes a tag and its state, publishes an event, then panics. None of it
//! may be kept.

use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Panicker;

impl Block for Panicker {
    type Fields = serde_json::Value;

    fn render(cx: &Context<'_, Self::Fields>, _view: View) -> BlockResult<Fragment> {
        cx.set_course_tag("panicker.touched", "yes")?;
        cx.set_state(&serde_json::json!({"half": "written"}))?;
        cx.publish("panicker.before_panic", &serde_json::json!({}))?;
        panic!("boom: internal secret 42");
    }
}

xbhost_sdk::export_block!(Panicker);
