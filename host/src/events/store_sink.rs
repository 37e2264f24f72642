//! The sink of a store that keeps the event log itself (PostgreSQL's `events` table, see
//! `Storage::keeps_events`). A request's events do not come here: they go into the store
//! in the request's own transaction. This sink is for events sent outside a request, so
//! that every event of such a host lands in the one table. Imports only `event` and
//! `sink`.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Result;

use super::event::LoggedEvent;
use super::sink::{Deferred, EventSink};
use crate::storage::{Storage, StoredEvent};

/// An event as a store that keeps the event log holds it.
pub fn to_stored(logged: &LoggedEvent) -> Result<StoredEvent> {
    let e = &logged.event;
    Ok(StoredEvent {
        id: logged.id.clone(),
        course_key: e.course_key.clone(),
        user_id: e.user_id.clone(),
        name: e.name.clone(),
        time: e.time.clone(),
        line: serde_json::to_string(logged)?,
    })
}

pub struct StoreSink {
    storage: Arc<dyn Storage>,
    deferred: Deferred,
}

impl StoreSink {
    pub fn new(storage: Arc<dyn Storage>) -> StoreSink {
        StoreSink {
            storage,
            deferred: Deferred::default(),
        }
    }
}

impl EventSink for StoreSink {
    fn append(&self, events: &[LoggedEvent]) -> Result<()> {
        let stored = events.iter().map(to_stored).collect::<Result<Vec<_>>>()?;
        self.storage.append_events(&stored)
    }

    fn logged_ids(&self, ids: &BTreeSet<String>) -> Result<BTreeSet<String>> {
        let ids: Vec<String> = ids.iter().cloned().collect();
        self.storage.stored_event_ids(&ids)
    }

    fn describe(&self) -> String {
        "the store's events table".into()
    }

    fn deferred(&self) -> &Deferred {
        &self.deferred
    }
}
