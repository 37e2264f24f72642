//! Delivery of a request's events to the log, through crashes and failing writes.
//!
//! An assignment is stored first-writer-wins and never again, so its event is the one the
//! log must never miss. The store therefore keeps it pending (the outbox) from the moment
//! the group is stored, in the same atomic write ([`assignment_entry`]); the request
//! replaces it with the decorated event before its flush ([`refresh`]), writes the log,
//! and only then removes it ([`deliver`]). A crash anywhere in between leaves the event in
//! the outbox, and the next start writes it ([`recover`]) unless the log already holds its
//! id (a crash after the write, before the removal), so it is written exactly once.
//!
//! A failed write never fails the page: the request's events are kept in the outbox
//! (deferred, up to a limit) and written by a later delivery, at most once a second while
//! the log keeps failing; what cannot be kept is lost. Both are counted (`/metrics`) and
//! logged with the file. Imports `event` and `sink`, and the storage contract.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::event::{ASSIGNED_EVENT, Event, Experiments, LoggedEvent, new_event_id, now};
use super::sink::{Count, EventSink, count};
use crate::storage::{OutboxEntry, Storage};

/// How often a failing log is tried again for the events waiting in the store.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Events written to the log in one write by a replay.
const REPLAY_BATCH: usize = 1000;

fn entry(event: &LoggedEvent) -> OutboxEntry {
    OutboxEntry {
        id: event.id.clone(),
        line: serde_json::to_vec(event).expect("events serialize"),
    }
}

/// Who and where an assignment event is about, for [`assignment_entry`].
pub struct AssignmentFacts<'a> {
    pub course_key: &'a str,
    pub user_id: &'a str,
    pub username: &'a str,
    pub partition_name: &'a str,
    pub group_name: Option<&'a str>,
    /// The partition's course tag and the group it now holds.
    pub tag: (&'a str, &'a str),
}

/// The outbox entry stored with a new assignment: its event with a new id, decorated with
/// what is known when the group is stored (the request replaces it with the fully decorated
/// event before its flush; this one is written only if the request never gets that far).
pub fn assignment_entry(facts: &AssignmentFacts<'_>, data: serde_json::Value) -> OutboxEntry {
    let name = facts.partition_name.to_string();
    entry(&LoggedEvent {
        id: new_event_id(),
        event: Event {
            name: ASSIGNED_EVENT.into(),
            time: now(),
            course_key: facts.course_key.into(),
            user_id: facts.user_id.into(),
            username: facts.username.into(),
            usage_id: None,
            plugin: None,
            data,
            experiments: Experiments {
                enrolled: vec![name.clone()],
                assigned: BTreeMap::from([(name, facts.group_name.unwrap_or("").into())]),
                forced: BTreeMap::new(),
                holdout: false,
            },
            course_tags: BTreeMap::from([(facts.tag.0.into(), facts.tag.1.into())]),
        },
    })
}

/// Gives the request's events their ids: an assignment event takes the id of the outbox
/// entry stored with its group (`pending`: partition id to entry id); every other event a
/// new one. Returns the events and the pending ids no event took (kept for a later
/// delivery, which writes what the outbox holds for them).
pub fn identify(events: Vec<Event>, pending: &[(u64, String)]) -> (Vec<LoggedEvent>, Vec<String>) {
    let mut unclaimed: BTreeMap<u64, &String> = pending.iter().map(|(p, id)| (*p, id)).collect();
    let logged = events
        .into_iter()
        .map(|event| {
            let claimed = (event.name == ASSIGNED_EVENT)
                .then(|| event.data["partition_id"].as_u64())
                .flatten()
                .and_then(|p| unclaimed.remove(&p));
            LoggedEvent {
                id: claimed.cloned().unwrap_or_else(new_event_id),
                event,
            }
        })
        .collect();
    (logged, unclaimed.into_values().cloned().collect())
}

