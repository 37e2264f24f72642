//! The event's shape: what every line of the log holds, the host's own event names, and
//! the ids that let a replay tell an event already written from one still to write.
//! Imports no sibling.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The assignment event, as Open edX names it.
pub const ASSIGNED_EVENT: &str = "xmodule.partitions.assigned_user_to_partition";

/// The exposure event: the host sends it when a condition of an experiment reached a
/// learner's page (blocks cannot).
pub const CHILD_RENDER_EVENT: &str = "xblock.split_test.child_render";

/// The event the host sends when a held-out learner first reaches an experiment.
pub const HOLDOUT_EVENT: &str = "xbhost.holdout.held_out";

/// The event the host sends when a block fails.
pub const BLOCK_FAILED_EVENT: &str = "xbhost.block.failed";

/// Whether only the host may send events of this name: assignments, exposures, block
/// failures and anything in the host's own namespaces (`xbhost.`, `xmodule.partitions.`).
/// Analyses trust these, so a block's say-so must never produce one.
pub fn is_host_event(name: &str) -> bool {
    name == ASSIGNED_EVENT
        || name == CHILD_RENDER_EVENT
        || name.starts_with("xbhost.")
        || name.starts_with("xmodule.partitions.")
        || name.starts_with("edx.librarycontentblock.")
}

/// A learner's experiment membership, carried by every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiments {
    /// Names of the partitions the learner has a group in.
    pub enrolled: Vec<String>,
    /// Partition name to group name.
    pub assigned: BTreeMap<String, String>,
    /// Partitions the learner is forced into for QA (name to `true`): analysis leaves them
    /// out. Absent when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub forced: BTreeMap<String, bool>,
    /// In the course's holdout: control in every experiment, enrolled in none. Absent
    /// when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holdout: bool,
}

/// One analytics event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    pub course_key: String,
    pub user_id: String,
    pub username: String,
    /// The block the event is about: the one that published it, or for the host's own
    /// events the block concerned (a failed block, the split test of an exposure). Set by
    /// the host.
    pub usage_id: Option<String>,
    /// The plugin (block type) that published it; absent for the host's own events. Set
    /// by the host, so goals can count only the blocks they name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    pub data: serde_json::Value,
    pub experiments: Experiments,
    pub course_tags: BTreeMap<String, String>,
}

/// Now, formatted for events.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// An event with its id, as one line of the log holds it: `{"id": ..., "name": ...}`.
/// The id is what makes delivery exactly-once across crashes: an event kept pending in
/// the store is written again only if the log does not hold its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedEvent {
    pub id: String,
    #[serde(flatten)]
    pub event: Event,
}

impl LoggedEvent {
    /// The event with a new id.
    pub fn new(event: Event) -> LoggedEvent {
        LoggedEvent {
            id: new_event_id(),
            event,
        }
    }
}

/// A new event id: the time in milliseconds (12 hex digits, so ids sort by creation) and
/// 64 random bits (16 hex digits).
pub fn new_event_id() -> String {
    use std::fmt::Write as _;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("the OS random source works");
    let mut id = format!("{ms:012x}");
    for b in random {
        let _ = write!(id, "{b:02x}");
    }
    id
}
