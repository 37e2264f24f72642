//! `library_sourced`: Open edX's library sourced content block, blocks an author copied
//! from a content library (its `source_block_ids`), shown to every learner in order, as a
//! unit shows its children (Open edX renders its children inside one `div`). Unlike
//! `library_content` nothing is randomized. An export carries the copied blocks as its
//! children; one without children shows nothing, as in Open edX, and tells staff so.

use serde::Deserialize;
use xbhost_sdk::containers::{all_hidden, render_visible_children};
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockResult, Context, Fragment, Severity, ValidationMessage, View};

pub struct LibrarySourced;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    /// The library the blocks were copied from.
    pub source_library_id: Option<String>,
    /// The library blocks copied (informational: the export carries the copies).
    pub source_block_ids: Vec<String>,
}

impl Block for LibrarySourced {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let visible = render_visible_children(cx, view)?;
        let mut html = String::from("<div class=\"library-sourced-content\">");
        if view != View::Student {
            html.push_str(&format!(
                "<p class=\"library-sourced-note\">{} blocks copied from {}.</p>",
                cx.children().len(),
                escape(
                    f.source_library_id
                        .as_deref()
                        .unwrap_or("a content library")
                )
            ));
        }
        for child in &visible {
            html.push_str(&child.fragment.html);
        }
        html.push_str("</div>");
        Ok(Fragment {
            html,
            hidden: all_hidden(cx, &visible),
            title: f.display_name.clone(),
            icon: visible.iter().find_map(|c| c.fragment.icon.clone()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        if cx.children().is_empty() {
            vec![ValidationMessage {
                severity: Severity::Warning,
                text: "No blocks were copied from the library: learners see nothing here.".into(),
            }]
        } else {
            Vec::new()
        }
    }
}

xbhost_sdk::export_block!(LibrarySourced);

#[cfg(test)]
mod tests {
    use super::LibrarySourced;
    use serde_json::json;
    use xbhost_sdk::testing::TestHost;
    use xbhost_sdk::{Fragment, View};

    #[test]
    fn shows_every_copied_block_in_order_and_drops_hidden_ones() {
        let host = TestHost::new("library_sourced", "ls")
            .children(["a", "b", "c"])
            .child_fragment("b", Fragment::hidden());
        let f = host.render::<LibrarySourced>(View::Student).unwrap();
        let (a, c) = (
            f.html.find("<p>a</p>").unwrap(),
            f.html.find("<p>c</p>").unwrap(),
        );
        assert!(a < c && !f.html.contains("<p>b</p>"));
        assert!(!f.html.contains("copied from"), "no note for learners");
        assert!(host.validate::<LibrarySourced>().is_empty());
    }

    #[test]
    fn an_empty_one_shows_nothing_and_says_so_to_staff() {
        let host = TestHost::new("library_sourced", "ls")
            .fields(json!({"source_library_id": "lib:X:Y"}))
            .staff();
        let f = host.render::<LibrarySourced>(View::Staff).unwrap();
        assert!(!f.hidden, "an empty container is not hidden");
        assert!(
            f.html.contains("0 blocks copied from lib:X:Y."),
            "{}",
            f.html
        );
        assert!(
            host.validate::<LibrarySourced>()[0]
                .text
                .contains("No blocks")
        );
    }
}
