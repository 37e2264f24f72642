//! `xbhost new-block NAME`: writes a block project that builds, passes its own tests and
//! renders in the workbench without edits. The project's files are the templates under
//! `host/templates/rust-block/` (real files, so they can be read and reviewed as they are),
//! embedded in the binary and filled in by plain `{{placeholder}}` substitution. Opens no
//! store: it only writes the new directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

#[derive(Args)]
#[command(
    after_help = "Writes Cargo.toml (its own workspace, the `plugin` profile), \
    rust-toolchain.toml (the Rust xbhost is built with, and wasm32-wasip2), \
    .cargo/config.toml (the 128 KiB stack), src/lib.rs (a block with typed fields, a handler \
    and native tests), static/block.js and static/block.css (its client-side code, which \
    calls the handler), scenarios.json (its workbench scenarios), course.json (course, \
    chapter, sequential, vertical and the block) and README.md (the commands to build, \
    test, install, load and render it).\n\n\
    Examples:\n  \
    xbhost new-block greeting                  # ./greeting\n  \
    xbhost new-block quiz-card --dir ~/blocks/quiz-card --sdk ~/xbhost/guest-sdk"
)]
pub struct NewBlockArgs {
    /// The block's name: the plugin's name and the `type` course documents give its blocks.
    /// 1 to 64 of a-z, 0-9, `_` and `-`, starting with a letter.
    #[arg(value_name = "NAME")]
    name: String,
    /// The directory to write: new, or empty (default: ./NAME).
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// The language the block is written in.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// The xbhost-sdk crate to depend on: the `guest-sdk` directory of an xbhost checkout
    /// (default: the one this xbhost was built from).
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Lang {
    Rust,
    Python,
}

/// The SDK of the checkout this binary was built from.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// Longest block name, as the host's plugin names.
const MAX_NAME_BYTES: usize = 64;

/// The project's files: path in the project, template text.
const RUST_TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/rust-block/Cargo.toml"),
    ),
    // The repository's own pin, so a block is built with the Rust xbhost's plugins are.
    (
        "rust-toolchain.toml",
        include_str!("../../../rust-toolchain.toml"),
    ),
    (
        ".cargo/config.toml",
        include_str!("../../templates/rust-block/.cargo/config.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/rust-block/gitignore"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/rust-block/src/lib.rs"),
    ),
    (
        "static/block.js",
        include_str!("../../templates/rust-block/static/block.js"),
    ),
    (
        "static/block.css",
        include_str!("../../templates/rust-block/static/block.css"),
    ),
    (
        "scenarios.json",
        include_str!("../../templates/rust-block/scenarios.json"),
    ),
    (
        "course.json",
        include_str!("../../templates/rust-block/course.json"),
    ),
    (
        "README.md",
        include_str!("../../templates/rust-block/README.md"),
    ),
];

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

/// `new-block`: checks the name and the directory, then writes the project.
pub fn run(args: &NewBlockArgs, out: &mut impl Write) -> Result<()> {
    if args.lang == Lang::Python {
        bail!(
            "Python blocks are not available yet: they are issue #16 (blocks in Python, \
             sandboxed like every other block). Use --lang rust"
        );
    }
    let names = Names::of(&args.name)?;
    let sdk = sdk_dir(args.sdk.as_deref())?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    check_empty(&dir)?;
    let values = names.values(&sdk, &shipped_plugin_dir());
    for (path, template) in RUST_TEMPLATE {
        write(&dir.join(path), &fill(template, &values)?)?;
    }
    // The versions xbhost's own plugins are built and tested with (cargo drops the entries
    // the project does not need), so the project builds as the shipped plugins do.
    if let Some(lock) = sdk.parent().map(|checkout| checkout.join("Cargo.lock"))
        && lock.is_file()
    {
        std::fs::copy(&lock, dir.join("Cargo.lock"))
            .with_context(|| format!("cannot copy {} into {}", lock.display(), dir.display()))?;
    }
    writeln!(
        out,
        "created block {} in {} (Rust, xbhost-sdk from {})\nnext: cd {} && cargo test, then \
         the commands in its README.md",
        names.name,
        dir.display(),
        sdk.display(),
        dir.display()
    )?;
    Ok(())
}

/// A valid block name and what the project derives from it.
#[derive(Debug, PartialEq)]
struct Names {
    /// The package and plugin name.
    name: String,
    /// The crate's name in Rust and the `.wasm` file's stem (`-` becomes `_`).
    crate_name: String,
    /// The block's type in `src/lib.rs`, in CamelCase.
    type_name: String,
}

impl Names {
    fn of(name: &str) -> Result<Names> {
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
        if SHIPPED.contains(&crate_name.as_str()) {
            bail!(
                "block name {name:?} is a block type xbhost ships (installing it would replace \
                 that one): pick another name"
            );
        }
        if RESERVED_CRATES.contains(&crate_name.as_str()) || KEYWORDS.contains(&crate_name.as_str())
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
        if TEMPLATE_TYPES.contains(&type_name.as_str()) {
            bail!(
                "block name {name:?} would make the block's Rust type `{type_name}`, which the \
                 generated code already uses: pick another name"
            );
        }
        if PRELUDE.contains(&type_name.as_str()) {
            bail!(
                "block name {name:?} would make the block's Rust type `{type_name}`, a name of \
                 Rust's prelude that the generated code uses: pick another name"
            );
        }
        Ok(Names {
            name: name.to_string(),
            crate_name,
            type_name,
        })
    }

    /// The placeholders' values.
    fn values(&self, sdk: &Path, plugins: &str) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("crate_name", self.crate_name.clone()),
            ("type_name", self.type_name.clone()),
            ("course_key", format!("course-v1:dev+{}+1", self.name)),
            ("sdk_path", toml_string(&sdk.to_string_lossy())),
            ("plugin_dir", plugins.to_string()),
        ]
    }
}

