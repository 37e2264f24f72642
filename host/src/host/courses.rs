//! Courses: loading a course document (validated, plugins present, every block's
//! `validate` run read-only, then stored), importing an Open edX export, previewing what a
//! new version would do to partitions, and adding missing split-test children.
//!
//! A load has its own deadline (`--load-deadline-ms`), not a page's: every block's
//! `validate` gets at most one page's time, and all of them together the load's.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;
use tracing::info;

use super::Host;
use crate::assignment;
use crate::model::{Course, CourseDoc};
use crate::olx::{ImportOptions, ImportReport, LoadDeadline};
use crate::request::User;
use crate::runtime::bindings::types::Severity;
use crate::session::{Mode, Session};

/// A validation message of one block, from `course load`.
#[derive(Debug, Clone, Serialize)]
pub struct BlockMessage {
    pub usage_id: String,
    pub block_type: String,
    pub severity: String,
    pub text: String,
}

/// What loading a course did.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub course_key: String,
    /// Whether an earlier version of the course was replaced.
    pub replaced: bool,
    /// The version stored: 1 for a new course, one more than the replaced one's.
    pub version: u64,
    pub blocks: usize,
    pub partitions: usize,
    pub messages: Vec<BlockMessage>,
    /// Learners whose stored group was deleted, reassigned by this load.
    pub reassigned: usize,
}

/// How a partition would change if a course document replaced the stored one.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionChange {
    pub partition_id: u64,
    pub name: String,
    /// `added`, `removed`, `changed` or `unchanged`.
    pub status: &'static str,
    pub groups_added: Vec<u64>,
    pub groups_removed: Vec<u64>,
    /// (group id, old name, new name).
    pub groups_renamed: Vec<(u64, String, String)>,
    /// Learners with a stored group in this partition.
    pub learners_assigned: usize,
    /// Learners whose stored group would no longer exist and whom the rule would draw
    /// again now (an enabled random partition, a learner it does not leave out).
    pub learners_to_reassign: usize,
    /// Learners counted through their stored group who would see control instead, their
    /// group kept but not counted: outside the partition's new layer range, in the new
    /// holdout, newly forced, or the experiment switched off.
    pub learners_leaving: usize,
    /// Learners with a stored group who are left out now and would count again.
    pub learners_returning: usize,
}

/// Whether a learner's stored group counts under this document's rules (they are a
/// member through it, not forced, switched off, held out or outside the layer range).
fn counted(
    doc: &CourseDoc,
    partition: &crate::model::UserPartition,
    user: &str,
    stored: &str,
) -> bool {
    let decision = crate::experiment::decide_stored(
        &doc.course_key,
        doc.holdout.as_ref(),
        &doc.user_partitions,
        partition,
        user,
        stored,
    );
    matches!(decision, crate::experiment::Decision::Stored(_))
}

/// A block's validation messages within the limits on their number and size.
fn check_messages(
    found: &[crate::runtime::bindings::types::ValidationMessage],
    max_count: usize,
    max_bytes: usize,
) -> Result<(), crate::session::Failed> {
    let too_large = |m| Err((crate::request::FailureKind::OutputTooLarge, m));
    if found.len() > max_count {
        return too_large(format!(
            "it gave {} validation messages, over the limit of {max_count}",
            found.len()
        ));
    }
    if let Some(m) = found.iter().find(|m| m.text.len() > max_bytes) {
        return too_large(format!(
            "a validation message of {} bytes is over the limit of {max_bytes}",
            m.text.len()
        ));
    }
    Ok(())
}

/// A block whose authored fields do not match its plugin's `Fields` (a wrong type, say a
/// number where the plugin reads text): such a block could only ever render as
/// "unavailable". The SDK's `validate` reports it as an error containing
/// [`xbhost_sdk::FIELDS_MISMATCH`] and naming the field; other errors (a split test group
/// without a child) are the author's to fix later and only printed.
#[derive(Debug, Clone)]
struct Misfit {
    usage_id: String,
    block_type: String,
    /// The block's own message, bounded by `check_messages`, on one line.
    text: String,
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "block {:?} (type {}) is refused: {}",
            self.usage_id, self.block_type, self.text
        )
    }
}

