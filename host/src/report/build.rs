//! Building the report: members and their groups from storage, then one pass over the
//! event log (the store's events table when the store keeps them), line by line, tallying each member's best value per goal (memory grows with
//! the learners and goals, never with the log), and the figures and tests computed from
//! them. Damaged lines of the log are skipped and counted, and the report says so.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;

use super::selection::SelectionTally;
use super::traffic::{HoldoutTally, keep_best, layers};
use super::types::{
    CONFIDENCE, Comparison, ExperimentReport, GoalGroup, GoalReport, GroupRow, PartitionReport,
    SRM_THRESHOLD, SequentialComparison,
};
use crate::assignment::partition_tag_key;
use crate::events::reader::{ReadLimits, parse_line, read_log};
use crate::events::{DamageKind, DamagedLines, Event};
use crate::experiment::{self, Decision, Goal, NotEnrolled};
use crate::model::{Course, UserPartition};
use crate::stats;
use crate::storage::Storage;

/// Builds the report of a course from storage and the event log at `events` (or the
/// store's own events, when it keeps them: `events` is then unused), reading
/// lines under the limits of the environment ([`ReadLimits::from_env`]).
pub fn build(storage: &dyn Storage, course: &Course, events: &Path) -> Result<ExperimentReport> {
    build_with(storage, course, events, &ReadLimits::from_env()?)
}

/// [`build`] under these line limits.
pub fn build_with(
    storage: &dyn Storage,
    course: &Course,
    events: &Path,
    limits: &ReadLimits,
) -> Result<ExperimentReport> {
    let mut tallies = course
        .partitions()
        .iter()
        .filter(|p| p.is_random())
        .map(|p| Tally::new(storage, course, p))
        .collect::<Result<Vec<_>>>()?;
    let mut holdout = HoldoutTally::new(
        storage,
        course,
        tallies
            .iter()
            .flat_map(|t| t.members.keys().cloned())
            .collect(),
    )?;
    let mut selections = SelectionTally::default();
    let mut events_read = 0;
    let mut count = |event: Event| {
        if event.course_key != course.key() {
            return;
        }
        events_read += 1;
        for tally in &mut tallies {
            tally.count(&event);
        }
        if let Some(h) = &mut holdout {
            h.count(&event);
        }
        selections.count(&event);
    };
    let (damaged_lines, events_source) = if storage.keeps_events() {
        (
            read_stored(storage, course.key(), limits, &mut count)?,
            STORED_EVENTS.to_string(),
        )
    } else {
        let damaged = read_log(events, limits, count)?;
        (damaged, events.display().to_string())
    };
    if let Some(summary) = damaged_lines.summary() {
        tracing::warn!(events = %events_source, course = course.key(), "{summary}");
    }
    Ok(ExperimentReport {
        course_key: course.key().to_string(),
        generated_at: crate::events::now(),
        events_read,
        events_source,
        damaged_lines,
        partitions: tallies.into_iter().map(Tally::report).collect(),
        layers: layers(course),
        holdout: holdout.map(HoldoutTally::report),
        randomized_content: selections.report(course),
    })
}

/// What the report names as its source when the store keeps the events.
const STORED_EVENTS: &str = "the events table";

/// Reads the course's events from a store that keeps them ([`Storage::keeps_events`]),
/// each stored line parsed and checked as a line of the log is (a stored line is counted
/// by its place among the course's events), handing each event to `each`.
fn read_stored(
    storage: &dyn Storage,
    course_key: &str,
    limits: &ReadLimits,
    each: &mut dyn FnMut(Event),
) -> Result<DamagedLines> {
    let mut damaged = DamagedLines::new(limits);
    let mut line = 0;
    storage.course_events(course_key, None, &mut |stored| {
        line += 1;
        let parsed = if stored.line.len() > limits.max_line_bytes {
            Err(DamageKind::TooLong)
        } else {
            parse_line::<Event>(stored.line.as_bytes(), limits.max_depth)
        };
        match parsed {
            Ok(event) => each(event),
            Err(kind) => damaged.add(line, kind),
        }
        Ok(())
    })?;
    Ok(damaged)
}

/// One partition's members and, per goal, each member's best value so far.
struct Tally<'a> {
    p: &'a UserPartition,
    members: HashMap<String, u64>,
    forced_excluded: usize,
    held_out_excluded: usize,
    outside_range_excluded: usize,
    /// Per goal (in the partition's order): member to the largest value of the goal's
    /// field among their counted events (1 for a conversion).
    best: Vec<HashMap<String, f64>>,
}

