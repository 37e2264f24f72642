//! Plugins: checking and installing a plugin (component, metadata, contract, name), the
//! installed list, and loading one now.

use anyhow::{Result, bail};
use tracing::info;

use super::Host;
use crate::ids::check_id;
use crate::runtime::cache::Origin;
use crate::runtime::plugin::{CONTRACT_VERSION, contract_compatible, read_metadata};
use crate::storage::PluginRecord;

impl Host {
    pub fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.storage().plugins()
    }

    /// Checks and stores a plugin. Nothing is stored unless the plugin is a component built
    /// with the SDK for a compatible contract that compiles and links.
    pub fn add_plugin(&self, wasm: &[u8], name: Option<&str>) -> Result<PluginRecord> {
        let metadata = read_metadata(wasm)?;
        if !contract_compatible(&metadata.contract) {
            bail!(
                "plugin {:?} {} was built for contract {}, but this host implements contract {CONTRACT_VERSION} \
                 (a plugin must match the host's MAJOR.MINOR): rebuild it against a matching xbhost-sdk",
                metadata.name,
                metadata.version,
                metadata.contract
            );
        }
        let name = name.unwrap_or(&metadata.name);
        check_id("plugin name", name)?;
        let record = PluginRecord {
            name: name.to_string(),
            version: metadata.version,
            contract: metadata.contract,
            hash: blake3::hash(wasm).to_hex().to_string(),
            size: wasm.len() as u64,
        };
        self.inner.handle.plugins.install(record.clone(), wasm)?;
        info!(plugin = %record.name, version = %record.version, hash = %record.hash, "plugin added");
        Ok(record)
    }

    /// Loads (compiling, or from the compiled cache) a plugin now, and says from where.
    pub fn load_plugin(&self, name: &str) -> Result<Origin> {
        Ok(self.inner.handle.plugin(name)?.origin)
    }
}
