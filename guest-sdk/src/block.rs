//! The trait a block author implements.

use serde::de::DeserializeOwned;

use crate::context::Context;
use crate::types::{Fragment, HostError, ValidationMessage, View};

/// An error a block returns. The host shows it to staff and a neutral message to learners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockError(pub String);

impl BlockError {
    pub fn new(message: impl Into<String>) -> Self {
        BlockError(message.into())
    }
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlockError {}

impl From<HostError> for BlockError {
    fn from(e: HostError) -> Self {
        BlockError(e.to_string())
    }
}

pub type BlockResult<T> = Result<T, BlockError>;

/// A block type. Only [`Block::render`] is required.
///
/// Blocks keep no state between calls: every call gets a fresh [`Context`] with the block's
/// typed fields, and per-user data lives in the host (tags, user state).
pub trait Block {
    /// The authored fields, deserialized from the course with serde. Use
    /// `#[serde(default)]` for optional fields.
    type Fields: DeserializeOwned;

    fn render(cx: &Context<'_, Self::Fields>, view: View) -> BlockResult<Fragment>;

    /// The children the current learner sees. By default all of them.
    fn visible_children(cx: &Context<'_, Self::Fields>) -> BlockResult<Vec<String>> {
        Ok(cx.children())
    }

    /// Messages for course authors. By default none.
    fn validate(_cx: &Context<'_, Self::Fields>) -> Vec<ValidationMessage> {
        Vec::new()
    }

    /// An XBlock-style handler. By default every name is unknown.
    fn handle(
        cx: &Context<'_, Self::Fields>,
        name: &str,
        _payload: serde_json::Value,
    ) -> BlockResult<serde_json::Value> {
        Err(BlockError::new(format!(
            "block {:?} has no handler named {name:?}",
            cx.usage_id()
        )))
    }
}