/// Replaces the pending entries of `ids` with the request's decorated events, before the
/// flush that makes them durable. A failure keeps the entries stored with the groups.
pub fn refresh(storage: &dyn Storage, events: &[LoggedEvent], ids: &[String]) {
    if ids.is_empty() || !storage.keeps_outbox() {
        return;
    }
    let entries: Vec<OutboxEntry> = events
        .iter()
        .filter(|e| ids.contains(&e.id))
        .map(entry)
        .collect();
    if let Err(e) = storage.put_outbox(&entries) {
        tracing::warn!(
            "cannot store the decorated assignment events in the outbox (the ones stored \
             with the groups are kept): {e:#}"
        );
    }
}

/// Keeps pending events for a later delivery (their request could not send them).
pub fn keep_for_later(sink: &dyn EventSink, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let deferred = sink.deferred();
    let mut waiting = deferred.lock();
    waiting.ids.extend(ids.iter().cloned());
    deferred.update(&waiting);
}

/// Sends a request's events, after its writes are durable: first, at most once a second,
/// what earlier failures left waiting; then these, in one write. `pending` are the ids of
/// those the outbox already holds (assignment events), removed once written. Never fails:
/// what cannot be written is deferred to the outbox or lost, counted and logged.
pub fn deliver(
    storage: &dyn Storage,
    sink: &dyn EventSink,
    events: &[LoggedEvent],
    pending: &[String],
) {
    retry(storage, sink, false);
    if events.is_empty() {
        return;
    }
    match sink.append(events) {
        Ok(()) => {
            count(Count::Written, events.len());
            if !pending.is_empty()
                && let Err(e) = storage.remove_from_outbox(pending)
            {
                // Harmless: the next start finds their ids in the log and writes none again.
                tracing::warn!("cannot remove written events from the store's outbox: {e:#}");
            }
        }
        Err(error) => {
            count(Count::WriteError, 1);
            defer(storage, sink, events, pending, &error);
        }
    }
}

/// Keeps events a failed write could not send: those the outbox holds wait there; the
/// others are put there, up to the limit, and flushed; the rest are lost.
fn defer(
    storage: &dyn Storage,
    sink: &dyn EventSink,
    events: &[LoggedEvent],
    pending: &[String],
    error: &anyhow::Error,
) {
    let deferred = sink.deferred();
    let mut waiting = deferred.lock();
    let outbox = storage.keeps_outbox();
    let (stored, others): (Vec<&LoggedEvent>, Vec<&LoggedEvent>) = events
        .iter()
        .partition(|e| outbox && pending.contains(&e.id));
    let room = deferred
        .max
        .saturating_sub(waiting.ids.len() + stored.len());
    let keep: Vec<OutboxEntry> = if outbox {
        others.iter().take(room).map(|e| entry(e)).collect()
    } else {
        Vec::new()
    };
    let kept = if keep.is_empty() {
        Ok(())
    } else {
        storage.put_outbox(&keep).and_then(|()| storage.flush())
    };
    let (deferred_now, lost) = match &kept {
        Ok(()) => (stored.len() + keep.len(), others.len() - keep.len()),
        Err(_) => (stored.len(), others.len()),
    };
    waiting.ids.extend(stored.iter().map(|e| e.id.clone()));
    if kept.is_ok() {
        waiting.ids.extend(keep.into_iter().map(|e| e.id));
    }
    count(Count::Deferred, deferred_now);
    count(Count::Lost, lost);
    deferred.update(&waiting);
    let file = sink.describe();
    match kept {
        Err(store_error) => tracing::error!(
            file = %file,
            deferred = deferred_now,
            lost,
            "cannot write to the event log: {error:#}; the store could not keep the events \
             either ({store_error:#}): {lost} events lost, {deferred_now} kept in the store"
        ),
        Ok(()) if lost > 0 => tracing::error!(
            file = %file,
            deferred = deferred_now,
            lost,
            "cannot write to the event log: {error:#}; {deferred_now} events kept in the store \
             to write later, {lost} lost (over --event-log-max-deferred {}, or a store \
             without an outbox)",
            deferred.max
        ),
        Ok(()) => tracing::warn!(
            file = %file,
            deferred = deferred_now,
            "cannot write to the event log: {error:#}; {deferred_now} events kept in the \
             store, to be written when the log takes writes again"
        ),
    }
}

