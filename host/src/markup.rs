//! The markup the host puts around every block, and the containment of what blocks write.
//! Everything the host writes from data (ids, group and plugin names, error text) is
//! escaped.
//!
//! # Containment
//!
//! A block's HTML goes on a page the host owns, and staff judge an experiment by the marks
//! the host writes on its wrappers. So [`wrap_block`] contains every block's HTML before it
//! wraps it (`contain.rs`; the tree is html5ever's, built in `dom.rs`):
//!
//! - **Balanced.** The HTML is parsed as a fragment in a `div` (the wrapper), as the browser
//!   will parse it there, and html5ever's serializer writes the tree out again: every
//!   element the block opens is closed inside the wrapper, and nothing it writes (`</div>`,
//!   `</body>`, an open `<!--`, `<plaintext>`) can end the wrapper or swallow what follows.
//!   Comments are dropped (nothing on the page needs them). Parsing is bounded (see
//!   `dom.rs`): HTML nested deeper than 128 elements, or built to make the parser's work
//!   grow faster than its length, is cut where the bound is reached (and logged).
//! - **Host marks are the host's.** Every attribute in [`RESERVED_ATTRIBUTES`], every
//!   `data-xbhost-*` attribute, and the host's classes (`xblock`, `xblock-*`, `xbhost-*`,
//!   see [`reserved_class`]) are removed from every element, in any case and namespace,
//!   template contents included. Only the host's wrappers and labels carry them, so
//!   `[data-group-id]`, `[data-own-group]` or `.xbhost-condition-label` on a page always
//!   mean what the host wrote. The wrapper code writes the same constants.
//! - **Host marks look as the host styles them.** In staff and author views `<style>` (also
//!   inside SVG), `<link>`, `style` and `popover` attributes are removed, so no block can
//!   hide, restyle or cover a label (the page's CSS clips what is left, SVG's presentation
//!   attributes, to the wrapper and keeps labels on top). Learners keep the authors'
//!   styling.
//! - **Scripts are dropped, in every view**, except JSON data blocks (`type` of
//!   `application/json` or `*+json`), which browsers neither run nor fetch (the test
//!   plugins report through them). The page's Content-Security-Policy already makes inline
//!   script and `on...` attributes inert, but its `script-src 'self'` lets a `<script src>`
//!   of any same-origin URL run (the host's own page script a second time, which would
//!   submit every form twice, or a plugin's client file outside its sandboxed frame). Dropping them loses nothing that runs today, and the rule
//!   does not depend on the view. (`on...` attributes stay: the policy keeps them inert.) For the same reason `<meta>` (a refresh navigates the page) and
//!   `<base>` go, and declarative shadow roots stay inert templates (`shadowroot*`
//!   attributes removed: a shadow root on the wrapper would hide its label).
//! - **No second reading.** Where the serializer writes text unescaped, that text has no
//!   `<`: a CSS escape (`\3c `) in style sheets, a JSON escape (`\u003c`) in JSON data,
//!   none at all in `iframe`, `noscript`, `noembed` and `noframes` (browsers never show
//!   it), and `xmp` and `plaintext` become `pre`. So markup that parses differently the
//!   second time (a style sheet moved into MathML, say) finds no markup to reinterpret,
//!   and the browser builds the tree the host checked.
//!
//! # Children
//!
//! A container's HTML includes its children's, which carry the host's legitimate marks:
//! containing the container's HTML would strip them, and passing such attributes through
//! would let any container forge them. So a block never gets its children's HTML. The
//! host contains and wraps a child, keeps the result for the block that asked
//! ([`ChildSlots`], one per request), and answers `render-child` with a placeholder,
//! `<xbhost-child data-xbhost-slot="TOKEN"></xbhost-child>`, whose token is a keyed hash
//! under a random per-request key (unguessable, never reused). When the block's own HTML
//! is contained, each placeholder with a token issued to that block is replaced by the
//! child's HTML, once, where the block put it: in the serializer, so the child's HTML is
//! not parsed again (containing a page costs one parse of each block's own HTML) and none
//! of it is read as the parent's. A placeholder with a token the block made up, was not
//! given, or already used, or placed where the child's HTML would not be parsed as
//! written (in SVG or MathML, a template, a select box, or more than eight elements deep,
//! see `contain::MAX_CHILD_DEPTH`), is dropped; when the block's call
//! ends, tokens it did not use are discarded. Staff marks on a child come from the host
//! alone, and a parent can still place, order and omit its children as before. A side
//! effect: children's HTML no longer crosses into the parent's sandbox, and the HTML size
//! limit bounds each block's own HTML. (A block with client-side code, whose HTML goes
//! into its own frame in the browser, may not render children at all: `session::render`.)
//!
//! Parsing is most of what containment costs; the contained HTML of a block that rendered
//! no children depends on its HTML and the view alone, and is cached (`cache.rs`).

mod cache;
mod contain;
mod dom;
mod reserved;
mod slots;
#[cfg(test)]
mod tests;

use std::fmt::Write;

pub use xbhost_sdk::html::escape;

use crate::request::View;

