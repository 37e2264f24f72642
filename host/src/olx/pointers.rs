//! Pointers: an element that only names a block file (`<vertical url_name="x"/>` means
//! `vertical/x.xml`), followed as Open edX follows them (`is_pointer_tag` and
//! `XmlMixin.parse_xml`): the sole attribute is `url_name` (or the old `slug`, which Open
//! edX turns into one first), with no child element and no text; `:` in the name is a
//! folder; and the block is of the pointer's type whatever the file's root tag says
//! (a mismatch is warned about, naming both).

use anyhow::{Context as _, Result};
use roxmltree::{Document, Node};

use super::importer::Importer;
use super::names::pointer_path;
use super::xml::{at, parse_xml};
use crate::ids::check_id;

/// The url_name a pointer element names, if `node` is a pointer.
pub(super) fn pointer_name<'a>(node: Node<'a, '_>) -> Option<&'a str> {
    let mut attributes = node.attributes();
    let only = attributes.next()?;
    if attributes.next().is_some() || !matches!(only.name(), "url_name" | "slug") {
        return None;
    }
    let has_content = node
        .children()
        .any(|c| c.is_element() || (c.is_text() && !c.text().unwrap_or("").trim().is_empty()));
    (!has_content && !only.value().is_empty()).then(|| only.value())
}

impl Importer<'_> {
    /// Follows the pointer `node` to its file and imports the block defined there under
    /// `url_name`; `None` if the file does not exist (warned: the caller imports the
    /// pointer itself, empty).
    pub(super) fn follow_pointer(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        url_name: &str,
    ) -> Result<Option<String>> {
        let tag = node.tag_name().name();
        let here = at(doc, file, node);
        check_id("url_name", url_name).with_context(|| here.clone())?;
        check_id("element name", tag).with_context(|| here.clone())?;
        let path = pointer_path(tag, url_name).with_context(|| here.clone())?;
        let Some(text) = self.src.read(&path) else {
            self.warn(format!(
                "{here}: <{tag} url_name=\"{url_name}\"/> points to {path}, which does not exist: imported as an empty {tag}"
            ));
            return Ok(None);
        };
        let text = text?;
        self.mark_read(&path);
        let pointed = parse_xml(&path, &text, self.src.budget())?;
        let root = pointed.root_element();
        let root_tag = root.tag_name().name();
        if root_tag != tag {
            self.warn(format!(
                "{path}: the root element is <{root_tag}>, but {here} points to it as <{tag}>: \
                 imported as a {tag}, as Open edX does"
            ));
        }
        self.define(&pointed, &path, root, url_name, Some(node))
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::pointer_name;
    use roxmltree::Document;

    #[test]
    fn a_pointer_has_one_name_attribute_and_nothing_inside() {
        let doc = Document::parse(
            "<r><a url_name=\"x\"/><b slug=\"y\"/><c url_name=\"x\" display_name=\"d\"/>\
             <d url_name=\"x\">text</d><e url_name=\"x\"><f/></e><g name=\"x\"/>\
             <h url_name=\"x\">  </h><i url_name=\"\"/></r>",
        )
        .unwrap();
        let names: Vec<Option<&str>> = doc
            .root_element()
            .children()
            .filter(|c| c.is_element())
            .map(pointer_name)
            .collect();
        assert_eq!(
            names,
            [
                Some("x"),
                Some("y"),
                None,
                None,
                None,
                None,
                Some("x"),
                None
            ]
        );
    }
}
