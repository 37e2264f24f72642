//! The report's view of traffic above single experiments: each layer's ranges, and the
//! holdout as its own group against the learners of the course's experiments, on every
//! goal those experiments have.

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use super::types::{Arm, CONFIDENCE, HoldoutGoal, HoldoutReport, LayerRange, LayerReport};
use crate::assignment::HOLDOUT_TAG;
use crate::events::Event;
use crate::experiment::Goal;
use crate::model::Course;
use crate::stats;
use crate::storage::Storage;

/// Each layer of the course with its experiments' ranges in order, and what is free.
pub(super) fn layers(course: &Course) -> Vec<LayerReport> {
    let mut by_name: Vec<LayerReport> = Vec::new();
    for p in course.partitions() {
        let Some(share) = &p.layer else { continue };
        let range = LayerRange {
            partition_id: p.id,
            partition_name: p.name.clone(),
            start: share.start(),
            end: share.end(),
        };
        match by_name.iter_mut().find(|l| l.name == share.name) {
            Some(layer) => layer.ranges.push(range),
            None => by_name.push(LayerReport {
                name: share.name.clone(),
                ranges: vec![range],
                free_share: 0.0,
            }),
        }
    }
    for layer in &mut by_name {
        layer.ranges.sort_by(|a, b| a.start.total_cmp(&b.start));
        let taken: f64 = layer.ranges.iter().map(|r| r.end - r.start).sum();
        layer.free_share = (1.0 - taken).max(0.0);
    }
    by_name
}

/// The holdout's members and the experiments' learners, and per goal each one's best
/// value so far.
pub(super) struct HoldoutTally<'a> {
    share: f64,
    goals: Vec<&'a Goal>,
    /// Learners recorded as held out (and not counted in an experiment).
    held_out: HashSet<String>,
    /// Those of them seen held out in an event: the holdout's learners. (A record carried
    /// over from a visitor to a user who is not held out has none.)
    seen_held_out: HashSet<String>,
    in_experiments: HashSet<String>,
    /// Per goal: (the holdout's, the experiments' learners') best values.
    best: Vec<(HashMap<String, f64>, HashMap<String, f64>)>,
}

impl<'a> HoldoutTally<'a> {
    /// `None` when the course has no holdout. `in_experiments` are the learners counted
    /// in some experiment's figures; a learner recorded as held out who is among them
    /// (a group stored before the holdout changed) counts there and not here.
    pub(super) fn new(
        storage: &dyn Storage,
        course: &'a Course,
        in_experiments: HashSet<String>,
    ) -> Result<Option<HoldoutTally<'a>>> {
        let Some(holdout) = &course.doc.holdout else {
            return Ok(None);
        };
        let held_out = storage
            .users_with_course_tag(course.key(), HOLDOUT_TAG)?
            .into_iter()
            .map(|(user, _)| user)
            .filter(|user| !in_experiments.contains(user))
            .collect();
        let mut goals: Vec<&Goal> = Vec::new();
        for goal in course
            .partitions()
            .iter()
            .filter(|p| p.is_random())
            .flat_map(|p| &p.goals)
        {
            if !goals.contains(&goal) {
                goals.push(goal);
            }
        }
        Ok(Some(HoldoutTally {
            share: holdout.share,
            best: vec![Default::default(); goals.len()],
            goals,
            held_out,
            seen_held_out: HashSet::new(),
            in_experiments,
        }))
    }

    /// Counts one event of the course: a held-out member's while they were held out, and
    /// an experiment learner's while they were enrolled in one and not held out.
    pub(super) fn count(&mut self, e: &Event) {
        let held_out = e.experiments.holdout && self.held_out.contains(&e.user_id);
        if held_out && !self.seen_held_out.contains(&e.user_id) {
            self.seen_held_out.insert(e.user_id.clone());
        }
        let in_experiments = !e.experiments.holdout
            && !e.experiments.enrolled.is_empty()
            && self.in_experiments.contains(&e.user_id);
        for (goal, (h, x)) in self.goals.iter().zip(&mut self.best) {
            if held_out {
                keep_best(goal, e, h);
            } else if in_experiments {
                keep_best(goal, e, x);
            }
        }
    }

    pub(super) fn report(self) -> HoldoutReport {
        let goals = self
            .goals
            .iter()
            .zip(&self.best)
            .map(|(goal, (h, x))| {
                let holdout = values(&self.seen_held_out, h);
                let experiments = values(&self.in_experiments, x);
                let ha = arm(&self.seen_held_out, h, &holdout);
                let xa = arm(&self.in_experiments, x, &experiments);
                let numeric = goal.value.is_some();
                HoldoutGoal {
                    name: goal.name.clone(),
                    event: goal.event.clone(),
                    kind: if numeric { "numeric" } else { "conversion" },
                    test: (!numeric)
                        .then(|| {
                            stats::independence(&[
                                vec![ha.conversions, ha.learners - ha.conversions],
                                vec![xa.conversions, xa.learners - xa.conversions],
                            ])
                        })
                        .flatten(),
                    mann_whitney_p: numeric
                        .then(|| stats::mann_whitney_u(&experiments, &holdout))
                        .flatten()
                        .map(|r| r.p_value),
                    holdout: ha,
                    in_experiments: xa,
                }
            })
            .collect();
        HoldoutReport {
            share: self.share,
            learners: self.seen_held_out.len() as u64,
            in_experiments: self.in_experiments.len() as u64,
            goals,
        }
    }
}

/// Each learner's best value (0 without a matching event), sorted.
fn values(learners: &HashSet<String>, best: &HashMap<String, f64>) -> Vec<f64> {
    let mut v: Vec<f64> = learners
        .iter()
        .map(|u| best.get(u).copied().unwrap_or(0.0))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

/// One arm's figures: its learners' values, and as conversions the learners with a
/// matching event (as a partition's goal counts them).
fn arm(learners: &HashSet<String>, best: &HashMap<String, f64>, values: &[f64]) -> Arm {
    let n = values.len() as u64;
    let conversions = learners.iter().filter(|u| best.contains_key(*u)).count() as u64;
    let ratio = |x: f64| if n > 0 { x / n as f64 } else { 0.0 };
    Arm {
        learners: n,
        conversions,
        rate: ratio(conversions as f64),
        interval: stats::wilson_interval(conversions, n, CONFIDENCE),
        mean: ratio(values.iter().sum()),
    }
}

/// Counts one event toward a goal: when it meets the goal, the learner's best value
/// (1 for a conversion) is kept.
pub(super) fn keep_best(goal: &Goal, e: &Event, best: &mut HashMap<String, f64>) {
    if !goal.counts(&e.name, &e.data, e.plugin.as_deref(), e.usage_id.as_deref()) {
        return;
    }
    let value = match &goal.value {
        None => 1.0,
        Some(field) => match e.data.get(field).and_then(serde_json::Value::as_f64) {
            Some(v) if v.is_finite() => v,
            _ => return,
        },
    };
    match best.get_mut(e.user_id.as_str()) {
        Some(slot) => *slot = slot.max(value),
        None => {
            best.insert(e.user_id.clone(), value);
        }
    }
}
