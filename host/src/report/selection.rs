//! Randomized content in the report: per `library_content` block (any block whose learners
//! the host picked children for), how many learners got each child of its pool, against
//! the equal share the sampling authority promises, with the same goodness-of-fit test as
//! a partition's sample ratio. Read from the host's own selection events (the last `result`
//! per learner), so it needs nothing but the event stream the report already reads.
//!
//! Each learner adds `max_count` picks drawn without replacement; Pearson's statistic on
//! the per-child counts treats them as independent draws, whose variance is larger, so the
//! test is conservative: a flag is a real imbalance.

use std::collections::{BTreeMap, HashMap};

use super::types::{ChildRow, SRM_THRESHOLD, SelectionReport};
use crate::events::Event;
use crate::model::Course;
use crate::stats;

/// The host's events of a learner's picks (see `session::selection`): both carry the
/// picks after the change as `result` (a lowered count only removes).
const ASSIGNED: &str = "edx.librarycontentblock.content.assigned";
const REMOVED: &str = "edx.librarycontentblock.content.removed";

/// Each block's learners and their latest picks, as the events say.
#[derive(Default)]
pub(super) struct SelectionTally {
    picks: HashMap<String, HashMap<String, Vec<String>>>,
    max_count: HashMap<String, u64>,
}

impl SelectionTally {
    pub(super) fn count(&mut self, e: &Event) {
        if !(e.name == ASSIGNED || e.name == REMOVED) || e.plugin.is_some() {
            // Only the host's own selection events (a block cannot send this name).
            return;
        }
        let Some(block) = &e.usage_id else { return };
        let Some(result) = e.data["result"].as_array() else {
            return;
        };
        let result: Vec<String> = result
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        // The count as the latest event says (the block's current max_count).
        if let Some(n) = e.data["max_count"].as_u64() {
            self.max_count.insert(block.clone(), n);
        }
        self.picks
            .entry(block.clone())
            .or_default()
            .insert(e.user_id.clone(), result);
    }

    /// One report per block of the course with picks, in course order; children are the
    /// block's current pool (picks of children no longer in it are not counted).
    pub(super) fn report(self, course: &Course) -> Vec<SelectionReport> {
        let mut out = Vec::new();
        for def in &course.doc.blocks {
            let Some(by_learner) = self.picks.get(&def.usage_id) else {
                continue;
            };
            let pool = &def.children;
            let mut counts: BTreeMap<&str, u64> = pool.iter().map(|c| (c.as_str(), 0)).collect();
            for picks in by_learner.values() {
                for p in picks {
                    if let Some(n) = counts.get_mut(p.as_str()) {
                        *n += 1;
                    }
                }
            }
            let learners = by_learner.len() as u64;
            let max_count = self
                .max_count
                .get(&def.usage_id)
                .copied()
                .unwrap_or(0)
                .min(pool.len() as u64);
            let expected_share = if pool.is_empty() {
                0.0
            } else {
                max_count as f64 / pool.len() as f64
            };
            let children: Vec<ChildRow> = pool
                .iter()
                .map(|c| {
                    let n = counts[c.as_str()];
                    ChildRow {
                        usage_id: c.clone(),
                        learners: n,
                        observed_share: if learners > 0 {
                            n as f64 / learners as f64
                        } else {
                            0.0
                        },
                        expected_share,
                    }
                })
                .collect();
            let observed: Vec<u64> = children.iter().map(|c| c.learners).collect();
            let uniformity = if children.len() >= 2 && learners >= 2 {
                stats::goodness_of_fit(&observed, &vec![1.0; children.len()])
            } else {
                None
            };
            let flagged = uniformity
                .as_ref()
                .is_some_and(|u| u.p_value < SRM_THRESHOLD);
            out.push(SelectionReport {
                usage_id: def.usage_id.clone(),
                display_name: def.fields["display_name"].as_str().map(str::to_string),
                learners,
                max_count,
                children,
                uniformity,
                flagged,
            });
        }
        out
    }
}
