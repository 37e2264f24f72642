//! The learner's experiment groups: the facts a decision needs (their stored partition tag,
//! their enrollment date, bot, masquerade), [`experiment::decide`], storing a new member's
//! group first-writer-wins with its assignment event, carrying an anonymous visitor's
//! groups over, and the membership every event of the request carries. Owns the
//! enrollment-date cache and the host's own partition-tag writes. May not touch block
//! writes or render anything.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{Context as _, Result};
use tracing::info;

use super::events::EventBuffer;
use super::frames::{Frames, PendingEvent};
use super::request::{Request, internal};
use super::tags::Tags;
use crate::assignment::{HELD_OUT, HOLDOUT_TAG, partition_tag_key};
use crate::events::outbox::{self, AssignmentFacts};
use crate::events::{self, Experiments};
use crate::experiment::{self, Decision, Facts, NotEnrolled};
use crate::model::{Group, UserPartition};
use crate::request::{ExperimentStatus, ExperimentView};
use crate::runtime::bindings::types::HostError;
use crate::storage::{CarriedTag, FirstWrite, Storage};

#[derive(Default)]
pub struct Assignments {
    /// The learner's course enrollment date, read on first need.
    enrolled_at: OnceLock<Option<SystemTime>>,
    /// The outbox entries stored with this request's new assignments (partition id, event
    /// id): the assignment event is pending in the store until the log holds it.
    pending: Mutex<Vec<(u64, String)>>,
}

/// The learner's membership as this request decided it, for the answer and for events.
#[derive(Default)]
pub struct Membership {
    /// Partition id to the group shown, where the learner is not in control by rule.
    pub assignments: BTreeMap<u64, u64>,
    pub views: Vec<ExperimentView>,
    /// What every event carries.
    pub experiments: Experiments,
    /// Partitions the learner is enrolled in (stored or forced).
    pub enrolled: HashSet<u64>,
}

impl Assignments {
    /// The outbox entries of this request's new assignments, for its events (see
    /// [`outbox::identify`]).
    pub fn take_pending(&self) -> Vec<(u64, String)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The learner's course enrollment date, or the request's start when none is stored
    /// (as edX does: a visitor who enrolled now would see the same). Read once.
    fn enrollment_date(&self, request: &Request, storage: &dyn Storage) -> Result<SystemTime> {
        if let Some(date) = self.enrolled_at.get() {
            return Ok(date.unwrap_or(request.started.0));
        }
        let (course, user) = (request.course.key(), &request.user.id);
        let stored = storage
            .enrollment(course, user)?
            .map(|d| {
                experiment::parse_date(&d).with_context(|| {
                    format!("stored enrollment date of user {user:?} in {course:?}")
                })
            })
            .transpose()?;
        let _ = self.enrolled_at.set(stored);
        Ok(stored.unwrap_or(request.started.0))
    }

    /// What the learner sees in a partition and what is recorded about it, from this
    /// request's view of their tags (read once, including its own assignments).
    pub fn decision(
        &self,
        request: &Request,
        storage: &dyn Storage,
        tags: &Tags,
        partition: &UserPartition,
    ) -> Result<Decision> {
        let stored = tags.stored_course_tag(request, storage, &partition_tag_key(partition.id))?;
        let has_window = partition.enrollment_start.is_some() || partition.enrollment_end.is_some();
        let enrolled_at = if has_window {
            self.enrollment_date(request, storage)?
        } else {
            request.started.0
        };
        Ok(experiment::decide(
            partition,
            &Facts {
                course_key: request.course.key(),
                partitions: request.course.partitions(),
                identifier: &request.user.id,
                stored: stored.as_deref(),
                enrolled_at,
                is_bot: request.audience.is_bot,
                viewed_as: request.audience.viewed_as.get(&partition.id).copied(),
                holdout: request.course.doc.holdout.as_ref(),
            },
        ))
    }

    /// The group the learner sees in a partition; a new member's group is stored now
    /// (sticky, first writer wins) with an assignment event. See [`experiment::decide`].
    pub fn group_for(
        &self,
        request: &Request,
        storage: &dyn Storage,
        tags: &Tags,
        frames: &Frames,
        events: &EventBuffer,
        partition_id: u64,
    ) -> Result<Option<Group>, HostError> {
        let partition = request.course.partition(partition_id).ok_or_else(|| {
            HostError::NotFound(format!(
                "course {:?} has no user partition {partition_id}",
                request.course.key()
            ))
        })?;
        frames.check_deadline(request)?;
        let decision = self
            .decision(request, storage, tags, partition)
            .map_err(internal)?;
        // Staff (and admins) see the group they would get, but are never enrolled: their
        // views are for checking content, not part of any experiment's figures.
        let group = match decision {
            Decision::Assign { group, replacing }
                if request.is_live() && !request.user.is_staff =>
            {
                let stored = Stored {
                    request,
                    storage,
                    tags,
                    frames,
                    events,
                    pending: &self.pending,
                };
                stored.assign(partition, group, replacing)?
            }
            Decision::Control(group, NotEnrolled::Holdout)
                if request.is_live() && !request.user.is_staff =>
            {
                self.record_holdout(request, storage, tags, frames, events)?;
                Some(group)
            }
            other => other.group(),
        };
        Ok(group.and_then(|id| partition.group(id).cloned()))
    }

