//! The types an import is asked with and answers with: [`ImportOptions`], [`ImportReport`]
//! and [`SplitTestSummary`]. Imports only the leaves `limits` and `learner_report`, so
//! every other file may use it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::learner_report::LearnerCoverage;
use super::limits::ImportLimits;
use crate::model::UserPartition;

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The course key to use instead of `course-v1:{org}+{course}+{run}`.
    pub course_key: Option<String>,
    /// What the import may read and spend.
    pub limits: ImportLimits,
}

/// A split test as imported: its partition and group-to-child mapping.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SplitTestSummary {
    pub usage_id: String,
    pub partition_id: Option<u64>,
    /// Group id to child usage id.
    pub group_id_to_child: BTreeMap<String, String>,
}

/// What an import found and did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub course_key: String,
    pub source: String,
    /// Imported blocks by their OLX type (`unsupported` ones under their own type too).
    pub blocks_by_type: BTreeMap<String, usize>,
    /// Blocks imported as `unsupported`, by their OLX type.
    pub unsupported: BTreeMap<String, usize>,
    pub partitions: Vec<UserPartition>,
    pub split_tests: Vec<SplitTestSummary>,
    /// What learners will see and miss, by block type, with the reasons.
    pub learners: LearnerCoverage,
    /// Course settings written as elements or files (wiki, textbooks, grading policy),
    /// kept in the course block's fields: each with where it came from.
    pub course_settings: Vec<String>,
    pub warnings: Vec<String>,
}
