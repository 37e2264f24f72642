//! The host: storage, the wasm runtime, loaded plugins and courses, and the event sink,
//! behind the operations the CLI (and later the server) offer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;
use tracing::info;

use std::collections::BTreeMap;

use crate::assignment;
use crate::bots::BotFilter;
use crate::events::{EventSink, JsonlSink};
use crate::experiment::{Decision, ExperimentState};
use crate::grading::{self, GradeReport, LearnerGrade};
use crate::ids::check_id;
use crate::memo::Memo;
use crate::model::{Course, CourseDoc, Group, UserPartition};
use crate::request::{ExperimentStatus, Masquerade, RenderOutput, RenderRequest, User, View};
use crate::runtime::bindings::types::Severity;
use crate::runtime::cache::{CompiledCache, Origin};
use crate::runtime::plugin::{CONTRACT_VERSION, contract_compatible, read_metadata};
use crate::runtime::{LoadedPlugin, Pooling, Runtime, SandboxLimits};
use crate::session::{Audience, Mode, Session};
use crate::storage::{PluginRecord, SledStorage, Storage};

/// Settings of a host.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    pub limits: SandboxLimits,
    pub pooling: Pooling,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Block types run natively instead of in the sandbox (trusted code only; the
    /// benchmark uses it to measure the sandbox's cost). Empty by default.
    pub native_blocks: BTreeMap<String, xbhost_sdk::native::NativeBlock>,
    /// User agents taken for bots (see [`BotFilter`]).
    pub bots: BotFilter,
    /// The event log [`Host::open`] appends to; `None` means `events.jsonl` in the data
    /// directory.
    pub events_file: Option<PathBuf>,
}

impl HostConfig {
    /// Defaults with the `XBHOST_*` environment overrides (see [`SandboxLimits::from_env`]).
    pub fn from_env() -> Result<HostConfig> {
        Ok(HostConfig {
            limits: SandboxLimits::from_env()?,
            pooling: Pooling::from_env()?,
            cache_dir: None,
            native_blocks: BTreeMap::new(),
            bots: BotFilter::default(),
            events_file: None,
        })
    }
}

pub(crate) struct HostInner {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) runtime: Runtime,
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) native: BTreeMap<String, xbhost_sdk::native::NativeBlock>,
    bots: BotFilter,
    cache: Option<CompiledCache>,
    plugins: Memo<LoadedPlugin>,
    courses: Memo<Course>,
}