/// Writes the events waiting in the outbox that the log does not hold yet, oldest first,
/// and removes them from the outbox. Unless `now`, at most once a second, and not while
/// another request is at it. Whether nothing is left waiting.
fn retry(storage: &dyn Storage, sink: &dyn EventSink, now: bool) -> bool {
    let deferred = sink.deferred();
    if deferred.count() == 0 && !now {
        return true;
    }
    let Some(mut waiting) = (if now {
        Some(deferred.lock())
    } else {
        deferred.try_lock()
    }) else {
        return false;
    };
    if waiting.ids.is_empty() {
        return true;
    }
    if !now
        && waiting
            .last_retry
            .is_some_and(|at| at.elapsed() < RETRY_EVERY)
    {
        return false;
    }
    waiting.last_retry = Some(Instant::now());
    let written = (|| -> Result<usize> {
        let already = sink.logged_ids(&waiting.ids)?;
        let mut entries = storage.outbox()?;
        entries.retain(|e| waiting.ids.contains(&e.id) && !already.contains(&e.id));
        // An id the outbox no longer holds has nothing to write.
        let mut replayed = 0;
        for chunk in entries.chunks(REPLAY_BATCH) {
            let mut events = Vec::with_capacity(chunk.len());
            let mut done = Vec::with_capacity(chunk.len());
            for e in chunk {
                match serde_json::from_slice::<LoggedEvent>(&e.line) {
                    Ok(event) => events.push(event),
                    Err(error) => {
                        count(Count::Lost, 1);
                        tracing::error!(id = %e.id, "an event in the store's outbox does not parse, dropped: {error}");
                    }
                }
                done.push(e.id.clone());
            }
            sink.append(&events)?;
            count(Count::Replayed, events.len());
            count(Count::Written, events.len());
            replayed += events.len();
            storage.remove_from_outbox(&done)?;
            for id in &done {
                waiting.ids.remove(id);
            }
        }
        let rest: Vec<String> = std::mem::take(&mut waiting.ids).into_iter().collect();
        storage.remove_from_outbox(&rest)?;
        Ok(replayed)
    })();
    deferred.update(&waiting);
    match written {
        Ok(n) => {
            if n > 0 {
                tracing::info!(file = %sink.describe(), events = n, "wrote the events kept in the store to the event log");
            }
            true
        }
        Err(e) => {
            count(Count::WriteError, 1);
            tracing::warn!(
                file = %sink.describe(),
                waiting = waiting.ids.len(),
                "the event log still does not take the events kept in the store: {e:#}"
            );
            false
        }
    }
}

/// At start, before any request: writes the events a previous process left in the outbox
/// (it crashed between storing and writing them, or its log was failing), except those the
/// log already holds. What cannot be written now waits for a later delivery. Never fails.
pub fn recover(storage: &dyn Storage, sink: &dyn EventSink) {
    if !storage.keeps_outbox() {
        return;
    }
    let ids: Vec<String> = match storage.outbox() {
        Ok(entries) => entries.into_iter().map(|e| e.id).collect(),
        Err(e) => {
            tracing::error!("cannot read the store's outbox of pending events: {e:#}");
            return;
        }
    };
    if ids.is_empty() {
        return;
    }
    tracing::info!(
        file = %sink.describe(),
        events = ids.len(),
        "events were left pending by the previous run: writing those the event log lacks"
    );
    keep_for_later(sink, &ids);
    retry(storage, sink, true);
    // The removals of what was written stay in memory until a flush: a crash before the
    // first page would find those events pending again (the next start skips them, as
    // the log holds them, but the store would keep them meanwhile).
    if let Err(e) = storage.flush() {
        tracing::warn!("cannot flush the store after writing the pending events: {e:#}");
    }
}
