//! The module graph of `host/src`, read from the source: which module file imports which
//! (through `use` and through paths written out in the code). `tests/module_graph.rs`
//! checks it has no cycle and prints it for ARCHITECTURE.md.
//!
//! A module is a file: `lib.rs` is the library's root (`crate`), `main.rs` the binary's
//! (`main`, whose `xbhost::` paths lead into the library). A path resolves to the longest
//! prefix that is a module file, so `crate::session::Session` is an import of
//! `session/mod.rs` and `crate::session::tags::Tags` one of `session/tags.rs`. Declaring a
//! child (`mod x;`) is not an import; a `pub use` of it is. Code under `#[cfg(test)]` at
//! the end of a file is not read (unit tests may import what they like).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module name (`session::tags`, `crate` for lib.rs, `main` for main.rs) to the modules
/// it imports, and each module's line count.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    pub edges: BTreeMap<String, BTreeSet<String>>,
    pub lines: BTreeMap<String, usize>,
    pub files: BTreeMap<String, String>,
}

fn module_name(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut segs: Vec<String> = parts[..parts.len() - 1].to_vec();
    let file = parts.last().unwrap().trim_end_matches(".rs").to_string();
    match (segs.is_empty(), file.as_str()) {
        (true, "lib") => return "crate".into(),
        (true, "main") => return "main".into(),
        (_, "mod") => {}
        _ => segs.push(file),
    }
    // Files of the binary (declared from main.rs) live beside the library's; `cli` is the
    // binary's by convention of this crate.
    segs.join("::")
}

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((module_name(rel), rel.to_string_lossy().into_owned(), text));
        }
    }
}

/// Where a file's inline unit-test module (`#[cfg(test)] mod tests { ... }`) starts; a
/// declaration of a test module in its own file (`mod tests;`) is not one.
fn inline_test_module(text: &str) -> Option<usize> {
    text.match_indices("\n#[cfg(test)]\nmod ")
        .find_map(|(at, m)| {
            let line = text[at + m.len()..].lines().next().unwrap_or("");
            line.contains('{').then_some(at)
        })
}

