//! `google_document`: the Google Document XBlock of openedx/xblock-google-drive (OLX tag
//! `google-document`; the importer gives these blocks this type, since a plugin is named
//! after its crate and cargo's crate names cannot hold `-`).
//!
//! - fields as the XBlock has them: `display_name` ("Google Document"), `embed_code` (the
//!   iframe Google's "Publish to the web" gives; by default the XBlock's demo
//!   presentation) and `alt_text` ("").
//! - render: what the XBlock's template and script make of the embed code: its iframe,
//!   titled with the display name (without a fixed size for documents and spreadsheets),
//!   or its image with the alt text. The block writes that element itself from the embed
//!   code's `src`, so the embed code's other markup never reaches the page; an embed code
//!   with neither is shown as authored HTML, like an html block. The host's
//!   Content-Security-Policy allows frames from `docs.google.com` (and
//!   `calendar.google.com`) only: staff are told when the `src` is elsewhere.
//! - events: the XBlock's script publishes `edx.googlecomponent.document.displayed`
//!   (`{url, displayed_in: "iframe"|"img"}`) once the document loads; blocks run no script
//!   here, so the block publishes it when it renders the document for a learner.

mod embed;

use serde::Deserialize;
use serde_json::json;
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockResult, Context, Fragment, ValidationMessage, View};

pub use embed::{Embed, find};

pub struct GoogleDocument;

/// The XBlock's default document: its demo presentation.
pub const DEFAULT_DOCUMENT_URL: &str = "https://docs.google.com/presentation/d/1x2ZuzqHsMoh1epK8VsGAlanSo7r9z55ualwQlj-ofBQ/embed?start=true&loop=true&delayms=10000";

/// The event the XBlock sends when the document is shown.
pub const DISPLAYED_EVENT: &str = "edx.googlecomponent.document.displayed";

/// The origins the host's pages allow frames from (`CONTENT_SECURITY_POLICY`).
pub const FRAME_ORIGINS: &[&str] = &["https://docs.google.com", "https://calendar.google.com"];

/// The XBlock's default embed code: an iframe of [`DEFAULT_DOCUMENT_URL`].
pub fn default_embed_code() -> String {
    format!(
        "<iframe src=\"{}\" frameborder=\"0\" width=\"960\" height=\"569\" allowfullscreen=\"true\" \
         mozallowfullscreen=\"true\" webkitallowfullscreen=\"true\"></iframe>",
        DEFAULT_DOCUMENT_URL.replace('&', "&amp;")
    )
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: String,
    pub embed_code: String,
    pub alt_text: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: "Google Document".into(),
            embed_code: default_embed_code(),
            alt_text: String::new(),
        }
    }
}

/// Whether frames from `src` are allowed on the host's pages.
fn frame_allowed(src: &str) -> bool {
    FRAME_ORIGINS.iter().any(|origin| {
        src.strip_prefix(origin)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
    })
}

