//! The PostgreSQL store's token records (`token_records`): what the server's ledger must
//! share between hosts so that a token or sign-in state signs in once anywhere, and a
//! session signed out on one host is refused by all (the revocation is announced with
//! `pg_notify` in the same transaction, and every host adds it to its memory).

use anyhow::Result;

use super::contract::Change;
use super::pg_exec::{Exec, Kind};

/// See `Storage::record_tokens_once`.
pub fn record_once(
    x: &impl Exec,
    kind: &str,
    records: &[(String, u64)],
    now: u64,
) -> Result<Option<usize>> {
    let ids: Vec<&str> = records.iter().map(|(id, _)| id.as_str()).collect();
    let until: Vec<i64> = records
        .iter()
        .map(|(_, u)| i64::try_from(*u).unwrap_or(i64::MAX))
        .collect();
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let what = || format!("recording {} {kind} token ids", records.len());
    x.run(Kind::Atomic, &what, async |c| {
        // Expired ids go first, so they never count as used and the table stays bounded by
        // what one token lifetime puts in it.
        c.execute(
            "DELETE FROM token_records WHERE kind = $1 AND until < $2",
            &[&kind, &now],
        )
        .await?;
        let inserted: Vec<String> = c
            .query(
                "INSERT INTO token_records (kind, id, until)
                 SELECT $1, i, u FROM unnest($2::text[], $3::int8[]) AS t (i, u)
                 ON CONFLICT (kind, id) DO NOTHING RETURNING id",
                &[&kind, &ids, &until],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(i) = ids.iter().position(|id| !inserted.iter().any(|n| n == id)) {
            // One was recorded already: none of them is kept.
            c.execute(
                "DELETE FROM token_records WHERE kind = $1 AND id = ANY($2)",
                &[&kind, &inserted],
            )
            .await?;
            return Ok(Some(i));
        }
        if kind == "revoked" {
            for (id, until) in ids.iter().zip(&until) {
                let change = Change::Revoked {
                    id: id.to_string(),
                    until: *until as u64,
                };
                c.execute(
                    "SELECT pg_notify('xbhost_changes', $1)",
                    &[&change.encode()],
                )
                .await?;
            }
        }
        Ok(None)
    })
}

/// See `Storage::token_records`.
pub fn unexpired(x: &impl Exec, kind: &str, now: u64) -> Result<Vec<(String, u64)>> {
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let what = || format!("reading the {kind} token ids");
    let rows = x.run(Kind::Read, &what, async |c| {
        c.query(
            "SELECT id, until FROM token_records WHERE kind = $1 AND until >= $2",
            &[&kind, &now],
        )
        .await
    })?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64))
        .collect())
}
