//! The name of a new block (`xbhost new-block NAME`), checked for the language its
//! project is written in, and what the project derives from it: the crate or module name
//! and the block's type. A name is refused, saying why, when the project would not build
//! or would replace a block xbhost ships.

use anyhow::{Result, bail};
use clap::ValueEnum;

/// The language a block project is written in.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    Python,
}

/// Longest block name, as the host's plugin names.
const MAX_NAME_BYTES: usize = 64;

/// Longest block type name: the client script's function is `{type}Block`, and the host
/// takes JavaScript identifiers of at most 64 characters.
const MAX_TYPE_NAME_BYTES: usize = 64 - "Block".len();

/// Usage ids of the sample course's containers: the block's own id, `NAME_1`, must be
/// none of them.
const COURSE_IDS: &[&str] = &["course", "chapter_1", "sequence_1", "unit_1"];

/// Block types xbhost ships: a new block of one of these names would replace it (the
/// sample course needs the containers, and the walk-through installs them beside it).
const SHIPPED: &[&str] = xbhost::SHIPPED_PLUGINS;

/// Names cargo refuses for a package, or that the project's own dependencies take.
const RESERVED_CRATES: &[&str] = &[
    "test",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "serde",
    "serde_json",
    "xbhost_sdk",
    "xbhost",
];

/// Rust's keywords (strict and reserved): not a crate's name.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe",
    "use", "where", "while", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// The names of Rust's prelude (edition 2024): a block type of one of these would shadow it,
/// and the generated code (`String`, `Ok`, `Default`, ...) would no longer build.
const PRELUDE: &[&str] = &[
    "AsMut",
    "AsRef",
    "AsyncFn",
    "AsyncFnMut",
    "AsyncFnOnce",
    "Box",
    "Clone",
    "Copy",
    "Default",
    "DoubleEndedIterator",
    "Drop",
    "Eq",
    "Err",
    "ExactSizeIterator",
    "Extend",
    "Fn",
    "FnMut",
    "FnOnce",
    "From",
    "FromIterator",
    "Future",
    "Into",
    "IntoFuture",
    "IntoIterator",
    "Iterator",
    "None",
    "Ok",
    "Option",
    "Ord",
    "PartialEq",
    "PartialOrd",
    "Result",
    "Send",
    "Sized",
    "Some",
    "String",
    "Sync",
    "ToOwned",
    "ToString",
    "TryFrom",
    "TryInto",
    "Unpin",
    "Vec",
];

/// The names `src/lib.rs` already uses: the block's type may be none of them.
const TEMPLATE_TYPES: &[&str] = &[
    "Block",
    "BlockError",
    "BlockResult",
    "Context",
    "Deserialize",
    "Fields",
    "Fragment",
    "Serialize",
    "State",
    "TestHost",
    "Value",
    "View",
];

/// Python's names a class cannot take, and those the Python template already uses.
const PYTHON_TAKEN: &[&str] = &[
    "True",
    "False",
    "None",
    "Block",
    "BlockError",
    "Fields",
    "FieldsError",
    "Fragment",
    "Optional",
    "Path",
    "TestHost",
    "View",
];

/// A valid block name and what the project derives from it.
#[derive(Debug, PartialEq)]
pub struct Names {
    /// The package and plugin name.
    pub name: String,
    /// The crate's name in Rust and the `.wasm` file's stem (`-` becomes `_`).
    pub crate_name: String,
    /// The block's type (its Rust type, its Python class), in CamelCase.
    pub type_name: String,
}

