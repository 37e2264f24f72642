//! `store copy`: moving an institution's data from the embedded sled store (and its event
//! log) into an empty PostgreSQL database, and checking that the database holds exactly
//! what the store held.
//!
//! The copy is one transaction: it locks every table, refuses a database holding any
//! rows (naming the table), and inserts each table's rows a bounded batch at a time as
//! sled and the log are read (memory does not grow with the store). A failure anywhere
//! leaves the database as empty as it was. Events are the log's lines (rotated files
//! first), then the outbox entries whose id the log lacks; a line whose id an earlier
//! line had is counted, not copied twice (the table holds each event once).
//!
//! The check ([`verify`], and the copy's own before it commits) reads both sides again: per table, the row count and a blake3
//! over the rows in key order (`copy_rows::Check`), sled's from its trees, the database's
//! in one snapshot. For events the order is the copy's, and which source lines are the
//! copied ones (the first with each id) is told by the database's order: the first of
//! each id is the one with the next stored position, so no set of ids is held.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use deadpool_postgres::ClientWrapper;
use serde::Serialize;

/// The event log's files in the order written, as the copy reads them (so `events
/// export` reads the same).
pub use super::copy_events::log_files;
use super::copy_events::{EventReader, EventSources, INSERT_KINDS, Origin, SourceEvent};
use super::copy_rows::{Batch, Check, EVENTS, TABLES, Table, insert, read_table};
use super::pg_open::db_error;
use super::pg_store::PgStorage;
use super::sled_store::SledStorage;
use crate::events::ReadLimits;

/// One table's figures on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    pub table: &'static str,
    pub source_rows: u64,
    pub source_checksum: String,
    pub database_rows: u64,
    pub database_checksum: String,
}

impl TableCheck {
    fn new(table: &'static str, source: &Check, database: &Check) -> TableCheck {
        TableCheck {
            table,
            source_rows: source.rows,
            source_checksum: source.checksum(),
            database_rows: database.rows,
            database_checksum: database.checksum(),
        }
    }

    pub fn agrees(&self) -> bool {
        self.source_rows == self.database_rows && self.source_checksum == self.database_checksum
    }
}

/// What the check found: every table's figures, what was read of the events, and how
/// many event lines were left out because an earlier line (or the log, for an outbox
/// entry) had their id.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub database: String,
    pub tables: Vec<TableCheck>,
    pub events: EventSources,
    pub repeated_ids: u64,
}

impl Verification {
    /// The tables whose figures differ.
    pub fn mismatches(&self) -> Vec<&TableCheck> {
        self.tables.iter().filter(|t| !t.agrees()).collect()
    }

    /// Fails naming every table that differs.
    pub fn ensure_agrees(&self) -> Result<()> {
        let bad = self.mismatches();
        if bad.is_empty() {
            return Ok(());
        }
        let what: Vec<String> = bad
            .iter()
            .map(|t| {
                format!(
                    "table {} (the store: {} rows, checksum {}; the database: {} rows, checksum {})",
                    t.table,
                    t.source_rows,
                    &t.source_checksum[..16],
                    t.database_rows,
                    &t.database_checksum[..16]
                )
            })
            .collect();
        bail!(
            "the database {} does not hold what the store holds: {}",
            self.database,
            what.join("; ")
        )
    }

    /// The figures as a table for people, and what was read of the events.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<18} {:>10} {:<16} {:>10} {:<16} check",
            "table", "store", "checksum", "database", "checksum"
        );
        for t in &self.tables {
            let _ = writeln!(
                out,
                "{:<18} {:>10} {:<16} {:>10} {:<16} {}",
                t.table,
                t.source_rows,
                &t.source_checksum[..16],
                t.database_rows,
                &t.database_checksum[..16],
                if t.agrees() { "ok" } else { "MISMATCH" }
            );
        }
        for file in &self.events.files {
            let _ = writeln!(out, "events: {} read from {}", file.events, file.path);
            if let Some(summary) = file.damaged.summary() {
                let _ = writeln!(out, "events: {}: {summary}; not copied", file.path);
            }
        }
        let _ = writeln!(
            out,
            "events: {} entries of the store's outbox read ({} damaged, not copied)",
            self.events.outbox_entries, self.events.outbox_damaged
        );
        let _ = writeln!(
            out,
            "events: {} lines left out as repeats of an id already copied (an outbox entry the log holds, or a line written twice)",
            self.repeated_ids
        );
        out
    }
}

