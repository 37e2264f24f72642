//! xbhost: a host for XBlock-style course content in which every block is a sandboxed
//! WebAssembly component. See ARCHITECTURE.md for how the modules fit together.

pub mod assignment;
pub mod events;
pub mod grading;
mod host;
pub mod ids;
pub mod markup;
mod memo;
pub mod model;
pub mod native;
pub mod olx;
pub mod request;
pub mod runtime;
pub mod session;
pub mod storage;

pub use host::{AssignmentView, BlockMessage, Host, HostConfig, LoadReport, PartitionChange};
pub use request::{BlockFailure, FailureKind, RenderOutput, RenderRequest, User, View};
