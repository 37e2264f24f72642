//! The PostgreSQL store: [`Storage`] over SQL, for N hosts sharing one database.
//!
//! One body of queries serves both ways statements run ([`Exec`]): [`PgStorage`] runs each
//! call on a pooled connection (CLI commands, uploads, reports), and the store
//! [`Storage::for_request`] gives a request runs its calls on one held connection, all
//! of its writes in one transaction committed at the end of the request. First writes are
//! `INSERT ... ON CONFLICT DO NOTHING RETURNING` followed, when nothing was returned, by
//! a separate read: the insert waits for a concurrent writer of the same row and does
//! nothing if it commits, and only a new statement sees that writer's value. Listings
//! order by `COLLATE "C"` (bytewise, as sled orders keys), whatever the database's collation.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use deadpool_postgres::ClientWrapper;

use super::contract::{
    BlockWrites, CarriedTag, Change, CourseWrite, FirstWrite, OnChange, PluginRecord, Storage,
    StoredEvent,
};
use super::pg_exec::{Exec, Kind, PoolExec, RequestExec, check_text};
use crate::model::CourseDoc;

/// The store on a pooled connection per call (see the module doc).
pub type PgStorage = PgStore<PoolExec>;

/// The store over one way of running statements.
pub struct PgStore<X> {
    pub(super) x: X,
}

