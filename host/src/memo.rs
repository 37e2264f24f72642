//! A read-through, in-memory map of shared values by name (compiled plugins, parsed
//! courses), safe to use from many threads.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::Result;

pub(crate) struct Memo<V> {
    map: RwLock<HashMap<String, Arc<V>>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            map: RwLock::default(),
        }
    }
}

impl<V> Memo<V> {
    /// The value for `key`, loading (and keeping) it on first use. Two threads may both
    /// load a missing value; the first one stored is the one everybody gets.
    pub(crate) fn get_or_load(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<Arc<V>>,
    ) -> Result<Arc<V>> {
        if let Some(v) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Ok(v.clone());
        }
        let loaded = load()?;
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        Ok(map.entry(key.to_string()).or_insert(loaded).clone())
    }

    /// Replaces the value for `key` (a new version was stored).
    pub(crate) fn replace(&self, key: &str, value: Arc<V>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), value);
    }
}
