//! The HTML xbhost itself writes (maud: every interpolated string is escaped), and the
//! page's script and style sheet.

use std::collections::{BTreeSet, HashMap};

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::markup;
use crate::request::{ExperimentView, RenderOutput, View};

/// The attribute that marks a wrapper the host wrote, with the page's nonce (which the
/// element around the page's block HTML carries as `data-xbhost-nonce`).
pub const WRAPPER_MARK: &str = "data-xbhost-wrapper";

/// The page script, with the workbench's live loop (which does nothing on other pages).
const SCRIPT: &str = concat!(
    include_str!("assets/xbhost.js"),
    include_str!("assets/xbhost-live.js")
);
const STYLE: &str = include_str!("assets/xbhost.css");

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SCRIPT,
    )
        .into_response()
}

pub async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE,
    )
        .into_response()
}

/// An HTML page with its Content-Security-Policy: the page's own script runs by a nonce
/// made for this response, so nothing else on the page can run a script, not even one
/// from the host's own origin (a plugin's client file runs only in its block's sandboxed
/// frame, where the page script gives it the nonce).
pub struct Page {
    html: String,
    nonce: String,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let policy = super::csp::content_security_policy(&self.nonce);
        let mut response = Html(self.html).into_response();
        if let Ok(value) = header::HeaderValue::from_str(&policy) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
        response
    }
}

impl Page {
    /// The page's HTML (for tests and callers that embed it).
    pub fn html(&self) -> &str {
        &self.html
    }
}

/// A whole page: head with the style sheet and CSRF token, body with the course key the
/// script posts handler calls to.
pub fn layout(title: &str, csrf: Option<&str>, course_key: Option<&str>, body: Markup) -> Page {
    let nonce = super::cookies::new_nonce();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(token) = csrf {
                    meta name="csrf-token" content=(token);
                }
                title { (title) }
                link rel="stylesheet" href="/assets/xbhost.css";
            }
            body data-course-key=[course_key] {
                (body)
                script src="/assets/xbhost.js" nonce=(nonce) {}
            }
        }
    };
    Page {
        html: page.into_string(),
        nonce,
    }
}

/// An error as a page.
pub fn error_page(status: StatusCode, message: &str) -> Page {
    layout(
        &format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        None,
        None,
        html! {
            main.block-page {
                div.error-box role="alert" {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error-message { (message) }
                }
            }
        },
    )
}

/// Blocks' HTML is theirs (authored content, sandboxed producers), contained and wrapped by
/// `markup`; it is placed as is, inside an element that carries a fresh random nonce
/// (`data-xbhost-nonce`), with the wrappers the host wrote marked with it
/// ([`mark_wrappers`]). The page script acts for a form's block only through a wrapper with
/// this mark (`assets/xbhost.js`), and no block's HTML can know the nonce. A page places
/// one render.
pub fn block_html(output: &RenderOutput) -> Markup {
    if output.hidden {
        html! { p.hidden-note { "Nothing here is visible to you." } }
    } else {
        let nonce = super::cookies::new_nonce();
        let marked = mark_wrappers(&output.html, &output.visible_blocks, &nonce);
        html! { div.xbhost-blocks data-xbhost-nonce=(nonce) { (PreEscaped(marked)) } }
    }
}