/// Runs `body` in a transaction begun with `begin`, committed if it succeeds.
async fn in_transaction<R>(
    c: &ClientWrapper,
    begin: &str,
    body: impl AsyncFnOnce(&ClientWrapper) -> Result<R>,
) -> Result<R> {
    c.batch_execute(begin).await.map_err(db_error)?;
    match body(c).await {
        Ok(value) => {
            c.batch_execute("COMMIT")
                .await
                .map_err(db_error)
                .context("committing")?;
            Ok(value)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Copies a table's rows from sled, a batch at a time.
async fn copy_table(c: &ClientWrapper, store: &SledStorage, table: &Table) -> Result<()> {
    let mut batch = Batch::new(table.columns.iter().map(|(_, k)| *k));
    for row in super::copy_sled::rows(store, table)? {
        batch.push(row?);
        if batch.is_full() {
            insert(c, table, &batch).await?;
            batch.clear();
        }
    }
    insert(c, table, &batch).await
}

/// Inserts a batch of events in their order, skipping ids the table holds (the check
/// counts them).
async fn copy_events(c: &ClientWrapper, events: &[SourceEvent]) -> Result<()> {
    let mut batch = Batch::new(INSERT_KINDS);
    for event in events {
        batch.push(event.insert_row());
    }
    c.execute(
        "INSERT INTO events (id, course_id, user_id, name, time, line)
             SELECT e.id, e.c, e.u, e.n, e.t::timestamptz, e.l
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                  WITH ORDINALITY AS e (id, c, u, n, t, l, ord)
             ORDER BY e.ord
             ON CONFLICT (id) DO NOTHING",
        &batch.params(),
    )
    .await
    .map_err(db_error)
    .with_context(|| format!("inserting {} events into events", events.len()))?;
    Ok(())
}

/// Copies everything the sled store and its event log `log` hold into the empty database
/// `dest` and checks the copy ([`verify`]) before committing, in one transaction. Fails,
/// leaving the database as it was, on a non-empty database (naming a table that holds
/// rows), on a row the database cannot hold (naming it), or when a table differs (naming
/// it, with every table's figures).
pub fn copy(
    store: &SledStorage,
    log: &Path,
    dest: &PgStorage,
    limits: &ReadLimits,
) -> Result<Verification> {
    // sled's side of the check first, outside the transaction (which must not sit idle).
    let sources = sled_checks(store)?;
    let name = dest.name().to_string();
    dest.with_connection(async |c| {
        in_transaction(c, "BEGIN", async |c| {
            let all: Vec<&str> = TABLES.iter().map(|t| t.name).chain([EVENTS.name]).collect();
            // Nothing else writes while the copy runs, and no other copy starts.
            c.batch_execute(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", all.join(", ")))
                .await
                .map_err(db_error)
                .with_context(|| format!("locking the tables of {name}"))?;
            super::pg_schema::check_empty(c, &name).await?;
            for table in TABLES {
                copy_table(c, store, table)
                    .await
                    .with_context(|| format!("copying {} into {name}", table.name))?;
                tracing::info!(table = table.name, "copied");
            }
            let mut events = EventReader::new(log_files(log), store, limits);
            while let Some(batch) = events.next_batch()? {
                copy_events(c, &batch).await?;
            }
            // The transaction sees its own rows: a copy that differs is never committed.
            let verification = database_checks(c, &name, sources, store, log, limits).await?;
            if let Err(e) = verification.ensure_agrees() {
                bail!("{}{e:#}; nothing was copied", verification.to_text());
            }
            Ok(verification)
        })
        .await
    })
}

/// Checks that the database `dest` holds exactly what the sled store and its event log
/// hold (see the module doc), in one snapshot. Returns the figures, mismatches included:
/// the caller decides ([`Verification::ensure_agrees`]).
pub fn verify(
    store: &SledStorage,
    log: &Path,
    dest: &PgStorage,
    limits: &ReadLimits,
) -> Result<Verification> {
    let sources = sled_checks(store)?;
    let name = dest.name().to_string();
    dest.with_connection(async |c| {
        in_transaction(
            c,
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            async |c| database_checks(c, &name, sources, store, log, limits).await,
        )
        .await
    })
}

/// Every table's check of the sled store, in `TABLES` order.
fn sled_checks(store: &SledStorage) -> Result<Vec<Check>> {
    TABLES
        .iter()
        .map(|table| {
            let mut check = Check::default();
            for row in super::copy_sled::rows(store, table)? {
                check.add(&row?);
            }
            Ok(check)
        })
        .collect()
}

/// The database's checks beside sled's (`sources`) and the events' on both sides.
async fn database_checks(
    c: &ClientWrapper,
    name: &str,
    sources: Vec<Check>,
    store: &SledStorage,
    log: &Path,
    limits: &ReadLimits,
) -> Result<Verification> {
    let mut tables = Vec::new();
    for (table, source) in TABLES.iter().zip(&sources) {
        let mut check = Check::default();
        read_table(c, table, &mut |row| {
            check.add(&row);
            Ok(())
        })
        .await?;
        tables.push(TableCheck::new(table.name, source, &check));
    }
    let mut stored = Check::default();
    read_table(c, &EVENTS, &mut |row| {
        stored.add(&row);
        Ok(())
    })
    .await?;
    let ((source, events), repeated_ids) = source_events(c, store, log, limits).await?;
    tables.push(TableCheck::new(EVENTS.name, &source, &stored));
    Ok(Verification {
        database: name.to_string(),
        tables,
        events,
        repeated_ids,
    })
}

/// The source side of the events' check: the events a copy stores, in its order. A line
/// is a repeat when the database's row of its id comes no later than the last one taken
/// (the first of each id was stored at the next position); an id the database lacks is
/// taken (and so makes the checks differ).
async fn source_events(
    c: &ClientWrapper,
    store: &SledStorage,
    log: &Path,
    limits: &ReadLimits,
) -> Result<((Check, EventSources), u64)> {
    let mut check = Check::default();
    let (mut last, mut repeated) = (0i64, 0u64);
    let mut reader = EventReader::new(log_files(log), store, limits);
    while let Some(batch) = reader.next_batch()? {
        let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
        let rows = c
            .query("SELECT id, seq FROM events WHERE id = ANY($1)", &[&ids])
            .await
            .map_err(db_error)
            .context("looking up events in the events table")?;
        let stored: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut taken_here: HashSet<&str> = HashSet::new();
        for event in &batch {
            let take = match stored.get(&event.id) {
                Some(&seq) if seq > last => {
                    last = seq;
                    true
                }
                Some(_) => false,
                // Not stored at all: counted on this side only, so the check fails.
                None => taken_here.insert(event.id.as_str()),
            };
            if take {
                check.add(&event.check_row());
            } else {
                repeated += 1;
                if event.origin == Origin::Outbox {
                    tracing::debug!(id = %event.id, "an outbox entry the log holds");
                }
            }
        }
    }
    Ok(((check, reader.finish()), repeated))
}
