//! The `<course>` element: its chapters are blocks, but `<wiki slug="..."/>` and
//! `<textbook title="..." book_url="..."/>` among them are settings of the course, as
//! Open edX reads them (`CourseBlock.definition_from_xml` takes them out before the
//! children are loaded). They, and the grading policy, are kept in the course block's
//! fields (`wiki_slug`, `textbooks`, `grading_policy`, Open edX's names for them), and
//! named in the report's `course_settings`; none becomes an unsupported block.

use anyhow::Result;
use roxmltree::{Document, Node};
use serde_json::{Value, json};

use super::importer::Importer;
use super::xml::at;

impl Importer<'_> {
    /// The course block: its type, fields (display name and settings) and children.
    pub(super) fn course(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        display_name: Option<String>,
    ) -> Result<(String, Value, Vec<String>)> {
        let mut fields = json!({ "display_name": display_name });
        let mut textbooks = Vec::new();
        let mut children = Vec::new();
        for child in node.children().filter(|c| c.is_element()) {
            let here = at(doc, file, child);
            match child.tag_name().name() {
                "wiki" => {
                    let Some(slug) = child.attribute("slug") else {
                        self.warn(format!("{here}: <wiki> has no slug: ignored"));
                        continue;
                    };
                    if let Some(first) = fields.get("wiki_slug") {
                        self.warn(format!(
                            "{here}: a second <wiki> (slug {slug:?}) ignored: the course's wiki is {first}"
                        ));
                        continue;
                    }
                    fields["wiki_slug"] = json!(slug);
                    self.report
                        .course_settings
                        .push(format!("wiki_slug {slug:?} ({here})"));
                }
                "textbook" => {
                    let title = child.attribute("title").unwrap_or_default();
                    let url = child.attribute("book_url").unwrap_or_default();
                    textbooks.push(json!({ "title": title, "book_url": url }));
                    self.report
                        .course_settings
                        .push(format!("textbook {title:?} at {url:?} ({here})"));
                }
                _ => children.push(self.import(doc, file, child)?),
            }
        }
        if !textbooks.is_empty() {
            fields["textbooks"] = Value::Array(textbooks);
        }
        Ok(("course".to_string(), fields, children))
    }
}
