//! Symbolic links inside a `.tar.gz` export ([`resolve_links`]). Open edX writes some
//! exports with `course.xml` a link to the course's file, so the import follows a link
//! when, and only when, it leads to a regular file inside the archive: never to a path
//! outside it (an absolute target, or `..` above the archive's top), never to a
//! directory, and never through more than [`MAX_LINK_HOPS`] links. Every other link is
//! refused, saying why, and listed in the import's warnings. A followed link becomes an
//! [`Entry::Alias`] naming the file: its bytes are never copied, so many links to one big
//! file cost nothing. Directory exports follow no links at all (`tree`).

use super::entries::{Entries, Entry};

/// Most links one path may go through before it reaches a file (a chain, or a loop).
pub(super) const MAX_LINK_HOPS: usize = 8;

/// Turns every [`Entry::Link`] of an archive into an [`Entry::Alias`] of the regular file
/// it leads to, or an [`Entry::Refused`] naming why it is not followed. Linear in the
/// links times [`MAX_LINK_HOPS`] lookups.
pub(super) fn resolve_links(entries: &mut Entries) {
    let links: Vec<String> = entries
        .iter()
        .filter(|(_, e)| matches!(e, Entry::Link(_)))
        .map(|(k, _)| k.clone())
        .collect();
    let resolved: Vec<(String, Entry)> = links
        .into_iter()
        .map(|name| {
            let entry = match resolve(entries, &name) {
                Ok(path) => Entry::Alias(path),
                Err(why) => Entry::Refused(why),
            };
            (name, entry)
        })
        .collect();
    for (name, entry) in resolved {
        entries.insert(name, entry);
    }
}

/// The regular file the link at `name` leads to, or why it is not followed.
fn resolve(entries: &Entries, name: &str) -> Result<String, &'static str> {
    let mut at = name.to_string();
    for _ in 0..=MAX_LINK_HOPS {
        match entries.get(&at) {
            Some(Entry::Link(target)) => at = join(parent(&at), target)?,
            Some(Entry::Text(_) | Entry::NotText | Entry::NotKept) => return Ok(at),
            Some(Entry::OnDisk) => return Err("a symbolic link the import does not follow"),
            Some(Entry::Alias(_) | Entry::Refused(_)) => {
                return Err("a symbolic link to something that is not a regular file");
            }
            None if is_directory(entries, &at) => return Err("a symbolic link to a directory"),
            None => return Err("a symbolic link to nothing in the archive"),
        }
    }
    Err("a symbolic link in a chain of too many links (more than 8)")
}

/// The folder holding `path` (`""` at the top).
fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `target` taken from folder `dir`, normalised; out of the archive is refused.
fn join(dir: &str, target: &str) -> Result<String, &'static str> {
    if target.is_empty() {
        return Err("a symbolic link to nothing (an empty target)");
    }
    if target.starts_with('/') {
        return Err("a symbolic link out of the archive (an absolute target)");
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("a symbolic link out of the archive (\"..\" above its top)");
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Whether `path` is a folder of the archive (some entry is under it).
fn is_directory(entries: &Entries, path: &str) -> bool {
    let prefix = format!("{path}/");
    entries
        .range::<str, _>((
            std::ops::Bound::Included(prefix.as_str()),
            std::ops::Bound::Unbounded,
        ))
        .next()
        .is_some_and(|(k, _)| k.starts_with(&prefix))
        || path.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(links: &[(&str, &str)]) -> Entries {
        let mut entries = Entries::new();
        entries.insert("course/r1.xml".into(), Entry::Text("<course/>".into()));
        entries.insert("html/h1.html".into(), Entry::Text("<p/>".into()));
        for (name, target) in links {
            entries.insert(name.to_string(), Entry::Link(target.to_string()));
        }
        resolve_links(&mut entries);
        entries
    }

    fn outcome(entries: &Entries, name: &str) -> String {
        match &entries[name] {
            Entry::Alias(path) => format!("-> {path}"),
            Entry::Refused(why) => why.to_string(),
            other => panic!("{name} is still {other:?}"),
        }
    }

    #[test]
    fn a_link_to_a_file_inside_is_followed_through_a_short_chain() {
        let e = resolved(&[
            ("course.xml", "course/r1.xml"),
            ("html/again.html", "./../html/h1.html"),
            ("a.xml", "b.xml"),
            ("b.xml", "course.xml"),
        ]);
        assert_eq!(outcome(&e, "course.xml"), "-> course/r1.xml");
        assert_eq!(outcome(&e, "html/again.html"), "-> html/h1.html");
        assert_eq!(outcome(&e, "a.xml"), "-> course/r1.xml");
    }

    #[test]
    fn links_out_to_folders_to_nothing_and_in_loops_are_refused() {
        let mut chain = vec![("c9".to_string(), "course/r1.xml".to_string())];
        for i in 0..9 {
            chain.push((format!("c{i}"), format!("c{}", i + 1)));
        }
        let chain: Vec<(&str, &str)> = chain
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let mut links = vec![
            ("up.xml", "../outside.xml"),
            ("abs.xml", "/etc/passwd"),
            ("dir.xml", "html"),
            ("top.xml", "."),
            ("none.xml", "missing.xml"),
            ("empty.xml", ""),
            ("loop1.xml", "loop2.xml"),
            ("loop2.xml", "loop1.xml"),
        ];
        links.extend(chain);
        let e = resolved(&links);
        assert!(outcome(&e, "up.xml").contains("out of the archive"));
        assert!(outcome(&e, "abs.xml").contains("out of the archive"));
        assert!(outcome(&e, "dir.xml").contains("a directory"));
        assert!(outcome(&e, "top.xml").contains("a directory"));
        assert!(outcome(&e, "none.xml").contains("nothing in the archive"));
        assert!(outcome(&e, "empty.xml").contains("empty target"));
        assert!(outcome(&e, "loop1.xml").contains("too many links"));
        assert!(
            outcome(&e, "c1").contains("too many links"),
            "through 9 links"
        );
        assert_eq!(outcome(&e, "c2"), "-> course/r1.xml", "through 8 links");
    }
}
