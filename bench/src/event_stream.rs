//! Realistic event logs for the report rows: the events a learner's visits to the demo
//! unit (with its problem) put in the log, in the shapes the host writes them (compare
//! `events.jsonl` after `xbhost render` and `xbhost handle ... submit`): on a learner's
//! first visit the two assignment events, then on every visit one exposure per split test
//! that showed a condition, and a `problem_check` from the problem. Each event carries the
//! learner's membership and course tags as the host decorates it, with groups drawn by the
//! sampling authority, so the learners' stored rows ([`EventStream::members`]) agree with
//! their events.

use std::collections::{BTreeMap, VecDeque};

use serde_json::json;
use xbhost::events::{ASSIGNED_EVENT, CHILD_RENDER_EVENT, Event, Experiments, LoggedEvent};
use xbhost::model::Course;

/// One learner: id, and the group in each of the demo course's two partitions.
struct Learner {
    id: String,
    groups: [u64; 2],
    visits: u64,
}

/// An endless stream of visits by a fixed set of learners, in turn.
pub struct EventStream {
    course_key: String,
    partition_names: [String; 2],
    group_names: [BTreeMap<u64, String>; 2],
    learners: Vec<Learner>,
    next: usize,
    pending: VecDeque<LoggedEvent>,
}

impl EventStream {
    /// Visits by `learners` learners named `{prefix}{i}` of `course` (the demo course's
    /// shape: partitions 0 and 1, the split tests and the problem `check_sum`).
    pub fn new(course: &Course, prefix: &str, learners: usize) -> EventStream {
        let partition = |id: u64| course.partition(id).expect("the demo course's partitions");
        let parts = [partition(0), partition(1)];
        let learners = (0..learners)
            .map(|i| {
                let id = format!("{prefix}{i:06}");
                let group = |p: usize| {
                    xbhost::assignment::assign(course.key(), parts[p], &id)
                        .expect("a group")
                        .id
                };
                Learner {
                    groups: [group(0), group(1)],
                    id,
                    visits: 0,
                }
            })
            .collect();
        EventStream {
            course_key: course.key().to_string(),
            partition_names: parts.map(|p| p.name.clone()),
            group_names: parts.map(|p| p.groups.iter().map(|g| (g.id, g.name.clone())).collect()),
            learners,
            next: 0,
            pending: VecDeque::new(),
        }
    }

    /// Every learner's stored group: (user, partition id, group id).
    pub fn members(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.learners.iter().flat_map(|l| {
            [
                (l.id.as_str(), 0, l.groups[0]),
                (l.id.as_str(), 1, l.groups[1]),
            ]
        })
    }

    /// The next `n` events.
    pub fn take(&mut self, n: usize) -> Vec<LoggedEvent> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.pending.pop_front() {
                Some(e) => out.push(e),
                None => self.visit(),
            }
        }
        out
    }

    /// The next learner's next visit, into `pending`.
    fn visit(&mut self) {
        let i = self.next;
        self.next = (self.next + 1) % self.learners.len();
        let time = xbhost::events::now();
        let l = &mut self.learners[i];
        l.visits += 1;
        let (id, groups, visits) = (l.id.clone(), l.groups, l.visits);
        let name = |p: usize| self.group_names[p][&groups[p]].clone();
        let experiments = Experiments {
            enrolled: self.partition_names.to_vec(),
            assigned: (0..2)
                .map(|p| (self.partition_names[p].clone(), name(p)))
                .collect(),
            forced: BTreeMap::new(),
            holdout: false,
        };
        let course_tags: BTreeMap<String, String> = (0..2)
            .map(|p| {
                (
                    xbhost::assignment::partition_tag_key(p as u64),
                    groups[p].to_string(),
                )
            })
            .collect();
        let event = |name: &str, usage: Option<&str>, plugin: Option<&str>, data| Event {
            name: name.to_string(),
            time: time.clone(),
            course_key: self.course_key.clone(),
            user_id: id.clone(),
            username: id.clone(),
            usage_id: usage.map(str::to_string),
            plugin: plugin.map(str::to_string),
            data,
            experiments: experiments.clone(),
            course_tags: course_tags.clone(),
        };
        let mut events = Vec::new();
        if visits == 1 {
            for (p, group) in groups.iter().enumerate() {
                events.push(event(
                    ASSIGNED_EVENT,
                    None,
                    None,
                    json!({"group_id": group, "group_name": name(p),
                           "partition_id": p, "partition_name": self.partition_names[p]}),
                ));
            }
        }
        let style = if groups[0] == 0 { "text" } else { "video" };
        for split in ["a", "b"] {
            events.push(event(
                CHILD_RENDER_EVENT,
                Some(&format!("split_explanation_{split}")),
                None,
                json!({"child_id": format!("explanation_{split}_{style}"),
                       "group_id": groups[0], "user_partition_id": 0}),
            ));
        }
        // "No hints" (group 0) shows no condition, so no exposure.
        if groups[1] != 0 {
            let child = if groups[1] == 1 {
                "hints_plain"
            } else {
                "hints_examples"
            };
            events.push(event(
                CHILD_RENDER_EVENT,
                Some("split_hints"),
                None,
                json!({"child_id": child, "group_id": groups[1], "user_partition_id": 1}),
            ));
        }
        // The problem's answer: right on some visits, more often with hints.
        let correct = (i as u64 + visits * 7 + groups[1]).is_multiple_of(4);
        let score = if correct { 1.0 } else { 0.0 };
        events.push(event(
            "problem_check",
            Some("check_sum"),
            Some("problem"),
            json!({"answers": [if correct { 1 } else { 0 }], "attempts": visits,
                   "correct": correct, "max_score": 1.0, "score": score}),
        ));
        self.pending
            .extend(events.into_iter().map(LoggedEvent::new));
    }
}
