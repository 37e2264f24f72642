//! Experiments: a learner's group as a page would show it (for scripts), changing an
//! experiment's controls, reassigning learners of deleted groups, and the report.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;
use tracing::info;

use super::Host;
use crate::assignment;
use crate::experiment::{Decision, ExperimentState};
use crate::ids::check_id;
use crate::model::{Course, Group, UserPartition};
use crate::request::{ExperimentStatus, User};
use crate::session::{Mode, Session};

/// A learner's group in a partition as `xbhost assign` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct AssignmentView {
    pub course_key: String,
    pub partition_id: u64,
    pub partition_name: String,
    pub user: String,
    pub group: Option<Group>,
    /// True when the group is the stored one.
    pub stored: bool,
    /// True when the learner is (or on their next visit would be) in the experiment.
    pub enrolled: bool,
    /// Why the learner has this group (`None`: no group).
    pub status: Option<ExperimentStatus>,
}

impl Host {
    /// The learner's group in a partition as a page would show it (stored, forced, the
    /// one they would get, or control with the reason), from stored facts only. Writes
    /// nothing, so maintenance scripts and other services can call it freely; the request
    /// context of a page (bots, masquerade) does not apply.
    pub fn assignment(
        &self,
        course_key: &str,
        partition_id: u64,
        user_id: &str,
    ) -> Result<AssignmentView> {
        check_id("user id", user_id)?;
        let course = self.course(course_key)?;
        let partition = course
            .partition(partition_id)
            .ok_or_else(|| super::unknown_partition(course_key, partition_id))?;
        let session = Session::for_experiments(
            &self.inner.handle,
            course.clone(),
            User::learner(user_id),
            Mode::ReadOnly,
        );
        let decision = session.decision(partition)?;
        let group = decision.group().and_then(|g| partition.group(g).cloned());
        Ok(AssignmentView {
            course_key: course_key.to_string(),
            partition_id,
            partition_name: partition.name.clone(),
            user: user_id.to_string(),
            stored: matches!(decision, Decision::Stored(_)),
            enrolled: decision.enrolled(),
            status: ExperimentStatus::of(&decision),
            group,
        })
    }

    /// Changes one experiment's controls (state, forced users, window) by storing a new
    /// version of the course, with the same checks as `course load`. The change is of the
    /// version it reads from the store: if another change stores the course meanwhile,
    /// nothing is stored and the error is a [`VersionConflict`](crate::errors::VersionConflict).
    pub fn update_experiment(
        &self,
        course_key: &str,
        partition_id: u64,
        change: impl FnOnce(&mut UserPartition) -> Result<()>,
    ) -> Result<UserPartition> {
        let (mut doc, base) = self.course_for_change(course_key)?;
        let partition = doc
            .user_partitions
            .iter_mut()
            .find(|p| p.id == partition_id)
            .ok_or_else(|| super::unknown_partition(course_key, partition_id))?;
        change(partition)?;
        let updated = partition.clone();
        let deadline = crate::olx::LoadDeadline::after(crate::olx::DEFAULT_LOAD_DEADLINE);
        self.load_course_from(doc, Some(base), deadline)?;
        info!(course = %course_key, partition = partition_id, state = ?updated.state, "experiment controls changed");
        Ok(updated)
    }

    /// Reassigns, now, every learner of the course whose stored group in an active random
    /// partition no longer exists, each with an assignment event that names the old group.
    /// Returns how many were reassigned; one that fails is logged and left to the lazy
    /// reassignment of their next visit.
    pub(crate) fn reassign_deleted_groups(&self, course: &Arc<Course>) -> Result<usize> {
        let mut moved = 0;
        for partition in course
            .partitions()
            .iter()
            // Paused and switched-off experiments take nobody new: their learners of a
            // deleted group see control until the experiment is enabled again.
            .filter(|p| p.is_random() && p.active && p.state == ExperimentState::Enabled)
        {
            let tag = assignment::partition_tag_key(partition.id);
            for (user, value) in self.storage().users_with_course_tag(course.key(), &tag)? {
                if value
                    .parse::<u64>()
                    .ok()
                    .is_some_and(|g| partition.group(g).is_some())
                {
                    continue;
                }
                let session = Session::for_experiments(
                    &self.inner.handle,
                    course.clone(),
                    User::learner(&user),
                    Mode::Live,
                );
                // Only a learner the rule would draw again is moved now; one it leaves out
                // (held out, outside the layer range, forced) keeps the tag and sees
                // control, and nothing is written for them.
                if !matches!(session.decision(partition), Ok(Decision::Assign { .. })) {
                    continue;
                }
                // The course is already stored: a learner who cannot be moved now is moved
                // by the same rule on their next visit, so a failure here is logged only.
                match session.group_for(partition.id).map(|_| session.finish()) {
                    Ok(Ok(_)) => moved += 1,
                    Ok(Err(e)) => {
                        tracing::warn!(user = %user, partition = partition.id, error = %format!("{e:#}"), "reassignment not finished; it will happen on the learner's next visit")
                    }
                    Err(e) => {
                        tracing::warn!(user = %user, partition = partition.id, error = ?e, "reassignment failed; it will happen on the learner's next visit")
                    }
                }
            }
        }
        Ok(moved)
    }

    /// The experiment report of a course, from storage and the event log `events`.
    pub fn report(
        &self,
        course_key: &str,
        events: &Path,
    ) -> Result<crate::report::ExperimentReport> {
        let course = self.course(course_key)?;
        crate::report::build(self.inner.handle.storage.as_ref(), &course, events)
    }
}
