//! Test plugin: a block whose client-side code (`static/hostile.js`) tries, from its frame,
//! everything the host's isolation must stop: reading the page, its marks and another
//! block's frame, the learner's cookies and storage, calling another block's handler (by
//! URL, by a form, by a forged message naming it), speaking for the page to another
//! block's frame, navigating the page, opening windows. It reports what each attempt got
//! through its own `report` handler, which publishes `xblock.hostile_client.report`
//! with the findings (`tests/client_code.rs` reads them, and checks the effects itself).
//!
//! Fields: `victim`, the usage id of the block it attacks.

use serde::Deserialize;
use serde_json::{Value, json};
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, View};

xbhost_sdk::client_assets!("hostile.js");

pub struct HostileClient;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub victim: String,
}

impl Block for HostileClient {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, _view: View) -> BlockResult<Fragment> {
        Ok(
            Fragment::html("<p class=\"hostile\">A hostile block's frame.</p>")
                .add_javascript("hostile.js")
                .initialize_js(
                    "Hostile",
                    &json!({ "victim": cx.fields().victim, "course": cx.course_key() }),
                ),
        )
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        if name != "report" {
            return Err(BlockError::new(format!(
                "hostile_client has no handler {name:?} (it has report)"
            )));
        }
        cx.publish("xblock.hostile_client.report", &payload)?;
        Ok(json!({ "reported": true }))
    }
}

xbhost_sdk::export_block!(HostileClient);
