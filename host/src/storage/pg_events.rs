//! The PostgreSQL store's event log: the `events` table, appended to in the request's
//! transaction, read back a bounded page at a time (the report, `events export`).

use std::collections::BTreeSet;

use anyhow::Result;

use super::contract::StoredEvent;
use super::pg_exec::{Exec, Kind, check_text};

/// How many events [`of_course`] reads at a time.
const EVENT_PAGE: i64 = 1000;

pub fn append(x: &impl Exec, events: &[StoredEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&StoredEvent) -> &str| -> Vec<&str> { events.iter().map(f).collect() };
    let (ids, courses, users) = (
        column(|e| &e.id),
        column(|e| &e.course_key),
        column(|e| &e.user_id),
    );
    let (names, times, lines) = (
        column(|e| &e.name),
        column(|e| &e.time),
        column(|e| &e.line),
    );
    for line in &lines {
        check_text("event line", line)?;
    }
    let what = || format!("storing {} events", events.len());
    x.run(Kind::Events, &what, async |c| {
        let st = c
            .prepare_cached(
                "INSERT INTO events (id, course_id, user_id, name, time, line)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                          $5::text[]::timestamptz[], $6::text[])
                     ON CONFLICT (id) DO NOTHING",
            )
            .await?;
        c.execute(&st, &[&ids, &courses, &users, &names, &times, &lines])
            .await
    })?;
    Ok(())
}

pub fn stored_ids(x: &impl Exec, ids: &[String]) -> Result<BTreeSet<String>> {
    let what = || format!("looking for {} events", ids.len());
    let rows = x.run(Kind::Read, &what, async |c| {
        c.query("SELECT id FROM events WHERE id = ANY($1)", &[&ids])
            .await
    })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub fn of_course(
    x: &impl Exec,
    course: &str,
    since: Option<&str>,
    each: &mut dyn FnMut(StoredEvent) -> Result<()>,
) -> Result<()> {
    let mut after: i64 = 0;
    loop {
        let what = || format!("reading the events of {course:?}");
        let rows = x.run(Kind::Read, &what, async |c| {
                let st = c
                    .prepare_cached(
                        "SELECT seq, id, course_id, user_id, name,
                                to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), line
                         FROM events
                         WHERE course_id = $1 AND seq > $2
                           AND ($3::text IS NULL OR time >= $3::text::timestamptz)
                         ORDER BY seq LIMIT $4",
                    )
                    .await?;
                c.query(&st, &[&course, &after, &since, &EVENT_PAGE]).await
            })?;
        let done = (rows.len() as i64) < EVENT_PAGE;
        for row in rows {
            after = row.get(0);
            each(StoredEvent {
                id: row.get(1),
                course_key: row.get(2),
                user_id: row.get(3),
                name: row.get(4),
                time: row.get(5),
                line: row.get(6),
            })?;
        }
        if done {
            return Ok(());
        }
    }
}