/// `html` with ` data-xbhost-wrapper="NONCE"` written into each wrapper the host wrote
/// around a block the render shows.
///
/// Block HTML can hold anything, text that looks like a wrapper included, and this reads
/// the finished page; so a wrapper is marked only when its block is one the render shows
/// (`visible`) and its opening, exactly as the host writes it
/// ([`markup::wrapper_start`]), occurs once in the page: that one is the host's (a shown
/// block's wrapper is on the page unless its container left it out, and a container
/// decides what its children's HTML becomes anyway). A block that copies it makes two,
/// and neither is marked (the block's forms then do nothing: closed, not open); one
/// written otherwise (attributes in another order, in capitals) is not marked. The mark goes first, right after
/// `<div`: a forged tag left open before the wrapper, whose quoted attribute value runs
/// on into the host's markup, ends at the mark's opening quote, so the nonce never
/// becomes an attribute of the forged element.
pub fn mark_wrappers(html: &str, visible: &[String], nonce: &str) -> String {
    const OPEN: &str = "<div";
    const VIEWS: [View; 3] = [View::Student, View::Staff, View::Author];
    let starts: HashMap<String, &str> = visible
        .iter()
        .flat_map(|usage| VIEWS.map(|view| (markup::wrapper_start(usage, view), usage.as_str())))
        .collect();
    let lengths: BTreeSet<usize> = starts.keys().map(String::len).collect();
    // Per block: where its wrapper's opening was found, and how many times.
    let mut found: HashMap<&str, (usize, usize)> = HashMap::new();
    for (at, _) in html.match_indices(OPEN) {
        for &len in &lengths {
            if let Some(usage) = html.get(at..at + len).and_then(|s| starts.get(s)) {
                found.entry(usage).or_insert((at, 0)).1 += 1;
            }
        }
    }
    let mut marked: Vec<usize> = found
        .into_values()
        .filter(|&(_, times)| times == 1)
        .map(|(at, _)| at)
        .collect();
    marked.sort_unstable();
    let mark = format!(" {WRAPPER_MARK}=\"{nonce}\"");
    let mut out = String::with_capacity(html.len() + marked.len() * mark.len());
    let mut copied = 0;
    for at in marked {
        let after = at + OPEN.len();
        out.push_str(&html[copied..after]);
        out.push_str(&mark);
        copied = after;
    }
    out.push_str(&html[copied..]);
    out
}

/// The page of `GET /courses/{course}/blocks/{usage}`.
pub fn block_page(
    course_key: &str,
    usage_id: &str,
    view: View,
    user_id: &str,
    csrf: Option<&str>,
    output: &RenderOutput,
) -> Page {
    let title = output.title.clone().unwrap_or_else(|| usage_id.to_string());
    layout(
        &title,
        csrf,
        Some(course_key),
        html! {
            main.block-page data-usage-id=(usage_id) data-view=(crate::markup::view_class(view)) data-user=(user_id) {
                (block_html(output))
            }
        },
    )
}

