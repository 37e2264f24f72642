//! The sled store's outbox: the `outbox` tree (event id to its line of the log), and the
//! transactions that store an assignment together with its pending event, so that no crash
//! leaves a durable group without the event that records it. `sled_store` hands these
//! functions its trees and its keys. Imports only `contract`.

use anyhow::{Context as _, Result, anyhow};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::contract::{CarriedTag, FirstWrite, OutboxEntry};

/// A transaction's error, keeping sled's own error as the cause (a caller can tell a
/// failing disk from a bad request).
pub(super) fn transaction_error(
    error: TransactionError<()>,
    what: &dyn Fn() -> String,
) -> anyhow::Error {
    match error {
        TransactionError::Storage(e) => anyhow::Error::new(e).context(what()),
        TransactionError::Abort(()) => anyhow!("{} was aborted", what()),
    }
}

fn text(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).context("stored text is not UTF-8")
}

/// Compare-and-swap of the tag at `key` (absent when `expected` is `None`) to `value`,
/// with `entry` put in the outbox when it is stored, in one transaction.
pub(super) fn assign(
    tags: &sled::Tree,
    outbox: &sled::Tree,
    key: &[u8],
    expected: Option<&str>,
    value: &str,
    entry: &OutboxEntry,
    what: &dyn Fn() -> String,
) -> Result<FirstWrite> {
    let outcome = (tags, outbox)
        .transaction(|(tags, outbox)| {
            let current = tags.get(key)?;
            let expected_now = match (expected, &current) {
                (None, None) => true,
                (Some(old), Some(now)) => now.as_ref() == old.as_bytes(),
                _ => false,
            };
            if !expected_now {
                return Ok(Some(current));
            }
            tags.insert(key, value.as_bytes())?;
            outbox.insert(entry.id.as_bytes(), entry.line.as_slice())?;
            Ok::<_, ConflictableTransactionError<()>>(None)
        })
        .map_err(|e| transaction_error(e, what))?;
    match outcome {
        None => Ok(FirstWrite::Written),
        Some(Some(now)) => Ok(FirstWrite::Existing(text(&now)?)),
        Some(None) => Err(anyhow!("{}: the tag vanished meanwhile", what())),
    }
}

/// The carry-over of `sled_store` (each pair: tag key, the old identifier's storage key,
/// the new one's), putting `entry_for(key, value)` in the outbox for each tag carried.
pub(super) fn carry_over(
    tags: &sled::Tree,
    outbox: &sled::Tree,
    pairs: &[(String, Vec<u8>, Vec<u8>)],
    entry_for: &dyn Fn(&str, &str) -> Option<OutboxEntry>,
    what: &dyn Fn() -> String,
) -> Result<Vec<CarriedTag>> {
    (tags, outbox)
        .transaction(|(tags, outbox)| {
            let mut out = Vec::new();
            for (k, from_key, to_key) in pairs {
                let Some(value) = tags.remove(from_key.as_slice())? else {
                    continue;
                };
                let (to_value, carried) = match tags.get(to_key.as_slice())? {
                    Some(existing) => (existing, false),
                    None => {
                        tags.insert(to_key.as_slice(), &value)?;
                        let entry = std::str::from_utf8(&value)
                            .ok()
                            .and_then(|v| entry_for(k, v));
                        if let Some(entry) = entry {
                            outbox.insert(entry.id.as_bytes(), entry.line)?;
                        }
                        (value.clone(), true)
                    }
                };
                out.push((k.clone(), value, to_value, carried));
            }
            Ok::<_, ConflictableTransactionError<()>>(out)
        })
        .map_err(|e| transaction_error(e, what))?
        .into_iter()
        .map(|(key, from_value, to_value, carried)| {
            Ok(CarriedTag {
                key,
                from_value: text(&from_value)?,
                to_value: text(&to_value)?,
                carried,
            })
        })
        .collect()
}

/// Puts entries (replacing those with the same id) in one atomic batch.
pub(super) fn put(outbox: &sled::Tree, entries: &[OutboxEntry]) -> Result<()> {
    let mut batch = sled::Batch::default();
    for entry in entries {
        batch.insert(entry.id.as_bytes(), entry.line.as_slice());
    }
    outbox
        .apply_batch(batch)
        .context("storing events in the store's outbox")
}

/// Every entry, in id order (oldest first).
pub(super) fn all(outbox: &sled::Tree) -> Result<Vec<OutboxEntry>> {
    outbox
        .iter()
        .map(|item| {
            let (id, line) = item.context("reading the store's outbox")?;
            Ok(OutboxEntry {
                id: text(&id)?,
                line: line.to_vec(),
            })
        })
        .collect()
}

/// Removes entries by id in one atomic batch.
pub(super) fn remove(outbox: &sled::Tree, ids: &[String]) -> Result<()> {
    let mut batch = sled::Batch::default();
    for id in ids {
        batch.remove(id.as_bytes());
    }
    outbox
        .apply_batch(batch)
        .context("removing written events from the store's outbox")
}
