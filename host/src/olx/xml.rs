//! XML helpers shared by the import: parsing with positioned errors ([`parse_xml`]),
//! `file:line` positions for messages ([`at`]) and an element's source text ([`inner_source`]).

use anyhow::{Result, anyhow};
use roxmltree::{Document, Node};

/// Where a node is, for messages: `file:line`.
pub(super) fn at(doc: &Document, file: &str, node: Node) -> String {
    let pos = doc.text_pos_at(node.range().start);
    format!("{file}:{}", pos.row)
}

pub(super) fn parse_xml<'a>(file: &str, text: &'a str) -> Result<Document<'a>> {
    Document::parse(text).map_err(|e| {
        let pos = e.pos();
        anyhow!("{file}:{}:{}: malformed XML: {e}", pos.row, pos.col)
    })
}

/// The source text of an element's content, skipping child elements named in `skip`.
pub(super) fn inner_source(doc: &Document, node: Node, skip: &[&str]) -> String {
    let text = doc.input_text();
    node.children()
        .filter(|c| !(c.is_element() && skip.contains(&c.tag_name().name())))
        .filter(|c| c.is_element() || c.is_text())
        .map(|c| &text[c.range()])
        .collect::<String>()
        .trim()
        .to_string()
}
