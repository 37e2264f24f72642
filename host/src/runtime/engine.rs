//! The engine and the linker, built once per host: wasmtime's configuration (see
//! `sandbox::engine`), WASI p2 linked with a context that grants nothing, the
//! `xbhost:block` imports, and the epoch ticker that interrupts long calls.

use anyhow::{Context as _, Result};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::BlockPlugin;
use super::limits::SandboxLimits;
use super::sandbox::{self, Pooling};
use super::state::BlockState;

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
        super::waits::bound_clock_waits(&mut linker)?;
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
