//! xbhost: a host for XBlock-style course content in which every block is a sandboxed
//! WebAssembly component. See ARCHITECTURE.md for how the modules fit together.

pub mod assignment;
pub mod bots;
pub mod controls;
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
pub mod sequential;
pub mod server;
pub mod session;
pub mod stats;
pub mod storage;
pub mod traffic;

pub use host::courses::{BlockMessage, LoadReport, PartitionChange};
pub use host::experiments::AssignmentView;
pub use host::learners::CarriedOver;
pub use host::plugins::{SHIPPED_PLUGINS, check_plugin_name};
pub use host::scenarios::{ScenarioReport, ScenarioStatus, scenario_course_key};
pub use host::{Host, HostConfig};
pub use request::{
    BlockFailure, ExperimentStatus, ExperimentView, FailureKind, Masquerade, RenderOutput,
    RenderRequest, User, View,
};
pub use runtime::limits::RENDER_STACK_BYTES;
