//! Where events go: the [`EventSink`] trait, the in-memory sink, and the process's
//! delivery counters. Imports only `event`.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Result;

use super::event::{Event, LoggedEvent};

/// Where events go. A sink never decides whether a page succeeds: delivery
/// ([`super::outbox::deliver`]) counts and logs what it cannot write.
pub trait EventSink: Send + Sync {
    /// Appends the events in one write: all of them, or (as far as the sink can make it so)
    /// none. An error means none of them is in the log.
    fn append(&self, events: &[LoggedEvent]) -> Result<()>;

    /// Appends events that have no id yet (each gets a new one).
    fn emit(&self, events: &[Event]) -> Result<()> {
        let logged: Vec<LoggedEvent> = events.iter().cloned().map(LoggedEvent::new).collect();
        self.append(&logged)
    }

    /// Which of `ids` the log already holds, looked for in its most recent part (where an
    /// event written just before a crash is), so a replay writes no event twice.
    fn logged_ids(&self, ids: &BTreeSet<String>) -> Result<BTreeSet<String>>;

    /// What logs call this sink (the file, for the operator; never shown to users).
    fn describe(&self) -> String;

    /// The ids of events this process kept in the store after a failed write, to write
    /// on a later delivery.
    fn deferred(&self) -> &Deferred;
}

/// How many events may wait in the store for a retry, by default.
pub const DEFAULT_MAX_DEFERRED: usize = 100_000;

/// Events of this sink waiting in the store for a retry, by id, and how many may wait.
#[derive(Debug)]
pub struct Deferred {
    waiting: Mutex<Waiting>,
    /// How many wait, as of the last change: every request reads it, few take the lock.
    count: AtomicU64,
    /// At most this many events wait in the store; beyond, a failed write loses them
    /// (counted and logged).
    pub max: usize,
}

/// The events waiting, and when a retry last ran.
#[derive(Debug, Default)]
pub struct Waiting {
    pub ids: BTreeSet<String>,
    pub last_retry: Option<std::time::Instant>,
}

impl Deferred {
    pub fn new(max: usize) -> Deferred {
        Deferred {
            waiting: Mutex::new(Waiting::default()),
            count: AtomicU64::new(0),
            max,
        }
    }

    /// The waiting events, locked: a retry holds the lock while it writes, so two
    /// requests never write the same waiting event.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The waiting events, unless another request holds them (it is retrying them).
    pub fn try_lock(&self) -> Option<std::sync::MutexGuard<'_, Waiting>> {
        match self.waiting.try_lock() {
            Ok(waiting) => Some(waiting),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// How many events waited at the last change (without the lock).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Records how many wait now (after a change, under the lock), here and in the
    /// process's `xbhost_events_waiting`.
    pub fn update(&self, waiting: &Waiting) {
        let n = waiting.ids.len() as u64;
        let before = self.count.swap(n, Ordering::Relaxed);
        if n >= before {
            WAITING.fetch_add(n - before, Ordering::Relaxed);
        } else {
            WAITING.fetch_sub(before - n, Ordering::Relaxed);
        }
    }
}

impl Default for Deferred {
    fn default() -> Deferred {
        Deferred::new(DEFAULT_MAX_DEFERRED)
    }
}

/// Keeps events in memory, for tests and embedding.
#[derive(Default)]
pub struct MemorySink {
    events: Mutex<Vec<LoggedEvent>>,
    deferred: Deferred,
}

impl MemorySink {
    pub fn events(&self) -> Vec<Event> {
        self.lock().iter().map(|l| l.event.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LoggedEvent>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EventSink for MemorySink {
    fn append(&self, events: &[LoggedEvent]) -> Result<()> {
        self.lock().extend_from_slice(events);
        Ok(())
    }

    fn logged_ids(&self, ids: &BTreeSet<String>) -> Result<BTreeSet<String>> {
        Ok(self
            .lock()
            .iter()
            .filter(|l| ids.contains(&l.id))
            .map(|l| l.id.clone())
            .collect())
    }

    fn describe(&self) -> String {
        "the in-memory event sink".to_string()
    }

    fn deferred(&self) -> &Deferred {
        &self.deferred
    }
}

/// What this process's event deliveries came to, for `/metrics`. Process-wide, as a
/// metrics registry is: one host per process in production.
struct Counters {
    written: AtomicU64,
    deferred: AtomicU64,
    lost: AtomicU64,
    replayed: AtomicU64,
    write_errors: AtomicU64,
}

static COUNTERS: Counters = Counters {
    written: AtomicU64::new(0),
    deferred: AtomicU64::new(0),
    lost: AtomicU64::new(0),
    replayed: AtomicU64::new(0),
    write_errors: AtomicU64::new(0),
};

/// A reading of the delivery counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Events appended to the log.
    pub written: u64,
    /// Events a failed write left in the store, to be written later.
    pub deferred: u64,
    /// Events neither written nor kept: gone.
    pub lost: u64,
    /// Events written from the store after a crash or a failed write.
    pub replayed: u64,
    /// Writes to the log that failed.
    pub write_errors: u64,
    /// Events waiting in the store for a retry now.
    pub waiting: u64,
}

static WAITING: AtomicU64 = AtomicU64::new(0);

/// The process's delivery counters now.
pub fn delivery_counts() -> DeliveryCounts {
    let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
    DeliveryCounts {
        written: read(&COUNTERS.written),
        deferred: read(&COUNTERS.deferred),
        lost: read(&COUNTERS.lost),
        replayed: read(&COUNTERS.replayed),
        write_errors: read(&COUNTERS.write_errors),
        waiting: read(&WAITING),
    }
}

/// Which counter [`count`] adds to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Count {
    Written,
    Deferred,
    Lost,
    Replayed,
    WriteError,
}

pub(super) fn count(what: Count, n: usize) {
    let counter = match what {
        Count::Written => &COUNTERS.written,
        Count::Deferred => &COUNTERS.deferred,
        Count::Lost => &COUNTERS.lost,
        Count::Replayed => &COUNTERS.replayed,
        Count::WriteError => &COUNTERS.write_errors,
    };
    counter.fetch_add(n as u64, Ordering::Relaxed);
}
