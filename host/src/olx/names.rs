//! How an OLX element gets its url_name, as Open edX's XML import names it
//! (`ImportSystem.process_xml`'s `make_name_unique` in `xmodule/modulestore/xml.py`):
//! [`declared_name`] reads `url_name`, else the old `slug`, else the deprecated `name`
//! (cleaned as `BlockUsageLocator.clean` does); [`pointer_name`] says whether an element
//! is a pointer (`is_pointer_tag`: a lone `url_name` or `slug`, nothing inside);
//! [`pointer_path`] is where a pointer's file is (`:` in a url_name is a sub-folder:
//! `name_to_pathname`); and [`inline_id`] names an element that declares none by a hash
//! of the element itself, so that lines added or removed elsewhere never change it.
//!
//! Open edX also falls back on a cleaned `display_name` before hashing; we do not:
//! display names repeat ("Multiple Choice") and change with copy edits, and a renamed
//! block would lose its learners' state.

use anyhow::{Result, bail};
use roxmltree::{Document, Node};

/// The url_name an element declares: `url_name`, else `slug` (its old spelling, which
/// Open edX reads and removes), else the deprecated `name`, cleaned; `None` (an empty
/// value counts as none) if it declares none.
pub(super) fn declared_name(node: Node) -> Option<String> {
    let given = |attr: &str| node.attribute(attr).filter(|v| !v.is_empty());
    if let Some(v) = given("url_name").or_else(|| given("slug")) {
        return Some(v.to_string());
    }
    given("name").map(clean_name).filter(|v| !v.is_empty())
}

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

/// `name` made into a url_name as Open edX cleans it: every character other than a
/// letter, a digit, `_`, `.`, `%` or `-` becomes `_`, and runs of `_` become one.
pub(super) fn clean_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '_' | '.' | '%' | '-') {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    out
}

/// The file a pointer `<{tag} url_name="{url_name}"/>` names: `{tag}/{url_name}.xml`,
/// with each `:` of the url_name a folder (`secret:magic` is `chapter/secret/magic.xml`).
/// A part that is empty, `.` or `..` is refused: it would name a file outside the
/// block's folder (or no file at all).
pub(super) fn pointer_path(tag: &str, url_name: &str) -> Result<String> {
    let parts: Vec<&str> = url_name.split(':').collect();
    if let Some(bad) = parts
        .iter()
        .find(|p| p.is_empty() || **p == "." || **p == "..")
    {
        bail!(
            "url_name {url_name:?} has the folder part {bad:?} (`:` separates folders): it \
             names no file under {tag}/"
        );
    }
    Ok(format!("{tag}/{}.xml", parts.join("/")))
}

/// The usage id of an element that declares no url_name: `{tag}_` and 12 hex digits of a
/// hash of the element's own text and of its parent's usage id. Lines added, removed or
/// moved elsewhere in the file leave it unchanged (Open edX hashes the element too); the
/// parent is in the hash so that the same element in two units gets two ids. Identical
/// siblings hash alike: the caller numbers the second and later ones (see
/// `Importer::unnamed_id`).
pub(super) fn inline_id(doc: &Document, node: Node, parent: &str) -> String {
    let text = &doc.input_text()[node.range()];
    let mut hasher = blake3::Hasher::new();
    hasher.update(parent.as_bytes());
    hasher.update(b"\0");
    hasher.update(text.as_bytes());
    let digest = hasher.finalize().to_hex();
    format!("{}_{}", node.tag_name().name(), &digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_url_name_then_slug_then_cleaned_name() {
        let doc = Document::parse(
            "<r><a url_name=\"u\" slug=\"s\"/><b slug=\"s\" name=\"n\"/>\
             <c name=\"Week 1: intro!!\"/><d url_name=\"\"/></r>",
        )
        .unwrap();
        let names: Vec<_> = doc
            .root_element()
            .children()
            .filter(|c| c.is_element())
            .map(declared_name)
            .collect();
        assert_eq!(
            names,
            [
                Some("u".to_string()),
                Some("s".to_string()),
                Some("Week_1_intro_".to_string()),
                None,
            ]
        );
    }

    #[test]
    fn colons_are_folders_and_no_part_climbs_out() {
        assert_eq!(
            pointer_path("chapter", "secret:magic").unwrap(),
            "chapter/secret/magic.xml"
        );
        assert_eq!(pointer_path("html", "plain").unwrap(), "html/plain.xml");
        for bad in ["..:..:etc", "a::b", ":a", "a:", "a:.:b"] {
            let e = pointer_path("chapter", bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn inline_ids_follow_the_element_not_its_line() {
        let one = "<v><html>hi</html></v>";
        let two = "<v>\n\n<!-- new -->\n  <html>hi</html></v>";
        let id = |text: &str, parent: &str| {
            let doc = Document::parse(text).unwrap();
            let html = doc.descendants().find(|n| n.has_tag_name("html")).unwrap();
            inline_id(&doc, html, parent)
        };
        assert_eq!(id(one, "u1"), id(two, "u1"));
        assert!(id(one, "u1").starts_with("html_"));
        assert_ne!(id(one, "u1"), id(one, "u2"), "another parent, another id");
        assert_ne!(id(one, "u1"), id("<v><html>ho</html></v>", "u1"));
    }

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
