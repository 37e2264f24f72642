//! `xbhost block build [DIR]`: a Python block project into a plugin component, as
//! `cargo build --target wasm32-wasip2` makes one of a Rust block.
//!
//! The project is a `pyproject.toml` (`[project]` name and version, `[tool.xbhost] block =
//! "module:Class"`), its modules, and optionally `static/` (client-side files) and
//! `scenarios.json`. componentize-py (PyPI, pinned by the project's scripts) builds the
//! component from the contract and the Python SDK embedded in this binary, so the
//! component is built for the contract this host implements; this command then writes the
//! `xbhost-plugin`, `xbhost-assets` and `xbhost-scenarios` sections the Rust SDK's macros
//! write, and checks those sections as `plugin add` will.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde::Deserialize;

#[derive(Subcommand)]
pub enum BlockCommand {
    /// Build a Python block project into a plugin (`.wasm`) that `plugin add` takes.
    #[command(
        after_help = "The project's pyproject.toml names the plugin and its class:\n\n  \
        [project]\n  name = \"thumbs_py\"\n  version = \"0.1.0\"\n\n  [tool.xbhost]\n  \
        block = \"thumbs:Thumbs\"   # module:class, a subclass of xbhost_sdk.Block\n\n\
        Examples:\n  \
        xbhost block build                         # ./NAME.wasm\n  \
        xbhost block build plugins/python/thumbs_py --out target/plugins/python/thumbs_py.wasm"
    )]
    Build(BuildArgs),
}

#[derive(Args)]
pub struct BuildArgs {
    /// The block project: a directory with a pyproject.toml.
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Where to write the plugin (default: DIR/NAME.wasm).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The componentize-py program (default: the pinned one `cargo xtask build` installs in
    /// target/python-venv/bin beside this xbhost, else componentize-py on the PATH); its
    /// version must be the one this xbhost builds with.
    #[arg(long, env = "XBHOST_COMPONENTIZE_PY", value_name = "PROGRAM")]
    componentize_py: Option<PathBuf>,
}

/// The largest scenarios file taken (the host bounds what it parses further).
const MAX_SCENARIOS_BYTES: u64 = 1 << 20;

/// The program that builds a Python component.
const COMPONENTIZE_PY: &str = "componentize-py";

/// The componentize-py release the SDK is written and tested against.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The contract and the Python SDK, as this binary was built with them.
const WIT: &str = include_str!("../../../wit/block.wit");
const SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../guest-sdk/python/xbhost_sdk/__init__.py"),
    ),
    (
        "_component.py",
        include_str!("../../../guest-sdk/python/xbhost_sdk/_component.py"),
    ),
    (
        "block.py",
        include_str!("../../../guest-sdk/python/xbhost_sdk/block.py"),
    ),
    (
        "fields.py",
        include_str!("../../../guest-sdk/python/xbhost_sdk/fields.py"),
    ),
    (
        "host.py",
        include_str!("../../../guest-sdk/python/xbhost_sdk/host.py"),
    ),
    (
        "testing.py",
        include_str!("../../../guest-sdk/python/xbhost_sdk/testing.py"),
    ),
    (
        "types.py",
        include_str!("../../../guest-sdk/python/xbhost_sdk/types.py"),
    ),
];

#[derive(Deserialize)]
struct PyProject {
    project: Option<Project>,
    tool: Option<Tool>,
}

#[derive(Deserialize)]
struct Project {
    name: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
struct Tool {
    xbhost: Option<XbhostTool>,
}

#[derive(Deserialize)]
struct XbhostTool {
    block: Option<String>,
}

/// What a project's pyproject.toml says of its block.
struct BlockProject {
    name: String,
    version: String,
    module: String,
    class: String,
}

fn read_project(dir: &Path) -> Result<BlockProject> {
    let file = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "cannot read {} (a Python block project has one)",
            file.display()
        )
    })?;
    let parsed: PyProject =
        toml::from_str(&text).with_context(|| format!("{} does not parse", file.display()))?;
    let shown = file.display();
    let project = parsed
        .project
        .ok_or_else(|| anyhow!("{shown} has no [project] table (name and version)"))?;
    let name = project
        .name
        .ok_or_else(|| anyhow!("{shown} has no [project] name"))?;
    xbhost::check_plugin_name(&name).with_context(|| format!("{shown}: [project] name"))?;
    let version = project
        .version
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| anyhow!("{shown} has no [project] version"))?;
    let block = parsed
        .tool
        .and_then(|t| t.xbhost)
        .and_then(|x| x.block)
        .ok_or_else(|| {
            anyhow!(
                "{shown} has no [tool.xbhost] block = \"module:Class\" naming the block's class"
            )
        })?;
    let (module, class) = block
        .split_once(':')
        .filter(|(m, c)| is_dotted_identifier(m) && is_identifier(c))
        .ok_or_else(|| {
            anyhow!("{shown}: [tool.xbhost] block = {block:?} is not \"module:Class\"")
        })?;
    Ok(BlockProject {
        name,
        version,
        module: module.to_string(),
        class: class.to_string(),
    })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_dotted_identifier(s: &str) -> bool {
    s.split('.').all(is_identifier)
}

