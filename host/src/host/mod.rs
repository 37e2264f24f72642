//! The host: the facade the CLI and the server use, by subject. This file holds the host
//! itself (storage, the plugin registry, the event sink, the course cache, bot detection)
//! and what every subject needs (opening, course lookup); each subject is an `impl Host`
//! of its own file:
//!
//! - `plugins`: adding and loading plugins.
//! - `courses`: loading, validating, importing and previewing courses; missing groups.
//! - `learners`: rendering, handlers, grades, cohorts, enrollments, identifiers.
//! - `experiments`: a learner's assignment, experiment controls, reassignment, the report.
//! - `scenarios`: the scenarios plugins ship, as a course per plugin.
//!
//! A request reaches the session through [`HostHandle`], never through this type.

mod course_versions;
pub mod courses;
pub mod experiments;
pub mod learners;
pub mod plugins;
pub mod scenarios;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};

use crate::bots::BotFilter;
use crate::events::{EventSink, JsonlSink};
use crate::ids::check_id;
use crate::memo::Memo;
use crate::model::Course;
use crate::runtime::cache::CompiledCache;
use crate::runtime::{PluginRegistry, Pooling, Runtime, SandboxLimits};
use crate::session::HostHandle;
use crate::storage::{Change, Storage};

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
    /// How the event log is kept: size rotation, events deferred after failed writes.
    pub event_log: crate::events::EventLogOptions,
    /// A PostgreSQL database (`postgres://...`) to keep the data in, shared with other
    /// hosts, instead of the data directory's sled store; its events go to its `events`
    /// table instead of a file.
    pub database: Option<String>,
    /// How the host connects to the database (the pool is sized by [`Host::open`]).
    pub database_options: crate::storage::PgOptions,
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
            event_log: Default::default(),
            database: None,
            database_options: Default::default(),
        })
    }
}

struct HostInner {
    /// What sessions get: storage, sink, plugins, native blocks.
    handle: HostHandle,
    bots: BotFilter,
    courses: Memo<Course>,
}

/// An xbhost host. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Host {
    inner: Arc<HostInner>,
}

impl Host {
    /// Opens the host whose data lives in `data_dir` (created if missing): the store in
    /// `data_dir/db`, events appended to `data_dir/events.jsonl`, compiled components in
    /// `data_dir/cache` (unless the config names other places).
    pub fn open(data_dir: &Path, mut config: HostConfig) -> Result<Host> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        config
            .cache_dir
            .get_or_insert_with(|| data_dir.join("cache"));
        if let Some(url) = config.database.clone() {
            // A connection for every render the host runs at once, and a few for the
            // CLI-like work beside them (uploads, reports, health checks).
            let mut options = config.database_options.clone();
            options.pool_size = config.limits.concurrent_requests.max(1) + 4;
            let storage: Arc<dyn Storage> =
                Arc::new(crate::storage::PgStorage::connect(&url, &options)?);
            let sink = Arc::new(crate::events::StoreSink::new(storage.clone()));
            return Host::new(storage, sink, config);
        }
        let storage = crate::storage::RecoveringStore::open(&data_dir.join("db"))?;
        let events = Host::events_path(data_dir, &config);
        let sink = JsonlSink::open_with(&events, config.event_log)?;
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
        let plugins = Arc::new(PluginRegistry::new(runtime, cache, storage.clone()));
        // Events a previous run left pending in the store go to the log before any request.
        crate::events::outbox::recover(storage.as_ref(), sink.as_ref());
        let host = Host {
            inner: Arc::new(HostInner {
                handle: HostHandle {
                    storage: storage.clone(),
                    sink,
                    plugins,
                    native: Arc::new(config.native_blocks),
                },
                bots: config.bots,
                courses: Memo::default(),
            }),
        };
        // What other hosts change in a shared store is forgotten here, so it is read
        // again on next use (the listener holds the host weakly: it ends with the host).
        let weak = Arc::downgrade(&host.inner);
        storage.watch(Arc::new(move |change: &Change| {
            let Some(inner) = weak.upgrade() else { return };
            tracing::debug!(?change, "a change made elsewhere");
            match change {
                Change::Course(key) => inner.courses.forget(key),
                // Compiled now, not on the next request that needs it (see `preload`).
                Change::Plugin(name) => inner.handle.plugins.preload(name),
                Change::Everything => {
                    inner.courses.forget_all();
                    inner.handle.plugins.forget_all();
                }
                // The server's ledger hears of these (`server::ledger`).
                Change::Revoked { .. } => {}
            }
        }))?;
        Ok(host)
    }

    /// Where [`Host::open`] writes events for this data directory and config.
    pub fn events_path(data_dir: &Path, config: &HostConfig) -> PathBuf {
        config
            .events_file
            .clone()
            .unwrap_or_else(|| data_dir.join("events.jsonl"))
    }

    pub fn storage(&self) -> &dyn Storage {
        self.inner.handle.storage.as_ref()
    }

    /// The store, shared (for the server's token records, which outlive a request).
    pub fn storage_arc(&self) -> Arc<dyn Storage> {
        self.inner.handle.storage.clone()
    }

    /// The course, from memory or storage.
    pub fn course(&self, key: &str) -> Result<Arc<Course>> {
        self.inner.courses.get_or_load(key, || {
            check_id("course key", key)?;
            let doc = self
                .storage()
                .course(key)?
                .ok_or_else(|| crate::errors::NotFound {
                    what: "course",
                    id: key.to_string(),
                    within: None,
                })?;
            Course::new(doc).with_context(|| format!("stored course {key:?} is invalid"))
        })
    }

    pub fn course_keys(&self) -> Result<Vec<String>> {
        self.storage().course_keys()
    }

    /// Whether the pooling instance allocator is in use.
    pub fn pooling(&self) -> bool {
        self.inner.handle.plugins.runtime().pooling
    }

    /// The limits blocks run under.
    pub fn limits(&self) -> &SandboxLimits {
        self.inner.handle.limits()
    }
}

/// The error for a partition the course does not have.
fn unknown_partition(course_key: &str, partition_id: u64) -> crate::errors::NotFound {
    crate::errors::NotFound {
        what: "user partition",
        id: partition_id.to_string(),
        within: Some(course_key.to_string()),
    }
}
