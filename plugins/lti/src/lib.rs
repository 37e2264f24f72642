//! `lti`: Open edX's LTI block (edx-platform `xmodule/lti_block.py`), an LTI 1.1 launch of
//! an external tool. The launch itself is `lti_launch`'s (shared with `lti_consumer`).
//!
//! - fields as the block has them: `display_name` ("LTI"), `lti_id` (""), `launch_url`
//!   (`http://www.example.com`, which the template treats as none), `custom_parameters`
//!   ([]), `open_in_a_new_page` (true), `has_score` (false), `weight` (1.0),
//!   `hide_launch` (false), `ask_to_send_username`/`ask_to_send_email` (false),
//!   `description` and `button_text` (""), `accept_grades_past_due` (true), and
//!   `lti_passport`, the `{key, secret}` the importer found in the course's
//!   `lti_passports` for `lti_id`.
//! - render: see `lti_launch::render`; staff also see what the launch lacks.
//! - handler `launch`: the signed launch as JSON (`{url, origin, fields}`), for a page that
//!   posts it; it stores nothing.

use serde::Deserialize;
use serde_json::Value;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, ValidationMessage, View};

use lti_launch::{CommonFields, LtiView, Target, custom_fields};

pub struct Lti;

/// The block's default `launch_url`, which its template treats as no URL.
pub const PLACEHOLDER_URL: &str = "http://www.example.com";

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: String,
    pub launch_url: String,
    pub open_in_a_new_page: bool,
    #[serde(flatten)]
    pub common: CommonFields,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: "LTI".into(),
            launch_url: PLACEHOLDER_URL.into(),
            open_in_a_new_page: true,
            common: CommonFields::default(),
        }
    }
}

impl Fields {
    pub fn view(&self) -> LtiView {
        // The block's iframe is 800 pixels high in Open edX's style sheet.
        let target = if self.open_in_a_new_page {
            Target::NewWindow
        } else {
            Target::Frame { height: 800 }
        };
        LtiView {
            placeholder_url: Some(PLACEHOLDER_URL),
            ..self
                .common
                .view(&self.display_name, "lti", &self.launch_url, target)
        }
    }
}

impl Block for Lti {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let staff = view != View::Student;
        Ok(Fragment {
            html: lti_launch::render_for(cx, &f.view(), staff)?,
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
        if let Err(e) = custom_fields(&f.common.custom_parameters) {
            out.push(ValidationMessage::error(e));
        }
        if f.common.lti_passport.is_none() {
            out.push(ValidationMessage::warning(format!(
                "No LTI passport for lti_id {:?}: launches are signed with an empty key.",
                f.common.lti_id
            )));
        }
        out
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        match name {
            "launch" => lti_launch::launch_answer(cx, &cx.fields().view(), &payload),
            _ => Err(BlockError::new(format!(
                "the lti block has no handler {name:?} (it has launch)"
            ))),
        }
    }
}

xbhost_sdk::export_block!(Lti);

#[cfg(test)]
mod tests;
