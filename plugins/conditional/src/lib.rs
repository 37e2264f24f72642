//! `conditional`: Open edX's conditional block. Its children are shown once the learner
//! meets a condition on other blocks of the course (its `sources`), for example a problem
//! attempted or a poll answered; until then, the author's message. The learner's state of
//! each source is read through the host's `sources` interface, which lets a block read
//! only the blocks its own `sources` field names, for the current learner only.
//!
//! Conditions (`conditional_attr`, compared with `conditional_value`, Open edX's names):
//! `attempted` and `submitted` (a problem answered at least once), `correct` (answered
//! right), `voted` (a poll answered), `poll_answer` (a poll answered with the value),
//! `completed` (a `done` block marked done, or any block the learner has state in). Every
//! source must meet it; a block with no sources shows its children, as Open edX does.

use serde::Deserialize;
use serde_json::Value;
use xbhost_sdk::containers::{VisibleChild, all_hidden};
use xbhost_sdk::html::escape;
use xbhost_sdk::{
    Block, BlockResult, Context, Fragment, HostError, Severity, ValidationMessage, View,
};

pub struct Conditional;

/// The conditions this block knows.
pub const CONDITIONS: &[&str] = &[
    "attempted",
    "submitted",
    "correct",
    "voted",
    "poll_answer",
    "completed",
];

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    /// Usage ids of the blocks the condition is about.
    pub sources: Vec<String>,
    pub conditional_attr: String,
    pub conditional_value: String,
    /// Shown while the condition does not hold; `{link}` names the sources.
    pub message: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: None,
            sources: Vec::new(),
            conditional_attr: "correct".into(),
            conditional_value: "True".into(),
            message: String::new(),
        }
    }
}

/// Whether one source, as the learner left it, meets the condition.
pub fn meets(attr: &str, value: &str, block_type: &str, state: Option<&str>) -> bool {
    let state: Value = state
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let truthy = !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "false" | "0" | "no"
    );
    let number = |k: &str| state.get(k).and_then(Value::as_f64);
    let holds = match attr {
        "attempted" | "submitted" => number("attempts").is_some_and(|n| n > 0.0),
        "correct" => {
            state.get("correct").and_then(Value::as_bool) == Some(true)
                || matches!(
                    (number("score"), number("max_score")),
                    (Some(s), Some(m)) if m > 0.0 && s >= m
                )
        }
        "voted" => state.get("choice").is_some_and(|c| !c.is_null()),
        // The poll's answer itself is the value compared, not a truth.
        "poll_answer" => {
            return state.get("choice").and_then(Value::as_str) == Some(value.trim());
        }
        "completed" => match block_type {
            "done" => state.get("done").and_then(Value::as_bool) == Some(true),
            _ => !state.is_null(),
        },
        _ => false,
    };
    holds == truthy
}

