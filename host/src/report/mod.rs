//! The experiment report: per partition, who is in which group against what the weights
//! promise (a sample-ratio-mismatch test), and each goal per group with its test.
//!
//! Members are the learners with a stored group (forced QA users, and those the holdout or
//! a layer range now leaves out, counted apart). A goal event
//! counts for a member when the event itself says they were enrolled in the partition at
//! the time, and not forced: the membership every event carries is what makes the
//! analysis possible without joining anything else.
//!
//! - `types`: the report as data (what `--json` prints) and the thresholds it uses.
//! - `build`: the report from storage and one streaming pass over the event log (damaged
//!   lines skipped and counted).
//! - `selection`: randomized content, learners per child of each pool, tested as a sample
//!   ratio is.
//! - `traffic`: each layer's ranges, and the holdout against the experiments' learners.
//! - `text`: the plain-text form.
//! - `html`: the self-contained HTML page with its SVG charts.

mod build;
mod html;
mod selection;
mod text;
mod traffic;
mod types;

pub use build::{build, build_with};
pub use types::{
    Arm, CONFIDENCE, ChildRow, Comparison, ExperimentReport, GoalGroup, GoalReport, GroupRow,
    HoldoutGoal, HoldoutReport, LayerRange, LayerReport, PartitionReport, SRM_THRESHOLD,
    SelectionReport,
};
