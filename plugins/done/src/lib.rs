//! `done`: Open edX's Done XBlock (openedx/DoneXBlock), a "mark as complete" toggle.
//!
//! - fields as the XBlock has them: `display_name` (default "Completion") and `align`
//!   (`left`, `right` or `center`, default `left`).
//! - render: the learner's state and one button, "Mark as complete" or "Unmark". Blocks run
//!   no script here, so the button's form carries the state it asks for (a checked, hidden
//!   box with value 1 or 0) and the host's page script posts it as `{"answer": [1]}`:
//!   pressing twice sets the same state twice instead of flipping it back.
//! - handler `toggle_button`, as the XBlock's: `{"done": true|false}` (the XBlock's own
//!   payload) or the page form's `{"answer": [1|0]}`. Stores `{done}` in the learner's
//!   state and publishes the XBlock's two events, `grade` (`{value: 1|0, max_value: 1}`)
//!   and `edx.done.toggled` (`{done}`). Answers `{"state": done}`. Anything else is refused
//!   and nothing is stored.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, View};

pub struct Done;

/// Where the toggle sits (the XBlock's `align`, which it lowercases).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Align {
    #[default]
    #[serde(alias = "Left", alias = "LEFT")]
    Left,
    #[serde(alias = "Right", alias = "RIGHT")]
    Right,
    #[serde(alias = "Center", alias = "CENTER")]
    Center,
}

impl Align {
    fn as_str(self) -> &'static str {
        match self {
            Align::Left => "left",
            Align::Right => "right",
            Align::Center => "center",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: String,
    pub align: Align,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: "Completion".into(),
            align: Align::Left,
        }
    }
}

/// What the block keeps per learner (the XBlock's user-state field `done`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct State {
    pub done: bool,
}

impl Block for Done {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, _view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let done = cx.state::<State>()?.unwrap_or_default().done;
        let (status, button, ask) = if done {
            ("Completed", "Unmark", 0)
        } else {
            ("Not completed yet", "Mark as complete", 1)
        };
        let html = format!(
            "<div class=\"done_onoffswitch_wrapper done-align-{align}\" style=\"text-align: {align}\">\
             <form class=\"done_onoffswitch\" data-handler=\"toggle_button\">\
             <input type=\"checkbox\" name=\"done\" value=\"{ask}\" checked hidden>\
             <p class=\"done_status\" data-done=\"{done}\">{status}</p>\
             <button type=\"submit\" class=\"done_toggle\" aria-pressed=\"{done}\">{button}</button>\
             </form></div>",
            align = f.align.as_str(),
        );
        Ok(Fragment {
            html,
            title: Some(f.display_name.clone()),
            icon: Some("other".into()),
            ..Fragment::default()
        })
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        if name != "toggle_button" {
            return Err(BlockError::new(format!(
                "the done block has no handler {name:?} (it has toggle_button)"
            )));
        }
        let done = requested_state(&payload)?;
        cx.set_state(&State { done })?;
        cx.publish(
            "grade",
            &json!({ "value": if done { 1 } else { 0 }, "max_value": 1 }),
        )?;
        cx.publish("edx.done.toggled", &json!({ "done": done }))?;
        Ok(json!({ "state": done }))
    }
}

/// The state a `toggle_button` payload asks for: `{"done": bool}` or `{"answer": [1|0]}`.
fn requested_state(payload: &Value) -> BlockResult<bool> {
    let expected = "toggle_button expects {\"done\": true|false} or {\"answer\": [1|0]}";
    let as_bool = |v: &Value| match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.as_u64() == Some(1) => Some(true),
        Value::Number(n) if n.as_u64() == Some(0) => Some(false),
        _ => None,
    };
    let Some(object) = payload.as_object() else {
        return Err(BlockError::new(format!(
            "{expected}, not {}",
            kind(payload)
        )));
    };
    let value = match (object.get("done"), object.get("answer")) {
        (Some(done), None) => as_bool(done),
        (None, Some(Value::Array(answer))) if answer.len() == 1 => as_bool(&answer[0]),
        _ => None,
    };
    value.ok_or_else(|| BlockError::new(format!("{expected}, not {}", short(payload))))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The payload as JSON, cut to 80 characters for the error message.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

