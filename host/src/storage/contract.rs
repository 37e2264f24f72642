//! The storage contract: the `Storage` trait every backend implements and the values it
//! takes and answers with, so the embedded store (sled) can be joined by a server
//! database for deployments of several hosts.
//!
//! Every method names whose data it touches: a course tag is always (course, user, key), so
//! nothing above this layer can reach another user's data by accident.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::model::CourseDoc;

/// A plugin as stored: its name, the versions it declares, and the blake3 of its wasm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    pub name: String,
    pub version: String,
    /// The contract (WIT package) version the plugin was built against.
    pub contract: String,
    /// blake3 of the wasm bytes, hex: the key of the stored component.
    pub hash: String,
    pub size: u64,
}

/// What one block call wrote, stored all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockWrites {
    pub course_tags: BTreeMap<String, String>,
    pub user_tags: BTreeMap<String, String>,
    /// (usage id, JSON) of the block's own state.
    pub state: Option<(String, String)>,
    /// Additions to block tallies, counts shared by every learner of a block (a poll's
    /// votes per answer): (usage id, tally key) -> amount added, which may be negative.
    /// Added to what the store holds (never replacing it), in the same transaction as the
    /// rest, so a learner's vote and the count it adds to are stored together or not at all.
    /// Concurrent commits, from any thread or (PostgreSQL) any host, never lose an addition;
    /// one that would take a count beyond `i64` is an error and stores nothing of the call's
    /// writes (in a request's transaction, only this call's). Usage ids and tally keys are
    /// non-empty and hold no NUL. A count that reaches 0 is kept, and read as 0.
    pub tallies: BTreeMap<(String, String), i64>,
}

impl BlockWrites {
    pub fn is_empty(&self) -> bool {
        self.course_tags.is_empty()
            && self.user_tags.is_empty()
            && self.state.is_none()
            && self.tallies.is_empty()
    }
}

/// The outcome of a first-writer-wins write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstWrite {
    /// This write stored the value.
    Written,
    /// Another writer got there first; this is the value it stored.
    Existing(String),
}

/// An event waiting in the store until the event log holds it (see `events::outbox`):
/// its id, and its line of the log (JSON, no newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: String,
    pub line: Vec<u8>,
}

/// One tag [`Storage::carry_over_course_tags`] moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedTag {
    pub key: String,
    /// What the old identifier held.
    pub from_value: String,
    /// What the new identifier holds afterwards.
    pub to_value: String,
    /// True when the new identifier had no value and got `from_value`.
    pub carried: bool,
}

/// An event as a store that keeps the event log holds it ([`Storage::keeps_events`]): the
/// columns analytics select by, and the line of JSONL the file log would hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub course_key: String,
    pub user_id: String,
    pub name: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The event as one JSON object, no newline.
    pub line: String,
}

/// What changed in a store shared with other hosts: what a host keeps in memory and must
/// read again (see [`Storage::watch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Course(String),
    Plugin(String),
    /// A session was signed out: every host refuses its token until `until` (Unix
    /// seconds). `id` is the ledger's hex id of the session.
    Revoked {
        id: String,
        until: u64,
    },
    /// Notices may have been missed: forget everything.
    Everything,
}

impl Change {
    /// The notice's payload (at most 8000 bytes in PostgreSQL; ids are far shorter).
    pub fn encode(&self) -> String {
        match self {
            Change::Course(key) => format!("course:{key}"),
            Change::Plugin(name) => format!("plugin:{name}"),
            Change::Revoked { id, until } => format!("revoked:{until}:{id}"),
            Change::Everything => "everything".into(),
        }
    }

    /// A payload sent by [`Change::encode`]; anything else means everything (a newer host
    /// may send notices this one does not know).
    pub fn decode(payload: &str) -> Change {
        if let Some(key) = payload.strip_prefix("course:") {
            Change::Course(key.to_string())
        } else if let Some(name) = payload.strip_prefix("plugin:") {
            Change::Plugin(name.to_string())
        } else if let Some((until, id)) = payload
            .strip_prefix("revoked:")
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(until, id)| Some((until.parse().ok()?, id)))
        {
            Change::Revoked {
                id: id.to_string(),
                until,
            }
        } else {
            Change::Everything
        }
    }
}

/// The outcome of [`Storage::put_course_if_version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourseWrite {
    /// Stored, as this version.
    Stored(u64),
    /// Not stored: the course changed since the change began; this is the version the
    /// store holds (`None`: it holds no such course).
    Conflict(Option<u64>),
}

/// What a host does with a change.
pub type OnChange = Arc<dyn Fn(&Change) + Send + Sync>;

pub trait Storage: Send + Sync {
    /// A learner's course tags and global tags together (one round trip where the
    /// backend has round trips): what every page reads first.
    fn learner_tags(
        &self,
        course: &str,
        user: &str,
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
        Ok((self.course_tags(course, user)?, self.user_tags(user)?))
    }

