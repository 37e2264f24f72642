//! `annotatable`: Open edX's Annotatable block (edx-platform `xmodule/annotatable_block.py`,
//! now `xblocks_contrib.annotatable`), a reading with highlighted passages that carry a
//! comment.
//!
//! - fields as the block has them: `display_name` (default "Annotation") and `data`, the
//!   block's XML (`<annotatable>` with an optional `<instructions>` and HTML in which
//!   `<annotation title= body= highlight= problem=>` elements mark passages). The block's
//!   default `data` (its authoring template) is used when the field is absent.
//! - render, as the block's template: the title, the instructions in their own section,
//!   then the content ("Guided Discussion") where each annotation is a
//!   `span.annotatable-span.highlight[.highlight-COLOR]` with `data-comment-title`,
//!   `data-comment-body` and `data-problem-id`, as the block writes them. The block's
//!   script shows a comment in a tooltip; blocks run no script here, so each highlighted
//!   passage carries its comment as a native tooltip and a numbered mark linking to the
//!   comment, and the comments are listed after the text (title, "Commentary" by
//!   default, then body). Sections are `<details>`, so learners can fold them as the
//!   block's "Collapse Instructions" and "Hide Annotations" toggles do.
//! - `data` that is not well-formed XML, or whose root is not `<annotatable>`, is an error
//!   naming the block and the line.

mod render;

use serde::Deserialize;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, ValidationMessage, View};

pub use render::{Annotation, Rendered, render_data};

pub struct Annotatable;

/// The block's default `data`: its authoring template.
pub const DEFAULT_DATA: &str = r#"<annotatable>
    <instructions>
        <p>Enter your (optional) instructions for the exercise in HTML format.</p>
        <p>Annotations are specified by an <code>&lt;annotation&gt;</code> tag which may have the following attributes:</p>
        <ul class="instructions-template">
            <li><code>title</code> (optional). Title of the annotation. Defaults to <i>Commentary</i> if omitted.</li>
            <li><code>body</code> (<b>required</b>). Text of the annotation.</li>
            <li><code>problem</code> (optional). Numeric index of the problem associated with this annotation. This is a zero-based index, so the first problem on the page would have <code>problem="0"</code>.</li>
            <li><code>highlight</code> (optional). Possible values: yellow, red, orange, green, blue, or purple. Defaults to yellow if this attribute is omitted.</li>
        </ul>
    </instructions>
    <p>Add your HTML with annotation spans here.</p>
    <p>Lorem ipsum dolor sit amet, consectetur adipiscing elit. <annotation title="My title" body="My comment" highlight="yellow" problem="0">Ut sodales laoreet est, egestas gravida felis egestas nec.</annotation> Aenean at volutpat erat. Cras commodo viverra nibh in aliquam.</p>
    <p>Nulla facilisi. <annotation body="Basic annotation example." problem="1">Pellentesque id vestibulum libero.</annotation> Suspendisse potenti.</p>
</annotatable>"#;

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: String,
    pub data: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: "Annotation".into(),
            data: DEFAULT_DATA.into(),
        }
    }
}

impl Block for Annotatable {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, _view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let id = cx.usage_id();
        let rendered = render_data(&f.data, &id)
            .map_err(|e| BlockError::new(format!("annotatable {id:?}: {e}")))?;
        Ok(Fragment {
            html: rendered.page(&f.display_name),
            title: Some(f.display_name.clone()),
            icon: Some("other".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = cx.fields();
        match render_data(&f.data, &cx.usage_id()) {
            Err(e) => vec![ValidationMessage::error(e)],
            Ok(r) => r
                .annotations
                .iter()
                .filter(|a| a.body.is_empty())
                .map(|a| {
                    ValidationMessage::warning(format!(
                        "Annotation {} has no body (the block requires one).",
                        a.number
                    ))
                })
                .collect(),
        }
    }
}

xbhost_sdk::export_block!(Annotatable);

#[cfg(test)]
mod tests;
