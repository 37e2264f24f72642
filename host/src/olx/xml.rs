//! XML helpers shared by the import: parsing within the import's limits with positioned
//! errors ([`parse_xml`]), `file:line` positions for messages ([`at`]) and an element's
//! source text ([`inner_source`]).

use anyhow::{Result, anyhow, bail};
use roxmltree::{Document, Node, ParsingOptions};

use super::limits::Budget;
use super::xml_scan::check_shape;

/// Where a node is, for messages: `file:line`.
pub(super) fn at(doc: &Document, file: &str, node: Node) -> String {
    let pos = doc.text_pos_at(node.range().start);
    format!("{file}:{}", pos.row)
}

/// Parses `text` within the import's limits: its shape first (depth, attributes), then
/// the tree, whose nodes are counted against what the whole import may still parse.
pub(super) fn parse_xml<'a>(file: &str, text: &'a str, budget: &Budget) -> Result<Document<'a>> {
    let limits = &budget.limits;
    budget.check_deadline(&format!("reading {file}"))?;
    check_shape(file, text, limits.max_xml_depth, limits.max_xml_attributes)?;
    let left = budget.nodes_left();
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: u32::try_from(left).unwrap_or(u32::MAX),
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| {
        if matches!(e, roxmltree::Error::NodesLimitReached) {
            return anyhow!(
                "{file}: the import's XML is over the limit of {} nodes, all files together \
                 (--max-import-xml-nodes)",
                limits.max_xml_nodes
            );
        }
        let pos = e.pos();
        anyhow!("{file}:{}:{}: malformed XML: {e}", pos.row, pos.col)
    })?;
    let nodes = doc.descendants().count() as u64;
    if nodes > left {
        bail!(
            "{file}: the import's XML is over the limit of {} nodes, all files together \
             (--max-import-xml-nodes)",
            limits.max_xml_nodes
        );
    }
    budget.spend_nodes(nodes);
    Ok(doc)
}

/// The source text of an element's content, skipping child elements named in `skip`,
/// trimmed: built once, in one string.
pub(super) fn inner_source(doc: &Document, node: Node, skip: &[&str]) -> String {
    let text = doc.input_text();
    let mut out = String::new();
    for c in node
        .children()
        .filter(|c| !(c.is_element() && skip.contains(&c.tag_name().name())))
        .filter(|c| c.is_element() || c.is_text())
    {
        out.push_str(&text[c.range()]);
    }
    trim_in_place(&mut out);
    out
}

/// Trims surrounding whitespace without copying the string.
pub(super) fn trim_in_place(s: &mut String) {
    let end = s.trim_end().len();
    s.truncate(end);
    let start = s.len() - s.trim_start().len();
    s.drain(..start);
}
