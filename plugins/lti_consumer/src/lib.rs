//! `lti_consumer`: openedx/xblock-lti-consumer's block, here its LTI 1.1 launch (the
//! launch itself is `lti_launch`'s, shared with `lti`).
//!
//! - fields as the XBlock has them (its LTI 1.1 ones): `display_name` ("LTI Consumer"),
//!   `description` (""), `lti_version` ("lti_1p1"), `lti_id` (""), `launch_url` (""),
//!   `custom_parameters` ([]), `launch_target` ("iframe"; "modal" and "new_window"),
//!   `button_text` (""), `inline_height` (800), `has_score` (false), `weight` (1.0),
//!   `hide_launch` (false), `accept_grades_past_due` (true), `ask_to_send_username`,
//!   `ask_to_send_full_name`, `ask_to_send_email` (false), and `lti_passport`, the
//!   `{key, secret}` the importer found in the course's `lti_passports` for `lti_id`.
//! - render: see `lti_launch::render`; a modal launch opens a new window (a modal needs
//!   the XBlock's script). LTI 1.3 (`lti_version` "lti_1p3") is not supported: the block
//!   fails, naming it.
//! - handler `launch`: the signed launch as JSON, as `lti`'s.

use serde::Deserialize;
use serde_json::Value;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, ValidationMessage, View};

use lti_launch::{CommonFields, LtiView, Target, custom_fields};

pub struct LtiConsumer;

/// Tallest inline frame accepted, in pixels.
pub const MAX_INLINE_HEIGHT: u32 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: String,
    pub lti_version: String,
    pub launch_url: String,
    pub launch_target: String,
    pub inline_height: u32,
    pub ask_to_send_full_name: bool,
    #[serde(flatten)]
    pub common: CommonFields,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: "LTI Consumer".into(),
            lti_version: "lti_1p1".into(),
            launch_url: String::new(),
            launch_target: "iframe".into(),
            inline_height: 800,
            ask_to_send_full_name: false,
            common: CommonFields::default(),
        }
    }
}

impl Fields {
    /// The launch view, or what is wrong with the settings.
    pub fn view(&self) -> Result<LtiView, String> {
        if self.lti_version != "lti_1p1" {
            return Err(format!(
                "lti_version {:?} is not supported: this host launches LTI 1.1 (\"lti_1p1\") only",
                self.lti_version
            ));
        }
        if self.inline_height > MAX_INLINE_HEIGHT {
            return Err(format!(
                "inline_height {} is over the limit of {MAX_INLINE_HEIGHT} pixels",
                self.inline_height
            ));
        }
        let (target, document_target) = match self.launch_target.as_str() {
            "iframe" => (
                Target::Frame {
                    height: self.inline_height,
                },
                "iframe",
            ),
            "modal" | "new_window" => (Target::NewWindow, "window"),
            other => {
                return Err(format!(
                    "launch_target {other:?} is not one of \"iframe\", \"modal\", \"new_window\""
                ));
            }
        };
        let mut view =
            self.common
                .view(&self.display_name, "lti_consumer", &self.launch_url, target);
        view.settings.document_target = Some(document_target);
        view.ask_to_send_full_name = self.ask_to_send_full_name;
        Ok(view)
    }
}

fn view_of(cx: &Context<'_, Fields>) -> BlockResult<LtiView> {
    cx.fields()
        .view()
        .map_err(|e| BlockError::new(format!("lti_consumer block {:?}: {e}", cx.usage_id())))
}

impl Block for LtiConsumer {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        Ok(Fragment {
            html: lti_launch::render_for(cx, &view_of(cx)?, view != View::Student)?,
            title: Some(f.display_name.clone()),
            icon: Some(
                if f.common.has_score {
                    "problem"
                } else {
                    "other"
                }
                .into(),
            ),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = cx.fields();
        let mut out = Vec::new();
        if let Err(e) = f.view() {
            out.push(ValidationMessage::error(e));
        }
        if let Err(e) = custom_fields(&f.common.custom_parameters) {
            out.push(ValidationMessage::error(e));
        }
        out
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        match name {
            "launch" => lti_launch::launch_answer(cx, &view_of(cx)?, &payload),
            _ => Err(BlockError::new(format!(
                "the lti_consumer block has no handler {name:?} (it has launch)"
            ))),
        }
    }
}

xbhost_sdk::export_block!(LtiConsumer);

#[cfg(test)]
mod tests {
    use super::LtiConsumer;
    use lti_launch::NO_LAUNCH_URL;
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    #[test]
    fn with_defaults_learners_see_the_missing_url_message() {
        let host = TestHost::new("lti_consumer", "c1");
        let f = host.render::<LtiConsumer>(View::Student).unwrap();
        assert_eq!(f.title.as_deref(), Some("LTI Consumer"));
        assert!(f.html.contains("LTI Consumer (External resource)"));
        assert!(f.html.contains(&NO_LAUNCH_URL.replace('"', "&quot;")));
        let staff = host.render::<LtiConsumer>(View::Staff).unwrap();
        assert!(staff.html.contains("No launch URL") && staff.html.contains("no lti_id"));
    }

    #[test]
    fn renders_an_inline_launch_at_its_height_with_the_document_target() {
        let host = TestHost::new("lti_consumer", "c1").fields(json!({
            "launch_url": "https://tool.example/lti",
            "lti_id": "tool",
            "inline_height": 500,
            "ask_to_send_full_name": true,
            "lti_passport": {"key": "k", "secret": "s"},
        }));
        let f = host.render::<LtiConsumer>(View::Student).unwrap();
        assert!(f.html.contains("target=\"ltiFrame-c1\""), "{}", f.html);
        assert!(f.html.contains("height=\"500\""));
        assert!(
            f.html
                .contains("name=\"launch_presentation_document_target\" value=\"iframe\"")
        );
        let staff = host.render::<LtiConsumer>(View::Staff).unwrap();
        assert!(staff.html.contains("full name is not sent"));
        let answer = host.handle::<LtiConsumer>("launch", json!({})).unwrap();
        assert_eq!(answer["fields"]["oauth_consumer_key"], "k");
        assert!(
            host.handle::<LtiConsumer>("launch", json!({"a": 1}))
                .is_err()
        );
        assert_eq!(host.stored_state(), None);
    }

    #[test]
    fn a_modal_opens_a_new_window() {
        let host = TestHost::new("lti_consumer", "c1")
            .fields(json!({"launch_url": "https://tool.example/lti", "launch_target": "modal"}));
        let f = host.render::<LtiConsumer>(View::Student).unwrap();
        assert!(f.html.contains("target=\"_blank\""));
        assert!(f.html.contains(">View resource in a new window</button>"));
    }

    #[test]
    fn unsupported_settings_are_errors_naming_the_block() {
        for (fields, what) in [
            (
                json!({"lti_version": "lti_1p3"}),
                "lti_version \"lti_1p3\" is not supported",
            ),
            (json!({"launch_target": "popup"}), "launch_target \"popup\""),
            (json!({"inline_height": 1_000_000}), "inline_height"),
        ] {
            let host = TestHost::new("lti_consumer", "c1").fields(fields);
            let err = host.render::<LtiConsumer>(View::Student).unwrap_err();
            assert!(err.0.contains("\"c1\"") && err.0.contains(what), "{err}");
            assert!(!host.validate::<LtiConsumer>().is_empty());
        }
    }
}
