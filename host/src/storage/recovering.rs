//! [`RecoveringStore`]: the sled store of a data directory, kept usable through a full or
//! failing disk.
//!
//! sled stops for good after an I/O error (it keeps the error until the database is opened
//! again), so a disk that filled up once would fail every later write even after space is
//! freed. This wrapper notices a failed operation, answers with a one-line error naming
//! the data directory, and on a later operation (at most once a second) reopens the store:
//! everything acknowledged was flushed before it was acknowledged, so reopening loses only
//! writes no one was told are stored. A panic inside sled (a damaged file it cannot read)
//! becomes an error too. [`Storage::check_writable`] reports the state for `/healthz`.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use super::contract::{
    BlockWrites, CarriedTag, CourseWrite, FirstWrite, OutboxEntry, PluginRecord, Storage,
};
use super::health;
use super::sled_store::SledStorage;
use crate::errors::StoreUnavailable;
use crate::model::CourseDoc;

/// How often a failed store is tried again, and a writable one probed for `/healthz`.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the wrapper knows of the store.
#[derive(Default)]
struct Health {
    /// Why the store failed, while it is failed.
    failed: Option<String>,
    /// The last reopen attempt (or probe), and its outcome.
    last_check: Option<(Instant, Result<(), String>)>,
}

pub struct RecoveringStore {
    dir: PathBuf,
    /// `None` while the store is closed after a failure and not yet reopened.
    current: RwLock<Option<SledStorage>>,
    health: Mutex<Health>,
    /// Something was written since the last flush.
    dirty: AtomicBool,
    /// `health.failed` is set: read without the lock by every operation.
    failing: AtomicBool,
    /// How many times the store was closed after a failure: a request that saw another
    /// epoch than the one it started in may have lost writes (see `Storage::epoch`).
    epoch: AtomicU64,
}

impl RecoveringStore {
    /// Opens the store in `dir`; an error (damaged files, a lock held by another process)
    /// names the directory.
    pub fn open(dir: &Path) -> Result<RecoveringStore> {
        let store = open_catching_panics(dir)?;
        check_generation(dir, &store)?;
        Ok(RecoveringStore {
            dir: dir.to_path_buf(),
            current: RwLock::new(Some(store)),
            health: Mutex::new(Health::default()),
            dirty: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
        })
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one store operation: reopens a failed store first when a retry is due, marks
    /// the store failed when sled reports an I/O error, corruption or panics.
    fn with<R>(&self, op: impl FnOnce(&SledStorage) -> Result<R>) -> Result<R> {
        self.reopen_if_due();
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        let Some(store) = current.as_ref() else {
            let why = self.health().failed.clone().unwrap_or_default();
            return Err(self.unavailable(why));
        };
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| op(store)))
            .unwrap_or_else(|panic| Err(anyhow!("sled panicked: {}", panic_text(&panic))));
        match outcome {
            Ok(value) => Ok(value),
            Err(error) if is_store_failure(&error) => {
                let why = self.redact(one_line(&error));
                drop(current);
                self.fail(&why);
                Err(self.unavailable(why))
            }
            Err(error) => Err(error),
        }
    }

    /// The cause without the store's path (clients of `/healthz` see it).
    fn redact(&self, why: String) -> String {
        why.replace(&self.dir.display().to_string(), "<the store directory>")
    }

    fn unavailable(&self, why: String) -> anyhow::Error {
        anyhow::Error::new(StoreUnavailable {
            dir: self.dir.display().to_string(),
            why,
        })
    }

    /// Marks the store failed and closes it, so that the next retry can open it again
    /// (sled holds a lock on its files while open).
    fn fail(&self, why: &str) {
        let mut health = self.health();
        if health.failed.is_none() {
            tracing::error!(
                data = %self.dir.display(),
                "the store failed: {why}; retrying every {}s (writes are refused until then)",
                RETRY_EVERY.as_secs()
            );
        }
        health.failed = Some(why.to_string());
        self.failing.store(true, Ordering::Release);
        health.last_check = Some((Instant::now(), Err(why.to_string())));
        drop(health);
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = current.take() {
            // Whatever it held unflushed is gone: requests that wrote it must not succeed.
            self.epoch.fetch_add(1, Ordering::AcqRel);
            drop(store);
        }
    }

    fn reopen_if_due(&self) {
        if !self.failing.load(Ordering::Acquire) {
            return;
        }
        {
            let health = self.health();
            if health.failed.is_none() {
                return;
            }
            if let Some((at, _)) = &health.last_check
                && at.elapsed() < RETRY_EVERY
            {
                return;
            }
        }
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        let mut health = self.health();
        if health.failed.is_none() {
            return; // another thread reopened it meanwhile
        }
        if let Some((at, _)) = &health.last_check
            && at.elapsed() < RETRY_EVERY
        {
            return; // another thread tried just now
        }
        // Dropped handles may hold sled's lock for a moment (its flusher thread).
        drop(current.take());
        let reopened = open_catching_panics(&self.dir).and_then(|store| {
            health::probe(&store)?;
            Ok(store)
        });
        match reopened {
            Ok(store) => {
                tracing::info!(data = %self.dir.display(), "the store is writable again");
                *current = Some(store);
                health.failed = None;
                self.failing.store(false, Ordering::Release);
                health.last_check = Some((Instant::now(), Ok(())));
            }
            Err(error) => {
                let why = self.redact(one_line(&error));
                tracing::warn!(data = %self.dir.display(), "the store is still failing: {why}");
                health.failed = Some(why.clone());
                health.last_check = Some((Instant::now(), Err(why)));
            }
        }
    }
}

