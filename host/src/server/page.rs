//! The HTML xbhost itself writes (maud: every interpolated string is escaped), and the
//! page's script and style sheet.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::request::{ExperimentView, RenderOutput, View};

const SCRIPT: &str = include_str!("assets/xbhost.js");
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

/// A whole page: head with the style sheet and CSRF token, body with the course key the
/// script posts handler calls to.
pub fn layout(
    title: &str,
    csrf: Option<&str>,
    course_key: Option<&str>,
    body: Markup,
) -> Html<String> {
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
                script src="/assets/xbhost.js" {}
            }
        }
    };
    Html(page.into_string())
}

/// An error as a page.
pub fn error_page(status: StatusCode, message: &str) -> Html<String> {
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
/// `markup`; it is placed as is.
pub fn block_html(output: &RenderOutput) -> Markup {
    if output.hidden {
        html! { p.hidden-note { "Nothing here is visible to you." } }
    } else {
        PreEscaped(output.html.clone())
    }
}

/// The page of `GET /courses/{course}/blocks/{usage}`.
pub fn block_page(
    course_key: &str,
    usage_id: &str,
    view: View,
    user_id: &str,
    csrf: Option<&str>,
    output: &RenderOutput,
) -> Html<String> {
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