impl Names {
    pub fn of(name: &str, lang: Lang) -> Result<Names> {
        let shape = "a block name is 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter";
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            bail!("block name {name:?} is {} bytes: {shape}", name.len());
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            bail!("block name {name:?} does not start with a lowercase letter: {shape}");
        }
        if let Some(c) = name
            .chars()
            .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
        {
            bail!("block name {name:?} contains {c:?}: {shape}");
        }
        let crate_name = name.replace('-', "_");
        if COURSE_IDS.contains(&format!("{name}_1").as_str()) {
            bail!(
                "block name {name:?} would give the sample course two blocks {:?}: pick \
                 another name",
                format!("{name}_1")
            );
        }
        // The template's handler publishes `NAME.answered`.
        if xbhost::events::is_host_event(&format!("{name}.answered")) {
            bail!(
                "block name {name:?} would make the block's events (`{name}.answered`) the \
                 host's own, which blocks may not send: pick another name"
            );
        }
        if SHIPPED.contains(&crate_name.as_str()) {
            bail!(
                "block name {name:?} is a block type xbhost ships (installing it would replace \
                 that one): pick another name"
            );
        }
        if lang == Lang::Rust
            && (RESERVED_CRATES.contains(&crate_name.as_str())
                || KEYWORDS.contains(&crate_name.as_str()))
        {
            bail!(
                "block name {name:?} cannot name a Rust crate (it is reserved): pick another name"
            );
        }
        let type_name: String = name
            .split(['-', '_'])
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        if type_name.len() > MAX_TYPE_NAME_BYTES {
            bail!(
                "block name {name:?} is too long for its client script's function \
                 `{type_name}Block` (the host takes at most 64 characters): use at most \
                 {MAX_TYPE_NAME_BYTES} letters and digits"
            );
        }
        match lang {
            Lang::Python if PYTHON_TAKEN.contains(&type_name.as_str()) => bail!(
                "block name {name:?} would make the block's Python class `{type_name}`, a \
                 name Python or the generated code already uses: pick another name"
            ),
            Lang::Rust if TEMPLATE_TYPES.contains(&type_name.as_str()) => bail!(
                "block name {name:?} would make the block's Rust type `{type_name}`, which the \
                 generated code already uses: pick another name"
            ),
            Lang::Rust if PRELUDE.contains(&type_name.as_str()) => bail!(
                "block name {name:?} would make the block's Rust type `{type_name}`, a name of \
                 Rust's prelude that the generated code uses: pick another name"
            ),
            _ => {}
        }
        Ok(Names {
            name: name.to_string(),
            crate_name,
            type_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_derived() {
        let n = Names::of("quiz-card_2", Lang::Rust).unwrap();
        assert_eq!(n.crate_name, "quiz_card_2");
        assert_eq!(n.type_name, "QuizCard2");
        for bad in [
            "",
            "Quiz",
            "2quiz",
            "-quiz",
            "quiz card",
            "quiz.card",
            "<script>",
            "qüiz",
            "html",
            "vertical",
            "test",
            "fn",
            "serde_json",
            "xbhost-sdk",
            "block",
            "fields",
            "string",
            "ok",
            "some",
            "option",
            "default",
            "to-string",
            "self",
            "crate",
            "thumbs",
        ] {
            assert!(Names::of(bad, Lang::Rust).is_err(), "{bad:?} was accepted");
        }
        assert!(Names::of(&"a".repeat(59), Lang::Rust).is_ok());
        let function = Names::of(&"a".repeat(60), Lang::Python)
            .unwrap_err()
            .to_string();
        assert!(function.contains("at most 64 characters"), "{function}");
        // Dashes do not count: they leave the type name.
        assert!(Names::of(&format!("{}-b", "a".repeat(58)), Lang::Rust).is_ok());
        let long = Names::of(&"a".repeat(65), Lang::Rust)
            .unwrap_err()
            .to_string();
        assert!(long.contains("65 bytes"), "{long}");
        let shipped = Names::of("html", Lang::Rust).unwrap_err().to_string();
        assert!(shipped.contains("ships"), "{shipped}");
        let prelude = Names::of("string", Lang::Rust).unwrap_err().to_string();
        assert!(
            prelude.contains("`String`, a name of Rust's prelude"),
            "{prelude}"
        );
        // Names that only look close are fine.
        for good in ["strings", "okay", "self-check", "crates"] {
            assert!(Names::of(good, Lang::Rust).is_ok(), "{good}");
        }
    }

    #[test]
    fn python_names_are_checked_for_python() {
        let n = Names::of("poll-card", Lang::Python).unwrap();
        assert_eq!(
            (n.crate_name.as_str(), n.type_name.as_str()),
            ("poll_card", "PollCard")
        );
        // Rust's reserved words are fine in Python; Python's constants and the template's
        // own names are not, nor a shipped block's name.
        for good in ["fn", "test", "string", "self", "serde_json"] {
            assert!(Names::of(good, Lang::Python).is_ok(), "{good}");
        }
        for bad in [
            "none",
            "true",
            "false",
            "block",
            "fields",
            "test-host",
            "html",
            "Quiz",
            "",
        ] {
            assert!(
                Names::of(bad, Lang::Python).is_err(),
                "{bad:?} was accepted"
            );
        }
        let host = Names::of("xbhost", Lang::Python).unwrap_err().to_string();
        assert!(host.contains("the host's own"), "{host}");
        let twice = Names::of("unit", Lang::Rust).unwrap_err().to_string();
        assert!(twice.contains("two blocks \"unit_1\""), "{twice}");
        let taken = Names::of("none", Lang::Python).unwrap_err().to_string();
        assert!(taken.contains("Python class `None`"), "{taken}");
    }
}
