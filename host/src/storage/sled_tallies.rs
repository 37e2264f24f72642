//! The sled store's block tallies ([`BlockWrites::tallies`]): the `block_tallies` tree, keyed
//! by course, usage id and tally key joined with NUL (as `sled_store` joins every key), each
//! count 8 bytes, big-endian two's complement. Additions are applied inside `sled_store`'s
//! commit transaction (read, checked add, write), which sled validates under its exclusive
//! commit lock, so concurrent commits never lose an addition and a commit whose addition
//! would leave the range of `i64` stores nothing. A count that reaches 0 is kept, as
//! PostgreSQL keeps it (`pg_commit`), so `store copy` finds the same rows on both sides.
//! `sled_store` hands these functions its tree and its keys. Imports only `contract`.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, anyhow, bail};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::contract::BlockWrites;

/// One addition of a commit: the stored key, and what errors name.
pub(super) struct Addition {
    pub key: Vec<u8>,
    pub usage: String,
    pub tally: String,
    pub amount: i64,
}

/// Why a commit stored nothing: an addition would leave the range of a count, or a stored
/// count is damaged.
#[derive(Debug)]
pub(super) struct Refused(String);

/// Refuses what neither store can key a tally by: an empty usage id or tally key (NUL is
/// refused where the key is joined, as in every other key).
pub(super) fn check_keys(usage: &str, tally: &str) -> Result<()> {
    if usage.is_empty() {
        bail!("a tally of a block with an empty usage id");
    }
    if tally.is_empty() {
        bail!("block {usage:?} adds to a tally with an empty key");
    }
    Ok(())
}

/// The additions of `writes`, keyed by `key_of(usage, tally)`.
pub(super) fn additions(
    writes: &BlockWrites,
    key_of: &dyn Fn(&str, &str) -> Result<Vec<u8>>,
) -> Result<Vec<Addition>> {
    writes
        .tallies
        .iter()
        .map(|((usage, tally), &amount)| {
            check_keys(usage, tally)?;
            Ok(Addition {
                key: key_of(usage, tally)
                    .with_context(|| format!("tally {tally:?} of block {usage:?}"))?,
                usage: usage.clone(),
                tally: tally.clone(),
                amount,
            })
        })
        .collect()
}

/// A stored count.
pub(super) fn count(bytes: &[u8]) -> Result<i64> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| anyhow!("a stored tally is {} bytes, not 8", bytes.len()))?;
    Ok(i64::from_be_bytes(bytes))
}

/// Adds each addition to its stored count (absent counts 0), in the caller's transaction.
pub(super) fn apply(
    tree: &TransactionalTree,
    additions: &[Addition],
) -> Result<(), ConflictableTransactionError<Refused>> {
    for add in additions {
        let current = match tree.get(add.key.as_slice())? {
            None => 0,
            Some(bytes) => count(&bytes).map_err(|e| {
                ConflictableTransactionError::Abort(Refused(format!(
                    "tally {:?} of block {:?}: {e}",
                    add.tally, add.usage
                )))
            })?,
        };
        let Some(sum) = current.checked_add(add.amount) else {
            return Err(ConflictableTransactionError::Abort(Refused(format!(
                "tally {:?} of block {:?} would leave the range of a 64-bit count \
                 ({current} + {}); nothing of the call's writes was stored",
                add.tally, add.usage, add.amount
            ))));
        };
        tree.insert(add.key.as_slice(), &sum.to_be_bytes())?;
    }
    Ok(())
}

/// A commit transaction's error, keeping sled's own error as the cause (a caller can tell a
/// failing disk from a refused addition).
pub(super) fn commit_error(
    error: TransactionError<Refused>,
    what: &dyn Fn() -> String,
) -> anyhow::Error {
    match error {
        TransactionError::Storage(e) => anyhow::Error::new(e).context(what()),
        TransactionError::Abort(Refused(why)) => anyhow!("{}: {why}", what()),
    }
}

/// Every count under `prefix` (one block's), by tally key.
pub(super) fn read(tree: &sled::Tree, prefix: &[u8], usage: &str) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for item in tree.scan_prefix(prefix) {
        let (k, v) = item?;
        let tally = String::from_utf8(k[prefix.len()..].to_vec())
            .with_context(|| format!("a stored tally key of block {usage:?} is not UTF-8"))?;
        let n = count(&v).with_context(|| format!("tally {tally:?} of block {usage:?}"))?;
        out.insert(tally, n);
    }
    Ok(out)
}