/// The SDK to depend on, absolute (the project is elsewhere), checked to be xbhost-sdk.
fn sdk_dir(given: Option<&Path>) -> Result<PathBuf> {
    let dir = given.unwrap_or(Path::new(BUILT_SDK));
    let hint = if given.is_some() {
        "--sdk must name the guest-sdk directory of an xbhost checkout"
    } else {
        "this xbhost was built from a checkout that has moved or is gone: pass --sdk with \
         the guest-sdk directory of your xbhost checkout"
    };
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml"))
        .with_context(|| format!("no xbhost-sdk at {}: {hint}", dir.display()))?;
    if !manifest
        .lines()
        .any(|l| l.trim() == "name = \"xbhost-sdk\"")
    {
        bail!(
            "{} is not the xbhost-sdk crate (its Cargo.toml names another package): {hint}",
            dir.display()
        );
    }
    dir.canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))
}

/// Where the shipped plugins probably are, for the project's README: `plugins/` beside
/// the directory of this binary (`cargo xtask build` puts the host in `TARGET/release`
/// and the plugins in `TARGET/plugins`), else a description of where to find them.
fn shipped_plugin_dir() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("plugins")))
        .filter(|dir| dir.join("vertical.wasm").is_file())
        .and_then(|dir| dir.canonicalize().ok())
        .map(|dir| shell_word(&dir.to_string_lossy()))
        .unwrap_or_else(|| "PATH/TO/xbhost/target/plugins".to_string())
}

/// Refuses a directory that exists and holds anything (or a file of that name).
fn check_empty(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: new-block writes only into a new or empty directory \
                     (choose another with --dir)",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            Err(e).with_context(|| format!("cannot write the project into {}", dir.display()))
        }
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// `template` with every `{{key}}` replaced by its value; a placeholder without a value is
/// an error (a template and this file out of step).
fn fill(template: &str, values: &[(&str, String)]) -> Result<String> {
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        filled.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .context("a template has a `{{` without its `}}`")?;
        let key = &after[..end];
        let value = values
            .iter()
            .find(|(k, _)| *k == key)
            .with_context(|| format!("a template names an unknown placeholder {{{{{key}}}}}"))?;
        filled.push_str(&value.1);
        rest = &after[end + 2..];
    }
    filled.push_str(rest);
    Ok(filled)
}

/// A TOML basic string holding `s`.
fn toml_string(s: &str) -> String {
    let mut quoted = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `s` as one word for a POSIX shell (single-quoted when it needs quoting).
fn shell_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_derived() {
        let n = Names::of("quiz-card_2").unwrap();
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
            assert!(Names::of(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(Names::of(&"a".repeat(64)).is_ok());
        let long = Names::of(&"a".repeat(65)).unwrap_err().to_string();
        assert!(long.contains("65 bytes"), "{long}");
        let shipped = Names::of("html").unwrap_err().to_string();
        assert!(shipped.contains("ships"), "{shipped}");
        let prelude = Names::of("string").unwrap_err().to_string();
        assert!(
            prelude.contains("`String`, a name of Rust's prelude"),
            "{prelude}"
        );
        // Names that only look close are fine.
        for good in ["strings", "okay", "self-check", "crates"] {
            assert!(Names::of(good).is_ok(), "{good}");
        }
    }

    /// Every placeholder of every template has a value, and what is filled in is quoted
    /// for where it goes.
    #[test]
    fn every_template_fills_in() {
        let names = Names::of("my-block").unwrap();
        let values = names.values(Path::new("/x/it's \"here\"/guest-sdk"), "/p");
        for (path, template) in RUST_TEMPLATE {
            let text = fill(template, &values).unwrap();
            assert!(!text.contains("{{"), "{path} still has a placeholder");
        }
        let cargo = fill(RUST_TEMPLATE[0].1, &values).unwrap();
        assert!(
            cargo.contains(r#"xbhost-sdk = { path = "/x/it's \"here\"/guest-sdk" }"#),
            "{cargo}"
        );
        assert!(cargo.contains("name = \"my-block\"") && cargo.contains("[workspace]"));
        assert!(fill("{{nope}}", &values).is_err());
        assert!(fill("{{name", &values).is_err());
        assert_eq!(shell_word("/a b/c"), "'/a b/c'");
    }

    /// The project builds plugins as this workspace does: the same stack size and the same
    /// `plugin` profile (the workspace's files, read as they are).
    #[test]
    fn the_project_builds_as_the_shipped_plugins_do() {
        let workspace_config = include_str!("../../../.cargo/config.toml");
        let project_config = include_str!("../../templates/rust-block/.cargo/config.toml");
        let flags = |text: &str| {
            text.lines()
                .filter(|l| l.starts_with("rustflags") || l.starts_with("[target."))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(flags(project_config), flags(workspace_config));
        let profile = |text: &str| {
            text.split("[profile.plugin]")
                .nth(1)
                .expect("a plugin profile")
                .lines()
                .take_while(|l| !l.starts_with('['))
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            profile(RUST_TEMPLATE[0].1),
            profile(include_str!("../../../Cargo.toml"))
        );
    }

    #[test]
    fn refuses_a_directory_that_is_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        check_empty(dir.path()).unwrap();
        check_empty(&dir.path().join("new")).unwrap();
        std::fs::write(dir.path().join("x"), "").unwrap();
        let err = check_empty(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not empty"), "{err}");
        assert!(
            check_empty(&dir.path().join("x")).is_err(),
            "a file is no directory"
        );
    }
}
