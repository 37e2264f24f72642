//! Persistent state behind one trait (`contract.rs`), with two backends: the embedded sled
//! store (`sled_store.rs`, its outbox of pending events in `sled_outbox.rs`, block tallies
//! in `sled_tallies.rs`, concurrent flushes sharing one sync in `group_commit.rs`, unfinished
//! snapshots removed at open by `sled_snapshots.rs`, kept usable through disk failures by
//! `recovering.rs`), and PostgreSQL for several hosts sharing one
//! database (`pg_open.rs` connects and migrates with `pg_schema.rs`; `pg_exec.rs` runs
//! statements on the pool or in a request's transaction; `pg_store.rs` holds the queries,
//! `pg_commit.rs` those of a block call's writes and of block tallies, `pg_events.rs` those
//! of the events table, `pg_tokens.rs` the server's shared token records;
//! `pg_notify.rs` carries change notices between hosts). `copy.rs` moves a sled store and
//! its event log into an empty database and checks the copy (`store copy`, `store
//! verify`), reading sled with `copy_sled.rs` and the events with `copy_events.rs`, rows
//! and checksums alike on both sides in `copy_rows.rs`.

mod contract;
pub mod copy;
mod copy_events;
mod copy_rows;
mod copy_sled;
mod group_commit;
mod health;
mod pg_commit;
mod pg_courses;
mod pg_events;
mod pg_exec;
mod pg_notify;
mod pg_open;
mod pg_schema;
mod pg_store;
mod pg_tls;
mod pg_tokens;
mod recovering;
mod sled_courses;
mod sled_outbox;
mod sled_snapshots;
mod sled_store;
mod sled_sync;
mod sled_tallies;

pub use contract::{
    BlockWrites, CarriedTag, Change, CourseWrite, FirstWrite, OnChange, OutboxEntry, PluginRecord,
    Storage, StoredEvent,
};
pub use pg_open::{PgOptions, db_error};
pub use pg_schema::{
    TABLES as PG_TABLES, check_empty as pg_check_empty, latest as pg_schema_version,
};
pub use pg_store::PgStorage;
pub use pg_tls::is_database_url;
pub use recovering::RecoveringStore;
pub use sled_store::SledStorage;