xbhost_sdk::export_block!(Done);

#[cfg(test)]
mod tests {
    use super::{Done, State};
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    fn stored(host: &TestHost) -> Option<State> {
        host.stored_state()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn renders_with_the_xblock_defaults() {
        let host = TestHost::new("done", "d1");
        let f = host.render::<Done>(View::Student).unwrap();
        assert_eq!(f.title.as_deref(), Some("Completion"));
        assert!(f.html.contains("text-align: left"), "{}", f.html);
        assert!(f.html.contains(">Mark as complete</button>"), "{}", f.html);
        assert!(f.html.contains("data-handler=\"toggle_button\""));
        assert!(
            f.html.contains("value=\"1\" checked hidden"),
            "asks for done"
        );
    }

    #[test]
    fn renders_its_fields_and_the_learners_state() {
        let host = TestHost::new("done", "d1")
            .fields(json!({"display_name": "Finished?", "align": "center"}))
            .with_state(json!({"done": true}).to_string());
        let f = host.render::<Done>(View::Student).unwrap();
        assert_eq!(f.title.as_deref(), Some("Finished?"));
        assert!(f.html.contains("text-align: center"));
        assert!(f.html.contains(">Unmark</button>"), "{}", f.html);
        assert!(
            f.html.contains("value=\"0\" checked hidden"),
            "asks for not done"
        );
        assert!(f.html.contains(">Completed<"));
    }

    #[test]
    fn an_unknown_align_is_an_error_naming_the_block() {
        let host = TestHost::new("done", "d1").fields(json!({"align": "middle"}));
        let err = host.render::<Done>(View::Student).unwrap_err();
        assert!(err.0.contains("\"d1\""), "{err}");
    }

    #[test]
    fn toggling_stores_the_state_and_publishes_the_xblock_events() {
        let host = TestHost::new("done", "d1");
        let answer = host
            .handle::<Done>("toggle_button", json!({"answer": [1]}))
            .unwrap();
        assert_eq!(answer, json!({"state": true}));
        assert_eq!(stored(&host), Some(State { done: true }));
        assert_eq!(
            host.events(),
            vec![
                ("grade".into(), json!({"value": 1, "max_value": 1})),
                ("edx.done.toggled".into(), json!({"done": true})),
            ]
        );
        // The XBlock's own payload, and back to not done.
        let answer = host
            .handle::<Done>("toggle_button", json!({"done": false}))
            .unwrap();
        assert_eq!(answer, json!({"state": false}));
        assert_eq!(stored(&host), Some(State { done: false }));
        assert_eq!(
            host.events()[2..],
            [
                ("grade".into(), json!({"value": 0, "max_value": 1})),
                ("edx.done.toggled".into(), json!({"done": false})),
            ]
        );
    }

    #[test]
    fn bad_payloads_are_refused_and_store_nothing() {
        let host = TestHost::new("done", "d1");
        for bad in [
            json!([1]),
            json!({}),
            json!({"answer": []}),
            json!({"answer": [1, 0]}),
            json!({"answer": [2]}),
            json!({"answer": ["yes"]}),
            json!({"done": "true"}),
            json!({"done": true, "answer": [1]}),
        ] {
            let err = host
                .handle::<Done>("toggle_button", bad.clone())
                .unwrap_err();
            assert!(err.0.contains("toggle_button expects"), "{bad}: {err}");
        }
        let err = host
            .handle::<Done>("submit", json!({"done": true}))
            .unwrap_err();
        assert!(err.0.contains("toggle_button"), "{err}");
        assert_eq!(host.stored_state(), None);
        assert!(host.events().is_empty());
    }
}
