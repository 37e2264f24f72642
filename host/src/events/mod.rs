//! Analytics events: what blocks and the host publish, decorated with the learner's
//! experiment membership and course tags when the request ends, then appended to the
//! event log as newline-delimited JSON, one line per event, each with a stable `id`.
//!
//! The log is a product of the host that analysts read long after, through crashes, full
//! disks and rotations, so:
//!
//! - `event`: the event's shape, the host's own event names, ids.
//! - `sink`: where events go (`EventSink`), the in-memory sink, and the process's delivery
//!   counters (events written, deferred, lost) that `/metrics` shows.
//! - `jsonl`: the log file: one write per batch (a failed write is cut back off), reopened
//!   on request (SIGHUP after a rotation by move), rotated by size when configured.
//! - `reader`: reading a log line by line in bounded memory, skipping and counting damaged
//!   lines (torn, not UTF-8, too long, too deep, not an event) instead of failing.
//! - `store_sink`: the sink of a store that is the event log (PostgreSQL's `events`
//!   table), where a request's events go in its own transaction instead.
//! - `outbox`: delivery that survives crashes and write errors: assignment events are kept
//!   in the store as pending until the log holds them, and replayed without duplicates.

mod event;
mod jsonl;
pub mod outbox;
pub mod reader;
mod sink;
mod store_sink;

pub use event::{
    ASSIGNED_EVENT, BLOCK_FAILED_EVENT, CHILD_RENDER_EVENT, Event, Experiments, HOLDOUT_EVENT,
    LoggedEvent, is_host_event, new_event_id, now,
};
pub use jsonl::{EventLogOptions, JsonlSink, request_reopen};
pub use reader::{DamageKind, DamagedLines, ReadLimits};
pub use sink::{DeliveryCounts, EventSink, MemorySink, delivery_counts};
pub use store_sink::{StoreSink, to_stored};
