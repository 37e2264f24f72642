//! A read-through, in-memory map of shared values by name (compiled plugins, parsed
//! courses), safe to use from many threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::Result;

pub(crate) struct Memo<V> {
    map: RwLock<HashMap<String, Arc<V>>>,
    /// Bumped by every forget: a value loaded before a forget is not kept (it may be the
    /// version the forget was about).
    forgets: AtomicU64,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            map: RwLock::default(),
            forgets: AtomicU64::new(0),
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
        let forgets = self.forgets.load(Ordering::Acquire);
        let loaded = load()?;
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if self.forgets.load(Ordering::Acquire) != forgets {
            // Forgotten while loading: answer with it, keep nothing.
            return Ok(loaded);
        }
        Ok(map.entry(key.to_string()).or_insert(loaded).clone())
    }

    /// The value for `key` if it is held now (nothing is loaded).
    pub(crate) fn peek(&self, key: &str) -> Option<Arc<V>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Forgets the value for `key` (it changed in the store): the next use loads it.
    pub(crate) fn forget(&self, key: &str) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.forgets.fetch_add(1, Ordering::AcqRel);
        map.remove(key);
    }

    /// Forgets every value.
    pub(crate) fn forget_all(&self) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.forgets.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }
}
