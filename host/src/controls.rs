//! Experiment controls as a course document states them: an experiment's state, its
//! bucketing scope and goals, and the date format of enrollment windows. Plain data with
//! no dependency inside the crate, so the course model and the decision rule both use it.

use std::collections::BTreeMap;
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// Whether an experiment takes new learners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExperimentState {
    /// New learners are assigned a group.
    #[default]
    Enabled,
    /// Learners already assigned keep their group; new learners see the control group
    /// and are not enrolled.
    Paused,
    /// The kill switch: everyone sees the control group and nothing is recorded.
    Off,
}

impl std::str::FromStr for ExperimentState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enabled" => Ok(ExperimentState::Enabled),
            "paused" => Ok(ExperimentState::Paused),
            "off" => Ok(ExperimentState::Off),
            other => Err(format!(
                "unknown experiment state {other:?} (enabled, paused or off)"
            )),
        }
    }
}

/// What the assignment hash is scoped to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bucketing {
    /// The course run's key is hashed: each run draws its own groups (edX's default).
    #[default]
    CourseAware,
    /// Only `org+course` is hashed: a learner gets the same group in every run of the
    /// course. Narrower than edX's fully global flag hash on purpose: two unrelated courses
    /// whose partitions share an id must not draw correlated groups.
    CourseUnaware,
}

impl Bucketing {
    /// As the course document spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucketing::CourseAware => "course-aware",
            Bucketing::CourseUnaware => "course-unaware",
        }
    }
}

/// A goal of an experiment: an event the report counts per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goal {
    /// Shown in the report.
    pub name: String,
    /// The event name, for example `problem_check`.
    pub event: String,
    /// Only events whose `data` has these fields with these values count, for example
    /// `{"correct": true}`.
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub matches: BTreeMap<String, serde_json::Value>,
    /// A numeric goal: the report compares this `data` field's per-learner value between
    /// groups (Mann-Whitney U) instead of counting conversions. A learner's value is the
    /// largest seen; learners without a matching event count as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Only events published by blocks of these types count (for example `["problem"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_types: Vec<String>,
    /// Only events published by these blocks (usage ids) count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<String>,
}

impl Goal {
    /// Whether an event counts for this goal: its name and data match, and a block this
    /// goal names (by type or usage id) published it. A goal that names no source counts
    /// nothing: any block could publish any name.
    pub fn counts(
        &self,
        name: &str,
        data: &serde_json::Value,
        plugin: Option<&str>,
        usage_id: Option<&str>,
    ) -> bool {
        let from_named = plugin.is_some_and(|p| self.block_types.iter().any(|t| t == p))
            || usage_id.is_some_and(|u| self.blocks.iter().any(|b| b == u));
        from_named && name == self.event && self.matches.iter().all(|(k, v)| data.get(k) == Some(v))
    }

    /// Whether it names the blocks whose events count.
    pub fn has_sources(&self) -> bool {
        !self.block_types.is_empty() || !self.blocks.is_empty()
    }
}

/// Parses a date as the course document and the enrollment commands accept it: RFC 3339
/// in UTC (`2026-09-01T00:00:00Z`, fractions allowed) or a plain date (midnight UTC).
pub fn parse_date(text: &str) -> Result<SystemTime> {
    let text = text.trim();
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    humantime::parse_rfc3339(&full).with_context(|| {
        format!("{text:?} is not a date (use 2026-09-01 or 2026-09-01T12:00:00Z, in UTC)")
    })
}

/// Formats a time as the stored, canonical form of a date.
pub fn format_date(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `course-v1:ORG+COURSE` of `course-v1:ORG+COURSE+RUN`: what every run shares.
pub fn course_family(course_key: &str) -> Option<&str> {
    let rest = course_key.strip_prefix("course-v1:")?;
    let parts: Vec<&str> = rest.split('+').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    let run = parts[2];
    Some(&course_key[..course_key.len() - run.len() - 1])
}
