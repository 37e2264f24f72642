//! What a caller asks the host to do, and what it gets back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::Event;

/// Which audience to render for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Student,
    Staff,
    Author,
}

impl std::str::FromStr for View {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "student" => Ok(View::Student),
            "staff" => Ok(View::Staff),
            "author" => Ok(View::Author),
            other => Err(format!("unknown view {other:?} (student, staff or author)")),
        }
    }
}

/// The user a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub is_staff: bool,
    pub is_anonymous: bool,
}

impl User {
    /// A signed-in learner whose username is their id.
    pub fn learner(id: &str) -> User {
        User {
            id: id.to_string(),
            username: id.to_string(),
            is_staff: false,
            is_anonymous: false,
        }
    }

    /// A signed-in staff member.
    pub fn staff(id: &str) -> User {
        User {
            is_staff: true,
            ..User::learner(id)
        }
    }
}

/// Render one block (and, through it, its descendants) for one user.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub course_key: String,
    pub usage_id: String,
    pub user: User,
    pub view: View,
}

/// Why a block failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// It ran past its time limit or the request's deadline, and was interrupted.
    Timeout,
    /// It asked for more memory (or table space) than it may have.
    Memory,
    /// It panicked.
    Panic,
    /// It trapped for another reason.
    Trap,
    /// It returned an error.
    BlockError,
    /// Its output was over the size limit.
    OutputTooLarge,
    /// Its plugin is not installed, does not compile or could not be instantiated.
    Unavailable,
}

/// A block that failed during a request and was replaced by a placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockFailure {
    pub usage_id: String,
    pub block_type: String,
    pub plugin_version: Option<String>,
    pub kind: FailureKind,
    pub error: String,
}

/// The result of a render.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderOutput {
    pub user: String,
    /// The page's HTML; empty when the requested block is hidden for this user.
    pub html: String,
    pub hidden: bool,
    pub title: Option<String>,
    pub icon: Option<String>,
    pub tooltip: Option<String>,
    /// Usage ids of every block rendered visibly, containers included, in document order.
    pub visible_blocks: Vec<String>,
    /// The learner's groups after the request: partition id to group id.
    pub assignments: BTreeMap<u64, u64>,
    pub failures: Vec<BlockFailure>,
    /// The events this request sent, as written to the event log.
    pub events: Vec<Event>,
}
