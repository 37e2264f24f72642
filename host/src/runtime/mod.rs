//! The wasmtime side of the host: one engine and one linker built once, components compiled
//! once per plugin (or loaded from the compiled cache) into a pre-linked `InstancePre`, and
//! a fresh store per block call.

pub mod bindings;
pub mod cache;
pub mod host_api;
mod imports;
pub mod plugin;
pub mod registry;
pub mod sandbox;
pub mod state;

use anyhow::{Context as _, Result};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use bindings::BlockPlugin;
pub use host_api::{BlockHost, TagScope};
pub use plugin::{LoadedPlugin, PluginMetadata};
pub use registry::PluginRegistry;
pub use sandbox::{Pooling, SandboxLimits};
pub use state::BlockState;

/// The engine and the linker, shared by every plugin and request.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<BlockState>,
    pub(crate) limits: SandboxLimits,
    /// Whether the pooling instance allocator is in use.
    pub pooling: bool,
    _ticker: sandbox::EpochTicker,
}

impl Runtime {
    /// The engine, for tools that compile or cache components themselves.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn new(limits: SandboxLimits, pooling: Pooling) -> Result<Runtime> {
        let (engine, pooling) = sandbox::engine(&limits, pooling)?;
        let mut linker = Linker::new(&engine);
        // WASI is linked because std for wasm32-wasip2 imports it, but every store gets a
        // context that grants nothing (see `sandbox::wasi_context`).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        BlockPlugin::add_to_linker::<BlockState, HasSelf<BlockState>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)
            .context("linking the xbhost:block imports")?;
        let ticker = sandbox::EpochTicker::start(&engine);
        Ok(Runtime {
            engine,
            linker,
            limits,
            pooling,
            _ticker: ticker,
        })
    }
}
