//! The narrow handle a session holds on the host: storage, the event sink, installed
//! plugins and the limits blocks run under, and the trusted native blocks. Nothing else of
//! the host (courses cache, bot list, configuration) is reachable from a request.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use xbhost_sdk::native::NativeBlock;

use crate::events::EventSink;
use crate::model::Course;
use crate::runtime::{LoadedPlugin, PluginRegistry, SandboxLimits};
use crate::storage::Storage;

#[derive(Clone)]
pub struct HostHandle {
    pub storage: Arc<dyn Storage>,
    pub sink: Arc<dyn EventSink>,
    pub plugins: Arc<PluginRegistry>,
    /// Block types run natively instead of in the sandbox (trusted code only).
    pub native: Arc<BTreeMap<String, NativeBlock>>,
}

impl HostHandle {
    pub fn limits(&self) -> &SandboxLimits {
        &self.plugins.runtime().limits
    }

    pub fn plugin(&self, name: &str) -> Result<Arc<LoadedPlugin>> {
        self.plugins.get(name)
    }

    /// Loads every plugin the course uses (compiled, or from the compiled cache) before a
    /// request that calls blocks, so compilation is never charged to its deadline; a plugin
    /// that fails to load is reported when a block of its type is called.
    pub fn preload_plugins(&self, course: &Course) {
        for block_type in course.block_types() {
            let _ = self.plugins.get(block_type);
        }
    }
}