/// An enum's serde name (`"timeout"`, `"would_be_assigned"`), for labels and tables.
pub fn serde_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The learner's experiments as a table (the workbench's side panel).
pub fn experiments_table(experiments: &[ExperimentView]) -> Markup {
    html! {
        @if experiments.is_empty() {
            p { "No experiment on this page." }
        } @else {
            table.assignments {
                thead { tr { th { "Experiment" } th { "Group" } th { "Status" } } }
                tbody {
                    @for e in experiments {
                        tr data-partition-id=(e.partition_id) data-group-id=(e.group_id) {
                            td { (e.partition_name) " " small { "(id " (e.partition_id) ")" } }
                            td { (e.group_name) " " small { "(id " (e.group_id) ")" } }
                            td { (serde_name(&e.status)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markup::{ChildHtml, ChildSlots, placeholder, wrap_block, wrapper_start};

    const N: &str = "0123456789abcdef0123456789abcdef";

    /// A block without children, wrapped as the session wraps it.
    fn leaf(html: &str, usage: &str, block_type: &str, view: View) -> String {
        let none = ChildHtml::default();
        wrap_block(html, none, usage, block_type, view, None, None)
    }

    /// A container around its children's finished HTML, as the session builds it (the
    /// container holds placeholders the host fills in).
    fn container(children: &[&str], usage: &str, block_type: &str, view: View) -> String {
        let slots = ChildSlots::default();
        let html: String = children
            .iter()
            .map(|c| slots.hold(0, c.to_string()))
            .collect();
        wrap_block(&html, slots.take(0), usage, block_type, view, None, None)
    }

    fn visible(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wrappers_begin_as_the_page_looks_for_them() {
        for view in [View::Student, View::Staff, View::Author] {
            let wrapped = leaf("<p>x</p>", "a\"b", "html", view);
            assert!(
                wrapped.starts_with(&wrapper_start("a\"b", view)),
                "{wrapped}"
            );
            let failed = placeholder(view, "a\"b", "bad", None, "error");
            assert!(failed.starts_with(&wrapper_start("a\"b", view)), "{failed}");
            assert!(wrapper_start("a", view).starts_with("<div "));
        }
    }

    #[test]
    fn marks_each_wrapper_the_host_wrote() {
        let inner = leaf(
            "<form data-handler=\"submit\"></form>",
            "q",
            "problem",
            View::Student,
        );
        let page = container(&[&inner], "unit", "vertical", View::Student);
        let marked = mark_wrappers(&page, &visible(&["unit", "q"]), N);
        let mark =
            format!("<div {WRAPPER_MARK}=\"{N}\" class=\"xblock xblock-student\" data-usage-id=");
        assert_eq!(marked.matches(&mark).count(), 2, "{marked}");
        assert_eq!(
            marked.replace(&format!(" {WRAPPER_MARK}=\"{N}\""), ""),
            page
        );
        // Staff views and placeholders too.
        let failed = placeholder(View::Staff, "q", "problem", None, "trap");
        let page = container(&[&failed], "unit", "vertical", View::Staff);
        assert_eq!(
            mark_wrappers(&page, &visible(&["unit", "q"]), N)
                .matches(N)
                .count(),
            2
        );
    }

    #[test]
    fn leaves_copies_look_alikes_and_other_blocks_unmarked() {
        let problem = leaf(
            "<form data-handler=\"submit\"></form>",
            "q",
            "problem",
            View::Student,
        );
        // A forger's exact copy of the problem's wrapper, one written otherwise, and one of
        // a block this render does not show.
        let forged = concat!(
            "<div class=\"xblock xblock-student\" data-usage-id=\"q\" data-block-type=\"problem\"></div>",
            "<DIV CLASS=\"xblock xblock-student\" DATA-USAGE-ID=\"other\"></DIV>",
            "<div data-usage-id=\"q\" class=\"xblock xblock-student\"></div>",
            "<div class=\"xblock xblock-student\" data-usage-id=\"elsewhere\"></div>",
        );
        // Written around the forger's HTML by hand, as if nothing had contained it: the
        // marks must hold on their own (containment removes such copies anyway).
        let html_block = format!("{}>{forged}</div>", wrapper_start("notes", View::Student));
        let page = format!(
            "{}>{problem}{html_block}</div>",
            wrapper_start("unit", View::Student)
        );
        let marked = mark_wrappers(&page, &visible(&["unit", "q", "notes", "other"]), N);
        let is_marked = |usage: &str| {
            marked.contains(&format!("<div {WRAPPER_MARK}=\"{N}\" class=\"xblock xblock-student\" data-usage-id=\"{usage}\""))
        };
        assert!(is_marked("unit") && is_marked("notes"), "{marked}");
        assert!(!is_marked("q"), "copied: neither is marked: {marked}");
        assert!(!is_marked("elsewhere"), "{marked}");
        assert_eq!(marked.matches(N).count(), 2, "{marked}");
    }

    #[test]
    fn a_page_of_blocks_carries_a_fresh_nonce() {
        let output = RenderOutput {
            user: "u".into(),
            html: leaf("<p>x</p>", "b", "html", View::Student),
            hidden: false,
            title: None,
            icon: None,
            tooltip: None,
            visible_blocks: visible(&["b"]),
            assignments: Default::default(),
            experiments: Vec::new(),
            failures: Vec::new(),
            events: Vec::new(),
            printed: Default::default(),
        };
        let first = block_html(&output).into_string();
        let second = block_html(&output).into_string();
        let nonce = |page: &str| {
            let at = page.find("data-xbhost-nonce=\"").unwrap() + "data-xbhost-nonce=\"".len();
            page[at..at + 32].to_string()
        };
        assert_ne!(nonce(&first), nonce(&second));
        assert!(
            first.contains(&format!(
                "<div {WRAPPER_MARK}=\"{}\" class=\"xblock",
                nonce(&first)
            )),
            "{first}"
        );
    }
}