    /// The store one request uses, when the backend gives each request its own: a
    /// server database keeps a request's writes in one transaction, committed by
    /// [`Storage::flush`] at the end of the request. `None`: requests use this store.
    fn for_request(&self) -> Option<Arc<dyn Storage>> {
        None
    }

    /// Calls `on_change` whenever another host (or a CLI command) changes a course or a
    /// plugin in this store, within about a second. A store only this process can open
    /// (sled) has no one else to hear from.
    fn watch(&self, on_change: OnChange) -> Result<()> {
        let _ = on_change;
        Ok(())
    }

    /// Whether the store keeps the server's token records for every host on it (used
    /// sign-in tokens and states, signed-out sessions; see `server::ledger`). A store
    /// only one process opens leaves them to the server's memory.
    fn shares_token_records(&self) -> bool {
        false
    }

    /// Records every `(id, until)` of `kind` at once, or none: `Some(i)` when the `i`th
    /// was already recorded and has not expired at `now` (Unix seconds), so a token or
    /// state signs in once across every host. A `revoked` record is announced to every
    /// host ([`Change::Revoked`]).
    fn record_tokens_once(
        &self,
        kind: &str,
        records: &[(String, u64)],
        now: u64,
    ) -> Result<Option<usize>> {
        let _ = (kind, records, now);
        anyhow::bail!("this store keeps no token records")
    }

    /// Every record of `kind` that has not expired at `now`: `(id, until)`.
    fn token_records(&self, kind: &str, now: u64) -> Result<Vec<(String, u64)>> {
        let _ = (kind, now);
        anyhow::bail!("this store keeps no token records")
    }

    /// Whether the store is the event log: events go in with [`Storage::append_events`],
    /// in the same transaction as the request's writes, instead of to a file.
    fn keeps_events(&self) -> bool {
        false
    }

    /// Appends events to the store's event log (see [`Storage::keeps_events`]).
    fn append_events(&self, events: &[StoredEvent]) -> Result<()> {
        let _ = events;
        anyhow::bail!("this store keeps no event log")
    }

    /// Which of `ids` the store's event log holds.
    fn stored_event_ids(&self, ids: &[String]) -> Result<std::collections::BTreeSet<String>> {
        let _ = ids;
        anyhow::bail!("this store keeps no event log")
    }