    /// Records that a held-out learner reached an experiment (the holdout's members, as
    /// the report counts them), first writer wins, with the host's holdout event.
    fn record_holdout(
        &self,
        request: &Request,
        storage: &dyn Storage,
        tags: &Tags,
        frames: &Frames,
        events: &EventBuffer,
    ) -> Result<(), HostError> {
        if tags
            .stored_course_tag(request, storage, HOLDOUT_TAG)
            .map_err(internal)?
            .is_some()
        {
            return Ok(());
        }
        let (course, user) = (request.course.key(), request.user.id.as_str());
        let written = storage
            .set_course_tag_if_absent(course, user, HOLDOUT_TAG, HELD_OUT)
            .map_err(internal)?;
        tags.stored(HOLDOUT_TAG.to_string(), HELD_OUT.to_string());
        if matches!(written, FirstWrite::Written) {
            info!(user = %user, "learner held out of every experiment");
            frames.mark_written();
            let share = request.course.doc.holdout.as_ref().map(|h| h.share);
            events.push_host(PendingEvent {
                name: events::HOLDOUT_EVENT.into(),
                usage_id: None,
                plugin: None,
                data: serde_json::json!({ "share": share }),
            });
        }
        Ok(())
    }

    /// Moves an anonymous visitor's assignments in this course over to the request's
    /// (signed-in) user, where the user has none; the user's own groups win. Each group
    /// carried over that enrolls the user is their first assignment, so it sends the
    /// assignment event; one the rule leaves out for the user (held out, outside the
    /// layer range) is kept like any stored group, silently. The visitor's tags are all
    /// removed, the holdout's record too, so the visitor is never counted beside the user.
    pub fn carry_over_from(
        &self,
        request: &Request,
        storage: &dyn Storage,
        tags: &Tags,
        frames: &Frames,
        events: &EventBuffer,
        from: &str,
    ) -> Result<Vec<CarriedTag>> {
        let course = &request.course;
        let keys: Vec<String> = course
            .partitions()
            .iter()
            .map(|p| partition_tag_key(p.id))
            .chain([HOLDOUT_TAG.to_string()])
            .collect();
        // Each tag carried over is stored with its assignment event pending (see `outbox`).
        let data = |partition: &crate::model::UserPartition, group: Option<u64>| {
            serde_json::json!({
                "group_id": group,
                "group_name": group.and_then(|g| partition.group(g)).map(|g| g.name.clone()),
                "partition_id": partition.id,
                "partition_name": partition.name,
                "carried_over_from": from,
            })
        };
        let ids: BTreeMap<String, String> = keys
            .iter()
            .map(|k| (k.clone(), events::new_event_id()))
            .collect();
        // The partition a carried tag enrolls the user in, by the rule pages apply.
        let enrolling = |key: &str, value: &str| {
            let partition =
                crate::assignment::partition_of_tag(key).and_then(|id| course.partition(id))?;
            let decision = experiment::decide_stored(
                course.key(),
                course.doc.holdout.as_ref(),
                course.partitions(),
                partition,
                &request.user.id,
                value,
            );
            matches!(decision, Decision::Stored(_)).then_some(partition)
        };
        let entry_for = |key: &str, value: &str| {
            let partition = enrolling(key, value)?;
            let group = value.parse::<u64>().ok();
            let mut entry = outbox::assignment_entry(
                &AssignmentFacts {
                    course_key: course.key(),
                    user_id: &request.user.id,
                    username: &request.user.username,
                    partition_name: &partition.name,
                    group_name: group
                        .and_then(|g| partition.group(g))
                        .map(|g| g.name.as_str()),
                    tag: (key, value),
                },
                data(partition, group),
            );
            entry.id = ids.get(key)?.clone();
            Some(entry)
        };
        let carried = storage.carry_over_course_tags_with_outbox(
            course.key(),
            from,
            &request.user.id,
            &keys,
            &entry_for,
        )?;
        tags.forget_course_tags(); // read again: the request's view must include these
        // Carried or not, the visitor's tags were removed: flush at the end.
        if !carried.is_empty() {
            frames.mark_written();
        }
        for tag in carried.iter().filter(|t| t.carried) {
            let Some(partition) = enrolling(&tag.key, &tag.to_value) else {
                continue;
            };
            let group = tag.to_value.parse::<u64>().ok();
            if let Some(id) = ids.get(&tag.key).filter(|_| storage.keeps_outbox()) {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((partition.id, id.clone()));
            }
            events.push_host(PendingEvent {
                name: events::ASSIGNED_EVENT.into(),
                usage_id: None,
                plugin: None,
                data: data(partition, group),
            });
        }
        Ok(carried)
    }

