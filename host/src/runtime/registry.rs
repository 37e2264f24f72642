//! Installed plugins, compiled on first use: the stored record and wasm, checked against
//! their hash, compiled (or read from the compiled cache) into a pre-linked component and
//! kept in memory for every later request. Owns the compiled-plugin memo, and keys the
//! compiled cache with the store's key, so only what this store compiled is loaded from it;
//! the checks of what may be installed (metadata, contract) belong to the host's plugin
//! facade.
//!
//! A plugin is compiled by one thread at a time: a request that needs a plugin another
//! thread is compiling (a change notice's [`PluginRegistry::preload`], or another request)
//! waits for that compilation instead of running a second one beside it, which on a busy
//! host would make both take twice as long.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};

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
    /// The names being compiled now (see the module doc), and the signal that one is done.
    compiling: Mutex<HashSet<String>>,
    compiled: Condvar,
}

/// A thread's turn to compile a plugin: the name stays taken until it is dropped.
struct Turn<'a> {
    registry: &'a PluginRegistry,
    name: String,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut compiling = self
            .registry
            .compiling
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        compiling.remove(&self.name);
        self.registry.compiled.notify_all();
    }
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
            compiling: Mutex::default(),
            compiled: Condvar::new(),
        }
    }

    /// Waits until no other thread compiles `name`, then takes the turn.
    fn turn(&self, name: &str) -> Turn<'_> {
        let mut compiling = self.compiling.lock().unwrap_or_else(|e| e.into_inner());
        while compiling.contains(name) {
            compiling = self
                .compiled
                .wait(compiling)
                .unwrap_or_else(|e| e.into_inner());
        }
        compiling.insert(name.to_string());
        Turn {
            registry: self,
            name: name.to_string(),
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The compiled plugin, compiling (or loading from the compiled cache) on first use.
    pub fn get(&self, name: &str) -> Result<Arc<LoadedPlugin>> {
        if let Some(loaded) = self.loaded.peek(name) {
            return Ok(loaded);
        }
        // Whoever compiled it while this waited left it in the memo (unless it was
        // forgotten meanwhile: then this loads what the store holds now).
        let _turn = self.turn(name);
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

    /// Forgets the compiled plugin `name` and compiles what the store holds now, on a
    /// thread of its own: another host installed a new version, and this host is to run it
    /// on its next request without that request waiting for a whole compilation (one that
    /// comes meanwhile waits for this one, see the module doc). A failure is only logged:
    /// the next request that needs the plugin loads it again and reports why.
    pub fn preload(self: &Arc<Self>, name: &str) {
        self.forget(name);
        let (registry, name) = (self.clone(), name.to_string());
        let spawned = std::thread::Builder::new()
            .name("xbhost-preload".into())
            .spawn(move || {
                if let Err(e) = registry.get(&name) {
                    tracing::debug!(plugin = %name, "compiling the new version failed: {e:#}");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start compiling a changed plugin: {e}");
        }
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
