//! xbhost: a host for XBlock-style course content in which every block is a sandboxed
//! WebAssembly component. See ARCHITECTURE.md for how the modules fit together.

pub mod assignment;
pub mod bots;
pub mod errors;
pub mod events;
pub mod experiment;
pub mod grading;
mod host;
pub mod ids;
pub mod markup;
mod memo;
pub mod model;
pub mod native;
pub mod olx;
pub mod report;
pub mod request;
pub mod runtime;
pub mod server;
pub mod session;
pub mod stats;
pub mod storage;

pub use host::{
    AssignmentView, BlockMessage, CarriedOver, Host, HostConfig, LoadReport, PartitionChange,
};
pub use request::{
    BlockFailure, ExperimentStatus, ExperimentView, FailureKind, Masquerade, RenderOutput,
    RenderRequest, User, View,
};
