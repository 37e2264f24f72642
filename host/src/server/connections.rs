//! What the server knows of each open connection (requests in flight; since when it has
//! been idle, or reading the head of its next request) and the cap on open connections.
//!
//! At the cap a new connection evicts the one that has waited longest with no request in
//! flight, and is refused only when every open connection is busy: sockets that open and
//! never finish their headers (slowloris) or sit idle cannot keep anyone else out, and the
//! server never runs out of file descriptors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// "Not set" for the millisecond stamps below.
const UNSET: u64 = u64::MAX;

/// Why the server closes a connection of its own accord.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The head of a request did not arrive within the header-read timeout.
    HeaderTimeout,
    /// No request came within the idle timeout.
    IdleTimeout,
    /// A new connection needed its place at the connection cap.
    Evicted,
    /// The client took nothing of a response for the idle timeout (it does not read).
    WriteStalled,
}

impl Closed {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Evicted => "evicted",
            Closed::WriteStalled => "write_stalled",
        }
    }
}

/// How long a connection may wait at each stage.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionTimeouts {
    /// From the first byte of a request head to its end.
    pub header_read: Duration,
    /// With no request in flight and no byte of the next one.
    pub idle: Duration,
}

/// One connection's activity, shared by its reader, its requests and the cap.
pub struct Activity {
    epoch: Instant,
    in_flight: AtomicU32,
    /// Milliseconds since `epoch`: when it last became idle (accepted, or a response ended).
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived, or [`UNSET`].
    head_since: AtomicU64,
    /// Since when a request's head has been read but not yet all its body, or [`UNSET`]:
    /// such a connection waits on its client and may be evicted.
    body_since: AtomicU64,
    /// Since when a write to the socket has been waiting for the client to read, or
    /// [`UNSET`].
    write_blocked_since: AtomicU64,
    /// The cap chose it to close; not chosen again.
    evicting: AtomicBool,
    evicted: Notify,
}

impl Activity {
    fn new(epoch: Instant) -> Activity {
        let activity = Activity {
            epoch,
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(UNSET),
            body_since: AtomicU64::new(UNSET),
            write_blocked_since: AtomicU64::new(UNSET),
            evicting: AtomicBool::new(false),
            evicted: Notify::new(),
        };
        activity.idle_since.store(activity.now(), Ordering::Relaxed);
        activity
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The socket delivered bytes: with no request in flight they begin the next head.
    pub fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Relaxed) == UNSET
        {
            self.head_since.store(self.now(), Ordering::Relaxed);
        }
    }

    /// A request's body is still to come (until [`Activity::body_done`]).
    pub fn body_begun(&self) {
        self.body_since.store(self.now(), Ordering::Relaxed);
    }

    /// The request's body has all arrived, or is no longer read.
    pub fn body_done(&self) {
        self.body_since.store(UNSET, Ordering::Relaxed);
    }

    /// A write to the socket must wait: the client is not reading.
    pub fn write_blocked(&self) {
        if self.write_blocked_since.load(Ordering::Relaxed) == UNSET {
            self.write_blocked_since
                .store(self.now(), Ordering::Relaxed);
        }
    }

    /// Bytes went out: the client reads, and the connection is not idle.
    pub fn wrote(&self) {
        self.write_blocked_since.store(UNSET, Ordering::Relaxed);
        self.idle_since.store(self.now(), Ordering::Relaxed);
    }

    /// A request's head was read: it is in flight until the returned guard drops (with
    /// its response body, once queued).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(UNSET, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Since when the connection has waited on its client (milliseconds): with nothing
    /// in flight, for a request body, or for the client to read. `None` while the server
    /// works on a request.
    fn waiting_since(&self) -> Option<u64> {
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked != UNSET {
            return Some(blocked);
        }
        if self.in_flight.load(Ordering::Acquire) > 0 {
            let body = self.body_since.load(Ordering::Relaxed);
            return (body != UNSET).then_some(body);
        }
        let head = self.head_since.load(Ordering::Relaxed);
        Some(if head == UNSET {
            self.idle_since.load(Ordering::Relaxed)
        } else {
            head
        })
    }

    /// Completes when the connection must be closed: a timeout passed, or the cap
    /// evicted it. Requests in flight are bounded by their own deadlines, not here.
    pub async fn expired(&self, timeouts: ConnectionTimeouts) -> Closed {
        loop {
            let blocked = self.write_blocked_since.load(Ordering::Relaxed);
            let wait = if blocked != UNSET {
                let due = blocked.saturating_add(timeouts.idle.as_millis() as u64);
                let now = self.now();
                if now >= due {
                    return Closed::WriteStalled;
                }
                Duration::from_millis(due - now)
            } else if self.in_flight.load(Ordering::Acquire) > 0 {
                // Look again later: the request's end resets the idle clock.
                timeouts.idle.min(timeouts.header_read)
            } else {
                let head = self.head_since.load(Ordering::Relaxed);
                let (since, limit, reason) = if head == UNSET {
                    (
                        self.idle_since.load(Ordering::Relaxed),
                        timeouts.idle,
                        Closed::IdleTimeout,
                    )
                } else {
                    (head, timeouts.header_read, Closed::HeaderTimeout)
                };
                let due = since.saturating_add(limit.as_millis() as u64);
                let now = self.now();
                if now >= due {
                    return reason;
                }
                Duration::from_millis(due - now)
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.evicted.notified() => {
                    if self.waiting_since().is_some() {
                        return Closed::Evicted;
                    }
                    // A request began meanwhile: it stays, and may be chosen again.
                    self.evicting.store(false, Ordering::Release);
                }
            }
        }
    }
}

/// A request in flight on its connection.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.store(self.0.now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections, at most `cap`.
pub struct Connections {
    epoch: Instant,
    cap: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
}

/// A connection's place under the cap, given back when it drops.
pub struct Admitted {
    id: u64,
    pub activity: Arc<Activity>,
    connections: Arc<Connections>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

impl Connections {
    pub fn new(cap: usize) -> Arc<Connections> {
        Arc::new(Connections {
            epoch: Instant::now(),
            cap: cap.max(1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many connections are open.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Gives a new connection its place: at the cap, the connection that has waited on
    /// its client longest (idle, in its headers or body, or not reading) is told to close
    /// and the new one takes its place (it leaves the count when it has closed). `None`
    /// when every open connection has the server working on a request.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut open = self.lock();
        let closing = open
            .values()
            .filter(|a| a.evicting.load(Ordering::Acquire))
            .count();
        if open.len() - closing >= self.cap {
            let oldest = open
                .values()
                .filter(|a| !a.evicting.load(Ordering::Acquire))
                .filter_map(|a| a.waiting_since().map(|since| (since, a)))
                .min_by_key(|(since, _)| *since)?;
            oldest.1.evicting.store(true, Ordering::Release);
            oldest.1.evicted.notify_one();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.epoch));
        open.insert(id, activity.clone());
        Some(Admitted {
            id,
            activity,
            connections: self.clone(),
        })
    }
}
