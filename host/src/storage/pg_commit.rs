//! One block call's writes on PostgreSQL ([`Storage::commit`](super::Storage::commit)): its
//! course and global tags, its state and its additions to block tallies, in one transaction
//! (the call's own, or the request's: see `pg_exec`); and the reading of a block's tallies.
//!
//! A tally is added with `INSERT ... ON CONFLICT DO UPDATE SET value = t.value +
//! EXCLUDED.value`: the row's lock makes concurrent additions, from any host, wait for one
//! another, and each then adds to the committed count (READ COMMITTED reads the row again),
//! so none is lost. A commit adds its rows in key order, so two commits never hold each
//! other's rows crosswise. A count that reaches 0 is kept (read as 0), as sled keeps it.
//!
//! An addition that would leave bigint's range fails its statement. A block must not be
//! able to end the transaction of the request it runs in (the other blocks' writes, the
//! page's groups and events), so a commit with tallies runs after a savepoint and goes back
//! to it when the database refuses the data (SQLSTATE classes 22 and 54): the call stores
//! nothing and fails, naming the block, and the request goes on, as on sled. Every
//! statement is prepared before any is sent, so that they go out in order, after the
//! savepoint, in one round trip.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use deadpool_postgres::ClientWrapper;

use super::contract::BlockWrites;
use super::pg_exec::{Exec, Kind, check_text};

const SAVEPOINT: &str = "SAVEPOINT xbhost_commit";
const RELEASE: &str = "RELEASE SAVEPOINT xbhost_commit";
const ROLL_BACK: &str = "ROLLBACK TO SAVEPOINT xbhost_commit; RELEASE SAVEPOINT xbhost_commit";

/// The additions of one commit as the statement's column arrays, in key order.
#[derive(Default)]
struct Additions {
    usages: Vec<String>,
    keys: Vec<String>,
    amounts: Vec<i64>,
}

/// Refuses what no store keys a tally by: an empty usage id or tally key, or one holding
/// NUL (PostgreSQL's text cannot, sled joins keys with it).
fn check_tally(usage: &str, tally: &str) -> Result<()> {
    if usage.is_empty() {
        bail!("a tally of a block with an empty usage id");
    }
    if tally.is_empty() {
        bail!("block {usage:?} adds to a tally with an empty key");
    }
    check_text("usage id of a tally", usage)?;
    check_text(&format!("key of a tally of block {usage:?}"), tally)
}

/// Whether the database refused the data itself (a value out of range, a key too long to
/// index): the block's fault, not the database's.
fn is_refused_data(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("54"))
}