    /// The learner's membership in every partition of the course, as decided now.
    pub fn membership(
        &self,
        request: &Request,
        storage: &dyn Storage,
        tags: &Tags,
    ) -> Result<Membership> {
        let mut out = Membership::default();
        // Held out once recorded (on reaching an experiment that would have had them), so
        // the holdout's events begin where its membership does.
        let course = &request.course;
        out.experiments.holdout = experiment::held_out(
            course.doc.holdout.as_ref(),
            course.partitions(),
            course.key(),
            &request.user.id,
        ) && tags
            .stored_course_tag(request, storage, HOLDOUT_TAG)?
            .is_some();
        for partition in request.course.partitions() {
            let decision = self.decision(request, storage, tags, partition)?;
            let (Some(group_id), Some(status)) =
                (decision.group(), ExperimentStatus::of(&decision))
            else {
                continue;
            };
            let group_name = partition.group(group_id).map(|g| g.name.clone());
            out.views.push(ExperimentView {
                partition_id: partition.id,
                partition_name: partition.name.clone(),
                group_id,
                group_name: group_name.clone().unwrap_or_default(),
                status,
            });
            if matches!(decision, Decision::Control(..)) {
                continue;
            }
            out.assignments.insert(partition.id, group_id);
            // Enrolled: stored or forced. (A would-be group of a read-only request is shown
            // but not enrolled; such requests send no events anyway.)
            if matches!(decision, Decision::Stored(_) | Decision::Forced(_)) {
                out.enrolled.insert(partition.id);
                out.experiments.enrolled.push(partition.name.clone());
                out.experiments
                    .assigned
                    .insert(partition.name.clone(), group_name.unwrap_or_default());
                if matches!(decision, Decision::Forced(_)) {
                    out.experiments.forced.insert(partition.name.clone(), true);
                }
            }
        }
        Ok(out)
    }
}

/// What storing an assignment touches.
struct Stored<'a> {
    request: &'a Request,
    storage: &'a dyn Storage,
    tags: &'a Tags,
    frames: &'a Frames,
    events: &'a EventBuffer,
    /// Where the ids of the outbox entries stored with new groups go.
    pending: &'a Mutex<Vec<(u64, String)>>,
}

impl Stored<'_> {
    /// Stores a new member's group: first assignment (first writer wins) or the
    /// replacement of a deleted group (only if nobody replaced it meanwhile). Returns the
    /// group storage holds afterwards, which is final.
    fn assign(
        &self,
        partition: &UserPartition,
        new_id: u64,
        stored: Option<String>,
    ) -> Result<Option<u64>, HostError> {
        let key = partition_tag_key(partition.id);
        let new_value = new_id.to_string();
        let (course, user) = (self.request.course.key(), self.request.user.id.as_str());
        let new = partition.group(new_id).map(|g| g.name.clone());
        let mut data = serde_json::json!({
            "group_id": new_id,
            "group_name": new,
            "partition_id": partition.id,
            "partition_name": partition.name,
        });
        if let Some(old) = &stored {
            data["reassigned_from_group_id"] = serde_json::Value::String(old.clone());
        }
        // The group and its assignment event, pending in the outbox, in one atomic write.
        let entry = outbox::assignment_entry(
            &AssignmentFacts {
                course_key: course,
                user_id: user,
                username: &self.request.user.username,
                partition_name: &partition.name,
                group_name: new.as_deref(),
                tag: (&key, &new_value),
            },
            data.clone(),
        );
        let written = self.storage.assign_course_tag(
            course,
            user,
            &key,
            stored.as_deref(),
            &new_value,
            &entry,
        );
        let (final_value, won) = match written {
            Ok(FirstWrite::Written) => (new_value.clone(), true),
            Ok(FirstWrite::Existing(v)) => (v, false),
            Err(e) => return Err(internal(e)),
        };
        let group = final_value.parse::<u64>().ok();
        self.tags.stored(key, final_value);
        if won {
            if self.storage.keeps_outbox() {
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((partition.id, entry.id));
            }
            if let Some(old) = &stored {
                info!(user = %user, partition = partition.id, from = %old, to = new_id, "learner reassigned: stored group was deleted");
            } else {
                info!(user = %user, partition = partition.id, group = new_id, "learner assigned");
            }
            self.frames.mark_written();
            self.events.push_host(PendingEvent {
                name: events::ASSIGNED_EVENT.into(),
                usage_id: None,
                plugin: None,
                data,
            });
        }
        Ok(group)
    }
}
