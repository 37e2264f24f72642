//! The markup the host puts around every block. Everything the host writes from data
//! (ids, group and plugin names, error text) is escaped.

use std::fmt::Write;

pub use xbhost_sdk::html::escape;

use crate::request::View;

/// How a child rendered as an experiment condition is marked (staff and author views).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionMark {
    pub partition_id: u64,
    pub group_id: Option<u64>,
    /// The group's current name; `None` when the group is not in the partition.
    pub group_name: Option<String>,
    /// The viewer's own group.
    pub own: bool,
}

impl ConditionMark {
    /// Mapped to no current group: no learner sees this condition.
    pub fn inactive(&self) -> bool {
        self.group_name.is_none()
    }
}

/// How every wrapper the host writes ([`wrap_block`], [`placeholder`]) begins, up to and
/// including its usage id. A page marks the wrappers the host wrote by finding exactly
/// this (`server/page.rs`), so it must stay what the wrappers write (tested there).
pub fn wrapper_start(usage_id: &str, view: View) -> String {
    format!(
        "<div class=\"xblock xblock-{}\" data-usage-id=\"{}\"",
        view_class(view),
        escape(usage_id)
    )
}

/// The view's name in class names and labels: `student`, `staff`, `author`.
pub fn view_class(view: View) -> &'static str {
    match view {
        View::Student => "student",
        View::Staff => "staff",
        View::Author => "author",
    }
}

/// Wraps a block's HTML in the element that carries its identity, condition markers (an
/// experiment's children in staff view) and content-group restrictions (staff view).
pub fn wrap_block(
    html: &str,
    usage_id: &str,
    block_type: &str,
    view: View,
    mark: Option<&ConditionMark>,
    restriction: Option<&str>,
) -> String {
    let mut out = String::with_capacity(html.len() + 160);
    let _ = write!(
        out,
        "<div class=\"xblock xblock-{}\" data-usage-id=\"{}\" data-block-type=\"{}\"",
        view_class(view),
        escape(usage_id),
        escape(block_type)
    );
    if let Some(restriction) = restriction {
        let _ = write!(out, " data-group-access=\"{}\"", escape(restriction));
    }
    if let Some(mark) = mark {
        let _ = write!(out, " data-partition-id=\"{}\"", mark.partition_id);
        if let Some(id) = mark.group_id {
            let _ = write!(out, " data-group-id=\"{id}\"");
        }
        if let Some(name) = &mark.group_name {
            let _ = write!(out, " data-group-name=\"{}\"", escape(name));
        }
        if mark.inactive() {
            out.push_str(" data-inactive=\"true\"");
        }
        if mark.own {
            out.push_str(" data-own-group=\"true\"");
        }
        out.push('>');
        out.push_str("<div class=\"xbhost-condition-label\">");
        match (&mark.group_name, mark.group_id) {
            (Some(name), Some(id)) => {
                let _ = write!(out, "Group: {} (id {id})", escape(name));
            }
            (None, Some(id)) => {
                let _ = write!(out, "Inactive: group {id} is no longer in this experiment");
            }
            _ => out.push_str("Inactive: mapped to no group"),
        }
        if mark.own {
            out.push_str(" \u{2014} your group");
        }
        out.push_str("</div>");
    } else {
        out.push('>');
    }
    if let Some(restriction) = restriction {
        let _ = write!(
            out,
            "<div class=\"xbhost-restriction-label\">Visible only to {}</div>",
            escape(restriction)
        );
    }
    out.push_str(html);
    out.push_str("</div>");
    out
}

/// What stands in for a block that failed. Learners see a neutral message; staff and
/// authors see the plugin, its version, the block and the error.
pub fn placeholder(
    view: View,
    usage_id: &str,
    block_type: &str,
    plugin_version: Option<&str>,
    error: &str,
) -> String {
    let body = match view {
        View::Student => {
            "<div class=\"xbhost-unavailable\">This content is unavailable.</div>".to_string()
        }
        View::Staff | View::Author => format!(
            "<div class=\"xbhost-error\"><strong>Block failed.</strong> Plugin {} {}, block {}: {}</div>",
            escape(block_type),
            escape(plugin_version.unwrap_or("(not installed)")),
            escape(usage_id),
            escape(error)
        ),
    };
    format!(
        "<div class=\"xblock xblock-{}\" data-usage-id=\"{}\" data-block-type=\"{}\" data-error=\"true\">{body}</div>",
        view_class(view),
        escape(usage_id),
        escape(block_type)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_with_identity_and_escapes_names() {
        let html = wrap_block("<p>x</p>", "a\"b", "html", View::Student, None, None);
        assert_eq!(
            html,
            "<div class=\"xblock xblock-student\" data-usage-id=\"a&quot;b\" data-block-type=\"html\"><p>x</p></div>"
        );
        let mark = ConditionMark {
            partition_id: 1,
            group_id: Some(2),
            group_name: Some("<Video>".into()),
            own: true,
        };
        let html = wrap_block("", "c", "vertical", View::Staff, Some(&mark), None);
        assert!(html.contains("data-group-id=\"2\" data-group-name=\"&lt;Video&gt;\""));
        assert!(html.contains("data-own-group=\"true\""));
        assert!(!html.contains("data-inactive"));
        assert!(!html.contains("<Video>"));
    }

    #[test]
    fn inactive_conditions_are_marked() {
        let mark = ConditionMark {
            partition_id: 1,
            group_id: Some(9),
            group_name: None,
            own: false,
        };
        let html = wrap_block("", "c", "vertical", View::Staff, Some(&mark), None);
        assert!(html.contains("data-group-id=\"9\""));
        assert!(html.contains("data-inactive=\"true\""));
    }

    #[test]
    fn placeholders_hide_internals_from_learners() {
        let learner = placeholder(View::Student, "b", "bad", Some("1.0"), "trap: <secret>");
        assert!(learner.contains("This content is unavailable."));
        assert!(!learner.contains("secret"));
        let staff = placeholder(View::Staff, "b", "bad", Some("1.0"), "trap: <secret>");
        assert!(staff.contains("bad 1.0"));
        assert!(staff.contains("&lt;secret&gt;"));
    }
}
