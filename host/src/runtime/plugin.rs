//! Plugins: reading what a `.wasm` file says about itself, checking it against the contract,
//! and compiling it once into a pre-linked instance.

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use wasmparser::{Parser, Payload};
use wasmtime::component::Component;

use super::assets::{ClientAssets, read_assets};
use super::bindings::BlockPluginPre;
use super::cache::{CompiledCache, Origin};
use super::engine::Runtime;
use super::scenarios::{Scenario, read_scenarios};
use super::state::BlockState;
use crate::storage::PluginRecord;

/// The contract version this host implements (the `xbhost:block` WIT package version).
pub const CONTRACT_VERSION: &str = xbhost_sdk::CONTRACT_VERSION;

/// What the SDK records in the plugin's `xbhost-plugin` custom section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PluginMetadata {
    pub name: String,
    pub version: String,
    pub contract: String,
}

/// A compiled plugin, ready to instantiate.
pub struct LoadedPlugin {
    pub record: PluginRecord,
    /// Whether it was compiled now or loaded from the compiled cache.
    pub origin: Origin,
    /// The client-side files it ships (contract 0.1.2), served to its blocks' frames.
    pub assets: std::sync::Arc<ClientAssets>,
    /// The example scenarios it ships (its `xbhost-scenarios` section), checked.
    pub scenarios: std::sync::Arc<Vec<Scenario>>,
    pub(crate) pre: BlockPluginPre<BlockState>,
}

/// Reads the plugin metadata of a component, refusing anything that is not one.
pub fn read_metadata(wasm: &[u8]) -> Result<PluginMetadata> {
    if !Parser::is_component(wasm) {
        if Parser::is_core_wasm(wasm) {
            bail!(
                "it is a core WebAssembly module, not a component: build the plugin with \
                 `cargo build --target wasm32-wasip2` against xbhost-sdk"
            );
        }
        bail!("it is not a WebAssembly component (its first bytes are not a wasm header)");
    }
    let mut metadata = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.context("it is truncated or malformed")?;
        if let Payload::CustomSection(section) = payload
            && section.name() == xbhost_sdk::METADATA_SECTION
        {
            let parsed: PluginMetadata = serde_json::from_slice(section.data())
                .context("its xbhost-plugin section does not parse")?;
            metadata = Some(parsed);
        }
    }
    metadata.context(
        "it has no xbhost-plugin section: it was not built with xbhost-sdk's export_block!",
    )
}

/// Appends a custom section (id 0: LEB128 size, LEB128 name length, name, data) to a
/// component; custom sections may stand anywhere in one.
pub fn append_custom_section(wasm: &mut Vec<u8>, name: &str, data: &[u8]) {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::with_capacity(name.len() + data.len() + 5);
    leb128(name.len(), &mut body);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(data);
    wasm.push(0);
    leb128(body.len(), wasm);
    wasm.extend_from_slice(&body);
}

/// Whether a plugin built against `plugin_contract` can run on this host: the same
/// MAJOR.MINOR contract version (patch releases only add what a plugin may ignore).
pub fn contract_compatible(plugin_contract: &str) -> bool {
    fn major_minor(v: &str) -> Option<(&str, &str)> {
        let mut parts = v.split('.');
        Some((parts.next()?, parts.next()?))
    }
    major_minor(plugin_contract).is_some()
        && major_minor(plugin_contract) == major_minor(CONTRACT_VERSION)
}

impl Runtime {
    /// Compiles (or loads from the compiled cache) and pre-links a plugin. Fails if the
    /// component does not fit the contract.
    pub fn load(
        &self,
        record: PluginRecord,
        wasm: &[u8],
        cache: Option<&CompiledCache>,
    ) -> Result<LoadedPlugin> {
        let cached = cache.and_then(|c| c.load(&self.engine, &record.name, &record.hash));
        let origin = if cached.is_some() {
            Origin::Cache
        } else {
            Origin::Compiled
        };
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, wasm)
                    .map_err(anyhow::Error::from)
                    .with_context(|| format!("plugin {:?} does not compile", record.name))?;
                if let Some(cache) = cache
                    && let Err(e) = cache.store(&record.hash, &component)
                {
                    tracing::warn!(plugin = %record.name, error = %format!("{e:#}"), "could not write the compiled cache");
                }
                component
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "plugin {:?} imports what the host does not offer",
                    record.name
                )
            })?;
        let pre = BlockPluginPre::new(pre)
            .map_err(anyhow::Error::from)
            .with_context(|| {
                format!(
                    "plugin {:?} does not export the block interface",
                    record.name
                )
            })?;
        let assets = read_assets(wasm)
            .with_context(|| format!("plugin {:?}'s client files", record.name))?;
        let scenarios = read_scenarios(wasm)
            .with_context(|| format!("plugin {:?}'s scenarios", record.name))?;
        Ok(LoadedPlugin {
            record,
            origin,
            assets: std::sync::Arc::new(assets),
            scenarios: std::sync::Arc::new(scenarios),
            pre,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_is_same_major_minor() {
        assert!(contract_compatible(CONTRACT_VERSION));
        assert!(contract_compatible("0.1.7"));
        assert!(!contract_compatible("0.2.0"));
        assert!(!contract_compatible("1.1.0"));
        assert!(!contract_compatible("garbage"));
    }

    #[test]
    fn non_components_are_refused_with_a_reason() {
        let core = b"\0asm\x01\0\0\0";
        assert!(
            read_metadata(core)
                .unwrap_err()
                .to_string()
                .contains("core WebAssembly module")
        );
        assert!(
            read_metadata(b"hello world")
                .unwrap_err()
                .to_string()
                .contains("not a WebAssembly component")
        );
        let truncated_component = b"\0asm\x0d\0\x01\0\x01";
        assert!(read_metadata(truncated_component).is_err());
    }
}