fn misfit_in(
    usage_id: &str,
    block_type: &str,
    found: &[crate::runtime::bindings::types::ValidationMessage],
) -> Option<Misfit> {
    let m = found.iter().find(|m| {
        matches!(m.severity, Severity::Error) && m.text.contains(xbhost_sdk::FIELDS_MISMATCH)
    })?;
    let text = m
        .text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some(Misfit {
        usage_id: usage_id.to_string(),
        block_type: block_type.to_string(),
        text,
    })
}

/// Makes each misfit an `unsupported` block saying why (children kept, so the structure
/// stays whole), counted and warned about in the import's report: one XBlock whose
/// attribute does not fit its plugin must not keep the rest of a real course out.
fn keep_misfits_as_unsupported(doc: &mut CourseDoc, misfits: &[Misfit], report: &mut ImportReport) {
    let by_id: std::collections::HashMap<&str, &Misfit> =
        misfits.iter().map(|m| (m.usage_id.as_str(), m)).collect();
    for block in &mut doc.blocks {
        let Some(m) = by_id.get(block.usage_id.as_str()) else {
            continue;
        };
        let display_name = block.fields.get("display_name").cloned();
        block.fields = serde_json::json!({
            "original_type": m.block_type,
            "display_name": display_name,
            "reason": format!("its fields do not fit the {} plugin: {}", m.block_type, m.text),
        });
        block.block_type = crate::olx::UNSUPPORTED_TYPE.to_string();
        *report.unsupported.entry(m.block_type.clone()).or_default() += 1;
        report
            .warnings
            .push(format!("{m}; imported as unsupported"));
    }
}

impl Host {
    /// Validates and stores a course, replacing its earlier version (structure and
    /// partitions), within the default load deadline. Nothing is stored if anything is
    /// wrong.
    pub fn load_course(&self, doc: CourseDoc) -> Result<LoadReport> {
        self.load_course_by(doc, LoadDeadline::after(crate::olx::DEFAULT_LOAD_DEADLINE))
    }

    /// [`Host::load_course`], done by `deadline` or not at all. The load replaces the
    /// version stored when it began: if another change stores the course meanwhile, this
    /// load stores nothing and fails with a [`VersionConflict`](crate::errors::VersionConflict).
    pub fn load_course_by(&self, doc: CourseDoc, deadline: LoadDeadline) -> Result<LoadReport> {
        let base = self.course_version(&doc.course_key)?;
        self.load_course_from(doc, base, deadline)
    }

    /// [`Host::load_course_by`] as a change of version `base` of the course (`None`: a new
    /// course), the one its author read: stored only if the store still holds `base`, else
    /// a [`VersionConflict`](crate::errors::VersionConflict) naming both versions.
    pub fn load_course_from(
        &self,
        doc: CourseDoc,
        base: Option<u64>,
        deadline: LoadDeadline,
    ) -> Result<LoadReport> {
        crate::ids::check_not_reserved_course_key(&doc.course_key)?;
        self.load_checked(doc, base, deadline, None)
    }

    /// [`Host::load_course_from`] for a scenario course, whose key is reserved: only the
    /// host builds those (`host::scenarios`).
    pub(super) fn load_scenario_course(
        &self,
        doc: CourseDoc,
        base: Option<u64>,
        deadline: LoadDeadline,
    ) -> Result<LoadReport> {
        self.load_checked(doc, base, deadline, None)
    }

    /// Whether `doc` would load (document, plugins installed, every block's `validate`,
    /// fields that fit), storing nothing: a scenario is checked alone before it joins its
    /// plugin's course, so one that would not load is reported and the others still load.
    pub(super) fn check_scenario_course(
        &self,
        doc: CourseDoc,
        deadline: LoadDeadline,
    ) -> Result<()> {
        let course = Course::new(doc)?;
        self.check_plugins_installed(&course)?;
        let (_, misfits) = self.validate_all(&course, deadline)?;
        match misfits.first() {
            Some(first) => bail!("{first}"),
            None => Ok(()),
        }
    }