/// An xbhost host. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

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
    pub blocks: usize,
    pub partitions: usize,
    pub messages: Vec<BlockMessage>,
    /// Learners whose stored group was deleted, reassigned by this load.
    pub reassigned: usize,
}

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
    /// Opens the host whose data lives in `data_dir` (created if missing): the store in
    /// `data_dir/db`, events appended to `data_dir/events.jsonl`, compiled components in
    /// `data_dir/cache` (unless the config names other places).
    pub fn open(data_dir: &Path, mut config: HostConfig) -> Result<Host> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let storage = SledStorage::open(&data_dir.join("db"))?;
        let events = Host::events_path(data_dir, &config);
        let sink = JsonlSink::open(&events)?;
        config
            .cache_dir
            .get_or_insert_with(|| data_dir.join("cache"));
        Host::new(Arc::new(storage), Arc::new(sink), config)
    }

    pub fn new(
        storage: Arc<dyn Storage>,
        sink: Arc<dyn EventSink>,
        config: HostConfig,
    ) -> Result<Host> {
        let runtime = Runtime::new(config.limits, config.pooling)?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(CompiledCache::new(dir, &runtime.engine)?),
            None => None,
        };
        Ok(Host {
            inner: Arc::new(HostInner {
                storage,
                runtime,
                sink,
                native: config.native_blocks,
                bots: config.bots,
                cache,
                plugins: Memo::default(),
                courses: Memo::default(),
            }),
        })
    }

    /// Where [`Host::open`] writes events for this data directory and config.
    pub fn events_path(data_dir: &Path, config: &HostConfig) -> PathBuf {
        config
            .events_file
            .clone()
            .unwrap_or_else(|| data_dir.join("events.jsonl"))
    }

    pub fn storage(&self) -> &dyn Storage {
        self.inner.storage.as_ref()
    }

    /// Checks and stores a plugin. Nothing is stored unless the plugin is a component built
    /// with the SDK for a compatible contract that compiles and links.
    pub fn add_plugin(&self, wasm: &[u8], name: Option<&str>) -> Result<PluginRecord> {
        let metadata = read_metadata(wasm)?;
        if !contract_compatible(&metadata.contract) {
            bail!(
                "plugin {:?} {} was built for contract {}, but this host implements contract {CONTRACT_VERSION} \
                 (a plugin must match the host's MAJOR.MINOR): rebuild it against a matching xbhost-sdk",
                metadata.name,
                metadata.version,
                metadata.contract
            );
        }
        let name = name.unwrap_or(&metadata.name);
        check_id("plugin name", name)?;
        let record = PluginRecord {
            name: name.to_string(),
            version: metadata.version,
            contract: metadata.contract,
            hash: blake3::hash(wasm).to_hex().to_string(),
            size: wasm.len() as u64,
        };
        let loaded = self
            .inner
            .runtime
            .load(record.clone(), wasm, self.inner.cache.as_ref())?;
        self.inner.storage.put_plugin(&record, wasm)?;
        self.inner.storage.flush()?;
        self.inner.plugins.replace(&record.name, Arc::new(loaded));
        info!(plugin = %record.name, version = %record.version, hash = %record.hash, "plugin added");
        Ok(record)
    }

    pub fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.inner.storage.plugins()
    }

    /// Validates and stores a course, replacing its earlier version (structure and
    /// partitions). Nothing is stored if anything is wrong.
    pub fn load_course(&self, doc: CourseDoc) -> Result<LoadReport> {
        let key = doc.course_key.clone();
        let course = Course::new(doc).with_context(|| format!("course {key:?}"))?;
        for block_type in course.block_types() {
            if self.inner.storage.plugin(block_type)?.is_none() {
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
        let messages = self.validate_all(&course)?;
        let replaced = self.inner.storage.course(&key)?.is_some();
        self.inner.storage.put_course(&course.doc)?;
        self.inner.storage.flush()?;
        self.inner.courses.replace(&key, course.clone());
        // Learners of deleted groups move now (with an event each), not on their next
        // visit, so reports and grades never see a group that no longer exists.
        let reassigned = if replaced {
            self.reassign_deleted_groups(&course)?
        } else {
            0
        };
        info!(course = %key, replaced, reassigned, "course loaded");
        Ok(LoadReport {
            course_key: key,
            replaced,
            blocks: course.doc.blocks.len(),
            partitions: course.partitions().len(),
            messages,
            reassigned,
        })
    }

    /// Every block's validation messages, from a read-only session.
    fn validate_all(&self, course: &Arc<Course>) -> Result<Vec<BlockMessage>> {
        let session = Session::new(
            self.inner.clone(),
            course.clone(),
            User::staff("xbhost-author"),
            Mode::ReadOnly,
        );
        let mut messages = Vec::new();
        for (index, block) in course.doc.blocks.iter().enumerate() {
            let found = session
                .call(
                    index,
                    0,
                    |guest, store| guest.call_validate(store).map(Ok),
                    |_| Ok(()),
                )
                .map_err(|f| anyhow!("validating block {:?} failed: {}", f.usage_id, f.error))?;
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
        Ok(messages)
    }

    /// The course, from memory or storage.
    pub fn course(&self, key: &str) -> Result<Arc<Course>> {
        self.inner.course(key)
    }

    pub fn course_keys(&self) -> Result<Vec<String>> {
        self.inner.storage.course_keys()
    }

    /// Checks the user id and finds the course and the block (its index), or says which
    /// one is unknown.
    fn locate(
        &self,
        course_key: &str,
        usage_id: &str,
        user_id: &str,
    ) -> Result<(Arc<Course>, usize)> {
        check_id("user id", user_id)?;
        let course = self.course(course_key)?;
        let index = course
            .block(usage_id)
            .ok_or_else(|| crate::errors::NotFound {
                what: "block",
                id: usage_id.to_string(),
                within: Some(course_key.to_string()),
            })?
            .index;
        Ok((course, index))
    }

    /// Whether the pooling instance allocator is in use.
    pub fn pooling(&self) -> bool {
        self.inner.runtime.pooling
    }

    /// The limits blocks run under.
    pub fn limits(&self) -> &SandboxLimits {
        &self.inner.runtime.limits
    }

    /// Loads (compiling, or from the compiled cache) a plugin now, and says from where.
    pub fn load_plugin(&self, name: &str) -> Result<Origin> {
        Ok(self.inner.plugin(name)?.origin)
    }

    /// [`Host::render`] on a worker thread, waited for at most the request deadline plus
    /// the outer grace. Epoch interruption stops blocks that run too long; this bounds a
    /// request whose host calls are stuck (for example on storage). A request that does
    /// not finish in time is an error; its worker is left to finish on its own and its
    /// late result is dropped.
    pub fn render_bounded(&self, request: &RenderRequest) -> Result<RenderOutput> {
        let limit: Duration = self.limits().request_deadline + self.limits().outer_grace;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (host, req) = (self.clone(), request.clone());
        let current = tracing::Span::current();
        std::thread::Builder::new()
            .name("xbhost-render".into())
            .spawn(move || {
                let _entered = current.enter();
                let _ = tx.send(host.render(&req));
            })
            .context("starting a render worker")?;
        match rx.recv_timeout(limit) {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(
                    course = %request.course_key,
                    usage_id = %request.usage_id,
                    user = %request.user.id,
                    "render did not finish within {} ms; abandoned",
                    limit.as_millis()
                );
                bail!(
                    "rendering {:?} of course {:?} for user {:?} did not finish within {} ms",
                    request.usage_id,
                    request.course_key,
                    request.user.id,
                    limit.as_millis()
                )
            }
        }
    }

    /// Renders a block for a user.
    pub fn render(&self, request: &RenderRequest) -> Result<RenderOutput> {
        let span = tracing::info_span!(
            "render",
            course = %request.course_key,
            usage_id = %request.usage_id,
            user = %request.user.id,
            view = ?request.view
        );
        let _entered = span.enter();
        if request.view != View::Student && !request.user.is_staff {
            return Err(crate::errors::Forbidden(format!(
                "user {:?} is not staff: the {:?} view is for staff only",
                request.user.id, request.view
            ))
            .into());
        }
        let (course, block) =
            self.locate(&request.course_key, &request.usage_id, &request.user.id)?;
        let is_bot = self.inner.bots.is_bot(request.user_agent.as_deref());
        // Masquerading staff see the course as chosen and write nothing: no assignment,
        // no state, no event (a read-only session).
        let (user, view, mode, audience) = match &request.masquerade {
            None => (
                request.user.clone(),
                request.view,
                Mode::Live,
                Audience {
                    is_bot,
                    ..Audience::default()
                },
            ),
            Some(_) if !request.user.is_staff => {
                return Err(crate::errors::Forbidden(format!(
                    "user {:?} is not staff: only staff may view as another learner or group",
                    request.user.id
                ))
                .into());
            }
            Some(Masquerade::Learner(id)) => {
                check_id("user id", id)?;
                (
                    User::learner(id),
                    View::Student,
                    Mode::ReadOnly,
                    Audience::default(),
                )
            }
            Some(Masquerade::Groups(groups)) => {
                for (partition, group) in groups {
                    if course
                        .partition(*partition)
                        .and_then(|p| p.group(*group))
                        .is_none()
                    {
                        return Err(crate::errors::NotFound {
                            what: "group",
                            id: format!("{group} (user partition {partition})"),
                            within: Some(request.course_key.clone()),
                        }
                        .into());
                    }
                }
                (
                    request.user.clone(),
                    View::Student,
                    Mode::ReadOnly,
                    Audience {
                        is_bot: false,
                        viewed_as: groups.clone(),
                    },
                )
            }
        };
        if is_bot {
            info!(user_agent = ?request.user_agent, "request from a bot: control groups, no events");
        }
        let session =
            Session::for_audience(self.inner.clone(), course.clone(), user, mode, audience);
        // A learner who names a block they cannot reach (another group's condition, a
        // restricted unit's content) gets it hidden, as they would inside its page.
        let fragment = match session.reachable(block) {
            Ok(true) => session.render_block(block, 0, view, None),
            Ok(false) => crate::session::HostFragment {
                hidden: true,
                ..Default::default()
            },
            Err(e) => {
                session.finish()?;
                return Err(e);
            }
        };
        let finished = session.finish()?;
        Ok(RenderOutput {
            user: request.user.id.clone(),
            html: if fragment.hidden {
                String::new()
            } else {
                fragment.html
            },
            hidden: fragment.hidden,
            title: fragment.title,
            icon: fragment.icon,
            tooltip: fragment.tooltip,
            visible_blocks: finished.visible_blocks,
            assignments: finished.assignments,
            experiments: finished.experiments,
            failures: finished.failures,
            events: finished.events,
        })
    }

    /// The children of a block this learner sees (through the block's `visible-children`).
    pub fn visible_children(
        &self,
        course_key: &str,
        usage_id: &str,
        user: &User,
    ) -> Result<Vec<String>> {
        let (course, block) = self.locate(course_key, usage_id, &user.id)?;
        let session = Session::new(self.inner.clone(), course.clone(), user.clone(), Mode::Live);
        let children = session.call(
            block,
            0,
            |guest, store| guest.call_visible_children(store),
            |_| Ok(()),
        );
        // Finish on every path: the call may have assigned a group.
        session.finish()?;
        children.map_err(|f| {
            anyhow!(
                "block {:?} ({}) failed: {}",
                f.usage_id,
                f.block_type,
                f.error
            )
        })
    }

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
            .ok_or_else(|| crate::errors::NotFound {
                what: "user partition",
                id: partition_id.to_string(),
                within: Some(course_key.to_string()),
            })?;
        let session = Session::for_experiments(
            self.inner.clone(),
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

    /// On sign-in or account creation: carries an anonymous visitor's groups (every
    /// course) over to the user, where the user has none; the user's own groups win. The
    /// visitor's groups are removed either way, so nobody is counted twice.
    pub fn refresh_identifier(&self, session_id: &str, user_id: &str) -> Result<Vec<CarriedOver>> {
        check_id("session id", session_id)?;
        check_id("user id", user_id)?;
        let visitor = User::anonymous(session_id);
        let mut out = Vec::new();
        for key in self.course_keys()? {
            let course = self.course(&key)?;
            if course.partitions().is_empty() {
                continue;
            }
            let session = Session::for_experiments(
                self.inner.clone(),
                course.clone(),
                User::learner(user_id),
                Mode::Live,
            );
            let carried = session.carry_over_from(&visitor.id)?;
            session.finish()?;
            for tag in carried {
                let Some(partition) = assignment::partition_of_tag(&tag.key) else {
                    continue;
                };
                out.push(CarriedOver {
                    course_key: key.clone(),
                    partition_id: partition,
                    session_group: tag.from_value,
                    user_group: tag.to_value,
                    carried: tag.carried,
                });
            }
        }
        info!(session = %session_id, user = %user_id, partitions = out.len(), "identifier refreshed");
        Ok(out)
    }

    /// Records course enrollment dates (user id, date) for the enrollment windows of a
    /// course's experiments. Every line is checked first; nothing is stored if one is bad.
    pub fn set_enrollments(&self, course_key: &str, dates: &[(String, String)]) -> Result<usize> {
        self.course(course_key)?;
        let mut canonical = Vec::with_capacity(dates.len());
        for (user, date) in dates {
            check_id("user id", user)?;
            let time = crate::experiment::parse_date(date)
                .with_context(|| format!("enrollment date of user {user:?}"))?;
            canonical.push((user.clone(), crate::experiment::format_date(time)));
        }
        self.inner.storage.set_enrollments(course_key, &canonical)?;
        self.inner.storage.flush()?;
        Ok(canonical.len())
    }

    /// Changes one experiment's controls (state, forced users, window) by storing a new
    /// version of the course, with the same checks as `course load`.
    pub fn update_experiment(
        &self,
        course_key: &str,
        partition_id: u64,
        change: impl FnOnce(&mut UserPartition) -> Result<()>,
    ) -> Result<UserPartition> {
        let mut doc = self.course(course_key)?.doc.clone();
        let partition = doc
            .user_partitions
            .iter_mut()
            .find(|p| p.id == partition_id)
            .ok_or_else(|| crate::errors::NotFound {
                what: "user partition",
                id: partition_id.to_string(),
                within: Some(course_key.to_string()),
            })?;
        change(partition)?;
        let updated = partition.clone();
        self.load_course(doc)?;
        info!(course = %course_key, partition = partition_id, state = ?updated.state, "experiment controls changed");
        Ok(updated)
    }
}

impl Host {
    /// The experiment report of a course, from storage and the event log `events`.
    pub fn report(
        &self,
        course_key: &str,
        events: &Path,
    ) -> Result<crate::report::ExperimentReport> {
        let course = self.course(course_key)?;
        crate::report::build(self.inner.storage.as_ref(), &course, events)
    }
}

/// One partition of an anonymous visitor carried over to a user.
#[derive(Debug, Clone, Serialize)]
pub struct CarriedOver {
    pub course_key: String,
    pub partition_id: u64,
    /// The visitor's group.
    pub session_group: String,
    /// The user's group afterwards.
    pub user_group: String,
    /// True when the user had no group and got the visitor's.
    pub carried: bool,
}

impl HostInner {
    pub(crate) fn course(&self, key: &str) -> Result<Arc<Course>> {
        self.courses.get_or_load(key, || {
            check_id("course key", key)?;
            let doc = self
                .storage
                .course(key)?
                .ok_or_else(|| crate::errors::NotFound {
                    what: "course",
                    id: key.to_string(),
                    within: None,
                })?;
            Course::new(doc).with_context(|| format!("stored course {key:?} is invalid"))
        })
    }

    /// The compiled plugin, compiling (or loading from the compiled cache) on first use.
    pub(crate) fn plugin(&self, name: &str) -> Result<Arc<LoadedPlugin>> {
        self.plugins.get_or_load(name, || {
            let record = self
                .storage
                .plugin(name)?
                .ok_or_else(|| anyhow!("no plugin named {name:?} is installed"))?;
            let wasm = self
                .storage
                .plugin_wasm(&record.hash)?
                .ok_or_else(|| anyhow!("the stored wasm of plugin {name:?} is missing"))?;
            if blake3::hash(&wasm).to_hex().as_str() != record.hash {
                bail!("the stored wasm of plugin {name:?} is corrupt (its blake3 does not match)");
            }
            Ok(Arc::new(self.runtime.load(
                record,
                &wasm,
                self.cache.as_ref(),
            )?))
        })
    }
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
    /// Learners whose stored group would no longer exist: they would be reassigned among
    /// the remaining groups (random partitions) or lose their group (other schemes).
    pub learners_to_reassign: usize,
}

impl Host {
    /// Imports an Open edX course export (a directory or a `.tar.gz`) and loads it. Nothing
    /// is stored unless the whole course imports and loads.
    pub fn import_course(
        &self,
        path: &Path,
        options: &crate::olx::ImportOptions,
    ) -> Result<(crate::olx::ImportReport, LoadReport)> {
        let (doc, report) = crate::olx::read_course(path, options)
            .with_context(|| format!("importing {}", path.display()))?;
        let loaded = self.load_course(doc)?;
        Ok((report, loaded))
    }

    /// What replacing a course's partitions with `doc`'s would do, without doing it.
    pub fn preview_course_change(&self, doc: &CourseDoc) -> Result<Vec<PartitionChange>> {
        let key = &doc.course_key;
        let old = self
            .inner
            .storage
            .course(key)?
            .map(|d| d.user_partitions)
            .unwrap_or_default();
        let mut changes = Vec::new();
        let assigned = |id: u64| {
            self.inner
                .storage
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
            // As a load does: only active random partitions reassign.
            let to_reassign = if new.is_random() && new.active {
                users
                    .iter()
                    .filter(|(_, v)| v.parse::<u64>().ok().is_none_or(|g| new.group(g).is_none()))
                    .count()
            } else {
                0
            };
            let unchanged = groups_added.is_empty()
                && groups_removed.is_empty()
                && groups_renamed.is_empty()
                && before == new;
            changes.push(PartitionChange {
                partition_id: new.id,
                name: new.name.clone(),
                status: if unchanged { "unchanged" } else { "changed" },
                groups_added,
                groups_removed,
                groups_renamed,
                learners_assigned: users.len(),
                learners_to_reassign: to_reassign,
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
            });
        }
        Ok(changes)
    }

    /// Reassigns, now, every learner of the course whose stored group in an active random
    /// partition no longer exists, each with an assignment event that names the old group.
    /// Returns how many were reassigned; one that fails is logged and left to the lazy
    /// reassignment of their next visit.
    fn reassign_deleted_groups(&self, course: &Arc<Course>) -> Result<usize> {
        let mut moved = 0;
        for partition in course
            .partitions()
            .iter()
            // Paused and switched-off experiments take nobody new: their learners of a
            // deleted group see control until the experiment is enabled again.
            .filter(|p| p.is_random() && p.active && p.state == ExperimentState::Enabled)
        {
            let tag = assignment::partition_tag_key(partition.id);
            for (user, value) in self
                .inner
                .storage
                .users_with_course_tag(course.key(), &tag)?
            {
                if value
                    .parse::<u64>()
                    .ok()
                    .is_some_and(|g| partition.group(g).is_some())
                {
                    continue;
                }
                let session = Session::for_experiments(
                    self.inner.clone(),
                    course.clone(),
                    User::learner(&user),
                    Mode::Live,
                );
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

    /// Calls a block's handler for a user: JSON in, JSON out. The block's writes are stored
    /// only if the handler succeeds.
    pub fn handle(
        &self,
        course_key: &str,
        usage_id: &str,
        user: &User,
        handler: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let (course, block) = self.locate(course_key, usage_id, &user.id)?;
        let session = Session::new(self.inner.clone(), course.clone(), user.clone(), Mode::Live);
        // Whatever happens, finish the session: checking access may have assigned a group,
        // whose event must go out and whose write must be flushed.
        let reachable = session.reachable(block);
        let answer = match reachable {
            Ok(true) => {
                let payload = payload.to_string();
                Some(session.call(
                    block,
                    0,
                    |guest, store| guest.call_handle(store, handler, &payload),
                    |_| Ok(()),
                ))
            }
            _ => None,
        };
        session.finish()?;
        let Some(answer) = answer else {
            reachable?;
            return Err(crate::errors::Forbidden(format!(
                "block {usage_id:?} of course {course_key:?} is not available to user {:?}",
                user.id
            ))
            .into());
        };
        let answer = answer.map_err(|f| crate::errors::HandlerFailed {
            kind: f.kind,
            message: format!(
                "handler {handler:?} of block {usage_id:?} ({}) failed: {}",
                f.block_type, f.error
            ),
        })?;
        serde_json::from_str(&answer).with_context(|| {
            format!("handler {handler:?} of block {usage_id:?} answered something that is not JSON")
        })
    }

    /// Grades learners over the problems each of them sees: one learner, or every learner
    /// with data in the course. Writes nothing.
    pub fn grades(&self, course_key: &str, user: Option<&str>) -> Result<GradeReport> {
        let course = self.course(course_key)?;
        let users = match user {
            Some(u) => {
                check_id("user id", u)?;
                vec![u.to_string()]
            }
            None => self.inner.storage.course_users(course_key)?,
        };
        let all = course_problems(&course);
        let mut learners = Vec::new();
        for id in users {
            let session = Session::with_deadline(
                self.inner.clone(),
                course.clone(),
                User::learner(&id),
                Mode::ReadOnly,
                GRADING_BUDGET,
            );
            let mut grade = LearnerGrade {
                user: id.clone(),
                problems: BTreeMap::new(),
                earned: 0.0,
                possible: 0.0,
            };
            for index in grading::visible_problems(&session)
                .with_context(|| format!("grading user {id:?}"))?
            {
                let score = grading::score(&session, index)
                    .with_context(|| format!("grading user {id:?}"))?;
                grade.earned += score.earned;
                grade.possible += score.possible;
                grade
                    .problems
                    .insert(course.block_at(index).def.usage_id.clone(), score);
            }
            learners.push(grade);
        }
        Ok(GradeReport {
            course_key: course_key.to_string(),
            problems: all,
            learners,
        })
    }

    /// Puts a learner in a group of a cohort (non-random) partition. Random partitions are
    /// only ever assigned by the sampling authority.
    pub fn set_cohort(
        &self,
        course_key: &str,
        partition_id: u64,
        user_id: &str,
        group_id: u64,
    ) -> Result<Group> {
        check_id("user id", user_id)?;
        let course = self.course(course_key)?;
        let partition = course
            .partition(partition_id)
            .ok_or_else(|| crate::errors::NotFound {
                what: "user partition",
                id: partition_id.to_string(),
                within: Some(course_key.to_string()),
            })?;
        if partition.is_random() {
            bail!(
                "user partition {partition_id} ({:?}) is a random experiment: learners are assigned by the host, not by staff",
                partition.name
            );
        }
        let group = partition
            .group(group_id)
            .ok_or_else(|| {
                anyhow!(
                    "user partition {partition_id} ({:?}) has no group {group_id}",
                    partition.name
                )
            })?
            .clone();
        self.inner.storage.set_course_tag(
            course_key,
            user_id,
            &assignment::partition_tag_key(partition_id),
            &group_id.to_string(),
        )?;
        self.inner.storage.flush()?;
        info!(course = %course_key, partition = partition_id, user = %user_id, group = group_id, "learner put in cohort group");
        Ok(group)
    }

    /// Adds an empty vertical for every group of a split test's partition that has no
    /// child, mapped to that group, and stores the course. Returns the new usage ids.
    pub fn add_missing_group_children(
        &self,
        course_key: &str,
        split_test: &str,
    ) -> Result<Vec<String>> {
        let course = self.course(course_key)?;
        let mut doc = course.doc.clone();
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
            self.load_course(doc)?;
        }
        Ok(added)
    }
}

/// Every graded block of the course, in course order (depth first from the roots).
fn course_problems(course: &Course) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<usize> = course.roots().collect();
    stack.reverse();
    while let Some(i) = stack.pop() {
        let block = course.block_at(i);
        if block.def.block_type == grading::GRADED_TYPE {
            out.push(block.def.usage_id.clone());
        }
        stack.extend(
            block
                .def
                .children
                .iter()
                .rev()
                .filter_map(|c| course.block(c).map(|b| b.index)),
        );
    }
    out
}

/// How long grading one learner may take (it walks the whole course).
const GRADING_BUDGET: Duration = Duration::from_secs(30);
