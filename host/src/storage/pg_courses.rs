//! The queries of versioned course documents (`courses`: course id, version, document):
//! a read with the version, and the compare-and-swap store: one statement that writes only
//! if the stored version is still the expected one (`UPDATE ... WHERE version = $3`, or for
//! a new course `INSERT ... ON CONFLICT DO NOTHING`), its change notice in the same
//! transaction, and when nothing was written a separate read of the version that won (the
//! statement waits for a concurrent writer of the row and then matches nothing; only a new
//! statement sees that writer's version).

use anyhow::{Context as _, Result};
use deadpool_postgres::ClientWrapper;

use super::contract::{Change, CourseWrite};
use super::pg_exec::{Exec, Kind};
use crate::model::CourseDoc;

/// Sends the change notice of a stored course (delivered when the transaction commits).
pub(super) async fn notify_course(
    c: &ClientWrapper,
    key: &str,
) -> Result<(), tokio_postgres::Error> {
    let st = c
        .prepare_cached("SELECT pg_notify('xbhost_changes', $1)")
        .await?;
    c.execute(&st, &[&Change::Course(key.to_string()).encode()])
        .await
        .map(|_| ())
}

/// A version as stored (bigint) as the host counts it.
fn version_of(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

/// The course `key` and its version.
pub(super) fn read(x: &impl Exec, key: &str) -> Result<Option<(CourseDoc, u64)>> {
    let what = || format!("reading course {key:?}");
    let row: Option<(String, i64)> = x.run(Kind::Read, &what, async |c| {
        let st = c
            .prepare_cached("SELECT doc, version FROM courses WHERE course_id = $1")
            .await?;
        Ok(c.query_opt(&st, &[&key])
            .await?
            .map(|r| (r.get(0), r.get(1))))
    })?;
    row.map(|(doc, version)| {
        let doc = serde_json::from_str(&doc)
            .with_context(|| format!("stored course {key:?} does not parse"))?;
        Ok((doc, version_of(version)))
    })
    .transpose()
}

/// Stores `doc` as the next version if the stored one is `expected` (see the module doc).
pub(super) fn put_if(
    x: &impl Exec,
    doc: &CourseDoc,
    json: &str,
    expected: Option<u64>,
) -> Result<CourseWrite> {
    let key = doc.course_key.as_str();
    let what = || format!("storing course {key:?}");
    let expected = match expected.map(i64::try_from) {
        None => None,
        Some(Ok(v)) => Some(v),
        // No stored version is that large: the store holds another.
        Some(Err(_)) => Some(-1),
    };
    x.run(Kind::Atomic, &what, async |c| {
        let written = match expected {
            Some(version) => {
                let st = c
                    .prepare_cached(
                        "UPDATE courses SET version = version + 1, doc = $2
                         WHERE course_id = $1 AND version = $3 RETURNING version",
                    )
                    .await?;
                c.query_opt(&st, &[&key, &json, &version]).await?
            }
            None => {
                let st = c
                    .prepare_cached(
                        "INSERT INTO courses (course_id, version, doc) VALUES ($1, 1, $2)
                         ON CONFLICT (course_id) DO NOTHING RETURNING version",
                    )
                    .await?;
                c.query_opt(&st, &[&key, &json]).await?
            }
        };
        if let Some(row) = written {
            notify_course(c, key).await?;
            return Ok(CourseWrite::Stored(version_of(row.get(0))));
        }
        let st = c
            .prepare_cached("SELECT version FROM courses WHERE course_id = $1")
            .await?;
        let current = c.query_opt(&st, &[&key]).await?;
        Ok(CourseWrite::Conflict(current.map(|r| version_of(r.get(0)))))
    })
}