impl Block for GoogleDocument {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let mut notes = Vec::new();
        let embedded = find(&f.embed_code);
        let mut html = String::from("<div class=\"google-docs-xblock-wrapper\">");
        match &embedded {
            Some(Embed::Frame { src, width, height }) => {
                // The XBlock's script drops the fixed size of documents and spreadsheets.
                let fluid = src.contains("document") || src.contains("spreadsheets");
                let size = match (fluid, width, height) {
                    (false, Some(w), Some(h)) => format!(" width=\"{w}\" height=\"{h}\""),
                    _ => String::new(),
                };
                html.push_str(&format!(
                    "<iframe src=\"{}\" title=\"{}\"{size}{} frameborder=\"0\" allowfullscreen></iframe>",
                    escape(src),
                    escape(&f.display_name),
                    if fluid { " class=\"no-width-height\"" } else { "" },
                ));
                if !frame_allowed(src) {
                    notes.push(format!(
                        "The embed code's frame is at <code>{}</code>, but this host's pages allow \
                         frames from {} only: learners see an empty frame.",
                        escape(src),
                        FRAME_ORIGINS.join(" and ")
                    ));
                }
            }
            Some(Embed::Image { src }) => html.push_str(&format!(
                "<img src=\"{}\" alt=\"{}\">",
                escape(src),
                escape(&f.alt_text)
            )),
            None => {
                html.push_str(&f.embed_code);
                notes.push(
                    "The embed code holds no iframe or image with a src: it is shown as authored HTML."
                        .into(),
                );
            }
        }
        html.push_str("</div>");
        if view == View::Student {
            if let Some(e) = &embedded {
                let (url, shown_in) = match e {
                    Embed::Frame { src, .. } => (src, "iframe"),
                    Embed::Image { src } => (src, "img"),
                };
                cx.publish(
                    DISPLAYED_EVENT,
                    &json!({ "url": url, "displayed_in": shown_in }),
                )?;
            }
        } else {
            for note in notes {
                html.push_str(&format!("<p class=\"google-docs-staff-note\">{note}</p>"));
            }
        }
        Ok(Fragment {
            html,
            title: Some(f.display_name.clone()),
            icon: Some("other".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        match find(&cx.fields().embed_code) {
            Some(_) => vec![],
            None => vec![ValidationMessage::warning(
                "The embed code holds no iframe or image with a src.",
            )],
        }
    }
}

xbhost_sdk::export_block!(GoogleDocument);

#[cfg(test)]
mod tests {
    use super::{DEFAULT_DOCUMENT_URL, DISPLAYED_EVENT, GoogleDocument};
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    #[test]
    fn renders_the_xblocks_default_presentation() {
        let host = TestHost::new("google_document", "doc");
        let f = host.render::<GoogleDocument>(View::Student).unwrap();
        assert_eq!(f.title.as_deref(), Some("Google Document"));
        let src = DEFAULT_DOCUMENT_URL.replace('&', "&amp;");
        assert!(
            f.html.contains(&format!(
                "<iframe src=\"{src}\" title=\"Google Document\" width=\"960\" height=\"569\""
            )),
            "{}",
            f.html
        );
        assert_eq!(
            host.events(),
            vec![(
                DISPLAYED_EVENT.to_string(),
                json!({"url": DEFAULT_DOCUMENT_URL, "displayed_in": "iframe"})
            )]
        );
    }

    #[test]
    fn a_document_frame_loses_its_fixed_size_and_markup_around_it() {
        let host = TestHost::new("google_document", "doc").fields(json!({
            "display_name": "Syllabus",
            "embed_code": "<iframe src=\"https://docs.google.com/document/d/e/X/pub?embedded=true\" width=\"500\" height=\"300\" onload=\"alert(1)\"></iframe><script>x()</script>",
        }));
        let f = host.render::<GoogleDocument>(View::Student).unwrap();
        assert!(f.html.contains("class=\"no-width-height\""), "{}", f.html);
        assert!(!f.html.contains("width=\"500\""));
        assert!(!f.html.contains("onload") && !f.html.contains("script"));
        assert!(f.html.contains("title=\"Syllabus\""));
    }

    #[test]
    fn an_image_gets_its_alt_text() {
        let host = TestHost::new("google_document", "doc").fields(json!({
            "embed_code": "<img src=\"https://docs.google.com/drawings/d/1/pub?w=9&amp;h=4\">",
            "alt_text": "A \"diagram\"",
        }));
        let f = host.render::<GoogleDocument>(View::Student).unwrap();
        assert!(
            f.html.contains("<img src=\"https://docs.google.com/drawings/d/1/pub?w=9&amp;h=4\" alt=\"A &quot;diagram&quot;\">"),
            "{}",
            f.html
        );
        assert_eq!(host.events()[0].1["displayed_in"], "img");
    }

    #[test]
    fn staff_are_told_of_frames_the_page_blocks_and_codes_without_one() {
        let host = TestHost::new("google_document", "doc").fields(json!({
            "embed_code": "<iframe src=\"https://docs.google.com.evil.example/x\"></iframe>",
        }));
        let f = host.render::<GoogleDocument>(View::Staff).unwrap();
        assert!(
            f.html.contains("allow frames from https://docs.google.com"),
            "{}",
            f.html
        );
        assert!(host.events().is_empty(), "staff views publish nothing");
        let learner = host.render::<GoogleDocument>(View::Student).unwrap();
        assert!(!learner.html.contains("staff-note"));

        let host = TestHost::new("google_document", "doc")
            .fields(json!({"embed_code": "<p>See the <a href=\"https://x\">notes</a></p>"}));
        let f = host.render::<GoogleDocument>(View::Staff).unwrap();
        assert!(
            f.html
                .contains("<p>See the <a href=\"https://x\">notes</a></p>")
        );
        assert!(f.html.contains("shown as authored HTML"));
        assert_eq!(host.validate::<GoogleDocument>().len(), 1);
        host.render::<GoogleDocument>(View::Student).unwrap();
        assert!(
            host.events().is_empty(),
            "nothing embedded, nothing displayed"
        );
    }

    #[test]
    fn wrongly_typed_fields_are_an_error_naming_the_block() {
        let host = TestHost::new("google_document", "doc").fields(json!({"embed_code": 5}));
        let err = host.render::<GoogleDocument>(View::Student).unwrap_err();
        assert!(err.0.contains("\"doc\""), "{err}");
    }
}