    /// The load itself. Blocks whose fields do not fit their plugin refuse the course,
    /// unless this is an import (`import` given): then they become `unsupported` blocks
    /// in its report.
    fn load_checked(
        &self,
        doc: CourseDoc,
        base: Option<u64>,
        deadline: LoadDeadline,
        import: Option<&mut ImportReport>,
    ) -> Result<LoadReport> {
        let key = doc.course_key.clone();
        for partition in &doc.user_partitions {
            if let Some(goal) = partition.goals.iter().find(|g| !g.has_sources()) {
                bail!(
                    "course {key:?}: user partition {} ({:?}): goal {:?} names no blocks whose \
                     events count: give it \"block_types\" (for example [\"problem\"]) or \
                     \"blocks\" (usage ids), since any block may send any event name",
                    partition.id,
                    partition.name,
                    goal.name
                );
            }
        }
        let mut course = Course::new(doc).with_context(|| format!("course {key:?}"))?;
        self.check_plugins_installed(&course)?;
        let (mut messages, misfits) = self
            .validate_all(&course, deadline)
            .with_context(|| format!("course {key:?}"))?;
        if let Some(first) = misfits.first() {
            let Some(report) = import else {
                bail!("course {key:?}: {first}");
            };
            // The validating session is gone: the course is this load's alone again.
            let mut doc = Arc::try_unwrap(course)
                .map(|c| c.doc)
                .unwrap_or_else(|c| c.doc.clone());
            keep_misfits_as_unsupported(&mut doc, &misfits, report);
            course = Course::new(doc).with_context(|| format!("course {key:?}"))?;
            self.check_plugins_installed(&course)?;
            let (again, still) = self
                .validate_all(&course, deadline)
                .with_context(|| format!("course {key:?}"))?;
            if let Some(first) = still.first() {
                bail!("course {key:?}: {first}");
            }
            messages = again;
        }
        deadline.check("storing the course")?;
        let version = super::course_versions::store(self.storage(), &course.doc, base)?;
        self.inner.handle.storage.flush()?;
        let replaced = base.is_some();
        // Forgotten, not replaced: a change stored after this one (by another request, or
        // another host whose notice came first) must not be overwritten in memory by this
        // older version. The next use reads the store.
        self.inner.courses.forget(&key);
        // Learners of deleted groups move now (with an event each), not on their next
        // visit, so reports and grades never see a group that no longer exists.
        let reassigned = if replaced {
            self.reassign_deleted_groups(&course)?
        } else {
            0
        };
        info!(course = %key, replaced, version, reassigned, "course loaded");
        Ok(LoadReport {
            course_key: key,
            replaced,
            version,
            blocks: course.doc.blocks.len(),
            partitions: course.partitions().len(),
            messages,
            reassigned,
        })
    }

    /// Refuses a course using a block type no installed plugin provides, naming a block.
    fn check_plugins_installed(&self, course: &Course) -> Result<()> {
        let key = &course.doc.course_key;
        for block_type in course.block_types() {
            if self.inner.handle.storage.plugin(block_type)?.is_none() {
                let user = course
                    .doc
                    .blocks
                    .iter()
                    .find(|b| &b.block_type == block_type)
                    .map(|b| b.usage_id.as_str())
                    .unwrap_or_default();
                bail!(
                    "course {key:?}: block {user:?} has type {block_type:?}, but no plugin named {block_type:?} \
                     is installed (xbhost plugin add {block_type}.wasm)"
                );
            }
        }
        Ok(())
    }

    /// Every block's validation messages, from a read-only session whose budget is the
    /// load's (each block's call still gets at most one page's time).
    fn validate_all(
        &self,
        course: &Arc<Course>,
        deadline: LoadDeadline,
    ) -> Result<(Vec<BlockMessage>, Vec<Misfit>)> {
        let session = Session::with_deadline(
            &self.inner.handle,
            course.clone(),
            User::staff("xbhost-author"),
            Mode::ReadOnly,
            deadline.remaining(),
        );
        let (max_count, max_bytes) = (self.limits().max_messages, self.limits().max_message_bytes);
        let (mut messages, mut misfits) = (Vec::new(), Vec::new());
        for (index, block) in course.doc.blocks.iter().enumerate() {
            deadline.check(&format!("validating block {:?}", block.usage_id))?;
            let found = session
                .call(
                    index,
                    0,
                    |guest, store| guest.call_validate(store).map(Ok),
                    |found: &Vec<_>| check_messages(found, max_count, max_bytes),
                )
                .map_err(|f| {
                    // Past the load's deadline, say so (the block was only stopped by it).
                    match deadline.check(&format!("validating block {:?}", f.usage_id)) {
                        Err(late) => late,
                        Ok(()) => anyhow!("validating block {:?} failed: {}", f.usage_id, f.error),
                    }
                })?;
            misfits.extend(misfit_in(&block.usage_id, &block.block_type, &found));
            messages.extend(found.into_iter().map(|m| {
                BlockMessage {
                    usage_id: block.usage_id.clone(),
                    block_type: block.block_type.clone(),
                    severity: match m.severity {
                        Severity::Info => "info",
                        Severity::Warning => "warning",
                        Severity::Error => "error",
                    }
                    .to_string(),
                    text: m.text,
                }
            }));
        }
        Ok((messages, misfits))
    }

