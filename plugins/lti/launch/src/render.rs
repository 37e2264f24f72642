//! The learner's view of an LTI block, as Open edX's `lti.html` (and xblock-lti-consumer's
//! `student.html`) lay it out, with the launch form signed for the learner, and the notes
//! staff get about what the launch lacks.

use std::fmt::Write;

use xbhost_sdk::html::escape;

use crate::launch::{LaunchSettings, Launcher};

/// Where the tool opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A new browser window (`open_in_a_new_page`, `launch_target` "new_window" or "modal").
    NewWindow,
    /// A frame in the page (`launch_target` "iframe", `open_in_a_new_page` false).
    Frame { height: u32 },
}

/// What Open edX shows when there is no launch URL.
pub const NO_LAUNCH_URL: &str =
    "Please provide launch_url. Click \"Edit\", and fill in the required fields.";

/// An LTI block's settings as its template uses them.
#[derive(Debug, Clone)]
pub struct LtiView {
    pub display_name: String,
    /// The HTML class of the container (`lti`, `lti_consumer`).
    pub element_class: &'static str,
    pub lti_id: String,
    pub settings: LaunchSettings,
    pub target: Target,
    pub description: String,
    pub button_text: String,
    pub has_score: bool,
    pub weight: f64,
    pub hide_launch: bool,
    pub ask_to_send_email: bool,
    pub ask_to_send_full_name: bool,
    /// A launch URL that counts as none (`lti`'s default, `http://www.example.com`).
    pub placeholder_url: Option<&'static str>,
}

/// The page origin forms may post to: the host's Content-Security-Policy says
/// `form-action 'self'` (see the crate doc).
pub const FORM_POLICY_NOTE: &str = "this host's pages let forms post only to the host itself \
    (Content-Security-Policy form-action 'self'), so the browser does not send this launch";

impl LtiView {
    /// The launch URL, unless there is none (or only the placeholder).
    pub fn launch_url(&self) -> Option<&str> {
        let url = self.settings.launch_url.trim();
        (!url.is_empty() && Some(url) != self.placeholder_url).then_some(url)
    }

    /// The block's HTML for `who` (signed at `timestamp` with `nonce`); staff also get the
    /// notes. An error says what is wrong with the block's settings.
    pub fn html(
        &self,
        who: &Launcher,
        staff: bool,
        timestamp: u64,
        nonce: &str,
    ) -> Result<String, String> {
        let mut html = format!(
            "<h2 class=\"problem-header\">{} (External resource)</h2>",
            escape(&self.display_name)
        );
        if self.has_score && self.weight > 0.0 {
            let _ = write!(
                html,
                "<div class=\"problem-progress\">({} points possible)</div>",
                self.weight
            );
        }
        let _ = write!(html, "<div class=\"{} lti-container\">", self.element_class);
        let mut notes = Vec::new();
        match (self.launch_url(), self.hide_launch) {
            (_, true) => {
                notes.push("Hide External Tool is set: learners get no launch.".to_string())
            }
            (None, false) => {
                let _ = write!(
                    html,
                    "<h3 class=\"error_message\">{}</h3>",
                    escape(NO_LAUNCH_URL)
                );
                notes.push(
                    "No launch URL: the block's launch_url (the launch_url attribute in OLX) is \
                     not set, so there is nothing to launch."
                        .into(),
                );
            }
            (Some(_), false) => {
                let launch = self.settings.sign(who, timestamp, nonce)?;
                self.form(&mut html, who, &launch);
                notes.push(format!(
                    "The launch posts to {}, but {FORM_POLICY_NOTE} there.",
                    escape(&launch.url.origin)
                ));
            }
        }
        html.push_str("</div>");
        if staff {
            self.passport_note(&mut notes);
            if self.has_score {
                notes.push(
                    "Scored: this host has no LTI outcome service, so the tool's scores are not \
                     received (no lis_outcome_service_url is sent)."
                        .into(),
                );
            }
            if self.ask_to_send_email {
                notes.push(
                    "The learner's email is not sent: this host knows no email addresses.".into(),
                );
            }
            if self.ask_to_send_full_name {
                notes.push("The learner's full name is not sent: this host knows no names.".into());
            }
            html.push_str("<ul class=\"lti-staff-notes\">");
            for note in notes {
                let _ = write!(html, "<li>{note}</li>");
            }
            html.push_str("</ul>");
        }
        Ok(html)
    }

    fn passport_note(&self, notes: &mut Vec<String>) {
        let id = self.lti_id.trim();
        let note = match (&self.settings.passport, id.is_empty()) {
            (Some(p), _) => format!(
                "Signed with the key {:?} of the course's LTI passport {:?}.",
                escape(&p.key),
                escape(id)
            ),
            (None, true) => {
                "No LTI passport: the block has no lti_id, so the launch is signed with an \
                 empty key and secret (as Open edX does) and the tool will refuse it."
                    .to_string()
            }
            (None, false) => format!(
                "No LTI passport: the course's lti_passports (policy.json; Advanced Settings, \
                 \"LTI Passports\") has no entry \"{}:key:secret\", so the launch is signed with an \
                 empty key and secret (as Open edX does) and the tool will refuse it.",
                escape(id)
            ),
        };
        notes.push(note);
    }

    fn form(&self, html: &mut String, who: &Launcher, launch: &crate::launch::SignedLaunch) {
        let frame = format!("ltiFrame-{}", anchor(&who.usage_id));
        let target = match self.target {
            Target::NewWindow => "_blank",
            Target::Frame { .. } => frame.as_str(),
        };
        html.push_str("<div class=\"wrapper-lti-link\">");
        if !self.description.is_empty() {
            let _ = write!(
                html,
                "<div class=\"lti-description\">{}</div>",
                escape(&self.description)
            );
        }
        let _ = write!(
            html,
            "<form class=\"ltiLaunchForm\" action=\"{}\" method=\"post\" target=\"{target}\" \
             enctype=\"application/x-www-form-urlencoded\">",
            escape(self.settings.launch_url.trim())
        );
        for (name, value) in &launch.fields {
            let _ = write!(
                html,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            );
        }
        let label = match (self.button_text.trim(), self.target) {
            ("", Target::NewWindow) => "View resource in a new window",
            ("", Target::Frame { .. }) => "Load the resource",
            (text, _) => text,
        };
        let _ = write!(
            html,
            "<p class=\"lti-link external\"><button type=\"submit\" class=\"link_lti_new_window\">{}</button></p></form></div>",
            escape(label)
        );
        if let Target::Frame { height } = self.target {
            let _ = write!(
                html,
                "<iframe class=\"ltiLaunchFrame\" name=\"{frame}\" title=\"{}\" src=\"about:blank\" \
                 width=\"100%\" height=\"{height}\"></iframe>",
                escape(&self.display_name)
            );
        }
    }
}

/// A usage id as an HTML name part.
fn anchor(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