/// The first error of a pipeline, skipping those that only say an earlier statement failed
/// (25P02: the transaction is aborted).
fn first_error(
    results: Vec<Result<u64, tokio_postgres::Error>>,
) -> Result<(), tokio_postgres::Error> {
    let mut aborted = None;
    for result in results {
        match result {
            Ok(_) => {}
            Err(e) if e.code().is_some_and(|c| c.code() == "25P02") => {
                aborted.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    aborted.map_or(Ok(()), Err)
}

/// Stores one block call's writes atomically (see the module doc).
pub(super) fn commit<X: Exec>(x: &X, course: &str, user: &str, writes: &BlockWrites) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    for (key, value) in writes.course_tags.iter().chain(&writes.user_tags) {
        check_text("tag key", key)?;
        check_text("tag value", value)?;
    }
    if let Some((usage, json)) = &writes.state {
        check_text("usage id", usage)?;
        check_text("block state", json)?;
    }
    let mut adds = Additions::default();
    for ((usage, tally), &amount) in &writes.tallies {
        check_tally(usage, tally)?;
        adds.usages.push(usage.clone());
        adds.keys.push(tally.clone());
        adds.amounts.push(amount);
    }
    let split = |m: &BTreeMap<String, String>| -> (Vec<String>, Vec<String>) {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).unzip()
    };
    let (course_keys, course_values) = split(&writes.course_tags);
    let (user_keys, user_values) = split(&writes.user_tags);
    let guarded = !adds.amounts.is_empty();
    let what = || format!("storing the writes of user {user:?} in {course:?}");
    let refused = x.run(Kind::Atomic, &what, async |c| {
        let (tallies, course_tags, user_tags, state) = futures_util::future::join4(
            c.prepare_cached(
                "INSERT INTO block_tallies AS t (course_id, usage_id, key, value)
                 SELECT $1, u, k, a FROM unnest($2::text[], $3::text[], $4::int8[])
                     WITH ORDINALITY AS adds (u, k, a, ord)
                 ORDER BY adds.ord
                 ON CONFLICT (course_id, usage_id, key) DO UPDATE SET value = t.value + EXCLUDED.value",
            ),
            c.prepare_cached(
                "INSERT INTO user_course_tags (user_id, course_id, key, value)
                 SELECT $2, $1, k, v FROM unnest($3::text[], $4::text[]) AS t (k, v)
                 ON CONFLICT (course_id, user_id, key) DO UPDATE SET value = EXCLUDED.value",
            ),
            c.prepare_cached(
                "INSERT INTO user_global_tags (user_id, key, value)
                 SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t (k, v)
                 ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value",
            ),
            c.prepare_cached(
                "INSERT INTO user_state (course_id, user_id, usage_id, state) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (course_id, user_id, usage_id) DO UPDATE SET state = EXCLUDED.state",
            ),
        )
        .await;
        let (tallies, course_tags, user_tags, state) = (tallies?, course_tags?, user_tags?, state?);
        // Futures that send nothing when there is nothing to write; each sends its
        // statement when first polled, so the join below sends them in this order.
        let savepoint = async {
            if guarded {
                c.batch_execute(SAVEPOINT).await?;
            }
            Ok(0)
        };
        let add = async {
            if !guarded {
                return Ok(0);
            }
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&course, &adds.usages, &adds.keys, &adds.amounts];
            c.execute(&tallies, &params).await
        };
        let course_tags = async {
            if course_keys.is_empty() {
                return Ok(0);
            }
            c.execute(&course_tags, &[&course, &user, &course_keys, &course_values])
                .await
        };
        let user_tags = async {
            if user_keys.is_empty() {
                return Ok(0);
            }
            c.execute(&user_tags, &[&user, &user_keys, &user_values])
                .await
        };
        let state = async {
            let Some((usage, json)) = &writes.state else {
                return Ok(0);
            };
            c.execute(&state, &[&course, &user, usage, json]).await
        };
        let release = async {
            if guarded {
                c.batch_execute(RELEASE).await?;
            }
            Ok(0)
        };
        let ((s, a), (ct, ut, st, r)) = futures_util::future::join(
            futures_util::future::join(savepoint, add),
            futures_util::future::join4(course_tags, user_tags, state, release),
        )
        .await;
        match first_error(vec![s, a, ct, ut, st, r]) {
            Ok(()) => Ok(None),
            Err(e) if guarded && is_refused_data(&e) => {
                c.batch_execute(ROLL_BACK).await?;
                Ok(Some(refusal(c, course, &adds, &e).await?))
            }
            Err(e) => Err(e),
        }
    })?;
    match refused {
        None => Ok(()),
        Some(why) => bail!("{}: {why}; nothing of the call's writes was stored", what()),
    }
}

/// What the database refused, naming the tally whose addition leaves a count's range when
/// one does (read after the rollback; a concurrent change may hide it).
async fn refusal(
    c: &ClientWrapper,
    course: &str,
    adds: &Additions,
    e: &tokio_postgres::Error,
) -> Result<String, tokio_postgres::Error> {
    let rows = c
        .query(
            "SELECT t.usage_id, t.key, t.value FROM block_tallies t
             JOIN unnest($2::text[], $3::text[]) AS adds (u, k) ON t.usage_id = adds.u AND t.key = adds.k
             WHERE t.course_id = $1",
            &[&course, &adds.usages, &adds.keys],
        )
        .await?;
    let stored: BTreeMap<(String, String), i64> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    for ((usage, key), &amount) in adds.usages.iter().zip(&adds.keys).zip(&adds.amounts) {
        let current = stored
            .get(&(usage.clone(), key.clone()))
            .copied()
            .unwrap_or(0);
        if current.checked_add(amount).is_none() {
            return Ok(format!(
                "tally {key:?} of block {usage:?} would leave the range of a 64-bit count \
                 ({current} + {amount})"
            ));
        }
    }
    let blocks: std::collections::BTreeSet<&String> = adds.usages.iter().collect();
    Ok(format!(
        "the database refused the writes (adding to tallies of blocks {blocks:?}): {}",
        super::pg_exec::describe(e)
    ))
}

/// A block's tallies, by tally key.
pub(super) fn read<X: Exec>(x: &X, course: &str, usage: &str) -> Result<BTreeMap<String, i64>> {
    check_text("usage id", usage)?;
    check_text("course key", course)?;
    let what = || format!("reading the tallies of block {usage:?} in {course:?}");
    let rows = x.run(Kind::Read, &what, async |c| {
        let st = c
            .prepare_cached(
                "SELECT key, value FROM block_tallies WHERE course_id = $1 AND usage_id = $2",
            )
            .await?;
        c.query(&st, &[&course, &usage]).await
    })?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
