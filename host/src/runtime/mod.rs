//! The wasmtime side of the host: one engine and one linker built once, components compiled
//! once per plugin into a pre-linked `InstancePre`, and a fresh store per block call.

pub mod bindings;
mod imports;
pub mod plugin;
pub mod state;

use anyhow::{Context as _, Result};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use bindings::BlockPlugin;
pub use plugin::{LoadedPlugin, PluginMetadata};
pub use state::BlockState;

/// Limits applied to every block instance.
#[derive(Debug, Clone)]
pub struct RuntimeLimits {
    /// Linear memory a single block instance may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// How deep child rendering may nest before the host refuses.
    pub max_render_depth: u32,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        RuntimeLimits {
            max_memory_bytes: 64 << 20,
            max_render_depth: 32,
        }
    }
}

/// The engine and the linker, shared by every plugin and request.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<BlockState>,
    pub(crate) limits: RuntimeLimits,
}

impl Runtime {
    pub fn new(limits: RuntimeLimits) -> Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;
        let mut linker = Linker::new(&engine);
        // WASI is linked because std for wasm32-wasip2 imports it, but every store gets a
        // context that grants nothing: no files, sockets, environment or arguments.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        BlockPlugin::add_to_linker::<BlockState, HasSelf<BlockState>>(&mut linker, |s| s)
            .map_err(anyhow::Error::from)
            .context("linking the xbhost:block imports")?;
        Ok(Runtime {
            engine,
            linker,
            limits,
        })
    }
}