/// Where the generation at the last clean stop is kept: beside the store (sled owns its
/// directory).
fn generation_file(dir: &Path) -> PathBuf {
    dir.with_extension("generation")
}

/// sled reads a damaged part of its log as the log's end and silently drops what follows.
/// A store that holds fewer flushes than it had at its last clean stop lost acknowledged
/// writes that way: refuse it, naming the directory.
fn check_generation(dir: &Path, store: &SledStorage) -> Result<()> {
    if !health::was_recovered(store) {
        return Ok(()); // a new, empty store: nothing of the recorded one is in it
    }
    let Ok(text) = std::fs::read_to_string(generation_file(dir)) else {
        return Ok(()); // never stopped cleanly since this check exists
    };
    let Ok(recorded) = text.trim().parse::<u64>() else {
        return Ok(());
    };
    let holds = health::generation(store)?;
    if holds < recorded {
        return Err(anyhow!(
            "cannot open the store in {}: it is damaged: it holds {holds} flushes but had \
             {recorded} when it last stopped cleanly, so writes that were acknowledged are \
             gone (sled drops a damaged part of its log); restore it from a backup (if you \
             put an older copy there on purpose, delete {})",
            dir.display(),
            generation_file(dir).display()
        ));
    }
    Ok(())
}

impl Drop for RecoveringStore {
    /// A clean stop records the generation the store reached (see [`check_generation`]).
    fn drop(&mut self) {
        let current = self.current.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(store) = current.as_ref() else {
            return;
        };
        let recorded = store
            .flush()
            .and_then(|()| health::generation(store))
            .and_then(|generation| {
                let path = generation_file(&self.dir);
                let staged = path.with_extension("generation.new");
                let mut file = std::fs::File::create(&staged)?;
                std::io::Write::write_all(&mut file, format!("{generation}\n").as_bytes())?;
                file.sync_all()?;
                std::fs::rename(&staged, &path)?;
                Ok(())
            });
        if let Err(error) = recorded {
            tracing::warn!(data = %self.dir.display(), "could not record the store's generation at stop: {error:#}");
        }
    }
}

/// How long an open waits for sled's lock: a store this process just closed (a reopen, a
/// host dropped and opened again) holds it until sled's background writes end, which takes
/// milliseconds. Another process holding it is reported after this.
const LOCK_WAIT: Duration = Duration::from_secs(1);

fn open_catching_panics(dir: &Path) -> Result<SledStorage> {
    let started = Instant::now();
    loop {
        match open_once(dir) {
            Err(error)
                if crate::errors::find::<crate::errors::StoreInUse>(&error).is_some()
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn open_once(dir: &Path) -> Result<SledStorage> {
    std::panic::catch_unwind(|| SledStorage::open(dir)).unwrap_or_else(|panic| {
        Err(anyhow!(
            "cannot open the store in {}: it is damaged (sled panicked: {}); restore it from \
             a backup, or move it away to start empty",
            dir.display(),
            panic_text(&panic)
        ))
    })
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

/// The innermost cause, on one line.
fn one_line(error: &anyhow::Error) -> String {
    error.root_cause().to_string().replace('\n', " ")
}

/// Whether an error is the store's (I/O, corruption, a sled bug or panic), not the
/// caller's (a key that is too long, a document that does not parse).
fn is_store_failure(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<sled::Error>().is_some_and(|e| {
            matches!(
                e,
                sled::Error::Io(_) | sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)
            )
        }) || cause.downcast_ref::<std::io::Error>().is_some()
    }) || error.to_string().starts_with("sled panicked")
}

macro_rules! delegate {
    (reads { $( fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )* }
     writes { $( fn $wname:ident(&self $(, $warg:ident: $wty:ty)*) -> $wret:ty; )* }) => {
        $(
            fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.with(|store| store.$name($($arg),*))
            }
        )*
        $(
            fn $wname(&self $(, $warg: $wty)*) -> $wret {
                self.dirty.store(true, Ordering::Release);
                self.with(|store| store.$wname($($warg),*))
            }
        )*
    };
}