/// The pinned Python tools (componentize-py, pytest) `cargo xtask build` installs beside
/// this binary: `TARGET/python-venv/bin` for `TARGET/release/xbhost`, when it is there.
pub(super) fn pinned_tools_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.join("python-venv/bin"))
        .filter(|dir| dir.join(COMPONENTIZE_PY).is_file())
}

/// The pinned componentize-py beside this binary, else the one on the PATH (whose version
/// [`check_version`] checks, and whose failure to start says how to install it).
fn default_componentize_py() -> PathBuf {
    pinned_tools_dir()
        .map(|dir| dir.join(COMPONENTIZE_PY))
        .unwrap_or_else(|| PathBuf::from(COMPONENTIZE_PY))
}

/// How to get the componentize-py this xbhost builds with.
fn install_hint() -> String {
    format!(
        "`pip install componentize-py=={COMPONENTIZE_PY_VERSION}`, or the one `cargo xtask \
         build` puts in target/python-venv/bin, named with --componentize-py if need be"
    )
}

/// Refuses a componentize-py of another release than the one the SDK's adapter is written
/// against (its generated bindings change between releases).
fn check_version(program: &Path) -> Result<()> {
    let output = Command::new(program)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}: {}", program.display(), install_hint()))?;
    let said = String::from_utf8_lossy(&output.stdout);
    let version = said.split_whitespace().nth(1).unwrap_or("");
    if !output.status.success() || version != COMPONENTIZE_PY_VERSION {
        bail!(
            "{} is componentize-py {:?}, but this xbhost builds Python blocks with \
             {COMPONENTIZE_PY_VERSION}: {}",
            program.display(),
            said.trim(),
            install_hint()
        );
    }
    Ok(())
}

pub fn run(cmd: &BlockCommand, out: &mut impl Write) -> Result<()> {
    match cmd {
        BlockCommand::Build(args) => build(args, out),
    }
}