    /// Imports an Open edX course export (a directory or a `.tar.gz`) and loads it, all
    /// within `options.limits` (its deadline too). Nothing is stored unless the whole
    /// course imports and loads.
    pub fn import_course(
        &self,
        path: &Path,
        options: &ImportOptions,
    ) -> Result<(ImportReport, LoadReport)> {
        let deadline = LoadDeadline::after(options.limits.deadline);
        let (doc, mut report) = crate::olx::read_course(path, options, deadline)
            .with_context(|| format!("importing {}", path.display()))?;
        let base = self.course_version(&doc.course_key)?;
        let loaded = self.load_imported(doc, base, deadline, &mut report)?;
        Ok((report, loaded))
    }

    /// [`Host::load_course_from`] for a course an import made: a block whose fields do not
    /// fit its plugin is kept as an `unsupported` block, named in `report`'s warnings,
    /// instead of refusing the whole course.
    pub fn load_imported(
        &self,
        doc: CourseDoc,
        base: Option<u64>,
        deadline: LoadDeadline,
        report: &mut ImportReport,
    ) -> Result<LoadReport> {
        crate::ids::check_not_reserved_course_key(&doc.course_key)?;
        self.load_checked(doc, base, deadline, Some(report))
    }

    /// What replacing a course's partitions with `doc`'s would do, without doing it.
    pub fn preview_course_change(&self, doc: &CourseDoc) -> Result<Vec<PartitionChange>> {
        let key = &doc.course_key;
        let old_doc = self.storage().course(key)?;
        let old = old_doc
            .as_ref()
            .map(|d| d.user_partitions.clone())
            .unwrap_or_default();
        let mut changes = Vec::new();
        let assigned = |id: u64| {
            self.storage()
                .users_with_course_tag(key, &assignment::partition_tag_key(id))
        };
        for new in &doc.user_partitions {
            let users = assigned(new.id)?;
            let Some(before) = old.iter().find(|p| p.id == new.id) else {
                changes.push(PartitionChange {
                    partition_id: new.id,
                    name: new.name.clone(),
                    status: "added",
                    groups_added: new.groups.iter().map(|g| g.id).collect(),
                    groups_removed: vec![],
                    groups_renamed: vec![],
                    learners_assigned: users.len(),
                    learners_to_reassign: 0,
                    learners_leaving: 0,
                    learners_returning: 0,
                });
                continue;
            };
            let groups_added: Vec<u64> = new
                .groups
                .iter()
                .filter(|g| before.group(g.id).is_none())
                .map(|g| g.id)
                .collect();
            let groups_removed: Vec<u64> = before
                .groups
                .iter()
                .filter(|g| new.group(g.id).is_none())
                .map(|g| g.id)
                .collect();
            let groups_renamed: Vec<(u64, String, String)> = new
                .groups
                .iter()
                .filter_map(|g| {
                    let old = before.group(g.id)?;
                    (old.name != g.name).then(|| (g.id, old.name.clone(), g.name.clone()))
                })
                .collect();
            // As a load does: the rule draws these learners again (an enabled, active
            // random partition, and a learner it does not leave out).
            let to_reassign = users
                .iter()
                .filter(|(user, v)| {
                    let decision = crate::experiment::decide_stored(
                        key,
                        doc.holdout.as_ref(),
                        &doc.user_partitions,
                        new,
                        user,
                        v,
                    );
                    matches!(decision, crate::experiment::Decision::Assign { .. })
                })
                .count();
            // Counted now and left out after, or the other way round (a holdout or layer
            // range that changes moves these learners to control or back).
            let (mut leaving, mut returning) = (0, 0);
            if let (Some(old_doc), true) = (&old_doc, new.is_random() && new.active) {
                for (user, value) in &users {
                    if value
                        .parse::<u64>()
                        .ok()
                        .is_none_or(|g| new.group(g).is_none())
                    {
                        continue;
                    }
                    match (
                        counted(old_doc, before, user, value),
                        counted(doc, new, user, value),
                    ) {
                        (true, false) => leaving += 1,
                        (false, true) => returning += 1,
                        _ => {}
                    }
                }
            }
            let unchanged = groups_added.is_empty()
                && groups_removed.is_empty()
                && groups_renamed.is_empty()
                && before == new
                && leaving == 0
                && returning == 0;
            changes.push(PartitionChange {
                partition_id: new.id,
                name: new.name.clone(),
                status: if unchanged { "unchanged" } else { "changed" },
                groups_added,
                groups_removed,
                groups_renamed,
                learners_assigned: users.len(),
                learners_to_reassign: to_reassign,
                learners_leaving: leaving,
                learners_returning: returning,
            });
        }
        for before in old
            .iter()
            .filter(|p| doc.user_partitions.iter().all(|n| n.id != p.id))
        {
            let users = assigned(before.id)?;
            changes.push(PartitionChange {
                partition_id: before.id,
                name: before.name.clone(),
                status: "removed",
                groups_added: vec![],
                groups_removed: before.groups.iter().map(|g| g.id).collect(),
                groups_renamed: vec![],
                learners_assigned: users.len(),
                learners_to_reassign: 0,
                learners_leaving: 0,
                learners_returning: 0,
            });
        }
        Ok(changes)
    }

