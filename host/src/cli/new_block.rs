//! `xbhost new-block NAME [--lang rust|python]`: writes a block project that builds, passes
//! its own tests and renders in the workbench without edits. The project's files are the
//! templates under `host/templates/rust-block/` and `host/templates/python-block/` (real
//! files, so they can be read and reviewed as they are; both languages share the
//! client-side code, the scenarios and the sample course), embedded in the binary and
//! filled in by plain `{{placeholder}}` substitution, in paths too. Opens no store: it only
//! writes the new directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::block_names::{Lang, Names};

#[derive(Args)]
#[command(
    after_help = "In Rust (the default) it writes Cargo.toml (its own workspace, the \
    `plugin` profile), rust-toolchain.toml (the Rust xbhost is built with, and \
    wasm32-wasip2), .cargo/config.toml (the 128 KiB stack) and src/lib.rs (a block with \
    typed fields, a handler and native tests). In Python (--lang python) it writes \
    pyproject.toml (name, version, the block's class, where pytest finds the SDK), \
    NAME_block.py (the block; NAME with `-` as `_`) and test_NAME_block.py (its pytest \
    tests against TestHost). \
    Both get static/block.js and static/block.css (its client-side code, which calls the \
    handler), scenarios.json (its workbench scenarios), course.json (course, chapter, \
    sequential, vertical and the block) and README.md (the commands to build, test, \
    install, load and render it).\n\n\
    Examples:\n  \
    xbhost new-block greeting                  # ./greeting, in Rust\n  \
    xbhost new-block poll-card --lang python   # ./poll-card, in Python\n  \
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
    /// The SDK to use: the `guest-sdk` directory of an xbhost checkout (the Rust crate;
    /// the Python package is its `python/`), by default the one this xbhost was built from.
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

/// The SDK of the checkout this binary was built from.
const BUILT_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../guest-sdk");

/// A project's files: path in the project (placeholders allowed), template text.
type Template = &'static [(&'static str, &'static str)];

/// What both languages' projects share: the client-side code, the scenarios, the course.
const SHARED: [(&str, &str); 4] = [
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
];

const RUST_TEMPLATE: Template = &[
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
    SHARED[0],
    SHARED[1],
    SHARED[2],
    SHARED[3],
    (
        "README.md",
        include_str!("../../templates/rust-block/README.md"),
    ),
];

const PYTHON_TEMPLATE: Template = &[
    (
        "pyproject.toml",
        include_str!("../../templates/python-block/pyproject.toml"),
    ),
    (
        ".gitignore",
        include_str!("../../templates/python-block/gitignore"),
    ),
    (
        "{{module}}.py",
        include_str!("../../templates/python-block/block.py"),
    ),
    (
        "test_{{module}}.py",
        include_str!("../../templates/python-block/test_block.py"),
    ),
    SHARED[0],
    SHARED[1],
    SHARED[2],
    SHARED[3],
    (
        "README.md",
        include_str!("../../templates/python-block/README.md"),
    ),
];

/// `new-block`: checks the name and the directory, then writes the project.
pub fn run(args: &NewBlockArgs, out: &mut impl Write) -> Result<()> {
    let names = Names::of(&args.name, args.lang)?;
    let sdk = sdk_dir(args.sdk.as_deref())?;
    // The template, and the SDK the project uses (shown in the summary).
    let (template, language, used_sdk, test) = match args.lang {
        Lang::Rust => (RUST_TEMPLATE, "Rust, xbhost-sdk", sdk.clone(), "cargo test"),
        Lang::Python => (
            PYTHON_TEMPLATE,
            "Python, xbhost_sdk",
            python_sdk_dir(&sdk, args.sdk.is_some())?,
            "pytest",
        ),
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    check_empty(&dir)?;
    let values = names.values(&sdk, &shipped_plugin_dir(), &python_tools_dir());
    for (path, text) in template {
        write(&dir.join(fill(path, &values)?), &fill(text, &values)?)?;
    }
    // The versions xbhost's own plugins are built and tested with (cargo drops the entries
    // the project does not need), so the project builds as the shipped plugins do.
    if args.lang == Lang::Rust
        && let Some(lock) = sdk.parent().map(|checkout| checkout.join("Cargo.lock"))
        && lock.is_file()
    {
        std::fs::copy(&lock, dir.join("Cargo.lock"))
            .with_context(|| format!("cannot copy {} into {}", lock.display(), dir.display()))?;
    }
    writeln!(
        out,
        "created block {} in {} ({language} from {})\nnext: cd {} && {test}, then the \
         commands in its README.md",
        names.name,
        dir.display(),
        used_sdk.display(),
        dir.display()
    )?;
    Ok(())
}

impl Names {
    /// The placeholders' values.
    fn values(&self, sdk: &Path, plugins: &str, python_tools: &str) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("crate_name", self.crate_name.clone()),
            // The Python module: never a name of Python's standard library, which a
            // module of the project's own would shadow.
            ("module", format!("{}_block", self.crate_name)),
            ("type_name", self.type_name.clone()),
            ("course_key", format!("course-v1:dev+{}+1", self.name)),
            ("sdk_path", toml_string(&sdk.to_string_lossy())),
            ("plugin_dir", plugins.to_string()),
            (
                "python_sdk_path",
                toml_string(&sdk.join("python").to_string_lossy()),
            ),
            ("python_tools", python_tools.to_string()),
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

/// The Python SDK of the checkout whose Rust SDK is `sdk` (its `python/`), checked to be
/// the `xbhost_sdk` package.
fn python_sdk_dir(sdk: &Path, given: bool) -> Result<PathBuf> {
    let dir = sdk.join("python");
    if !dir.join("xbhost_sdk/__init__.py").is_file() {
        let hint = if given {
            "--sdk must name the guest-sdk directory of an xbhost checkout, which holds it in \
             python/"
        } else {
            "the checkout this xbhost was built from has no Python SDK: pass --sdk with the \
             guest-sdk directory of your xbhost checkout"
        };
        bail!("no Python SDK (xbhost_sdk) at {}: {hint}", dir.display());
    }
    Ok(dir)
}

/// Where `cargo xtask build` put the pinned Python tools, for the project's README, else
/// a description of where to find them.
fn python_tools_dir() -> String {
    super::block_build::pinned_tools_dir()
        .and_then(|dir| dir.canonicalize().ok())
        .map(|dir| shell_word(&dir.to_string_lossy()))
        .unwrap_or_else(|| "PATH/TO/xbhost/target/python-venv/bin".to_string())
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

    /// Every placeholder of every template has a value, and what is filled in is quoted
    /// for where it goes.
    #[test]
    fn every_template_fills_in() {
        let names = Names::of("my-block", Lang::Rust).unwrap();
        let values = names.values(Path::new("/x/it's \"here\"/guest-sdk"), "/p", "/t");
        for (path, template) in RUST_TEMPLATE.iter().chain(PYTHON_TEMPLATE) {
            let text = fill(template, &values).unwrap();
            assert!(!text.contains("{{"), "{path} still has a placeholder");
            assert!(!fill(path, &values).unwrap().contains("{{"), "{path}");
        }
        let pyproject = fill(PYTHON_TEMPLATE[0].1, &values).unwrap();
        assert!(
            pyproject.contains(r#"pythonpath = [".", "/x/it's \"here\"/guest-sdk/python"]"#),
            "{pyproject}"
        );
        assert!(
            pyproject.contains(r#"block = "my_block_block:MyBlock""#),
            "{pyproject}"
        );
        assert_eq!(
            fill(PYTHON_TEMPLATE[2].0, &values).unwrap(),
            "my_block_block.py"
        );
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
