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
    /// The course's layers: which experiment takes which range of each.
    pub layers: Vec<LayerReport>,
    /// The course's holdout against the learners of its experiments.
    pub holdout: Option<HoldoutReport>,
    /// Randomized content (`library_content`): learners per child of each pool.
    pub randomized_content: Vec<SelectionReport>,
}

/// One layer: its experiments' ranges, in order, and the share no experiment takes.
#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub name: String,
    pub ranges: Vec<LayerRange>,
    /// Learners in this share of the layer are in none of its experiments.
    pub free_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerRange {
    pub partition_id: u64,
    pub partition_name: String,
    pub start: f64,
    pub end: f64,
}

/// The holdout, reported as its own group: held-out learners who reached an experiment
/// against the learners enrolled in at least one, on every goal of the course's
/// experiments (the cumulative effect of all of them).
#[derive(Debug, Clone, Serialize)]
pub struct HoldoutReport {
    pub share: f64,
    /// Held-out learners who reached an experiment (and have no counted group).
    pub learners: u64,
    /// Learners counted in at least one experiment's figures.
    pub in_experiments: u64,
    pub goals: Vec<HoldoutGoal>,
}

/// One goal, the holdout against the learners of the experiments.
#[derive(Debug, Clone, Serialize)]
pub struct HoldoutGoal {
    pub name: String,
    pub event: String,
    /// `conversion` or `numeric`.
    pub kind: &'static str,
    pub holdout: Arm,
    pub in_experiments: Arm,
    /// Conversion goals: chi-square test of independence of conversion and arm.
    pub test: Option<ChiSquare>,
    /// Numeric goals: Mann-Whitney U of the experiments' learners against the holdout.
    pub mann_whitney_p: Option<f64>,
}

/// One side of a holdout comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Arm {
    pub learners: u64,
    pub conversions: u64,
    pub rate: f64,
    pub interval: Option<Interval>,
    /// The mean per-learner value (numeric goals; 0 for learners without an event).
    pub mean: f64,
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
    /// Learners with a stored group who are in the course's holdout now: they see
    /// control, and are left out of every figure.
    pub held_out_excluded: usize,
    /// Learners with a stored group outside the partition's layer range now (it was
    /// shrunk or moved): they see control, and are left out of every figure.
    pub outside_range_excluded: usize,
    /// The partition's share of its layer, if it has one.
    pub layer: Option<crate::traffic::LayerShare>,
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
    /// Conversion goals: each group against control by the mSPRT, an always-valid
    /// p-value and confidence sequence on the difference of rates: unlike the
    /// fixed-horizon figures, safe to read at every look.
    pub sequential: Vec<SequentialComparison>,
}

/// A group against control, always valid (see [`crate::sequential`]).
#[derive(Debug, Clone, Serialize)]
pub struct SequentialComparison {
    pub group_id: u64,
    pub control_id: u64,
    /// `msprt`: the method, so a reader knows these figures are not fixed-horizon ones.
    pub method: &'static str,
    #[serde(flatten)]
    pub result: crate::sequential::Sequential,
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
