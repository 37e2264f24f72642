//! `xbhost plugin`: installing block plugins and listing them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;

use xbhost::Host;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Check and store a plugin (`.wasm` component built with xbhost-sdk); a plugin of the
    /// same name is replaced.
    #[command(after_help = "Examples:\n  \
        xbhost --data ./xbhost-data plugin add target/plugins/html.wasm\n  \
        xbhost --data ./xbhost-data plugin add target/plugins/course.wasm target/plugins/vertical.wasm\n  \
        xbhost --data ./xbhost-data plugin add ./my-plugins/   # every .wasm file in the directory\n  \
        xbhost --data ./xbhost-data plugin add my_block.wasm --name html   # replace the html block type")]
    Add {
        /// The plugin: a WebAssembly component file (`.wasm`). Several files, or a
        /// directory (its `.wasm` files, by name), add several: all are checked before any
        /// is stored, so a bad one among them stores none.
        #[arg(value_name = "FILE.wasm|DIR", required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Install under this name (the block type courses use) instead of the one the
        /// plugin declares: 1 to 64 of a-z, 0-9, `_` and `-`.
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// List installed plugins: name, version, contract and blake3 hash, one a line.
    #[command(after_help = "Example:\n  xbhost --data ./xbhost-data plugin list")]
    List,
}

impl PluginCommand {
    /// Whether the command may start a new store (`plugin add` does).
    pub fn creates_store(&self) -> bool {
        matches!(self, PluginCommand::Add { .. })
    }
}

pub fn run(host: &Host, cmd: PluginCommand, out: &mut impl Write) -> Result<()> {
    match cmd {
        PluginCommand::Add { files, name } => add(host, &files, name.as_deref(), out),
        PluginCommand::List => list(host, out),
    }
}

/// `plugin add`: checks every component first (compiled once: the compiled cache keeps
/// it for the store that follows), then stores them in order, so a command that fails
/// stores nothing.
fn add(host: &Host, paths: &[PathBuf], name: Option<&str>, out: &mut impl Write) -> Result<()> {
    let files = plugin_files(paths)?;
    if name.is_some() && files.len() > 1 {
        bail!(
            "--name renames one plugin, but {} files were given: add that one alone",
            files.len()
        );
    }
    let not_added = |file: &Path| match files.len() {
        1 => format!("{} was not added", file.display()),
        n => format!(
            "{} was not added, nor any of the other {} files",
            file.display(),
            n - 1
        ),
    };
    let mut checked: Vec<(&Path, Vec<u8>, String)> = Vec::with_capacity(files.len());
    for file in &files {
        let wasm =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let record = host
            .check_plugin(&wasm, name)
            .with_context(|| not_added(file))?;
        if let Some((other, _, _)) = checked.iter().find(|(_, _, n)| *n == record.name) {
            bail!(
                "{} and {} are both plugin {:?}: add one of them (nothing was added)",
                other.display(),
                file.display(),
                record.name
            );
        }
        checked.push((file, wasm, record.name));
    }
    for (file, wasm, _) in checked {
        let record = host
            .add_plugin(&wasm, name)
            .with_context(|| not_added(file))?;
        writeln!(
            out,
            "added plugin {} {} (contract {}, {} bytes, blake3 {})",
            record.name, record.version, record.contract, record.size, record.hash
        )?;
    }
    print_scenarios(host, out)
}

/// Rebuilds the installed plugins' scenario courses (after the whole batch, so containers
/// added beside a block count) and says what was loaded and which scenarios are not shown
/// and why. The plugins stay installed whatever this says.
fn print_scenarios(host: &Host, out: &mut impl Write) -> Result<()> {
    let report = match host.load_scenarios() {
        Ok(report) => report,
        Err(e) => {
            writeln!(
                out,
                "warning: the plugins' scenarios were not loaded: {e:#}"
            )?;
            return Ok(());
        }
    };
    for (key, count) in &report.loaded {
        writeln!(out, "loaded {count} scenarios as course {key}")?;
    }
    for problem in report.scenarios.iter().filter_map(|s| s.problem.as_ref()) {
        writeln!(out, "warning: {problem}")?;
    }
    Ok(())
}

/// The files `paths` name: a file as it is, a directory as the `.wasm` files directly in
/// it, sorted by name (one without any is an error naming it).
fn plugin_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        for entry in
            std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
        {
            let file = entry
                .with_context(|| format!("cannot read {}", path.display()))?
                .path();
            if file.extension().is_some_and(|e| e == "wasm") && file.is_file() {
                found.push(file);
            }
        }
        if found.is_empty() {
            bail!("{} holds no .wasm file", path.display());
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// `plugin list`: one line per installed plugin.
fn list(host: &Host, out: &mut impl Write) -> Result<()> {
    for p in host.plugins()? {
        writeln!(
            out,
            "{}\t{}\tcontract {}\t{}",
            p.name, p.version, p.contract, p.hash
        )?;
    }
    Ok(())
}
