//! What the server knows of each open connection (requests in flight; since when it has
//! been idle, or reading the head of its next request) and the cap on open connections.
//!
//! At the cap a new connection evicts the one that has waited longest with no request in
//! flight, and is refused only when every open connection is busy: sockets that open and
//! never finish their headers (slowloris) or sit idle cannot keep anyone else out, and the
//! server never runs out of file descriptors.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
}

impl Closed {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Evicted => "evicted",
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
    evicted: Notify,
}

impl Activity {
    fn new(epoch: Instant) -> Activity {
        let activity = Activity {
            epoch,
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(UNSET),
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

    /// A request's head was read: it is in flight until the returned guard drops (with
    /// its response body, once written).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(UNSET, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Since when the connection has waited with nothing in flight (milliseconds), or
    /// `None` while a request is in flight.
    fn waiting_since(&self) -> Option<u64> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
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
            let wait = if self.in_flight.load(Ordering::Acquire) > 0 {
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
                    if self.in_flight.load(Ordering::Acquire) == 0 {
                        return Closed::Evicted;
                    }
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

    /// Gives a new connection its place: at the cap, the connection that has waited
    /// longest with no request in flight is told to close and the new one takes its
    /// place. `None` when every open connection has a request in flight. The second value
    /// says whether one was evicted.
    pub fn admit(self: &Arc<Self>) -> Option<(Admitted, bool)> {
        let mut open = self.lock();
        let mut evicted = false;
        if open.len() >= self.cap {
            let oldest = open
                .iter()
                .filter_map(|(id, a)| a.waiting_since().map(|since| (since, *id)))
                .min()?;
            if let Some(activity) = open.remove(&oldest.1) {
                activity.evicted.notify_one();
                evicted = true;
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(self.epoch));
        open.insert(id, activity.clone());
        Some((
            Admitted {
                id,
                activity,
                connections: self.clone(),
            },
            evicted,
        ))
    }
}