pub use reserved::*;
pub use slots::{ChildHtml, ChildSlots};

/// A block's HTML contained (see the module doc), with no children to fill in.
pub fn contain_block_html(html: &str, view: View) -> String {
    contain_with_children(html, view, &mut ChildHtml::default())
}

/// A block's HTML contained, its children's placeholders filled in from `children` (each
/// at most once; what is left was not used).
pub fn contain_with_children(html: &str, view: View, children: &mut ChildHtml) -> String {
    contain::contain(html, view, children).html
}

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

/// Wraps a block's HTML, contained (see the module doc) with its children filled in, in
/// the element that carries its identity, condition markers (an experiment's children in
/// staff view) and content-group restrictions (staff view).
pub fn wrap_block(
    html: &str,
    mut children: ChildHtml,
    usage_id: &str,
    block_type: &str,
    view: View,
    mark: Option<&ConditionMark>,
    restriction: Option<&str>,
) -> String {
    let marks = HostMarks {
        condition: mark,
        restriction,
        selected: None,
        client: None,
    };
    wrap_placing(html, &mut children, usage_id, block_type, view, &marks)
}

/// What the host marks on a block's wrapper, from what it knows itself.
#[derive(Default)]
pub struct HostMarks<'a> {
    /// The block is an experiment's condition (staff and author views).
    pub condition: Option<&'a ConditionMark>,
    /// The block's content-group restriction, described (staff view).
    pub restriction: Option<&'a str>,
    /// The block is (or is not) among the children its parent picked for the viewer
    /// (randomized content; staff and author views).
    pub selected: Option<bool>,
    /// The block's client-side code as the page script reads it (JSON, from
    /// `session::client`): the block's HTML then goes into a `<template>` for its frame.
    pub client: Option<&'a str>,
}

/// [`wrap_block`], leaving in `children` what the block's HTML did not place.
pub fn wrap_placing(
    html: &str,
    children: &mut ChildHtml,
    usage_id: &str,
    block_type: &str,
    view: View,
    marks: &HostMarks<'_>,
) -> String {
    let (mark, restriction) = (marks.condition, marks.restriction);
    // A block that rendered no children: its HTML alone decides (and is often the same).
    let (contained, cut) = if children.is_empty() {
        cache::contain_leaf(html, view)
    } else {
        let c = contain::contain(html, view, children);
        (c.html.into(), c.cut)
    };
    if cut {
        tracing::warn!(
            usage_id,
            block_type,
            bytes = html.len(),
            "block HTML cut where it nests too deep or makes the parser work too hard"
        );
    }
    let html = &*contained;
    let mut out = String::with_capacity(html.len() + 160);
    open_wrapper(&mut out, usage_id, block_type, view);
    if let Some(restriction) = restriction {
        let _ = write!(out, " {GROUP_ACCESS}=\"{}\"", escape(restriction));
    }
    if let Some(selected) = marks.selected {
        let _ = write!(out, " {SELECTED}=\"{selected}\"");
    }
    if let Some(client) = marks.client {
        let _ = write!(out, " {CLIENT}=\"{}\"", escape(client));
    }
    if let Some(mark) = mark {
        let _ = write!(out, " {PARTITION_ID}=\"{}\"", mark.partition_id);
        if let Some(id) = mark.group_id {
            let _ = write!(out, " {GROUP_ID}=\"{id}\"");
        }
        if let Some(name) = &mark.group_name {
            let _ = write!(out, " {GROUP_NAME}=\"{}\"", escape(name));
        }
        if mark.inactive() {
            let _ = write!(out, " {INACTIVE}=\"true\"");
        }
        if mark.own {
            let _ = write!(out, " {OWN_GROUP}=\"true\"");
        }
        out.push('>');
        let _ = write!(out, "<div class=\"{CONDITION_LABEL}\">");
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
            "<div class=\"{RESTRICTION_LABEL}\">Visible only to {}</div>",
            escape(restriction)
        );
    }
    if let Some(selected) = marks.selected {
        let _ = write!(
            out,
            "<div class=\"{SELECTION_LABEL}\">{}</div>",
            if selected {
                "Selected for you from the pool"
            } else {
                "In the pool, not selected for you"
            }
        );
    }
    if marks.client.is_some() {
        let _ = write!(out, "<template {CLIENT_HTML}>{html}</template>");
    } else {
        out.push_str(html);
    }
    out.push_str("</div>");
    out
}

/// `<div class="xblock xblock-VIEW" data-usage-id="…" data-block-type="…"`, left open.
fn open_wrapper(out: &mut String, usage_id: &str, block_type: &str, view: View) {
    let _ = write!(
        out,
        "<div class=\"{WRAPPER_CLASS} {WRAPPER_CLASS}-{}\" {USAGE_ID}=\"{}\" {BLOCK_TYPE}=\"{}\"",
        view_class(view),
        escape(usage_id),
        escape(block_type)
    );
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
    let mut out = String::with_capacity(body.len() + 160);
    open_wrapper(&mut out, usage_id, block_type, view);
    let _ = write!(out, " {ERROR}=\"true\">{body}</div>");
    out
}
