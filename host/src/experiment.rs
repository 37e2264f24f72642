//! Experiment controls of a user partition, and the one rule that decides what a learner
//! sees in it.
//!
//! A partition (an Open edX group configuration) is also an experiment with a state
//! (enabled, paused, off), forced assignments for QA, an optional enrollment window and a
//! bucketing scope, as edX's `ExperimentWaffleFlag` has them. [`decide`] is pure: the render
//! session gathers the facts (stored group, enrollment date, bot, masquerade) and stores what
//! the decision says to store; `finish` decorates events with the same decision, so what a
//! learner sees and what the analytics say about them cannot drift apart.

use std::time::SystemTime;

use serde::Serialize;

use crate::assignment;
pub use crate::controls::{
    Bucketing, ExperimentState, Goal, course_family, format_date, parse_date,
};
use crate::model::UserPartition;
use crate::traffic::{self, Holdout};

/// The scope string hashed with the partition id and identifier.
pub fn bucketing_scope<'k>(course_key: &'k str, partition: &UserPartition) -> &'k str {
    match partition.bucketing {
        Bucketing::CourseAware => course_key,
        // Validated when the course was loaded; the run key stands in if it was not.
        Bucketing::CourseUnaware => course_family(course_key).unwrap_or(course_key),
    }
}

/// Why a learner sees the control group without being enrolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotEnrolled {
    Off,
    Paused,
    OutsideEnrollmentWindow,
    Bot,
    /// In the course's holdout: control in every experiment.
    Holdout,
    /// Outside the experiment's range of its layer (in another experiment of the layer,
    /// or in none).
    OutsideLayerRange,
}

/// What a learner sees in a partition, and what is recorded about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No group: the partition is inactive, has no groups, or (non-random schemes such
    /// as cohorts) the learner was never put in one.
    NoGroup,
    /// A member through their stored group (enrolled).
    Stored(u64),
    /// Forced into a group for QA: enrolled, flagged, left out of analysis, not stored.
    Forced(u64),
    /// Shown a group a staff member chose to view as: nothing is recorded.
    ViewedAs(u64),
    /// Shown the control group (the partition's first), not enrolled.
    Control(u64, NotEnrolled),
    /// A new member: the sampling authority's group, to be stored (replacing `replacing`,
    /// a stored group that was deleted, if any).
    Assign {
        group: u64,
        replacing: Option<String>,
    },
}

impl Decision {
    /// The group the learner sees.
    pub fn group(&self) -> Option<u64> {
        match *self {
            Decision::NoGroup => None,
            Decision::Stored(g)
            | Decision::Forced(g)
            | Decision::ViewedAs(g)
            | Decision::Control(g, _)
            | Decision::Assign { group: g, .. } => Some(g),
        }
    }

    /// Whether the learner counts as enrolled in the experiment (once stored, for `Assign`).
    pub fn enrolled(&self) -> bool {
        matches!(
            self,
            Decision::Stored(_) | Decision::Forced(_) | Decision::Assign { .. }
        )
    }
}

/// The facts about a learner that a decision needs.
pub struct Facts<'a> {
    pub course_key: &'a str,
    /// Every partition of the course: a learner forced into one experiment of a layer is
    /// outside the others' ranges, and one forced anywhere is never held out.
    pub partitions: &'a [UserPartition],
    /// The identifier hashed: the user id, or the session id of an anonymous visitor.
    pub identifier: &'a str,
    /// The learner's stored partition tag, as stored (it may name a deleted group).
    pub stored: Option<&'a str>,
    /// The learner's course enrollment date, or the time of the request when they have
    /// none (as edX does: a visitor who enrolled now would see the same). Only read when
    /// the partition has an enrollment window.
    pub enrolled_at: SystemTime,
    pub is_bot: bool,
    /// The group a masquerading staff member chose for this partition.
    pub viewed_as: Option<u64>,
    /// The course's holdout, if it has one.
    pub holdout: Option<&'a Holdout>,
}

/// The group a partition forces `identifier` into, where forcing applies (an active
/// random experiment that is not switched off).
fn forced_group(partition: &UserPartition, identifier: &str) -> Option<u64> {
    let applies = partition.active
        && partition.is_random()
        && !partition.groups.is_empty()
        && partition.state != ExperimentState::Off;
    applies
        .then(|| partition.forced.get(identifier).copied())
        .flatten()
}

