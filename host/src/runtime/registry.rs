//! Installed plugins, compiled on first use: the stored record and wasm, checked against
//! their hash, compiled (or read from the compiled cache) into a pre-linked component and
//! kept in memory for every later request. Owns the compiled-plugin memo, and keys the
//! compiled cache with the store's key, so only what this store compiled is loaded from it;
//! the checks of what may be installed (metadata, contract) belong to the host's plugin
//! facade.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};

use super::cache::CompiledCache;
use super::engine::Runtime;
use super::plugin::LoadedPlugin;
use crate::memo::Memo;
use crate::storage::{PluginRecord, Storage};

pub struct PluginRegistry {
    runtime: Runtime,
    cache: Option<CompiledCache>,
    storage: Arc<dyn Storage>,
    loaded: Memo<LoadedPlugin>,
}

impl PluginRegistry {
    /// The registry of the plugins in `storage`. The cache, if any, is keyed by the store
    /// (its key is read, or made, when a plugin is first compiled or loaded).
    pub fn new(
        runtime: Runtime,
        cache: Option<CompiledCache>,
        storage: Arc<dyn Storage>,
    ) -> PluginRegistry {
        PluginRegistry {
            runtime,
            cache: cache.map(|cache| cache.keyed_by(storage.clone())),
            storage,
            loaded: Memo::default(),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The compiled plugin, compiling (or loading from the compiled cache) on first use.
    pub fn get(&self, name: &str) -> Result<Arc<LoadedPlugin>> {
        self.loaded.get_or_load(name, || {
            let record = self
                .storage
                .plugin(name)?
                .ok_or_else(|| anyhow!("no plugin named {name:?} is installed"))?;
            let wasm = self
                .storage
                .plugin_wasm(&record.hash)?
                .ok_or_else(|| anyhow!("the stored wasm of plugin {name:?} is missing"))?;
            if blake3::hash(&wasm).to_hex().as_str() != record.hash {
                bail!("the stored wasm of plugin {name:?} is corrupt (its blake3 does not match)");
            }
            Ok(Arc::new(self.runtime.load(
                record,
                &wasm,
                self.cache.as_ref(),
            )?))
        })
    }

    /// Forgets the compiled plugin `name` (another host installed a new version); the
    /// compiled cache still holds what was compiled, keyed by the wasm's hash.
    pub fn forget(&self, name: &str) {
        self.loaded.forget(name);
    }

    /// Forgets every compiled plugin (change notices may have been missed).
    pub fn forget_all(&self) {
        self.loaded.forget_all();
    }

    /// Compiles and links a checked plugin without storing it: whether `install` would take
    /// it. The compiled cache keeps the result, so installing it next compiles nothing.
    pub fn check(&self, record: &PluginRecord, wasm: &[u8]) -> Result<()> {
        self.runtime
            .load(record.clone(), wasm, self.cache.as_ref())
            .map(drop)
    }

    /// Compiles and links a checked plugin, then stores it (record and bytes in one
    /// transaction, flushed) and puts it in force. Nothing is stored if it does not compile.
    pub fn install(&self, record: PluginRecord, wasm: &[u8]) -> Result<()> {
        let loaded = self
            .runtime
            .load(record.clone(), wasm, self.cache.as_ref())?;
        self.storage.put_plugin(&record, wasm)?;
        self.storage.flush()?;
        // Forgotten, not replaced: on a store shared by hosts another host may store a
        // newer version between this store and this line, and its notice may come first;
        // the next use reads whatever the store holds (its compiled form is in the cache
        // this load just filled).
        drop(loaded);
        self.loaded.forget(&record.name);
        Ok(())
    }
}
