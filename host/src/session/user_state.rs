//! Each block's own per-user state (JSON): reads see the block's pending write of this
//! request first, then storage; writes go into the current call's frame under the size
//! limit. Owns nothing of its own; may not write storage directly.

use super::frames::Frames;
use super::request::{Request, internal};
use crate::runtime::bindings::types::HostError;
use crate::storage::Storage;

/// Largest per-block user state, in bytes.
pub const MAX_USER_STATE_BYTES: usize = 64 * 1024;

pub fn get(
    request: &Request,
    storage: &dyn Storage,
    frames: &Frames,
    block: usize,
) -> Result<Option<String>, HostError> {
    frames.check_deadline(request)?;
    let usage = &request.block(block).def.usage_id;
    let pending = frames.find_pending(|f| {
        f.writes
            .state
            .as_ref()
            .filter(|(u, _)| u == usage)
            .map(|(_, json)| json.clone())
    });
    if pending.is_some() {
        return Ok(pending);
    }
    storage
        .user_state(request.course.key(), &request.user.id, usage)
        .map_err(internal)
}

pub fn set(request: &Request, frames: &Frames, block: usize, json: &str) -> Result<(), HostError> {
    if json.len() > MAX_USER_STATE_BYTES {
        return Err(HostError::LimitExceeded(format!(
            "user state is {} bytes, over the limit of {MAX_USER_STATE_BYTES}",
            json.len()
        )));
    }
    serde_json::from_str::<serde_json::Value>(json)
        .map_err(|e| HostError::InvalidInput(format!("user state is not JSON: {e}")))?;
    request.check_writable("user state")?;
    frames.check_deadline(request)?;
    let usage = request.block(block).def.usage_id.clone();
    frames.with_current(|frame| frame.writes.state = Some((usage, json.to_string())));
    Ok(())
}
