//! The PostgreSQL schema and its migrations: each migration is applied once, in order, in
//! a transaction, under an advisory lock (hosts starting together do not race), and
//! recorded in `xbhost_migrations`. A database migrated by a newer binary than this one is
//! refused: this binary does not know what those migrations mean.
//!
//! Per-course tags keep Open edX's shape (`user_course_tags`: user id, course id, key,
//! value, as its `user_api_usercoursetag`), so an institution can reconcile them with its
//! LMS.

use anyhow::{Result, bail};
use deadpool_postgres::ClientWrapper;

/// Every migration, by version (1, 2, ...). Never edit one that has shipped: add another.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "tags, state, courses, plugins, enrollments, metadata, events",
        r#"
CREATE TABLE user_course_tags (
    user_id   text NOT NULL,
    course_id text NOT NULL,
    key       text NOT NULL,
    value     text NOT NULL,
    PRIMARY KEY (course_id, user_id, key)
);
CREATE INDEX user_course_tags_by_key ON user_course_tags (course_id, key);
CREATE TABLE user_global_tags (
    user_id text NOT NULL,
    key     text NOT NULL,
    value   text NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE TABLE user_state (
    course_id text NOT NULL,
    user_id   text NOT NULL,
    usage_id  text NOT NULL,
    state     text NOT NULL,
    PRIMARY KEY (course_id, user_id, usage_id)
);
CREATE TABLE courses (
    course_id text PRIMARY KEY,
    version   bigint NOT NULL,
    doc       text NOT NULL
);
CREATE TABLE plugin_wasm (
    hash text PRIMARY KEY,
    wasm bytea NOT NULL
);
CREATE TABLE plugins (
    name   text PRIMARY KEY,
    record text NOT NULL,
    hash   text NOT NULL REFERENCES plugin_wasm (hash)
);
CREATE TABLE enrollments (
    course_id text NOT NULL,
    user_id   text NOT NULL,
    enrolled  text NOT NULL,
    PRIMARY KEY (course_id, user_id)
);
CREATE TABLE store_meta (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE events (
    seq       bigserial PRIMARY KEY,
    id        text NOT NULL UNIQUE,
    course_id text NOT NULL,
    user_id   text NOT NULL,
    name      text NOT NULL,
    time      timestamptz NOT NULL,
    line      text NOT NULL
);
CREATE INDEX events_by_course ON events (course_id, seq);
"#,
    ),
    (
        2,
        "token records shared by hosts: used sign-ins, signed-out sessions",
        r#"
CREATE TABLE token_records (
    kind  text   NOT NULL,
    id    text   NOT NULL,
    until bigint NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX token_records_by_expiry ON token_records (until);
"#,
    ),
    (
        3,
        "block tallies: counts shared by every learner of a block",
        r#"
CREATE TABLE block_tallies (
    course_id text   NOT NULL,
    usage_id  text   NOT NULL,
    key       text   NOT NULL,
    value     bigint NOT NULL,
    PRIMARY KEY (course_id, usage_id, key)
);
"#,
    ),
];

/// The newest schema version this binary knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Brings the database's schema to [`latest`], or refuses a newer one. `name` is the
/// database as errors name it.
pub async fn migrate(client: &ClientWrapper, name: &str) -> Result<(), MigrateError> {
    // One host migrates at a time, from the very first statement (hosts starting together
    // on an empty database would race on creating the bookkeeping table); the others wait
    // here, then find nothing to do. A migration may take long (an index on a big table):
    // neither the wait nor its statements are held to a page's timeouts, only to a
    // generous bound. The session's settings are restored before the connection is
    // pooled.
    client
        .batch_execute(
            "SET lock_timeout = '600s'; SET statement_timeout = 0;
             SELECT pg_advisory_lock(7346120519)",
        )
        .await?;
    let outcome = migrate_locked(client, name).await;
    let restored = client
        .batch_execute(
            "SELECT pg_advisory_unlock(7346120519); RESET lock_timeout; RESET statement_timeout",
        )
        .await;
    outcome?;
    Ok(restored?)
}

async fn migrate_locked(client: &ClientWrapper, name: &str) -> Result<(), MigrateError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS xbhost_migrations (
                 version    integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now(),
                 what       text NOT NULL
             )",
        )
        .await?;
    client.batch_execute("BEGIN").await?;
    let outcome = async {
        let row = client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM xbhost_migrations",
                &[],
            )
            .await?;
        let current: i32 = row.get(0);
        if current > latest() {
            return Err(MigrateError::Newer {
                database: name.to_string(),
                found: current,
                known: latest(),
            });
        }
        for (version, what, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            tracing::info!(
                database = name,
                version,
                what,
                "applying a schema migration"
            );
            client.batch_execute(sql).await?;
            client
                .execute(
                    "INSERT INTO xbhost_migrations (version, what) VALUES ($1, $2)",
                    &[version, what],
                )
                .await?;
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => Ok(client.batch_execute("COMMIT").await?),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub enum MigrateError {
    Newer {
        database: String,
        found: i32,
        known: i32,
    },
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Database(e)
    }
}

/// The tables `store copy` fills and checks, in the order rows can be inserted.
pub const TABLES: &[&str] = &[
    "user_course_tags",
    "user_global_tags",
    "user_state",
    "courses",
    "plugin_wasm",
    "plugins",
    "enrollments",
    "store_meta",
    "block_tallies",
    "events",
];

/// Refuses a database that holds any xbhost data (a copy goes into an empty one only).
pub async fn check_empty(client: &ClientWrapper, name: &str) -> Result<()> {
    for table in TABLES {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?;
        let n: i64 = row.get(0);
        if n > 0 {
            bail!("the database {name} is not empty: its table {table} holds {n} rows");
        }
    }
    Ok(())
}
