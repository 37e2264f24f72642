//! What `RecoveringStore` asks of the sled store beyond the `Storage` contract: whether it
//! takes writes now (a probe), whether it found data when it opened, and its flush
//! generation (how many flushes it has had, kept in its `meta` tree).

use anyhow::{Context as _, Result};

use super::sled_store::SledStorage;

const GENERATION: &str = "generation";

/// Whether sled found existing data when it opened the store.
pub(super) fn was_recovered(store: &SledStorage) -> bool {
    store.db_and_meta().0.was_recovered()
}

/// How many flushes the store has had: a store that holds fewer than were recorded at its
/// last clean stop lost acknowledged writes.
pub(super) fn generation(store: &SledStorage) -> Result<u64> {
    let (_, meta) = store.db_and_meta();
    Ok(meta
        .get(GENERATION)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

/// Counts one more flush; written with the flush that follows.
pub(super) fn bump_generation(store: &SledStorage) -> Result<()> {
    let (_, meta) = store.db_and_meta();
    meta.update_and_fetch(GENERATION, |old| {
        let n = old
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Some((n + 1).to_be_bytes().to_vec())
    })?;
    Ok(())
}

/// Writes a marker and flushes it: whether the store takes writes now.
pub(super) fn probe(store: &SledStorage) -> Result<()> {
    let (db, meta) = store.db_and_meta();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string();
    meta.insert("probe", now.as_bytes())?;
    db.flush().context("flushing the store to disk")?;
    Ok(())
}
