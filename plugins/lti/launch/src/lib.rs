//! LTI 1.1 launches for the `lti` (edx-platform `xmodule/lti_block.py`) and
//! `lti_consumer` (openedx/xblock-lti-consumer) blocks: what both share.
//!
//! - [`oauth`]: OAuth 1.0 HMAC-SHA1 signing (RFC 5849), checked against published vectors.
//! - [`launch`]: Open edX's launch parameters for the current learner (an anonymous id
//!   derived from the tool's secret, roles, resource link, result sourcedid, custom
//!   parameters), signed with the key and secret of the course's `lti_passports` entry
//!   `"id:key:secret"` for the block's `lti_id` (the importer finds it); with no passport
//!   the launch is signed with an empty key and secret, as Open edX does.
//! - [`render`]: the block as Open edX's template lays it out: the title "(External
//!   resource)", the points possible, and the launch, a form that posts the signed fields
//!   to the launch URL in a new window (or a frame). Blocks run no script here, so the
//!   learner presses the form's button where Open edX's page script submits it. Without a
//!   launch URL learners see Open edX's "Please provide launch_url" message; staff see
//!   what the launch lacks (no URL, no passport, no outcome service, what is not sent).
//!
//! Limitation: the host's pages carry `form-action 'self'`, so the browser refuses to post
//! the launch form to the tool's origin. Opening `form-action` to every origin is not an
//! option; the launch needs a page the host serves for it with a policy naming that one
//! origin. Until then the form is complete and correctly signed (tests verify it), and
//! staff are told the browser will not send it.

pub mod launch;
pub mod oauth;
pub mod render;

pub use launch::{LaunchSettings, Launcher, Passport, SignedLaunch, custom_fields, new_nonce};
pub use render::{LtiView, NO_LAUNCH_URL, Target};

use xbhost_sdk::{BlockError, BlockResult, Context};

/// The context's learner, the request's time (seconds) and a fresh nonce.
fn launching<F>(cx: &Context<'_, F>) -> BlockResult<(Launcher, u64, String)> {
    let user = cx.user();
    let who = Launcher {
        course_key: cx.course_key(),
        usage_id: cx.usage_id(),
        user_id: user.id,
        username: user.username,
        is_staff: user.is_staff,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Ok((who, now, new_nonce().map_err(BlockError::new)?))
}

/// Renders `view` for the context's learner now: signed with the request's time and a
/// fresh nonce.
pub fn render_for<F>(cx: &Context<'_, F>, view: &LtiView, staff: bool) -> BlockResult<String> {
    let (who, now, nonce) = launching(cx)?;
    view.html(&who, staff, now, &nonce).map_err(|e| {
        BlockError::new(format!(
            "{} block {:?}: {e}",
            view.element_class, who.usage_id
        ))
    })
}

/// The `launch` handler both blocks have: the signed launch for the calling learner as
/// JSON, `{url, origin, fields: {name: value}}`, what a page posting the launch needs.
/// It takes an empty payload (`{}` or the page form's `{"answer": []}`) and stores nothing.
pub fn launch_answer<F>(
    cx: &Context<'_, F>,
    view: &LtiView,
    payload: &serde_json::Value,
) -> BlockResult<serde_json::Value> {
    let empty = payload.as_object().is_some_and(|o| {
        o.is_empty() || (o.len() == 1 && o.get("answer") == Some(&serde_json::json!([])))
    });
    if !empty {
        return Err(BlockError::new("launch takes no parameters: send {}"));
    }
    if view.hide_launch || view.launch_url().is_none() {
        return Err(BlockError::new(NO_LAUNCH_URL));
    }
    let (who, now, nonce) = launching(cx)?;
    let launch = view
        .settings
        .sign(&who, now, &nonce)
        .map_err(BlockError::new)?;
    let fields: serde_json::Map<String, serde_json::Value> = launch
        .fields
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    Ok(serde_json::json!({
        "url": view.settings.launch_url.trim(),
        "origin": launch.url.origin,
        "fields": fields,
    }))
}

/// The LTI fields `lti` and `lti_consumer` share, with the defaults both XBlocks give
/// them; each block flattens it into its own fields.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct CommonFields {
    pub lti_id: String,
    pub custom_parameters: Vec<String>,
    pub has_score: bool,
    pub weight: f64,
    pub hide_launch: bool,
    pub ask_to_send_username: bool,
    pub ask_to_send_email: bool,
    pub description: String,
    pub button_text: String,
    pub accept_grades_past_due: bool,
    pub lti_passport: Option<Passport>,
}

impl Default for CommonFields {
    fn default() -> Self {
        CommonFields {
            lti_id: String::new(),
            custom_parameters: Vec::new(),
            has_score: false,
            weight: 1.0,
            hide_launch: false,
            ask_to_send_username: false,
            ask_to_send_email: false,
            description: String::new(),
            button_text: String::new(),
            accept_grades_past_due: true,
            lti_passport: None,
        }
    }
}

impl CommonFields {
    /// The block's view: these fields with the block's own (`launch_url`, where it opens).
    pub fn view(
        &self,
        display_name: &str,
        element_class: &'static str,
        launch_url: &str,
        target: Target,
    ) -> LtiView {
        LtiView {
            display_name: display_name.to_string(),
            element_class,
            lti_id: self.lti_id.clone(),
            settings: LaunchSettings {
                launch_url: launch_url.to_string(),
                custom_parameters: self.custom_parameters.clone(),
                ask_to_send_username: self.ask_to_send_username,
                passport: self.lti_passport.clone(),
                document_target: None,
            },
            target,
            description: self.description.clone(),
            button_text: self.button_text.clone(),
            has_score: self.has_score,
            weight: self.weight,
            hide_launch: self.hide_launch,
            ask_to_send_email: self.ask_to_send_email,
            ask_to_send_full_name: false,
            placeholder_url: None,
        }
    }
}
