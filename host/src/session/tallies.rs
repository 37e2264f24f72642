//! Block tallies: counts shared by every learner of a block (a poll's votes per answer).
//! Reads see the stored counts plus this request's pending additions; additions go into
//! the current call's frame and are stored with its other writes, added to what the store
//! holds then (so concurrent learners never lose each other's votes). Owns nothing of its
//! own; may not write storage directly.

use std::collections::BTreeMap;

use super::frames::Frames;
use super::request::{Request, internal};
use crate::runtime::bindings::types::HostError;
use crate::storage::Storage;

/// Longest tally key, in bytes (as tag keys).
pub const MAX_TALLY_KEY_BYTES: usize = 255;
/// Most distinct tally keys one block may have: a block cannot grow its shared row
/// without bound, whatever its learners send.
pub const MAX_TALLY_KEYS: usize = 256;

/// The block's tallies: stored, plus what calls in progress added.
pub fn all(
    request: &Request,
    storage: &dyn Storage,
    frames: &Frames,
    block: usize,
) -> Result<BTreeMap<String, i64>, HostError> {
    frames.check_deadline(request)?;
    let usage = &request.block(block).def.usage_id;
    let mut tallies = storage
        .block_tallies(request.course.key(), usage)
        .map_err(internal)?;
    let mut overflow = None;
    frames.find_pending(|f| {
        for ((u, key), amount) in &f.writes.tallies {
            if u == usage {
                let count = tallies.entry(key.clone()).or_insert(0);
                match count.checked_add(*amount) {
                    Some(sum) => *count = sum,
                    None => overflow = Some(key.clone()),
                }
            }
        }
        None::<()>
    });
    if let Some(key) = overflow {
        return Err(HostError::Internal(format!(
            "tally {key:?} of block {usage:?} overflows with this request's additions"
        )));
    }
    Ok(tallies)
}

/// Adds `amount` to the block's tally `key` in the current call's frame; answers the
/// count as this call sees it.
pub fn add(
    request: &Request,
    storage: &dyn Storage,
    frames: &Frames,
    block: usize,
    key: &str,
    amount: i64,
) -> Result<i64, HostError> {
    if key.is_empty() || key.len() > MAX_TALLY_KEY_BYTES {
        return Err(HostError::InvalidInput(format!(
            "tally key is {} bytes: it must be 1 to {MAX_TALLY_KEY_BYTES}",
            key.len()
        )));
    }
    if key.contains('\0') {
        return Err(HostError::InvalidInput("tally key contains NUL".into()));
    }
    request.check_writable("a tally")?;
    let usage = request.block(block).def.usage_id.clone();
    let current = all(request, storage, frames, block)?;
    if !current.contains_key(key) && current.len() >= MAX_TALLY_KEYS {
        return Err(HostError::LimitExceeded(format!(
            "block {usage:?} has {MAX_TALLY_KEYS} tally keys, the most a block may have"
        )));
    }
    let now = current.get(key).copied().unwrap_or(0);
    let next = now.checked_add(amount).ok_or_else(|| {
        HostError::InvalidInput(format!(
            "tally {key:?} of block {usage:?} would overflow: {now} + {amount}"
        ))
    })?;
    frames.with_current(|frame| {
        let pending = frame
            .writes
            .tallies
            .entry((usage, key.to_string()))
            .or_insert(0);
        // Within `next`'s bound: the frame's own part of a sum that did not overflow.
        *pending = pending.saturating_add(amount);
    });
    Ok(next)
}
