//! Analytics events: what blocks and the host publish, decorated with the learner's
//! experiment membership and course tags when the request ends, then written as
//! newline-delimited JSON.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// The assignment event, as Open edX names it.
pub const ASSIGNED_EVENT: &str = "xmodule.partitions.assigned_user_to_partition";

/// The exposure event: the host sends it when a condition of an experiment reached a
/// learner's page (blocks cannot).
pub const CHILD_RENDER_EVENT: &str = "xblock.split_test.child_render";

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

/// Where events go.
pub trait EventSink: Send + Sync {
    fn emit(&self, events: &[Event]) -> Result<()>;
}

/// Appends events to a file, one JSON object per line.
pub struct JsonlSink {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonlSink {
    pub fn open(path: &Path) -> Result<JsonlSink> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the event log {}", path.display()))?;
        Ok(JsonlSink {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Reads every event of a log written by this sink.
    pub fn read_all(path: &Path) -> Result<Vec<Event>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        text.lines()
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line)
                    .with_context(|| format!("{} line {}", path.display(), i + 1))
            })
            .collect()
    }
}

impl EventSink for JsonlSink {
    fn emit(&self, events: &[Event]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // One write per batch, so concurrent requests never interleave within a line.
        let mut buf = Vec::new();
        for event in events {
            serde_json::to_writer(&mut buf, event)?;
            buf.push(b'\n');
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&buf)
            .with_context(|| format!("writing to the event log {}", self.path.display()))
    }
}

/// Keeps events in memory, for tests and embedding.
#[derive(Default)]
pub struct MemorySink {
    events: Mutex<Vec<Event>>,
}

impl MemorySink {
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl EventSink for MemorySink {
    fn emit(&self, events: &[Event]) -> Result<()> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(events);
        Ok(())
    }
}

/// Now, formatted for events.
pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
