//! The wasmtime side of the host: one engine and one linker built once, components compiled
//! once per plugin (or loaded from the compiled cache) into a pre-linked `InstancePre`, and
//! a fresh store per block call.

pub mod assets;
pub mod bindings;
pub mod cache;
mod engine;
pub mod host_api;
mod imports;
pub mod limits;
pub mod plugin;
pub mod registry;
pub mod sandbox;
pub mod scenarios;
pub mod state;
mod waits;

pub use engine::Runtime;
pub use host_api::{BlockHost, TagScope};
pub use limits::SandboxLimits;
pub use plugin::{LoadedPlugin, PluginMetadata};
pub use registry::PluginRegistry;
pub use sandbox::Pooling;
pub use state::{BlockState, CallLimits, DeadlineReason};
