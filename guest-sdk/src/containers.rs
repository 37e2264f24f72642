//! Helpers for blocks that contain other blocks.

use crate::block::BlockResult;
use crate::context::Context;
use crate::types::{Fragment, View};

/// A child that rendered visibly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibleChild {
    pub usage_id: String,
    pub fragment: Fragment,
}

/// Renders every child in order and keeps the visible ones: containers drop hidden
/// children, and a container with children none of which is visible is itself hidden
/// (see [`all_hidden`]).
pub fn render_visible_children<F>(
    cx: &Context<'_, F>,
    view: View,
) -> BlockResult<Vec<VisibleChild>> {
    let mut visible = Vec::new();
    for usage_id in cx.children() {
        let fragment = cx.render_child(&usage_id, view)?;
        if !fragment.hidden {
            visible.push(VisibleChild { usage_id, fragment });
        }
    }
    Ok(visible)
}

/// Whether a container with these children should hide itself: it has children and none
/// of them is visible. An empty container is not hidden.
pub fn all_hidden<F>(cx: &Context<'_, F>, visible: &[VisibleChild]) -> bool {
    visible.is_empty() && !cx.children().is_empty()
}

/// Fields every outline container (course, chapter) has.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct OutlineFields {
    pub display_name: Option<String>,
}

/// Renders an outline container: a heading and its visible children, hidden when all its
/// children are. `kind` becomes the CSS class (`course`, `chapter`).
pub fn render_outline(
    cx: &Context<'_, OutlineFields>,
    view: View,
    kind: &str,
    heading: u8,
) -> BlockResult<Fragment> {
    let visible = render_visible_children(cx, view)?;
    let name = cx.fields().display_name.clone();
    let mut html = format!("<section class=\"{kind}\">");
    if let Some(name) = &name {
        html.push_str(&format!(
            "<h{heading}>{}</h{heading}>",
            crate::html::escape(name)
        ));
    }
    for child in &visible {
        html.push_str(&child.fragment.html);
    }
    html.push_str("</section>");
    Ok(Fragment {
        html,
        hidden: all_hidden(cx, &visible),
        title: name,
        ..Fragment::default()
    })
}
