//! Sources: the current learner's state of another block, for blocks whose content depends
//! on it (a `conditional` shown once a problem is attempted). A block reads only the blocks
//! its author listed in its own `sources` field, and only the request's own user. Owns
//! nothing; may not write.

use super::frames::Frames;
use super::request::Request;
use super::user_state;
use crate::runtime::bindings::types::HostError;
use crate::storage::Storage;

/// The authored field that lists the blocks a block may read.
pub const SOURCES_FIELD: &str = "sources";

/// Block `usage_id`'s type and the learner's state of it, when `block` lists it.
pub fn state_of(
    request: &Request,
    storage: &dyn Storage,
    frames: &Frames,
    block: usize,
    usage_id: &str,
) -> Result<(String, Option<String>), HostError> {
    frames.check_deadline(request)?;
    let reader = request.block(block);
    let listed = reader.def.fields[SOURCES_FIELD]
        .as_array()
        .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(usage_id)));
    if !listed {
        return Err(HostError::InvalidInput(format!(
            "block {:?} does not list {usage_id:?} in its {SOURCES_FIELD} field: a block reads only the blocks its author named",
            reader.def.usage_id
        )));
    }
    let source = request.course.block(usage_id).ok_or_else(|| {
        HostError::NotFound(format!(
            "block {usage_id:?} (a source of {:?}) is not in course {:?}",
            reader.def.usage_id,
            request.course.key()
        ))
    })?;
    let state = user_state::get(request, storage, frames, source.index)?;
    Ok((source.def.block_type.clone(), state))
}
