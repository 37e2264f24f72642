//! `{{name}}`: an xbhost block. It greets the learner with its authored greeting and lets
//! them answer; what they answered is kept for them and shown on their next visit.
//!
//! - fields (what a course author writes in the course document): `greeting`, and the
//!   `display_name` containers show.
//! - render: the greeting, the learner's last answer, and a form, with the client-side
//!   code of `static/` (`block.css`, `block.js`): the host draws the block in a sandboxed
//!   frame of its own, where `{{type_name}}Block` sends the form to the `answer` handler
//!   (`runtime.call`) and shows its reply without reloading the page.
//! - handler `answer`: `{"text": text}` (the script, or `xbhost handle`) or
//!   `{"answer": [text]}`; stores the text for the learner and publishes an
//!   `{{name}}.answered` event.
//! - scenarios (`scenarios.json`): the workbench lists them under "Scenarios" and renders
//!   each in a unit of its own, without a course document.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, View};

// The client-side files (in `static/`) and the example scenarios, compiled into the plugin.
xbhost_sdk::client_assets!("block.css", "block.js");
xbhost_sdk::scenarios!("scenarios.json");

/// The block.
pub struct {{type_name}};

/// Longest answer kept, in bytes: whatever a learner sends is bounded.
pub const MAX_ANSWER_BYTES: usize = 500;

/// The block's authored fields, typed. Missing fields take their defaults; a field the
/// block does not know is an error, so a misspelt one is caught when the course loads.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fields {
    pub display_name: Option<String>,
    pub greeting: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: None,
            greeting: "Hello".into(),
        }
    }
}

/// What the block keeps for each learner (the host stores it as JSON).
#[derive(Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct State {
    pub answer: Option<String>,
    pub answers: u32,
}

impl Block for {{type_name}} {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, _view: View) -> BlockResult<Fragment> {
        let state: State = cx.state()?.unwrap_or_default();
        let mut html = format!(
            "<div class=\"{{name}}\"><p class=\"hello\">{}, {}!</p>",
            escape(&cx.fields().greeting),
            escape(&cx.user().username)
        );
        let answered = match &state.answer {
            Some(answer) => format!("You answered: {}", escape(answer)),
            None => String::new(),
        };
        html.push_str(&format!(
            "<p class=\"answer\">{answered}</p><p class=\"count\"></p>\
             <form class=\"ask\"><label>Your answer <input type=\"text\" name=\"answer\" \
             maxlength=\"{MAX_ANSWER_BYTES}\"></label> <button type=\"submit\">Send</button></form>\
             <p class=\"status\" role=\"status\"></p></div>"
        ));
        let mut fragment = Fragment::html(html)
            .add_css("block.css")
            .add_javascript("block.js")
            .initialize_js("{{type_name}}Block", &json!({ "answers": state.answers }));
        fragment.title = cx.fields().display_name.clone();
        Ok(fragment)
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        match name {
            "answer" => {
                let text = answer_text(&payload)?;
                let mut state: State = cx.state()?.unwrap_or_default();
                state.answer = Some(text.clone());
                state.answers += 1;
                cx.set_state(&state)?;
                cx.publish("{{name}}.answered", &json!({ "answer": text }))?;
                Ok(json!({ "answer": text, "answers": state.answers }))
            }
            other => Err(BlockError::new(format!(
                "block {:?} has no handler named {other:?}",
                cx.usage_id()
            ))),
        }
    }
}

/// The answer's text from `{"answer": [text]}` or `{"text": text}` (a number the page
/// script sent as a number counts as its digits), at most [`MAX_ANSWER_BYTES`].
fn answer_text(payload: &Value) -> BlockResult<String> {
    let value = payload
        .get("text")
        .or_else(|| payload.get("answer").and_then(|a| a.get(0)));
    let text = match value {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(BlockError::new(
                "send {\"text\": \"...\"} or {\"answer\": [\"...\"]}",
            ));
        }
    };
    if text.is_empty() {
        return Err(BlockError::new("the answer is empty"));
    }
    if text.len() > MAX_ANSWER_BYTES {
        return Err(BlockError::new(format!(
            "the answer is {} bytes; at most {MAX_ANSWER_BYTES} are kept",
            text.len()
        )));
    }
    Ok(text)
}

xbhost_sdk::export_block!({{type_name}});

/// Native tests: the block's code runs against `TestHost`, an in-memory host with the real
/// host's checks. `cargo test` runs them; no wasm needed.
#[cfg(test)]
mod tests {
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    use super::{CLIENT_ASSETS, SCENARIOS, {{type_name}}};

    /// A host that, as the real one, refuses a render naming a file `static/` lacks.
    fn host() -> TestHost {
        TestHost::new("{{name}}", "{{name}}_1").with_client_assets(CLIENT_ASSETS)
    }

    #[test]
    fn greets_the_learner_with_the_authored_greeting_escaped() {
        let host = host()
            .username("ada")
            .fields(json!({"greeting": "Hi <there>"}));
        let f = host.render::<{{type_name}}>(View::Student).unwrap();
        assert!(f.html.contains("Hi &lt;there&gt;, ada!"), "{}", f.html);
        assert!(f.html.contains("<form class=\"ask\">"), "{}", f.html);
        assert!(!f.html.contains("You answered"), "{}", f.html);
        assert_eq!(f.client.resources, ["block.css", "block.js"]);
        assert_eq!(
            f.client.initialize,
            Some(("{{type_name}}Block".into(), "{\"answers\":0}".into()))
        );
    }

    #[test]
    fn its_scenarios_parse_and_render() {
        let scenarios = xbhost_sdk::scenarios::parse(SCENARIOS).unwrap();
        assert!(!scenarios.is_empty());
        for block in scenarios.iter().flat_map(|s| &s.blocks) {
            let f = host()
                .fields(block.fields.clone())
                .render::<{{type_name}}>(View::Student);
            assert!(f.is_ok(), "{block:?}: {f:?}");
        }
    }

    #[test]
    fn keeps_the_answer_for_the_learner_and_shows_it() {
        let host = host().username("ada");
        let reply = host
            .handle::<{{type_name}}>("answer", json!({"answer": ["Fine, <thanks>"]}))
            .unwrap();
        assert_eq!(reply, json!({"answer": "Fine, <thanks>", "answers": 1}));
        let f = host.render::<{{type_name}}>(View::Student).unwrap();
        assert!(
            f.html.contains("You answered: Fine, &lt;thanks&gt;"),
            "{}",
            f.html
        );
        assert_eq!(f.client.initialize.unwrap().1, "{\"answers\":1}");
        assert_eq!(host.events()[0].0, "{{name}}.answered");
    }

    #[test]
    fn refuses_what_it_cannot_keep() {
        let host = host();
        let long = "x".repeat(super::MAX_ANSWER_BYTES + 1);
        for payload in [json!({}), json!({"text": ""}), json!({"text": long})] {
            assert!(host.handle::<{{type_name}}>("answer", payload).is_err());
        }
        assert!(host.handle::<{{type_name}}>("other", json!({})).is_err());
        assert_eq!(host.stored_state(), None, "nothing refused is stored");
    }

    #[test]
    fn a_misspelt_field_is_an_error() {
        let host = host().fields(json!({"greting": "Hi"}));
        assert!(host.render::<{{type_name}}>(View::Student).is_err());
    }
}