/// Whether `identifier` is forced into a group of some experiment of the course: a QA
/// account, which the holdout leaves alone so that it never muddles the holdout's figures.
pub fn forced_anywhere(partitions: &[UserPartition], identifier: &str) -> bool {
    partitions
        .iter()
        .any(|p| forced_group(p, identifier).is_some())
}

/// Whether `identifier` is in the course's holdout: drawn into it (a pure function of the
/// course, the identifier and the share, so alike in every experiment) and not forced
/// into any experiment's group.
pub fn held_out(
    holdout: Option<&Holdout>,
    partitions: &[UserPartition],
    course_key: &str,
    identifier: &str,
) -> bool {
    holdout.is_some_and(|h| {
        traffic::share_contains(
            0.0,
            h.share,
            assignment::holdout_draw(course_key, identifier),
        )
    }) && !forced_anywhere(partitions, identifier)
}

/// Whether `identifier` falls in the partition's range of its layer (always, for a
/// partition in no layer), and no other experiment of the layer forces them into a group.
pub fn in_layer_range(
    course_key: &str,
    partitions: &[UserPartition],
    partition: &UserPartition,
    identifier: &str,
) -> bool {
    partition.layer.as_ref().is_none_or(|share| {
        let scope = bucketing_scope(course_key, partition);
        let draw = assignment::layer_draw(scope, &share.name, identifier);
        let forced_elsewhere = partitions.iter().any(|other| {
            other.id != partition.id
                && other.layer.as_ref().is_some_and(|l| l.name == share.name)
                && forced_group(other, identifier).is_some()
        });
        traffic::share_contains(share.start(), share.end(), draw) && !forced_elsewhere
    })
}

/// The rule, in order: inactive or group-less partitions give nothing; a chosen view
/// wins; `off` shows control to everyone; forced users get their group; bots see
/// control. Then what the learner would get: a stored, still-existing group is kept (so
/// pausing or a window never moves a member); `paused` and an enrollment outside the
/// window show control; everyone else is drawn. Only a learner who would so be enrolled
/// is subject to the traffic rules: outside the experiment's layer range (or forced into
/// another experiment of the layer) and in the holdout they see control, whatever they
/// have stored, so a layer never shares a learner between two experiments and the
/// holdout holds exactly the learners the experiments would otherwise have had.
pub fn decide(partition: &UserPartition, facts: &Facts<'_>) -> Decision {
    if !partition.active || partition.groups.is_empty() {
        return Decision::NoGroup;
    }
    let stored_group = facts
        .stored
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&id| partition.group(id).is_some());
    if !partition.is_random() {
        return stored_group.map_or(Decision::NoGroup, Decision::Stored);
    }
    if let Some(group) = facts.viewed_as.filter(|&g| partition.group(g).is_some()) {
        return Decision::ViewedAs(group);
    }
    let control = partition.groups[0].id;
    if partition.state == ExperimentState::Off {
        return Decision::Control(control, NotEnrolled::Off);
    }
    if let Some(group) = forced_group(partition, facts.identifier) {
        return Decision::Forced(group);
    }
    if facts.is_bot {
        return Decision::Control(control, NotEnrolled::Bot);
    }
    let would_be = would_be(partition, facts, stored_group, control);
    if !would_be.enrolled() {
        return would_be;
    }
    let (key, id) = (facts.course_key, facts.identifier);
    if !in_layer_range(key, facts.partitions, partition, id) {
        return Decision::Control(control, NotEnrolled::OutsideLayerRange);
    }
    if held_out(facts.holdout, facts.partitions, key, id) {
        return Decision::Control(control, NotEnrolled::Holdout);
    }
    would_be
}

/// What a learner who is not forced, a bot or viewed as gets before the traffic rules:
/// their stored group, control (paused, or enrolled outside the window), or a draw.
fn would_be(
    partition: &UserPartition,
    facts: &Facts<'_>,
    stored_group: Option<u64>,
    control: u64,
) -> Decision {
    if let Some(group) = stored_group {
        return Decision::Stored(group);
    }
    if partition.state == ExperimentState::Paused {
        return Decision::Control(control, NotEnrolled::Paused);
    }
    if partition.enrollment_start.is_some() || partition.enrollment_end.is_some() {
        let at = facts.enrolled_at;
        // Validated at load; an unparsable bound here would be a bug, and excludes.
        let bound = |d: &Option<String>| d.as_deref().map(parse_date);
        let after_start = match bound(&partition.enrollment_start) {
            Some(Ok(start)) => at >= start,
            Some(Err(_)) => false,
            None => true,
        };
        let before_end = match bound(&partition.enrollment_end) {
            Some(Ok(end)) => at < end,
            Some(Err(_)) => false,
            None => true,
        };
        if !(after_start && before_end) {
            return Decision::Control(control, NotEnrolled::OutsideEnrollmentWindow);
        }
    }
    let scope = bucketing_scope(facts.course_key, partition);
    match assignment::assign(scope, partition, facts.identifier) {
        Some(group) => Decision::Assign {
            group: group.id,
            replacing: facts.stored.map(str::to_string),
        },
        None => Decision::NoGroup,
    }
}