impl<'a> Tally<'a> {
    fn new(storage: &dyn Storage, course: &Course, p: &'a UserPartition) -> Result<Tally<'a>> {
        let course_key = course.key();
        let holdout = course.doc.holdout.as_ref();
        let partitions = course.partitions();
        let mut members: HashMap<String, u64> = HashMap::new();
        let (mut forced_excluded, mut held_out_excluded, mut outside_range_excluded) = (0, 0, 0);
        for (user, value) in storage.users_with_course_tag(course_key, &partition_tag_key(p.id))? {
            let Some(group) = value.parse::<u64>().ok().filter(|g| p.group(*g).is_some()) else {
                continue;
            };
            // As the decision rule has it now: such learners see control. A switched-off
            // experiment keeps its members, so its results stay readable.
            let decision =
                experiment::decide_stored(course_key, holdout, partitions, p, &user, &value);
            match decision {
                Decision::Forced(_) => forced_excluded += 1,
                Decision::Control(_, NotEnrolled::Holdout) => held_out_excluded += 1,
                Decision::Control(_, NotEnrolled::OutsideLayerRange) => outside_range_excluded += 1,
                _ => {
                    members.insert(user, group);
                }
            }
        }
        Ok(Tally {
            p,
            members,
            forced_excluded,
            held_out_excluded,
            outside_range_excluded,
            best: vec![HashMap::new(); p.goals.len()],
        })
    }

    /// Counts one event of the course: for a member who, by the event's own membership,
    /// was enrolled in the partition and not forced, toward each goal it meets.
    fn count(&mut self, e: &Event) {
        let p = self.p;
        let counts = self.members.contains_key(&e.user_id)
            && e.experiments.enrolled.iter().any(|n| n == &p.name)
            && !e.experiments.forced.contains_key(&p.name);
        if !counts {
            return;
        }
        for (goal, best) in p.goals.iter().zip(&mut self.best) {
            keep_best(goal, e, best);
        }
    }

    fn report(self) -> PartitionReport {
        let Tally {
            p,
            members,
            forced_excluded,
            held_out_excluded,
            outside_range_excluded,
            best,
        } = self;
        let count = |g: u64| members.values().filter(|&&m| m == g).count() as u64;
        let total_weight: f64 = p.groups.iter().map(|g| f64::from(g.weight)).sum();
        let learners = members.len() as u64;
        let groups: Vec<GroupRow> = p
            .groups
            .iter()
            .map(|g| {
                let n = count(g.id);
                GroupRow {
                    id: g.id,
                    name: g.name.clone(),
                    weight: g.weight,
                    learners: n,
                    expected_share: if total_weight > 0.0 {
                        f64::from(g.weight) / total_weight
                    } else {
                        0.0
                    },
                    observed_share: if learners > 0 {
                        n as f64 / learners as f64
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        let observed: Vec<u64> = groups.iter().map(|g| g.learners).collect();
        let shares: Vec<f64> = groups.iter().map(|g| g.expected_share).collect();
        let srm = stats::goodness_of_fit(&observed, &shares);
        let srm_flagged = srm.as_ref().is_some_and(|s| s.p_value < SRM_THRESHOLD);
        let goals = p
            .goals
            .iter()
            .zip(&best)
            .map(|(goal, best)| goal_report(p, goal, &members, best))
            .collect();
        PartitionReport {
            id: p.id,
            name: p.name.clone(),
            state: p.state,
            active: p.active,
            groups,
            learners,
            forced_excluded,
            held_out_excluded,
            outside_range_excluded,
            layer: p.layer.clone(),
            srm,
            srm_flagged,
            goals,
        }
    }
}

fn goal_report(
    p: &UserPartition,
    goal: &Goal,
    members: &HashMap<String, u64>,
    best: &HashMap<String, f64>,
) -> GoalReport {
    let values_of = |group: u64| -> Vec<f64> {
        let mut v: Vec<f64> = members
            .iter()
            .filter(|(_, g)| **g == group)
            .map(|(u, _)| best.get(u.as_str()).copied().unwrap_or(0.0))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let groups: Vec<GoalGroup> = p
        .groups
        .iter()
        .map(|g| {
            let values = values_of(g.id);
            let learners = values.len() as u64;
            let conversions = members
                .iter()
                .filter(|(u, m)| **m == g.id && best.contains_key(u.as_str()))
                .count() as u64;
            GoalGroup {
                group_id: g.id,
                group_name: g.name.clone(),
                learners,
                conversions,
                rate: if learners > 0 {
                    conversions as f64 / learners as f64
                } else {
                    0.0
                },
                interval: stats::wilson_interval(conversions, learners, CONFIDENCE),
                mean: if learners > 0 {
                    values.iter().sum::<f64>() / learners as f64
                } else {
                    0.0
                },
            }
        })
        .collect();
    match &goal.value {
        None => {
            let table: Vec<Vec<u64>> = groups
                .iter()
                .map(|g| vec![g.conversions, g.learners - g.conversions])
                .collect();
            let control = &groups[0];
            let sequential = groups[1..]
                .iter()
                .filter_map(|g| {
                    let result = crate::sequential::msprt(
                        (g.conversions, g.learners),
                        (control.conversions, control.learners),
                        1.0 - CONFIDENCE,
                    )?;
                    Some(SequentialComparison {
                        group_id: g.group_id,
                        control_id: control.group_id,
                        method: "msprt",
                        result,
                    })
                })
                .collect();
            GoalReport {
                name: goal.name.clone(),
                event: goal.event.clone(),
                kind: "conversion",
                test: stats::independence(&table),
                groups,
                comparisons: Vec::new(),
                sequential,
            }
        }
        Some(_) => {
            let control = p.groups[0].id;
            let control_values = values_of(control);
            let comparisons = p.groups[1..]
                .iter()
                .filter_map(|g| {
                    let r = stats::mann_whitney_u(&values_of(g.id), &control_values)?;
                    Some(Comparison {
                        group_id: g.id,
                        control_id: control,
                        u: r.u,
                        p_value: r.p_value,
                    })
                })
                .collect();
            GoalReport {
                name: goal.name.clone(),
                event: goal.event.clone(),
                kind: "numeric",
                test: None,
                groups,
                comparisons,
                sequential: Vec::new(),
            }
        }
    }
}
