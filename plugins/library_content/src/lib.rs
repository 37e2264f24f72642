//! `library_content`: randomized content (Open edX's library content block). Each learner
//! gets `max_count` of its children (the pool, which an export carries), picked by the
//! host's sampling authority: sticky, uniform, independent of every other block, and kept
//! when the pool changes as long as the picks are still in it (see the contract's
//! `selection` interface). The host, not this block, stores the picks and sends
//! `edx.librarycontentblock.content.assigned`, and in student view it hides every child not
//! picked, whatever this block renders.
//!
//! - student view: the picked children, in authored order; hidden when none is visible.
//! - staff and author views: the whole pool, the host marking each child picked or not for
//!   the viewer, under a note saying how many each learner gets.
//! - `visible-children`: the picks (what grading and reachability follow).

use serde::Deserialize;
use xbhost_sdk::containers::{VisibleChild, all_hidden};
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockResult, Context, Fragment, Severity, ValidationMessage, View};

pub struct LibraryContent;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    /// How many children each learner gets; Open edX's `-1` (or any negative) is all.
    pub max_count: i64,
    /// The library the pool came from (informational: the export carries the pool).
    pub source_library_id: Option<String>,
    /// Open edX's problem-type filter, already applied to the exported pool.
    pub capa_type: Option<String>,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: None,
            // Open edX's default.
            max_count: 1,
            source_library_id: None,
            capa_type: None,
        }
    }
}

impl Fields {
    /// The count asked of the host: all of the pool for a negative `max_count`.
    fn count(&self, pool: usize) -> u32 {
        let all = u32::try_from(pool).unwrap_or(u32::MAX);
        match u32::try_from(self.max_count) {
            Ok(n) => n.min(all),
            Err(_) => all,
        }
    }
}

impl Block for LibraryContent {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let pool = cx.children();
        let picked = cx.selected_children(f.count(pool.len()))?;
        // Staff see the whole pool (the host marks the picks); learners their picks.
        let shown: Vec<String> = match view {
            View::Student => picked.clone(),
            View::Staff | View::Author => pool.clone(),
        };
        let mut visible = Vec::new();
        for usage_id in shown {
            let fragment = cx.render_child(&usage_id, view)?;
            if !fragment.hidden {
                visible.push(VisibleChild { usage_id, fragment });
            }
        }
        let mut html = String::from("<div class=\"library-content\">");
        if view != View::Student {
            html.push_str(&format!(
                "<p class=\"library-content-note\">Randomized content: each learner gets {} of these {} blocks{}.</p>",
                picked.len(),
                pool.len(),
                f.source_library_id
                    .as_deref()
                    .map(|l| format!(" (from library {})", escape(l)))
                    .unwrap_or_default()
            ));
        }
        for child in &visible {
            html.push_str("<div class=\"library-content-item\">");
            html.push_str(&child.fragment.html);
            html.push_str("</div>");
        }
        html.push_str("</div>");
        Ok(Fragment {
            html,
            hidden: view == View::Student && all_hidden(cx, &visible),
            title: f.display_name.clone(),
            icon: visible.iter().find_map(|c| c.fragment.icon.clone()),
            ..Fragment::default()
        })
    }

    fn visible_children(cx: &Context<'_, Fields>) -> BlockResult<Vec<String>> {
        let pool = cx.children().len();
        Ok(cx.selected_children(cx.fields().count(pool))?)
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = cx.fields();
        let pool = cx.children().len();
        let mut messages = Vec::new();
        if pool == 0 {
            messages.push(ValidationMessage::error(
                "The pool is empty: learners see nothing here.",
            ));
        } else if f.max_count == 0 {
            messages.push(ValidationMessage {
                severity: Severity::Warning,
                text: "max_count is 0: learners see none of the pool.".into(),
            });
        } else if f.max_count > 0 && f.max_count as u64 > pool as u64 {
            messages.push(ValidationMessage {
                severity: Severity::Warning,
                text: format!(
                    "max_count is {} but the pool has {pool} blocks: every learner gets all of them.",
                    f.max_count
                ),
            });
        }
        messages
    }
}

xbhost_sdk::export_block!(LibraryContent);

#[cfg(test)]
mod tests {
    use super::LibraryContent;
    use serde_json::json;
    use xbhost_sdk::testing::TestHost;
    use xbhost_sdk::{Fragment, Severity, View};

    fn pool() -> TestHost {
        TestHost::new("library_content", "lib")
            .fields(json!({"max_count": 2, "source_library_id": "library-v1:X+Y"}))
            .children(["p1", "p2", "p3", "p4"])
            .selection(["p3", "p1"])
    }

    #[test]
    fn a_learner_sees_only_the_host_s_picks_in_authored_order() {
        let host = pool();
        let f = host.render::<LibraryContent>(View::Student).unwrap();
        let p1 = f.html.find("<p>p1</p>").expect("p1 shown");
        let p3 = f.html.find("<p>p3</p>").expect("p3 shown");
        assert!(p1 < p3, "authored order");
        assert!(!f.html.contains("<p>p2</p>") && !f.html.contains("<p>p4</p>"));
        let rendered: Vec<String> = host
            .rendered_children()
            .into_iter()
            .map(|c| c.usage_id)
            .collect();
        assert_eq!(rendered, ["p1", "p3"], "not picked, not even rendered");
        assert!(!f.html.contains("Randomized content"));
        assert_eq!(
            host.visible_children::<LibraryContent>().unwrap(),
            ["p1", "p3"]
        );
    }

    #[test]
    fn staff_see_the_whole_pool_with_a_note() {
        let host = pool().staff();
        let f = host.render::<LibraryContent>(View::Staff).unwrap();
        for p in ["p1", "p2", "p3", "p4"] {
            assert!(f.html.contains(&format!("<p>{p}</p>")), "{p}: {}", f.html);
        }
        assert!(
            f.html
                .contains("each learner gets 2 of these 4 blocks (from library library-v1:X+Y)"),
            "{}",
            f.html
        );
    }

    #[test]
    fn negative_max_count_is_the_whole_pool_and_hidden_picks_hide_the_block() {
        let host = TestHost::new("library_content", "lib")
            .fields(json!({"max_count": -1}))
            .children(["a", "b"])
            .child_fragment("a", Fragment::hidden())
            .child_fragment("b", Fragment::hidden());
        assert_eq!(
            host.visible_children::<LibraryContent>().unwrap(),
            ["a", "b"]
        );
        assert!(host.render::<LibraryContent>(View::Student).unwrap().hidden);
    }

    #[test]
    fn validation_names_an_empty_pool_and_a_count_over_it() {
        let empty = TestHost::new("library_content", "lib");
        assert_eq!(
            empty.validate::<LibraryContent>()[0].severity,
            Severity::Error
        );
        let over = TestHost::new("library_content", "lib")
            .fields(json!({"max_count": 5}))
            .children(["a", "b"]);
        let m = over.validate::<LibraryContent>();
        assert!(m[0].text.contains("pool has 2 blocks"), "{m:?}");
        assert!(pool().validate::<LibraryContent>().is_empty());
    }
}