/// What the rule gives a learner with a stored tag, from stored facts alone (no bot, no
/// masquerade, enrolled now): how previews and the report classify stored groups, by the
/// same rule pages apply.
pub fn decide_stored(
    course_key: &str,
    holdout: Option<&Holdout>,
    partitions: &[UserPartition],
    partition: &UserPartition,
    user: &str,
    stored: &str,
) -> Decision {
    decide(
        partition,
        &Facts {
            course_key,
            partitions,
            identifier: user,
            stored: Some(stored),
            enrolled_at: SystemTime::now(),
            is_bot: false,
            viewed_as: None,
            holdout,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Group;
    use crate::model::validate_controls as validate;
    use crate::traffic::LayerShare;

    fn partition() -> UserPartition {
        UserPartition {
            id: 7,
            name: "P".into(),
            description: String::new(),
            scheme: "random".into(),
            active: true,
            groups: vec![
                Group {
                    id: 10,
                    name: "control".into(),
                    weight: 1,
                },
                Group {
                    id: 11,
                    name: "treatment".into(),
                    weight: 1,
                },
            ],
            ..UserPartition::default()
        }
    }

    fn facts(stored: Option<&str>, at: SystemTime) -> Facts<'_> {
        Facts {
            course_key: "course-v1:o+c+r1",
            partitions: &[],
            identifier: "u1",
            stored,
            enrolled_at: at,
            is_bot: false,
            viewed_as: None,
            holdout: None,
        }
    }

    #[test]
    fn off_wins_over_stored_and_forced_and_paused_keeps_members() {
        let now = SystemTime::now();
        let mut p = partition();
        p.forced.insert("u1".into(), 11);
        p.state = ExperimentState::Off;
        assert_eq!(
            decide(&p, &facts(Some("11"), now)),
            Decision::Control(10, NotEnrolled::Off)
        );
        p.state = ExperimentState::Paused;
        assert_eq!(decide(&p, &facts(None, now)), Decision::Forced(11));
        p.forced.clear();
        assert_eq!(decide(&p, &facts(Some("11"), now)), Decision::Stored(11));
        assert_eq!(
            decide(&p, &facts(None, now)),
            Decision::Control(10, NotEnrolled::Paused)
        );
        // A stored group that was deleted, while paused: control, not a new draw.
        assert_eq!(
            decide(&p, &facts(Some("99"), now)),
            Decision::Control(10, NotEnrolled::Paused)
        );
    }

    /// A learner id the holdout draw puts in (or out of) a holdout of `share`.
    fn drawn(holdout: &Holdout, inside: bool) -> String {
        (0..)
            .map(|i| format!("u{i}"))
            .find(|id| held_out(Some(holdout), &[], "course-v1:o+c+r1", id) == inside)
            .unwrap()
    }

    #[test]
    fn the_holdout_takes_only_learners_an_experiment_would_have_had() {
        let holdout = Holdout { share: 0.5 };
        let id = drawn(&holdout, true);
        let mut p = partition();
        let at = SystemTime::now();
        let facts = |stored: Option<&'static str>| Facts {
            identifier: &id,
            holdout: Some(&holdout),
            ..facts(stored, at)
        };
        let held = Decision::Control(10, NotEnrolled::Holdout);
        assert_eq!(decide(&p, &facts(None)), held, "a newcomer");
        assert_eq!(decide(&p, &facts(Some("11"))), held, "a stored member");
        p.state = ExperimentState::Paused;
        assert_eq!(
            decide(&p, &facts(None)),
            Decision::Control(10, NotEnrolled::Paused),
            "a paused experiment takes nobody, so nobody is held out of it"
        );
        assert_eq!(decide(&p, &facts(Some("11"))), held);
        p.state = ExperimentState::Enabled;
        p.enrollment_end = Some("2000-01-01".into());
        assert_eq!(
            decide(&p, &facts(None)),
            Decision::Control(10, NotEnrolled::OutsideEnrollmentWindow)
        );
        // Outside the layer range the experiment would not have them either.
        p.enrollment_end = None;
        p.layer = Some(LayerShare {
            name: "home".into(),
            range: [0.0, 0.0],
        });
        assert_eq!(
            decide(&p, &facts(None)),
            Decision::Control(10, NotEnrolled::OutsideLayerRange)
        );
        let free = drawn(&holdout, false);
        p.layer = None;
        let out = Facts {
            identifier: &free,
            ..facts(None)
        };
        assert!(decide(&p, &out).enrolled());
    }

    #[test]
    fn a_forced_learner_is_never_held_out_and_leaves_the_rest_of_its_layer() {
        let holdout = Holdout { share: 0.5 };
        let id = drawn(&holdout, true);
        let whole = |name: &str| LayerShare {
            name: name.into(),
            range: [0.0, 1.0],
        };
        let mut a = partition();
        a.layer = Some(whole("home"));
        a.forced.insert(id.clone(), 11);
        let mut b = partition();
        b.id = 8;
        b.layer = Some(whole("home"));
        let mut c = partition();
        c.id = 9;
        c.layer = Some(whole("other"));
        let partitions = [a.clone(), b.clone(), c.clone()];
        let facts = Facts {
            identifier: &id,
            holdout: Some(&holdout),
            partitions: &partitions,
            ..facts(None, SystemTime::now())
        };
        assert!(!held_out(
            Some(&holdout),
            &partitions,
            facts.course_key,
            &id
        ));
        assert_eq!(decide(&a, &facts), Decision::Forced(11));
        assert_eq!(
            decide(&b, &facts),
            Decision::Control(10, NotEnrolled::OutsideLayerRange),
            "a layer never shares a learner, forced or not"
        );
        assert!(
            matches!(decide(&c, &facts), Decision::Assign { .. }),
            "another layer is independent, and a QA account is not held out"
        );
        // Forcing in a switched-off experiment applies nowhere.
        let mut off = a.clone();
        off.state = ExperimentState::Off;
        let partitions = [off, b.clone(), c];
        let facts = Facts {
            partitions: &partitions,
            ..facts
        };
        assert_eq!(
            decide(&b, &facts),
            Decision::Control(10, NotEnrolled::Holdout)
        );
    }

    #[test]
    fn the_window_includes_its_start_and_excludes_its_end() {
        let mut p = partition();
        p.enrollment_start = Some("2026-01-01".into());
        p.enrollment_end = Some("2026-02-01T00:00:00Z".into());
        let at = |d: &str| parse_date(d).unwrap();
        let start = at("2026-01-01T00:00:00Z");
        assert!(decide(&p, &facts(None, start)).enrolled());
        let before = at("2025-12-31T23:59:59Z");
        assert_eq!(
            decide(&p, &facts(None, before)),
            Decision::Control(10, NotEnrolled::OutsideEnrollmentWindow)
        );
        let end = at("2026-02-01T00:00:00Z");
        assert_eq!(
            decide(&p, &facts(None, end)),
            Decision::Control(10, NotEnrolled::OutsideEnrollmentWindow)
        );
        let last = at("2026-01-31T23:59:59.999Z");
        assert!(decide(&p, &facts(None, last)).enrolled());
    }

    #[test]
    fn validation_names_the_partition_and_the_bad_control() {
        let mut p = partition();
        p.enrollment_start = Some("2026-13-01".into());
        let err = format!("{:#}", validate("course-v1:o+c+r", &p).unwrap_err());
        assert!(err.contains("user partition 7") && err.contains("enrollment_start"));
        assert!(err.contains("2026-13-01"), "{err}");
        let mut p = partition();
        p.enrollment_start = Some("2026-02-01".into());
        p.enrollment_end = Some("2026-01-01".into());
        assert!(validate("course-v1:o+c+r", &p).is_err());
        let mut p = partition();
        p.forced.insert("qa".into(), 3);
        let err = format!("{:#}", validate("course-v1:o+c+r", &p).unwrap_err());
        assert!(err.contains("\"qa\"") && err.contains("group 3"), "{err}");
        let mut p = partition();
        p.bucketing = Bucketing::CourseUnaware;
        assert!(validate("demo", &p).is_err());
        assert!(validate("course-v1:o+c+r", &p).is_ok());
    }

    #[test]
    fn course_unaware_scope_drops_only_the_run() {
        assert_eq!(
            course_family("course-v1:MITx+6.002x+2026_T1"),
            Some("course-v1:MITx+6.002x")
        );
        assert_eq!(course_family("course-v1:a+b"), None);
        assert_eq!(course_family("demo"), None);
    }
}