    /// Adds an empty vertical for every group of a split test's partition that has no
    /// child, mapped to that group, and stores the course. Returns the new usage ids.
    pub fn add_missing_group_children(
        &self,
        course_key: &str,
        split_test: &str,
    ) -> Result<Vec<String>> {
        // From the store, not memory: the change is of the version it read.
        let (doc, base) = self.course_for_change(course_key)?;
        let course = Course::new(doc.clone())
            .with_context(|| format!("stored course {course_key:?} is invalid"))?;
        let mut doc = doc;
        let at = doc
            .blocks
            .iter()
            .position(|b| b.usage_id == split_test)
            .ok_or_else(|| anyhow!("course {course_key:?} has no block {split_test:?}"))?;
        if doc.blocks[at].block_type != "split_test" {
            bail!(
                "block {split_test:?} is a {}, not a split_test",
                doc.blocks[at].block_type
            );
        }
        let partition_id = doc.blocks[at].fields["user_partition_id"]
            .as_i64()
            .and_then(|id| u64::try_from(id).ok())
            .ok_or_else(|| anyhow!("split test {split_test:?} has no user partition selected"))?;
        let partition = course
            .partition(partition_id)
            .ok_or_else(|| anyhow!("split test {split_test:?} uses user partition {partition_id}, which the course does not have"))?
            .clone();
        let mut added = Vec::new();
        for group in &partition.groups {
            let key = group.id.to_string();
            if doc.blocks[at].fields["group_id_to_child"]
                .get(&key)
                .is_some()
            {
                continue;
            }
            let mut id = format!("{split_test}_group_{}", group.id);
            while course.block(&id).is_some() || added.contains(&id) {
                id.push('_');
            }
            let split = &mut doc.blocks[at];
            if !split.fields["group_id_to_child"].is_object() {
                split.fields["group_id_to_child"] = serde_json::json!({});
            }
            split.fields["group_id_to_child"][&key] = serde_json::Value::String(id.clone());
            split.children.push(id.clone());
            doc.blocks.push(crate::model::BlockDef {
                usage_id: id.clone(),
                block_type: "vertical".into(),
                fields: serde_json::json!({ "display_name": format!("Group {}", group.name) }),
                children: vec![],
                group_access: Default::default(),
            });
            added.push(id);
        }
        if !added.is_empty() {
            let deadline = LoadDeadline::after(crate::olx::DEFAULT_LOAD_DEADLINE);
            self.load_course_from(doc, Some(base), deadline)?;
        }
        Ok(added)
    }
}