impl Storage for RecoveringStore {
    delegate! {
        reads {
            fn course_tags(&self, course: &str, user: &str) -> Result<BTreeMap<String, String>>;
            fn course_tag(&self, course: &str, user: &str, key: &str) -> Result<Option<String>>;
            fn users_with_course_tag(&self, course: &str, key: &str) -> Result<Vec<(String, String)>>;
            fn course_users(&self, course: &str) -> Result<Vec<String>>;
            fn user_tags(&self, user: &str) -> Result<BTreeMap<String, String>>;
            fn user_tag(&self, user: &str, key: &str) -> Result<Option<String>>;
            fn user_state(&self, course: &str, user: &str, usage: &str) -> Result<Option<String>>;
            fn block_tallies(&self, course: &str, usage: &str) -> Result<BTreeMap<String, i64>>;
            fn course(&self, key: &str) -> Result<Option<CourseDoc>>;
            fn course_with_version(&self, key: &str) -> Result<Option<(CourseDoc, u64)>>;
            fn course_keys(&self) -> Result<Vec<String>>;
            fn plugin(&self, name: &str) -> Result<Option<PluginRecord>>;
            fn plugins(&self) -> Result<Vec<PluginRecord>>;
            fn plugin_wasm(&self, hash: &str) -> Result<Option<Vec<u8>>>;
            fn enrollment(&self, course: &str, user: &str) -> Result<Option<String>>;
            fn outbox(&self) -> Result<Vec<OutboxEntry>>;
        }
        writes {
            fn set_course_tag(&self, course: &str, user: &str, key: &str, value: &str) -> Result<()>;
            fn set_course_tag_if_absent(&self, course: &str, user: &str, key: &str, value: &str) -> Result<FirstWrite>;
            fn replace_course_tag(&self, course: &str, user: &str, key: &str, expected: &str, value: &str) -> Result<FirstWrite>;
            fn set_user_tag(&self, user: &str, key: &str, value: &str) -> Result<()>;
            fn set_user_state(&self, course: &str, user: &str, usage: &str, json: &str) -> Result<()>;
            fn put_course(&self, doc: &CourseDoc) -> Result<()>;
            fn put_course_if_version(&self, doc: &CourseDoc, expected: Option<u64>) -> Result<CourseWrite>;
            fn put_plugin(&self, record: &PluginRecord, wasm: &[u8]) -> Result<()>;
            fn set_enrollments(&self, course: &str, dates: &[(String, String)]) -> Result<()>;
            fn carry_over_course_tags(&self, course: &str, from: &str, to: &str, keys: &[String]) -> Result<Vec<CarriedTag>>;
            fn commit(&self, course: &str, user: &str, writes: &BlockWrites) -> Result<()>;
            fn meta_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>>;
            fn assign_course_tag(&self, course: &str, user: &str, key: &str, expected: Option<&str>, value: &str, entry: &OutboxEntry) -> Result<FirstWrite>;
            fn carry_over_course_tags_with_outbox(&self, course: &str, from: &str, to: &str, keys: &[String], entry_for: &dyn Fn(&str, &str) -> Option<OutboxEntry>) -> Result<Vec<CarriedTag>>;
            fn put_outbox(&self, entries: &[OutboxEntry]) -> Result<()>;
            fn remove_from_outbox(&self, ids: &[String]) -> Result<()>;
        }
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn keeps_outbox(&self) -> bool {
        true
    }

    /// Counts a generation only when something was written since the last flush, so a
    /// flush with nothing pending stays what sled makes it: a check that returns at once.
    fn flush(&self) -> Result<()> {
        self.with(|store| {
            if self.dirty.swap(false, Ordering::AcqRel)
                && let Err(e) = health::bump_generation(store)
            {
                self.dirty.store(true, Ordering::Release);
                return Err(e);
            }
            store.flush()
        })
    }

    /// A write and a flush, at most once a second (the answer is kept between): whether
    /// the store takes writes now, for `/healthz`.
    fn check_writable(&self) -> Result<()> {
        {
            let health = self.health();
            if let Some((at, outcome)) = &health.last_check
                && at.elapsed() < RETRY_EVERY
            {
                return outcome.clone().map_err(|why| self.unavailable(why));
            }
        }
        let outcome = self.with(health::probe).map_err(|e| {
            match crate::errors::find::<StoreUnavailable>(&e) {
                Some(store) => store.why.clone(),
                None => self.redact(one_line(&e)),
            }
        });
        self.health().last_check = Some((Instant::now(), outcome.clone()));
        outcome.map_err(|why| self.unavailable(why))
    }
}