fn map_of(rows: &[tokio_postgres::Row]) -> BTreeMap<String, String> {
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Sends a change notice to every host (delivered when the transaction commits).
async fn notify(c: &ClientWrapper, change: &Change) -> Result<(), tokio_postgres::Error> {
    let st = c
        .prepare_cached("SELECT pg_notify('xbhost_changes', $1)")
        .await?;
    c.execute(&st, &[&change.encode()]).await.map(|_| ())
}

impl<X: Exec> PgStore<X> {
    /// The first-writer-wins read after an insert that did nothing: the winner's value.
    async fn winner(
        c: &ClientWrapper,
        course: &str,
        user: &str,
        key: &str,
    ) -> Result<Option<String>, tokio_postgres::Error> {
        let st = c
            .prepare_cached(
                "SELECT value FROM user_course_tags WHERE course_id = $1 AND user_id = $2 AND key = $3",
            )
            .await?;
        Ok(c.query_opt(&st, &[&course, &user, &key])
            .await?
            .map(|r| r.get(0)))
    }
}

impl<X: Exec> Storage for PgStore<X> {
    fn learner_tags(
        &self,
        course: &str,
        user: &str,
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
        let what = || format!("reading the tags of user {user:?} in {course:?}");
        let rows = self.x.run(Kind::Read, &what, async |c| {
            let st = c
                .prepare_cached(
                    "SELECT 0::int2, key, value FROM user_course_tags WHERE course_id = $1 AND user_id = $2
                     UNION ALL
                     SELECT 1::int2, key, value FROM user_global_tags WHERE user_id = $2",
                )
                .await?;
            c.query(&st, &[&course, &user]).await
        })?;
        let (mut course_tags, mut user_tags) = (BTreeMap::new(), BTreeMap::new());
        for row in rows {
            let scope: i16 = row.get(0);
            let into = if scope == 0 {
                &mut course_tags
            } else {
                &mut user_tags
            };
            into.insert(row.get(1), row.get(2));
        }
        Ok((course_tags, user_tags))
    }

    fn for_request(&self) -> Option<Arc<dyn Storage>> {
        Some(Arc::new(PgStore {
            x: RequestExec::new(self.x.shared().clone()),
        }))
    }

    fn keeps_events(&self) -> bool {
        true
    }

    fn watch(&self, on_change: OnChange) -> Result<()> {
        super::pg_notify::watch(self.x.shared(), on_change);
        Ok(())
    }

    fn append_events(&self, events: &[StoredEvent]) -> Result<()> {
        super::pg_events::append(&self.x, events)
    }

    fn shares_token_records(&self) -> bool {
        true
    }

    fn record_tokens_once(
        &self,
        kind: &str,
        records: &[(String, u64)],
        now: u64,
    ) -> Result<Option<usize>> {
        super::pg_tokens::record_once(&self.x, kind, records, now)
    }

    fn token_records(&self, kind: &str, now: u64) -> Result<Vec<(String, u64)>> {
        super::pg_tokens::unexpired(&self.x, kind, now)
    }

    fn stored_event_ids(&self, ids: &[String]) -> Result<std::collections::BTreeSet<String>> {
        super::pg_events::stored_ids(&self.x, ids)
    }

    fn course_events(
        &self,
        course: &str,
        since: Option<&str>,
        each: &mut dyn FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()> {
        super::pg_events::of_course(&self.x, course, since, each)
    }

    fn course_tags(&self, course: &str, user: &str) -> Result<BTreeMap<String, String>> {
        let what = || format!("reading the course tags of user {user:?} in {course:?}");
        let rows = self.x.run(Kind::Read, &what, async |c| {
            let st = c
                .prepare_cached(
                    "SELECT key, value FROM user_course_tags WHERE course_id = $1 AND user_id = $2",
                )
                .await?;
            c.query(&st, &[&course, &user]).await
        })?;
        Ok(map_of(&rows))
    }

    fn course_tag(&self, course: &str, user: &str, key: &str) -> Result<Option<String>> {
        let what = || format!("reading course tag {key:?} of user {user:?} in {course:?}");
        self.x.run(Kind::Read, &what, async |c| {
            Self::winner(c, course, user, key).await
        })
    }

    fn set_course_tag(&self, course: &str, user: &str, key: &str, value: &str) -> Result<()> {
        check_text("tag value", value)?;
        let what = || format!("storing course tag {key:?} of user {user:?} in {course:?}");
        self.x.run(Kind::Write, &what, async |c| {
            let st = c
                .prepare_cached(
                    "INSERT INTO user_course_tags (user_id, course_id, key, value) VALUES ($2, $1, $3, $4)
                     ON CONFLICT (course_id, user_id, key) DO UPDATE SET value = EXCLUDED.value",
                )
                .await?;
            c.execute(&st, &[&course, &user, &key, &value]).await
        })?;
        Ok(())
    }

    fn set_course_tag_if_absent(
        &self,
        course: &str,
        user: &str,
        key: &str,
        value: &str,
    ) -> Result<FirstWrite> {
        check_text("tag value", value)?;
        let what = || format!("storing course tag {key:?} of user {user:?} in {course:?}");
        // The winner can vanish between the insert and the read (a carry-over moves it):
        // then the insert is tried again.
        for _ in 0..3 {
            let outcome = self.x.run(Kind::Write, &what, async |c| {
                let st = c
                    .prepare_cached(
                        "INSERT INTO user_course_tags (user_id, course_id, key, value) VALUES ($2, $1, $3, $4)
                         ON CONFLICT (course_id, user_id, key) DO NOTHING RETURNING value",
                    )
                    .await?;
                if c.query_opt(&st, &[&course, &user, &key, &value])
                    .await?
                    .is_some()
                {
                    return Ok(Some(FirstWrite::Written));
                }
                Ok(Self::winner(c, course, user, key)
                    .await?
                    .map(FirstWrite::Existing))
            })?;
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
        Err(anyhow!("{}: the tag kept vanishing meanwhile", what()))
    }

    fn replace_course_tag(
        &self,
        course: &str,
        user: &str,
        key: &str,
        expected: &str,
        value: &str,
    ) -> Result<FirstWrite> {
        check_text("tag value", value)?;
        let what = || format!("replacing course tag {key:?} of user {user:?} in {course:?}");
        let outcome = self.x.run(Kind::Write, &what, async |c| {
            let st = c
                .prepare_cached(
                    "UPDATE user_course_tags SET value = $5
                     WHERE course_id = $1 AND user_id = $2 AND key = $3 AND value = $4",
                )
                .await?;
            if c.execute(&st, &[&course, &user, &key, &expected, &value])
                .await?
                == 1
            {
                return Ok(Some(FirstWrite::Written));
            }
            Ok(Self::winner(c, course, user, key)
                .await?
                .map(FirstWrite::Existing))
        })?;
        outcome
            .ok_or_else(|| anyhow!("course tag {key:?} of user {user:?} vanished during a replace"))
    }

    fn users_with_course_tag(&self, course: &str, key: &str) -> Result<Vec<(String, String)>> {
        let what = || format!("reading course tag {key:?} of every user in {course:?}");
        let rows = self.x.run(Kind::Read, &what, async |c| {
            c.query(
                "SELECT user_id, value FROM user_course_tags WHERE course_id = $1 AND key = $2
                 ORDER BY user_id COLLATE \"C\"",
                &[&course, &key],
            )
            .await
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn course_users(&self, course: &str) -> Result<Vec<String>> {
        let what = || format!("reading the users of {course:?}");
        let rows = self.x.run(Kind::Read, &what, async |c| {
            c.query(
                "SELECT user_id FROM (SELECT user_id FROM user_course_tags WHERE course_id = $1
                 UNION SELECT user_id FROM user_state WHERE course_id = $1) AS users
                 ORDER BY user_id COLLATE \"C\"",
                &[&course],
            )
            .await
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn user_tags(&self, user: &str) -> Result<BTreeMap<String, String>> {
        let what = || format!("reading the global tags of user {user:?}");
        let rows = self.x.run(Kind::Read, &what, async |c| {
            let st = c
                .prepare_cached("SELECT key, value FROM user_global_tags WHERE user_id = $1")
                .await?;
            c.query(&st, &[&user]).await
        })?;
        Ok(map_of(&rows))
    }

    fn user_tag(&self, user: &str, key: &str) -> Result<Option<String>> {
        let what = || format!("reading global tag {key:?} of user {user:?}");
        self.x.run(Kind::Read, &what, async |c| {
            let row = c
                .query_opt(
                    "SELECT value FROM user_global_tags WHERE user_id = $1 AND key = $2",
                    &[&user, &key],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set_user_tag(&self, user: &str, key: &str, value: &str) -> Result<()> {
        check_text("tag value", value)?;
        let what = || format!("storing global tag {key:?} of user {user:?}");
        self.x.run(Kind::Write, &what, async |c| {
            c.execute(
                "INSERT INTO user_global_tags (user_id, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value",
                &[&user, &key, &value],
            )
            .await
        })?;
        Ok(())
    }

    fn user_state(&self, course: &str, user: &str, usage: &str) -> Result<Option<String>> {
        let what =
            || format!("reading the state of block {usage:?} for user {user:?} in {course:?}");
        self.x.run(Kind::Read, &what, async |c| {
            let st = c
                .prepare_cached(
                    "SELECT state FROM user_state WHERE course_id = $1 AND user_id = $2 AND usage_id = $3",
                )
                .await?;
            Ok(c.query_opt(&st, &[&course, &user, &usage])
                .await?
                .map(|r| r.get(0)))
        })
    }

    fn block_tallies(&self, course: &str, usage: &str) -> Result<BTreeMap<String, i64>> {
        super::pg_commit::read(&self.x, course, usage)
    }

    fn set_user_state(&self, course: &str, user: &str, usage: &str, json: &str) -> Result<()> {
        let writes = BlockWrites {
            state: Some((usage.to_string(), json.to_string())),
            ..BlockWrites::default()
        };
        self.commit(course, user, &writes)
    }

    fn course(&self, key: &str) -> Result<Option<CourseDoc>> {
        let what = || format!("reading course {key:?}");
        let doc: Option<String> = self.x.run(Kind::Read, &what, async |c| {
            let st = c
                .prepare_cached("SELECT doc FROM courses WHERE course_id = $1")
                .await?;
            Ok(c.query_opt(&st, &[&key]).await?.map(|r| r.get(0)))
        })?;
        doc.map(|d| {
            serde_json::from_str(&d)
                .with_context(|| format!("stored course {key:?} does not parse"))
        })
        .transpose()
    }

    fn put_course(&self, doc: &CourseDoc) -> Result<()> {
        let json = serde_json::to_string(doc)?;
        check_text("course document", &json)?;
        let key = doc.course_key.as_str();
        let what = || format!("storing course {key:?}");
        self.x.run(Kind::Atomic, &what, async |c| {
            c.execute(
                "INSERT INTO courses (course_id, version, doc) VALUES ($1, 1, $2)
                 ON CONFLICT (course_id) DO UPDATE SET version = courses.version + 1, doc = EXCLUDED.doc",
                &[&key, &json],
            )
            .await?;
            notify(c, &Change::Course(key.to_string())).await
        })
    }

    fn course_with_version(&self, key: &str) -> Result<Option<(CourseDoc, u64)>> {
        super::pg_courses::read(&self.x, key)
    }

    fn put_course_if_version(&self, doc: &CourseDoc, expected: Option<u64>) -> Result<CourseWrite> {
        let json = serde_json::to_string(doc)?;
        check_text("course document", &json)?;
        super::pg_courses::put_if(&self.x, doc, &json, expected)
    }

    fn course_keys(&self) -> Result<Vec<String>> {
        let what = || "listing the courses".to_string();
        let rows = self.x.run(Kind::Read, &what, async |c| {
            c.query(
                r#"SELECT course_id FROM courses ORDER BY course_id COLLATE "C""#,
                &[],
            )
            .await
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn plugin(&self, name: &str) -> Result<Option<PluginRecord>> {
        let what = || format!("reading plugin {name:?}");
        let record: Option<String> = self.x.run(Kind::Read, &what, async |c| {
            let st = c
                .prepare_cached("SELECT record FROM plugins WHERE name = $1")
                .await?;
            Ok(c.query_opt(&st, &[&name]).await?.map(|r| r.get(0)))
        })?;
        record
            .map(|r| {
                serde_json::from_str(&r)
                    .with_context(|| format!("stored record of plugin {name:?} does not parse"))
            })
            .transpose()
    }

    fn plugins(&self) -> Result<Vec<PluginRecord>> {
        let what = || "listing the plugins".to_string();
        let rows = self.x.run(Kind::Read, &what, async |c| {
            c.query(
                r#"SELECT name, record FROM plugins ORDER BY name COLLATE "C""#,
                &[],
            )
            .await
        })?;
        rows.iter()
            .map(|r| {
                let name: &str = r.get(0);
                serde_json::from_str(r.get(1))
                    .with_context(|| format!("stored record of plugin {name:?} does not parse"))
            })
            .collect()
    }

    fn plugin_wasm(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let what = || format!("reading the component {hash}");
        self.x.run(Kind::Read, &what, async |c| {
            let row = c
                .query_opt("SELECT wasm FROM plugin_wasm WHERE hash = $1", &[&hash])
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn put_plugin(&self, record: &PluginRecord, wasm: &[u8]) -> Result<()> {
        let json = serde_json::to_string(record)?;
        let (name, hash) = (record.name.as_str(), record.hash.as_str());
        let what = || format!("storing plugin {name:?}");
        self.x.run(Kind::Atomic, &what, async |c| {
            c.execute(
                "INSERT INTO plugin_wasm (hash, wasm) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
                &[&hash, &wasm],
            )
            .await?;
            c.execute(
                "INSERT INTO plugins (name, record, hash) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record, hash = EXCLUDED.hash",
                &[&name, &json, &hash],
            )
            .await?;
            notify(c, &Change::Plugin(name.to_string())).await
        })
    }

    fn enrollment(&self, course: &str, user: &str) -> Result<Option<String>> {
        let what = || format!("reading the enrollment of user {user:?} in {course:?}");
        self.x.run(Kind::Read, &what, async |c| {
            let st = c
                .prepare_cached(
                    "SELECT enrolled FROM enrollments WHERE course_id = $1 AND user_id = $2",
                )
                .await?;
            Ok(c.query_opt(&st, &[&course, &user]).await?.map(|r| r.get(0)))
        })
    }

    fn set_enrollments(&self, course: &str, dates: &[(String, String)]) -> Result<()> {
        // One row per user, the last date given winning, as in sled's batch: one INSERT
        // cannot update a row twice (ON CONFLICT DO UPDATE refuses the whole batch).
        let last: BTreeMap<&str, &str> = dates
            .iter()
            .map(|(u, d)| (u.as_str(), d.as_str()))
            .collect();
        let users: Vec<&str> = last.keys().copied().collect();
        let days: Vec<&str> = last.values().copied().collect();
        let what = || format!("storing enrollment dates of {course:?}");
        // One statement: all of them or none.
        self.x.run(Kind::Write, &what, async |c| {
            c.execute(
                "INSERT INTO enrollments (course_id, user_id, enrolled)
                 SELECT $1, u, d FROM unnest($2::text[], $3::text[]) AS t (u, d)
                 ON CONFLICT (course_id, user_id) DO UPDATE SET enrolled = EXCLUDED.enrolled",
                &[&course, &users, &days],
            )
            .await
        })?;
        Ok(())
    }

    fn carry_over_course_tags(
        &self,
        course: &str,
        from: &str,
        to: &str,
        keys: &[String],
    ) -> Result<Vec<CarriedTag>> {
        let what = || format!("carrying tags of {from:?} over to {to:?} in {course:?}");
        self.x.run(Kind::Atomic, &what, async |c| {
            let mut carried = Vec::new();
            for key in keys {
                // Removed from `from` and put on `to` unless `to` has its own, at once.
                let row = c
                    .query_opt(
                        "WITH moved AS (
                             DELETE FROM user_course_tags
                             WHERE course_id = $1 AND user_id = $2 AND key = $4 RETURNING value),
                         put AS (
                             INSERT INTO user_course_tags (user_id, course_id, key, value)
                             SELECT $3, $1, $4, value FROM moved
                             ON CONFLICT (course_id, user_id, key) DO NOTHING RETURNING value)
                         SELECT (SELECT value FROM moved), (SELECT value FROM put)
                         WHERE EXISTS (SELECT 1 FROM moved)",
                        &[&course, &from, &to, key],
                    )
                    .await?;
                let Some(row) = row else { continue };
                let from_value: String = row.get(0);
                let put: Option<String> = row.get(1);
                let (to_value, was_carried) = match put {
                    Some(value) => (value, true),
                    None => (
                        Self::winner(c, course, to, key)
                            .await?
                            .unwrap_or_else(|| from_value.clone()),
                        false,
                    ),
                };
                carried.push(CarriedTag {
                    key: key.clone(),
                    from_value,
                    to_value,
                    carried: was_carried,
                });
            }
            Ok(carried)
        })
    }

    fn commit(&self, course: &str, user: &str, writes: &BlockWrites) -> Result<()> {
        super::pg_commit::commit(&self.x, course, user, writes)
    }

    fn meta_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>> {
        let what = || format!("storing the store's {name:?}");
        self.x.run(Kind::Write, &what, async |c| {
            let inserted = c
                .query_opt(
                    "INSERT INTO store_meta (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO NOTHING RETURNING value",
                    &[&name, &value],
                )
                .await?;
            if let Some(row) = inserted {
                return Ok(row.get(0));
            }
            let row = c
                .query_one("SELECT value FROM store_meta WHERE name = $1", &[&name])
                .await?;
            Ok(row.get(0))
        })
    }

    fn flush(&self) -> Result<()> {
        self.x.flush()
    }

    fn check_writable(&self) -> Result<()> {
        let what = || "checking that the database takes writes".to_string();
        let standby: bool = self.x.run(Kind::Read, &what, async |c| {
            Ok(c.query_one("SELECT pg_is_in_recovery()", &[]).await?.get(0))
        })?;
        if standby {
            return Err(self
                .x
                .shared()
                .unavailable("the database is a read-only standby".into()));
        }
        Ok(())
    }
}