    /// Calls `each` with the course's events in the order they were stored, those at or
    /// after `since` (RFC 3339) only when given, reading a bounded page at a time.
    fn course_events(
        &self,
        course: &str,
        since: Option<&str>,
        each: &mut dyn FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()> {
        let _ = (course, since, each);
        anyhow::bail!("this store keeps no event log")
    }

    /// Every course tag of a user in a course.
    fn course_tags(&self, course: &str, user: &str) -> Result<BTreeMap<String, String>>;
    fn course_tag(&self, course: &str, user: &str, key: &str) -> Result<Option<String>>;
    fn set_course_tag(&self, course: &str, user: &str, key: &str, value: &str) -> Result<()>;
    /// Stores the tag only if it is absent (atomically): the first writer wins.
    fn set_course_tag_if_absent(
        &self,
        course: &str,
        user: &str,
        key: &str,
        value: &str,
    ) -> Result<FirstWrite>;
    /// Replaces the tag only if it still holds `expected` (atomically): `Written` if this
    /// call replaced it, else what it holds now (another writer got there first).
    fn replace_course_tag(
        &self,
        course: &str,
        user: &str,
        key: &str,
        expected: &str,
        value: &str,
    ) -> Result<FirstWrite>;
    /// Every (user, value) with this course tag, for reports and partition changes.
    fn users_with_course_tag(&self, course: &str, key: &str) -> Result<Vec<(String, String)>>;

    /// Every user with a course tag or block state in the course.
    fn course_users(&self, course: &str) -> Result<Vec<String>>;

    fn user_tags(&self, user: &str) -> Result<BTreeMap<String, String>>;
    fn user_tag(&self, user: &str, key: &str) -> Result<Option<String>>;
    fn set_user_tag(&self, user: &str, key: &str, value: &str) -> Result<()>;

    fn user_state(&self, course: &str, user: &str, usage: &str) -> Result<Option<String>>;
    /// A block's tallies (tally key -> count), shared by all its learners; see
    /// [`BlockWrites::tallies`]. A key nothing was ever added to is absent (counts 0).
    fn block_tallies(&self, course: &str, usage: &str) -> Result<BTreeMap<String, i64>> {
        let _ = (course, usage);
        anyhow::bail!("this store keeps no block tallies")
    }
    fn set_user_state(&self, course: &str, user: &str, usage: &str, json: &str) -> Result<()>;

    fn course(&self, key: &str) -> Result<Option<CourseDoc>>;
    /// Stores the course unconditionally, as its next version. Host paths that change a
    /// course use [`Storage::put_course_if_version`] instead.
    fn put_course(&self, doc: &CourseDoc) -> Result<()>;
    /// The course and its stored version: 1 for its first store, one more for each store
    /// after (a course sled stored before versions existed counts as version 1).
    fn course_with_version(&self, key: &str) -> Result<Option<(CourseDoc, u64)>>;
    /// Stores the course only if its stored version is still `expected`, the one the
    /// change started from (`None`: a new course, none stored), atomically, as the next
    /// version; else answers the version stored, so two concurrent changes cannot silently
    /// overwrite each other.
    fn put_course_if_version(&self, doc: &CourseDoc, expected: Option<u64>) -> Result<CourseWrite>;
    fn course_keys(&self) -> Result<Vec<String>>;

    fn plugin(&self, name: &str) -> Result<Option<PluginRecord>>;
    fn plugins(&self) -> Result<Vec<PluginRecord>>;
    fn plugin_wasm(&self, hash: &str) -> Result<Option<Vec<u8>>>;
    /// Stores the wasm (content-addressed) and the record that names it, together.
    fn put_plugin(&self, record: &PluginRecord, wasm: &[u8]) -> Result<()>;

    /// A learner's course enrollment date (RFC 3339), if one was recorded.
    fn enrollment(&self, course: &str, user: &str) -> Result<Option<String>>;
    /// Records enrollment dates (user, RFC 3339 date) atomically: all of them or none.
    fn set_enrollments(&self, course: &str, dates: &[(String, String)]) -> Result<()>;

    /// Moves the course tags `keys` from identifier `from` to `to` in one transaction:
    /// each is copied where `to` has none (`to`'s own value wins) and removed from `from`.
    /// Returns, for each key `from` held, its value and what `to` holds now.
    fn carry_over_course_tags(
        &self,
        course: &str,
        from: &str,
        to: &str,
        keys: &[String],
    ) -> Result<Vec<CarriedTag>>;

    /// Stores one block call's writes atomically: all of them or none.
    fn commit(&self, course: &str, user: &str, writes: &BlockWrites) -> Result<()>;

    /// Whether this store keeps an outbox (the methods below). Without one, an event is
    /// written to the log once, after the writes it describes are durable, and a crash
    /// between the two loses it.
    fn keeps_outbox(&self) -> bool {
        false
    }

    /// Stores a new member's group as [`Storage::set_course_tag_if_absent`] (no
    /// `expected`) or [`Storage::replace_course_tag`] does, and when this call stores it,
    /// puts `entry` (its assignment event) in the outbox in the same atomic write: a group
    /// is never durable without its pending event. By default the entry is not kept.
    fn assign_course_tag(
        &self,
        course: &str,
        user: &str,
        key: &str,
        expected: Option<&str>,
        value: &str,
        entry: &OutboxEntry,
    ) -> Result<FirstWrite> {
        let _ = entry;
        match expected {
            None => self.set_course_tag_if_absent(course, user, key, value),
            Some(old) => self.replace_course_tag(course, user, key, old, value),
        }
    }

    /// [`Storage::carry_over_course_tags`], putting in the same transaction the outbox
    /// entry `entry_for(key, value)` of each tag carried over (its assignment event). By
    /// default no entry is kept.
    fn carry_over_course_tags_with_outbox(
        &self,
        course: &str,
        from: &str,
        to: &str,
        keys: &[String],
        entry_for: &dyn Fn(&str, &str) -> Option<OutboxEntry>,
    ) -> Result<Vec<CarriedTag>> {
        let _ = entry_for;
        self.carry_over_course_tags(course, from, to, keys)
    }

    /// Puts entries in the outbox (replacing any with the same id), atomically.
    fn put_outbox(&self, entries: &[OutboxEntry]) -> Result<()> {
        let _ = entries;
        anyhow::bail!("this store keeps no outbox")
    }

    /// Every outbox entry, oldest first (ids sort by creation).
    fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        Ok(Vec::new())
    }

    /// Removes these entries from the outbox (ids it does not hold are ignored).
    fn remove_from_outbox(&self, ids: &[String]) -> Result<()> {
        let _ = ids;
        Ok(())
    }

    /// The store's own metadata `name`: a store-wide value that is no user's data, such as
    /// the key that MACs the compiled-component cache (`runtime::cache`). If the store has
    /// none, `value` is stored first: atomically, the first writer wins, so every caller,
    /// concurrent or later, in this process or another, gets the value stored first. A
    /// value this call stored is durable before it returns. Values may be secrets: never
    /// log them.
    fn meta_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>>;

    /// Makes every write so far durable: it survives a crash of the process.
    fn flush(&self) -> Result<()>;

    /// How many times the store was closed and opened again after a failure, losing
    /// what it held unflushed. A request that wrote or read in one epoch must not be
    /// acknowledged in another (its flush would make nothing of its own durable).
    fn epoch(&self) -> u64 {
        0
    }

    /// Whether the store takes writes now (for `/healthz`): by default, whether a flush
    /// succeeds.
    fn check_writable(&self) -> Result<()> {
        self.flush()
    }
}