/// Whether the learner meets the condition on every source.
fn satisfied(cx: &Context<'_, Fields>) -> Result<bool, HostError> {
    let f = cx.fields();
    for usage_id in &f.sources {
        let source = cx.source(usage_id)?;
        if !meets(
            &f.conditional_attr,
            &f.conditional_value,
            &source.block_type,
            source.state.as_deref(),
        ) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn describe(f: &Fields) -> String {
    let what = match f.conditional_attr.as_str() {
        "attempted" | "submitted" => "attempted".to_string(),
        "correct" => "answered correctly".to_string(),
        "voted" => "voted in".to_string(),
        "poll_answer" => format!("answered {:?} in", f.conditional_value),
        "completed" => "completed".to_string(),
        other => format!("met {other:?} on"),
    };
    format!(
        "Shown to learners who have {what}: {}",
        f.sources.join(", ")
    )
}

impl Block for Conditional {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let met = satisfied(cx)?;
        let mut html = String::from("<div class=\"conditional\">");
        if view != View::Student {
            html.push_str(&format!(
                "<p class=\"conditional-note\">{} (you: {}).</p>",
                escape(&describe(f)),
                if met { "met" } else { "not met" }
            ));
        }
        let mut visible = Vec::new();
        if met || view != View::Student {
            for usage_id in cx.children() {
                let fragment = cx.render_child(&usage_id, view)?;
                if !fragment.hidden {
                    visible.push(VisibleChild { usage_id, fragment });
                }
            }
        }
        if met || view != View::Student {
            for child in &visible {
                html.push_str(&child.fragment.html);
            }
        } else {
            let message = if f.message.trim().is_empty() {
                "This content is not available yet.".to_string()
            } else {
                f.message.replace("{link}", "the content it depends on")
            };
            html.push_str(&format!(
                "<p class=\"conditional-message\">{}</p>",
                escape(&message)
            ));
        }
        html.push_str("</div>");
        Ok(Fragment {
            html,
            hidden: met && view == View::Student && all_hidden(cx, &visible),
            title: f.display_name.clone(),
            ..Fragment::default()
        })
    }

    fn visible_children(cx: &Context<'_, Fields>) -> BlockResult<Vec<String>> {
        Ok(if satisfied(cx)? {
            cx.children()
        } else {
            Vec::new()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = cx.fields();
        let mut messages = Vec::new();
        if !CONDITIONS.contains(&f.conditional_attr.as_str()) {
            messages.push(ValidationMessage::error(format!(
                "Unknown condition {:?}: one of {}.",
                f.conditional_attr,
                CONDITIONS.join(", ")
            )));
        }
        if f.sources.is_empty() {
            messages.push(ValidationMessage {
                severity: Severity::Warning,
                text: "No sources: every learner sees the content.".into(),
            });
        }
        messages
    }
}

xbhost_sdk::export_block!(Conditional);

#[cfg(test)]
mod tests {
    use super::{Conditional, meets};
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    fn gated(state: Option<&str>) -> TestHost {
        TestHost::new("conditional", "cond")
            .fields(json!({
                "sources": ["p1"],
                "conditional_attr": "attempted",
                "conditional_value": "True",
                "message": "You must complete {link} first."
            }))
            .children(["secret"])
            .source_block("p1", "problem", state)
    }

    #[test]
    fn content_is_shown_once_the_source_is_attempted() {
        let before = gated(None);
        let f = before.render::<Conditional>(View::Student).unwrap();
        assert!(!f.html.contains("<p>secret</p>"));
        assert!(
            f.html
                .contains("You must complete the content it depends on first.")
        );
        assert!(before.rendered_children().is_empty(), "not even rendered");
        assert!(before.visible_children::<Conditional>().unwrap().is_empty());
        let after = gated(Some(r#"{"attempts": 1, "correct": false}"#));
        assert!(
            after
                .render::<Conditional>(View::Student)
                .unwrap()
                .html
                .contains("<p>secret</p>")
        );
        assert_eq!(after.visible_children::<Conditional>().unwrap(), ["secret"]);
    }

    #[test]
    fn staff_see_the_content_and_the_condition() {
        let f = gated(None)
            .staff()
            .render::<Conditional>(View::Staff)
            .unwrap();
        assert!(f.html.contains("<p>secret</p>"));
        assert!(
            f.html
                .contains("Shown to learners who have attempted: p1 (you: not met).")
        );
    }

    #[test]
    fn a_source_the_field_does_not_list_is_refused() {
        let host = TestHost::new("conditional", "cond")
            .fields(json!({"sources": ["p1"]}))
            .source_block("p2", "problem", Some("{}"));
        let err = host.render::<Conditional>(View::Student).unwrap_err();
        assert!(err.0.contains("no block \"p1\""), "{}", err.0);
    }

    #[test]
    fn conditions_read_each_block_type_s_state() {
        let correct = r#"{"attempts": 2, "correct": true}"#;
        assert!(meets("correct", "True", "problem", Some(correct)));
        assert!(!meets(
            "correct",
            "True",
            "problem",
            Some(r#"{"attempts": 1}"#)
        ));
        assert!(meets(
            "correct",
            "False",
            "problem",
            Some(r#"{"attempts": 1}"#)
        ));
        assert!(meets("voted", "True", "poll", Some(r#"{"choice": "R"}"#)));
        assert!(meets(
            "poll_answer",
            "R",
            "poll",
            Some(r#"{"choice": "R"}"#)
        ));
        assert!(!meets(
            "poll_answer",
            "B",
            "poll",
            Some(r#"{"choice": "R"}"#)
        ));
        assert!(meets(
            "completed",
            "True",
            "done",
            Some(r#"{"done": true}"#)
        ));
        assert!(!meets(
            "completed",
            "True",
            "done",
            Some(r#"{"done": false}"#)
        ));
        assert!(!meets("attempted", "True", "problem", None));
        assert!(!meets("nonsense", "True", "problem", Some(correct)));
    }
}