fn build(args: &BuildArgs, out: &mut impl Write) -> Result<()> {
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("there is no block project at {}", args.dir.display()))?;
    let project = read_project(&dir)?;
    // The project's own files first: a mistake there is named before a long build.
    let assets = read_assets(&dir.join("static"))?;
    let work = tempfile::Builder::new()
        .prefix("xbhost-block-build")
        .tempdir()
        .context("cannot make a directory to build in")?;
    let wit = work.path().join("wit");
    let sdk = work.path().join("sdk/xbhost_sdk");
    let entry = work.path().join("entry");
    for d in [&wit, &sdk, &entry] {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(wit.join("block.wit"), WIT)?;
    for (name, text) in SDK {
        std::fs::write(sdk.join(name), text)?;
    }
    // The module componentize-py exports: the block's class behind the SDK's adapter.
    std::fs::write(
        entry.join("xbhost_entry.py"),
        // Aliased, so a block class named `export` (or `Block`) shadows nothing.
        format!(
            "import xbhost_sdk._component as _xbhost_component\n\
             from {} import {} as _xbhost_block\n\
             Block = _xbhost_component.export(_xbhost_block)\n",
            project.module, project.class
        ),
    )?;
    let built = work.path().join("component.wasm");
    let componentize_py = args
        .componentize_py
        .clone()
        .unwrap_or_else(default_componentize_py);
    check_version(&componentize_py)?;
    let output = Command::new(&componentize_py)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "block-plugin", "componentize", "xbhost_entry"])
        // The SDK first: the block gets the one this host was built with.
        .arg("-p")
        .arg(work.path().join("sdk"))
        .arg("-p")
        .arg(&entry)
        .arg("-p")
        .arg(&dir)
        .arg("-o")
        .arg(&built)
        .output()
        .with_context(|| format!("cannot run {}", componentize_py.display()))?;
    if !output.status.success() {
        bail!(
            "componentize-py could not build block {:?} ({}:{}) of {}: {}{}",
            project.name,
            project.module,
            project.class,
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    let mut wasm = std::fs::read(&built).context("componentize-py wrote no component")?;
    let metadata = serde_json::json!({
        "name": project.name,
        "version": project.version,
        "contract": xbhost_sdk::CONTRACT_VERSION,
    });
    xbhost::runtime::plugin::append_custom_section(
        &mut wasm,
        xbhost_sdk::METADATA_SECTION,
        metadata.to_string().as_bytes(),
    );
    if !assets.is_empty() {
        xbhost::runtime::plugin::append_custom_section(
            &mut wasm,
            xbhost_sdk::ASSETS_SECTION,
            &encode_assets(&assets),
        );
    }
    let scenarios = dir.join("scenarios.json");
    if scenarios.is_file() {
        let size = std::fs::metadata(&scenarios)?.len();
        if size > MAX_SCENARIOS_BYTES {
            bail!(
                "{} is {size} bytes, over {MAX_SCENARIOS_BYTES}",
                scenarios.display()
            );
        }
        let text = std::fs::read(&scenarios)
            .with_context(|| format!("cannot read {}", scenarios.display()))?;
        xbhost::runtime::plugin::append_custom_section(
            &mut wasm,
            xbhost_sdk::SCENARIOS_SECTION,
            &text,
        );
    }
    // What `plugin add` checks of the sections, checked now (compiling is its own).
    let not_one = || format!("the built plugin {:?} would be refused", project.name);
    xbhost::runtime::plugin::read_metadata(&wasm).with_context(not_one)?;
    xbhost::runtime::assets::read_assets(&wasm).with_context(not_one)?;
    xbhost::runtime::scenarios::read_scenarios(&wasm)
        .with_context(|| format!("{}", scenarios.display()))
        .with_context(not_one)?;
    let dest = args
        .out
        .clone()
        .unwrap_or_else(|| dir.join(format!("{}.wasm", project.name)));
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // Whole or not at all: a build cut short leaves no plugin that looks new.
    let partial = dest.with_extension("wasm.partial");
    std::fs::write(&partial, &wasm)
        .and_then(|()| std::fs::rename(&partial, &dest))
        .with_context(|| format!("cannot write {}", dest.display()))?;
    writeln!(
        out,
        "built plugin {} {} (contract {}, {} bytes, {} client files) -> {}",
        project.name,
        project.version,
        xbhost_sdk::CONTRACT_VERSION,
        wasm.len(),
        assets.len(),
        dest.display()
    )?;
    Ok(())
}

/// The client files of `static/` (names as paths under it, sorted), none when absent: the
/// `.css` and `.js` files, as `plugin add` takes them. Confined to the directory: `static`
/// itself may be a link (to a directory shared with another block, say), but nothing
/// under it may be, and only regular files within the limits are read.
fn read_assets(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    use xbhost::runtime::assets::{
        MAX_ASSET_BYTES, MAX_ASSET_FILES, MAX_ASSETS_TOTAL_BYTES, asset_kind,
    };
    let mut files = Vec::new();
    if !dir.is_dir() {
        return Ok(files);
    }
    let root =
        std::fs::canonicalize(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut total = 0usize;
    let mut pending = vec![root.clone()];
    while let Some(d) = pending.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?
        {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let name = path
                .strip_prefix(&root)
                .ok()
                .and_then(|p| p.to_str())
                .ok_or_else(|| anyhow!("{} has a name that is not UTF-8", path.display()))?
                .to_string();
            if name.split('/').any(|s| s.starts_with('.')) {
                continue; // editors' and systems' files (.DS_Store, .x.swp)
            }
            if meta.file_type().is_symlink() {
                bail!(
                    "static/{name} is a link: client files must be files of the project's \
                     static/ directory"
                );
            }
            if meta.is_dir() {
                pending.push(path);
                continue;
            }
            if !meta.is_file() || asset_kind(&name).is_none() {
                bail!(
                    "static/{name} is not a client file a plugin may ship: .css and .js files \
                     only, named with letters, digits, `_`, `-` and `.`"
                );
            }
            let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
            total = total.saturating_add(size);
            if size > MAX_ASSET_BYTES || total > MAX_ASSETS_TOTAL_BYTES {
                bail!(
                    "static/{name} is {size} bytes: client files are at most {MAX_ASSET_BYTES} \
                     bytes each and {MAX_ASSETS_TOTAL_BYTES} in all"
                );
            }
            if files.len() == MAX_ASSET_FILES {
                bail!("static/ has more than {MAX_ASSET_FILES} client files");
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            files.push((name, bytes));
        }
    }
    files.sort();
    Ok(files)
}

/// The `xbhost-assets` section the Rust SDK's `client_assets!` writes: a version byte (1),
/// then per file its name's length (u32 LE), the name, its content's length and the content.
fn encode_assets(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![1u8];
    for (name, data) in files {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}
