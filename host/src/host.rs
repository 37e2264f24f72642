//! The host: storage, the wasm runtime, loaded plugins and courses, and the event sink,
//! behind the operations the CLI (and later the server) offer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;
use tracing::info;

use crate::assignment;
use crate::events::{EventSink, JsonlSink};
use crate::ids::check_id;
use crate::model::{Course, CourseDoc, Group};
use crate::request::{RenderOutput, RenderRequest, User, View};
use crate::runtime::bindings::types::Severity;
use crate::runtime::cache::{CompiledCache, Origin};
use crate::runtime::plugin::{CONTRACT_VERSION, contract_compatible, read_metadata};
use crate::runtime::{LoadedPlugin, Pooling, Runtime, SandboxLimits};
use crate::session::{Mode, Session};
use crate::storage::{PluginRecord, SledStorage, Storage};

/// Settings of a host.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    pub limits: SandboxLimits,
    pub pooling: Pooling,
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

impl HostConfig {
    /// Defaults with the `XBHOST_*` environment overrides (see [`SandboxLimits::from_env`]).
    pub fn from_env() -> Result<HostConfig> {
        Ok(HostConfig {
            limits: SandboxLimits::from_env()?,
            pooling: Pooling::from_env()?,
            cache_dir: None,
        })
    }
}

pub(crate) struct HostInner {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) runtime: Runtime,
    pub(crate) sink: Arc<dyn EventSink>,
    cache: Option<CompiledCache>,
    plugins: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    courses: RwLock<HashMap<String, Arc<Course>>>,
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
}

/// A learner's group in a partition as `xbhost assign` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct AssignmentView {
    pub course_key: String,
    pub partition_id: u64,
    pub partition_name: String,
    pub user: String,
    pub group: Option<Group>,
    /// True when the group is the stored one; false when it is what the learner would get.
    pub stored: bool,
}

impl Host {
    /// Opens the host whose data lives in `data_dir` (created if missing): the store in
    /// `data_dir/db`, events appended to `data_dir/events.jsonl`, compiled components in
    /// `data_dir/cache` (unless the config names another place).
    pub fn open(data_dir: &Path, mut config: HostConfig) -> Result<Host> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let storage = SledStorage::open(&data_dir.join("db"))?;
        let sink = JsonlSink::open(&data_dir.join("events.jsonl"))?;
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
                cache,
                plugins: RwLock::default(),
                courses: RwLock::default(),
            }),
        })
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
        self.write_plugins()
            .insert(record.name.clone(), Arc::new(loaded));
        info!(plugin = %record.name, version = %record.version, hash = %record.hash, "plugin added");
        Ok(record)
    }

    pub fn plugins(&self) -> Result<Vec<PluginRecord>> {
        self.inner.storage.plugins()
    }

    fn write_plugins(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<LoadedPlugin>>> {
        self.inner
            .plugins
            .write()
            .unwrap_or_else(|e| e.into_inner())
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
                    .find(|b| b.block_type == block_type)
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
        self.inner
            .courses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), course.clone());
        info!(course = %key, replaced, "course loaded");
        Ok(LoadReport {
            course_key: key,
            replaced,
            blocks: course.doc.blocks.len(),
            partitions: course.partitions().len(),
            messages,
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
        check_id("user id", &request.user.id)?;
        if request.view != View::Student && !request.user.is_staff {
            bail!(
                "user {:?} is not staff: the {:?} view is for staff only",
                request.user.id,
                request.view
            );
        }
        let course = self.course(&request.course_key)?;
        let block = course.block(&request.usage_id).ok_or_else(|| {
            anyhow!(
                "course {:?} has no block {:?}",
                request.course_key,
                request.usage_id
            )
        })?;
        let session = Session::new(
            self.inner.clone(),
            course.clone(),
            request.user.clone(),
            Mode::Live,
        );
        let fragment = session.render_block(block.index, 0, request.view, None);
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
        check_id("user id", &user.id)?;
        let course = self.course(course_key)?;
        let block = course
            .block(usage_id)
            .ok_or_else(|| anyhow!("course {course_key:?} has no block {usage_id:?}"))?;
        let session = Session::new(self.inner.clone(), course.clone(), user.clone(), Mode::Live);
        let children = session
            .call(
                block.index,
                0,
                |guest, store| guest.call_visible_children(store),
                |_| Ok(()),
            )
            .map_err(|f| {
                anyhow!(
                    "block {:?} ({}) failed: {}",
                    f.usage_id,
                    f.block_type,
                    f.error
                )
            })?;
        session.finish()?;
        Ok(children)
    }

    /// The learner's group in a partition: the stored one, or the one they would get.
    /// Writes nothing, so maintenance scripts and other services can call it freely.
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
            .ok_or_else(|| anyhow!("course {course_key:?} has no user partition {partition_id}"))?;
        let stored = self
            .inner
            .storage
            .course_tag(
                course_key,
                user_id,
                &assignment::partition_tag_key(partition_id),
            )?
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|id| partition.group(id).cloned());
        let (group, stored) = match stored {
            Some(group) => (Some(group), true),
            None if partition.active && partition.is_random() => (
                assignment::assign(course_key, partition, user_id).cloned(),
                false,
            ),
            None => (None, false),
        };
        Ok(AssignmentView {
            course_key: course_key.to_string(),
            partition_id,
            partition_name: partition.name.clone(),
            user: user_id.to_string(),
            group,
            stored,
        })
    }
}

impl HostInner {
    pub(crate) fn course(&self, key: &str) -> Result<Arc<Course>> {
        if let Some(course) = self
            .courses
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
        {
            return Ok(course.clone());
        }
        check_id("course key", key)?;
        let doc = self
            .storage
            .course(key)?
            .ok_or_else(|| anyhow!("unknown course {key:?}"))?;
        let course =
            Course::new(doc).with_context(|| format!("stored course {key:?} is invalid"))?;
        self.courses
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), course.clone());
        Ok(course)
    }

    /// The compiled plugin, compiling it on first use.
    pub(crate) fn plugin(&self, name: &str) -> Result<Arc<LoadedPlugin>> {
        if let Some(p) = self
            .plugins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(p.clone());
        }
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
        let loaded = Arc::new(self.runtime.load(record, &wasm, self.cache.as_ref())?);
        let mut plugins = self.plugins.write().unwrap_or_else(|e| e.into_inner());
        Ok(plugins.entry(name.to_string()).or_insert(loaded).clone())
    }
}