/// The code of a file without comments, string literals and its trailing test module.
fn code_of(text: &str) -> String {
    let cut = inline_test_module(text).unwrap_or(text.len());
    let text = &text[..cut];
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // a char literal such as '"'
            i += 3;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') && b.get(i + 3) == Some(&b'\'') {
            // an escaped one such as '\"'
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim().trim_end_matches("::");
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let base = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        let bytes = inner.as_bytes();
        for (i, &c) in bytes.iter().enumerate() {
            match c {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                b',' if depth == 0 => {
                    expand(&base, &inner[start..i], out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&base, &inner[start..], out);
    } else if !tree.is_empty() {
        let path = tree.split(" as ").next().unwrap().trim();
        out.push(join(prefix, path));
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}::{b}"),
    }
}

/// Every path the code names from the crate root, `super` or `self`, as written.
fn paths_in(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` statements, groups included.
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let stmt_start = at + 4;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            rest = &rest[stmt_start..];
            continue;
        }
        let end = rest[stmt_start..]
            .find(';')
            .map_or(rest.len(), |e| stmt_start + e);
        expand("", &rest[stmt_start..end], &mut out);
        rest = &rest[end.min(rest.len())..];
    }
    // Paths written out in the code.
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    for start in ["crate::", "super::", "xbhost::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            if code[..at]
                .chars()
                .last()
                .is_some_and(|c| is_ident(c) || c == ':')
            {
                continue;
            }
            let tail: String = code[at..]
                .chars()
                .take_while(|&c| is_ident(c) || c == ':')
                .collect();
            out.push(tail.trim_end_matches(':').to_string());
        }
    }
    out
}

impl ModuleGraph {
    /// Reads every `.rs` file under `src`.
    pub fn read(src: &Path) -> ModuleGraph {
        let mut files = Vec::new();
        collect(src, src, &mut files);
        let modules: BTreeSet<String> = files.iter().map(|f| f.0.clone()).collect();
        let mut graph = ModuleGraph::default();
        for (module, rel, text) in &files {
            graph.lines.insert(module.clone(), text.lines().count());
            graph.files.insert(module.clone(), rel.clone());
            let mut targets = BTreeSet::new();
            for path in paths_in(&code_of(text)) {
                let mut segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
                if segs.is_empty() {
                    continue;
                }
                // Where the path starts.
                let mut base: Vec<String> = match segs[0] {
                    "crate" | "xbhost" => {
                        segs.remove(0);
                        vec![]
                    }
                    "self" | "super" => {
                        let mut here: Vec<String> = if module == "crate" || module == "main" {
                            vec![]
                        } else {
                            module.split("::").map(String::from).collect()
                        };
                        while let Some(&s) = segs.first() {
                            match s {
                                "self" => {}
                                "super" => {
                                    here.pop();
                                }
                                _ => break,
                            }
                            segs.remove(0);
                        }
                        here
                    }
                    first => {
                        // A relative path into a child module (`use tags::Tags;`).
                        let here: Vec<String> = if module == "crate" || module == "main" {
                            vec![]
                        } else {
                            module.split("::").map(String::from).collect()
                        };
                        let child = join(&here.join("::"), first);
                        if module == "main" || !modules.contains(&child) {
                            continue; // another crate, or a name in scope
                        }
                        here
                    }
                };
                let mut best = if base.is_empty() {
                    "crate".to_string()
                } else {
                    base.join("::")
                };
                for s in segs {
                    base.push(s.to_string());
                    let candidate = base.join("::");
                    if modules.contains(&candidate) {
                        best = candidate;
                    } else {
                        break;
                    }
                }
                if best == "crate" && !modules.contains("crate") {
                    continue;
                }
                if &best != module && modules.contains(&best) {
                    targets.insert(best);
                }
            }
            // Children named by a relative path in the code (`blocks::render`).
            let code = code_of(text);
            let here = if module == "crate" || module == "main" {
                String::new()
            } else {
                format!("{module}::")
            };
            for child in modules.iter().filter_map(|m| {
                let rest = m.strip_prefix(&here)?;
                (!rest.contains("::") && m != module).then_some((m, rest))
            }) {
                let (full, name) = child;
                if module == "main" {
                    break;
                }
                let needle = format!("{name}::");
                let named = code.match_indices(&needle).any(|(at, _)| {
                    !code[..at]
                        .chars()
                        .last()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if named {
                    targets.insert(full.clone());
                }
            }
            graph.edges.insert(module.clone(), targets);
        }
        graph
    }

    /// One cycle, if the graph has any (as the list of modules around it).
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut mark: BTreeMap<&str, Mark> =
            self.edges.keys().map(|k| (k.as_str(), Mark::New)).collect();
        fn visit<'a>(
            g: &'a ModuleGraph,
            at: &'a str,
            mark: &mut BTreeMap<&'a str, Mark>,
            stack: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            mark.insert(at, Mark::Open);
            stack.push(at);
            for next in g.edges.get(at).into_iter().flatten() {
                match mark.get(next.as_str()).copied().unwrap_or(Mark::Done) {
                    Mark::Open => {
                        let from = stack.iter().position(|m| *m == next).unwrap();
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|s| s.to_string()).collect();
                        cycle.push(next.clone());
                        return Some(cycle);
                    }
                    Mark::New => {
                        if let Some(c) = visit(g, next, mark, stack) {
                            return Some(c);
                        }
                    }
                    Mark::Done => {}
                }
            }
            stack.pop();
            mark.insert(at, Mark::Done);
            None
        }
        let keys: Vec<&str> = self.edges.keys().map(String::as_str).collect();
        for k in keys {
            if mark[k] == Mark::New {
                let mut stack = Vec::new();
                if let Some(c) = visit(self, k, &mut mark, &mut stack) {
                    return Some(c);
                }
            }
        }
        None
    }

    /// The graph as text: each module with its lines and what it imports.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (module, targets) in &self.edges {
            let list: Vec<&str> = targets.iter().map(String::as_str).collect();
            out.push_str(&format!(
                "{module} ({} lines) -> {}\n",
                self.lines[module],
                if list.is_empty() {
                    "-".to_string()
                } else {
                    list.join(", ")
                }
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_groups_expand_and_paths_resolve() {
        let mut out = Vec::new();
        expand("", "crate::a::{B, c::{D, e as F}, self}", &mut out);
        assert_eq!(
            out,
            [
                "crate::a::B",
                "crate::a::c::D",
                "crate::a::c::e",
                "crate::a::self"
            ]
        );
        let code = code_of(
            "use super::x::Y; // crate::fake::Z\nfn f() { crate::real::g(\"crate::no\") }\n#[cfg(test)]\nmod tests { use crate::t; }",
        );
        // A test module in its own file is only declared: what follows is still read.
        let declared = code_of("\n#[cfg(test)]\nmod tests;\nfn f() { crate::after::g() }");
        assert!(paths_in(&declared).contains(&"crate::after::g".to_string()));
        let paths = paths_in(&code);
        assert!(paths.contains(&"super::x::Y".to_string()), "{paths:?}");
        assert!(paths.contains(&"crate::real::g".to_string()), "{paths:?}");
        assert!(
            !paths
                .iter()
                .any(|p| p.contains("fake") || p.contains("no") || p.contains("crate::t")),
            "{paths:?}"
        );
    }

    #[test]
    fn a_cycle_is_found_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path();
        std::fs::create_dir(src.join("a")).unwrap();
        std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").unwrap();
        std::fs::write(src.join("a/mod.rs"), "mod c;\npub use c::C;\n").unwrap();
        std::fs::write(src.join("a/c.rs"), "use super::Shared;\npub struct C;\n").unwrap();
        std::fs::write(src.join("b.rs"), "use crate::a::c::C;\n").unwrap();
        let graph = ModuleGraph::read(src);
        assert_eq!(graph.edges["b"], BTreeSet::from(["a::c".to_string()]));
        let cycle = graph.find_cycle().expect("a -> a::c -> a");
        assert!(cycle.contains(&"a".to_string()) && cycle.contains(&"a::c".to_string()));
        std::fs::write(
            src.join("a/mod.rs"),
            "mod c;\nmod sibling;\npub use c::C;\n",
        )
        .unwrap();
        std::fs::write(src.join("a/sibling.rs"), "pub struct Shared;\n").unwrap();
        std::fs::write(
            src.join("a/c.rs"),
            "use super::sibling::Shared;\npub struct C;\n",
        )
        .unwrap();
        assert_eq!(ModuleGraph::read(src).find_cycle(), None);
    }
}
