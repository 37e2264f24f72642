//! Pointers: an element that only names a block file (`<vertical url_name="x"/>` means
//! `vertical/x.xml`), followed as Open edX follows them (`is_pointer_tag` and
//! `XmlMixin.parse_xml`): the sole attribute is `url_name` (or the old `slug`, which Open
//! edX turns into one first), with no child element and no text; `:` in the name is a
//! folder (`names` says what a pointer is and where its file is); and the block is of
//! the pointer's type whatever the file's root tag says (a mismatch is warned about,
//! naming both).

use anyhow::{Context as _, Result};
use roxmltree::{Document, Node};

use super::importer::Importer;
use super::names::pointer_path;
use super::xml::{at, parse_xml};
use crate::ids::check_id;

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
