//! A linear scan of an XML file before it is parsed ([`check_shape`]): the nesting depth,
//! the attributes of each element, and the namespace declarations of the file, each
//! within its limit. roxmltree checks each attribute against the element's earlier ones
//! and copies the namespaces in scope into each element that declares one, so many
//! attributes or declarations cost quadratic time and memory; the scan refuses them first,
//! in time linear in the file. Malformed XML is left for the parser to name.

use anyhow::{Result, bail};

/// Checks nesting, attributes per element and namespace declarations of `text`.
pub(super) fn check_shape(
    file: &str,
    text: &str,
    max_depth: usize,
    max_attributes: usize,
) -> Result<()> {
    let b = text.as_bytes();
    let line_at = |i: usize| 1 + b[..i].iter().filter(|&&c| c == b'\n').count();
    let mut depth = 0usize;
    let mut namespaces = 0usize;
    let mut i = 0;
    while let Some(lt) = find_byte(b, i, b'<') {
        let rest = &b[lt..];
        // Comments, CDATA, processing instructions and declarations hold no elements.
        let skip_to = |end: &[u8]| find(b, lt + 2, end).map(|at| at + end.len());
        let next = if rest.starts_with(b"<!--") {
            skip_to(b"-->")
        } else if rest.starts_with(b"<![CDATA[") {
            skip_to(b"]]>")
        } else if rest.starts_with(b"<?") {
            skip_to(b"?>")
        } else if rest.starts_with(b"<!") {
            skip_to(b">")
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            skip_to(b">")
        } else {
            let (end, attributes, declarations, empty) = start_tag(b, lt + 1);
            if attributes > max_attributes {
                bail!(
                    "{file}:{}: an element has {attributes} attributes, over the limit of \
                     {max_attributes} (--max-import-xml-attributes)",
                    line_at(lt)
                );
            }
            namespaces += declarations;
            if namespaces > max_attributes {
                bail!(
                    "{file}:{}: over {max_attributes} namespace declarations in one file, \
                     the limit (--max-import-xml-attributes)",
                    line_at(lt)
                );
            }
            if !empty {
                depth += 1;
                if depth > max_depth {
                    bail!(
                        "{file}:{}: elements are nested more than {max_depth} deep, the limit \
                         (--max-import-xml-depth)",
                        line_at(lt)
                    );
                }
            }
            end
        };
        match next {
            Some(n) => i = n,
            // Unterminated: the parser says where.
            None => break,
        }
    }
    Ok(())
}

/// Scans a start tag from just after its `<`: where it ends (after `>`), how many
/// attributes it has, how many of them declare namespaces, and whether it is empty (`/>`).
fn start_tag(b: &[u8], from: usize) -> (Option<usize>, usize, usize, bool) {
    let (mut attributes, mut declarations) = (0, 0);
    let mut i = from;
    let mut last = 0u8;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') => match find_byte(b, i + 1, q) {
                Some(close) => {
                    i = close + 1;
                    last = q;
                    continue;
                }
                None => return (None, attributes, declarations, false),
            },
            b'=' => {
                attributes += 1;
                if attribute_name_before(b, from, i).starts_with(b"xmlns") {
                    declarations += 1;
                }
            }
            b'>' => return (Some(i + 1), attributes, declarations, last == b'/'),
            c if !c.is_ascii_whitespace() => last = c,
            _ => {}
        }
        i += 1;
    }
    (None, attributes, declarations, false)
}

/// The attribute name that ends before the `=` at `eq` (whitespace allowed between).
fn attribute_name_before(b: &[u8], from: usize, eq: usize) -> &[u8] {
    let mut end = eq;
    while end > from && b[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    let mut start = end;
    while start > from && !b[start - 1].is_ascii_whitespace() {
        start -= 1;
    }
    &b[start..end]
}

fn find_byte(b: &[u8], from: usize, c: u8) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&x| x == c)
        .map(|p| from + p)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let hay = b.get(from..)?;
    let first = needle[0];
    let mut at = 0;
    while let Some(p) = hay[at..].iter().position(|&x| x == first) {
        let start = at + p;
        if hay[start..].starts_with(needle) {
            return Some(from + start);
        }
        at = start + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check_shape;

    #[test]
    fn counts_depth_attributes_and_declarations() {
        let ok =
            "<?xml version=\"1.0\"?><!-- <a><a> --><a x='>' y=\"<\"><b/><![CDATA[<c><c>]]></a>";
        check_shape("f", ok, 2, 2).unwrap();
        let deep = "<a><a><a></a></a></a>";
        let err = check_shape("f", deep, 2, 8).unwrap_err().to_string();
        assert!(err.contains("--max-import-xml-depth"), "{err}");
        let many = "<a b='1' c='2' d='3'/>";
        let err = check_shape("f", many, 8, 2).unwrap_err().to_string();
        assert!(err.contains("3 attributes"), "{err}");
        let ns = "<a xmlns:p='u'><b xmlns:q='v'/><c xmlns = 'w'/></a>";
        let err = check_shape("f", ns, 8, 2).unwrap_err().to_string();
        assert!(err.contains("namespace declarations"), "{err}");
    }
}
