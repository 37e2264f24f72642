//! The experiment report as data: the figures per partition, group and goal (serialized
//! as is for `--json`), and the thresholds they are judged by. Imports no sibling.

use serde::Serialize;

use crate::experiment::ExperimentState;
use crate::stats::{ChiSquare, Interval};

/// Below this p-value the group sizes are flagged as a sample ratio mismatch.
pub const SRM_THRESHOLD: f64 = 0.001;

/// Confidence of the intervals the report shows.
pub const CONFIDENCE: f64 = 0.95;

#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    pub course_key: String,
    pub generated_at: String,
    /// How many events were read, from where.
    pub events_read: usize,
    pub events_source: String,
    /// Lines of the log that could not be read as events (torn by a crash, not UTF-8,
    /// too long or deep, not an event): skipped, counted, and said in every form.
    pub damaged_lines: crate::events::DamagedLines,
    pub partitions: Vec<PartitionReport>,
    /// Randomized content (`library_content`): learners per child of each pool.
    pub randomized_content: Vec<SelectionReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    pub id: u64,
    pub name: String,
    pub state: ExperimentState,
    pub active: bool,
    pub groups: Vec<GroupRow>,
    pub learners: u64,
    /// Forced users with a stored group, left out of every figure.
    pub forced_excluded: usize,
    /// Goodness of fit of group sizes to the weights; `None` below two groups or learners.
    pub srm: Option<ChiSquare>,
    pub srm_flagged: bool,
    pub goals: Vec<GoalReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub id: u64,
    pub name: String,
    pub weight: u32,
    pub learners: u64,
    pub expected_share: f64,
    pub observed_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GoalReport {
    pub name: String,
    pub event: String,
    /// `conversion` or `numeric`.
    pub kind: &'static str,
    pub groups: Vec<GoalGroup>,
    /// Conversion goals: chi-square test of independence of conversion and group.
    pub test: Option<ChiSquare>,
    /// Numeric goals: each group against the control group (the first).
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GoalGroup {
    pub group_id: u64,
    pub group_name: String,
    pub learners: u64,
    /// Conversion goals: learners with at least one matching event.
    pub conversions: u64,
    pub rate: f64,
    /// Wilson score interval of the rate.
    pub interval: Option<Interval>,
    /// Numeric goals: the mean per-learner value (0 for learners without an event).
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub group_id: u64,
    pub control_id: u64,
    /// Mann-Whitney U of the group against control, two-sided.
    pub u: f64,
    pub p_value: f64,
}

/// Randomized content: one `library_content` block's learners per child of its pool.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionReport {
    pub usage_id: String,
    pub display_name: Option<String>,
    /// Learners with picks.
    pub learners: u64,
    /// Children each learner gets (the `max_count` of the latest selection event).
    pub max_count: u64,
    pub children: Vec<ChildRow>,
    /// Goodness of fit of the per-child counts to equal shares; `None` below two
    /// children or learners.
    pub uniformity: Option<ChiSquare>,
    pub flagged: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChildRow {
    pub usage_id: String,
    /// Learners whose picks hold it.
    pub learners: u64,
    /// Share of learners who get it, and the share the sampling promises
    /// (`max_count / pool`).
    pub observed_share: f64,
    pub expected_share: f64,
}
