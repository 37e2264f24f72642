//! `xbhost plugin`: installing block plugins and listing them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;

use xbhost::Host;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Check and store a plugin (`.wasm` component built with xbhost-sdk); a plugin of the
    /// same name is replaced.
    #[command(after_help = "Examples:\n  \
        xbhost --data ./xbhost-data plugin add target/plugins/html.wasm\n  \
        xbhost --data ./xbhost-data plugin add my_block.wasm --name html   # replace the html block type")]
    Add {
        /// The plugin: a WebAssembly component file (`.wasm`).
        #[arg(value_name = "FILE.wasm")]
        file: PathBuf,
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
        PluginCommand::Add { file, name } => add(host, &file, name.as_deref(), out),
        PluginCommand::List => list(host, out),
    }
}

/// `plugin add`: checks and stores a component.
fn add(host: &Host, file: &Path, name: Option<&str>, out: &mut impl Write) -> Result<()> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let record = host
        .add_plugin(&wasm, name)
        .with_context(|| format!("{} was not added", file.display()))?;
    writeln!(
        out,
        "added plugin {} {} (contract {}, {} bytes, blake3 {})",
        record.name, record.version, record.contract, record.size, record.hash
    )?;
    Ok(())
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
