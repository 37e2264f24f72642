//! Error kinds a caller may need to tell apart (the HTTP server maps them to statuses).
//!
//! Everything else in the host is an `anyhow::Error` with context; these types sit at
//! the bottom of such a chain and are found with [`find`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// A course, block, plugin or user that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// What kind of thing: "course", "block", "plugin", ...
    pub what: &'static str,
    /// The id asked for.
    pub id: String,
    /// Where it was looked for (for a block: its course key).
    pub within: Option<String>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Numeric ids (partitions, groups) read better bare; others are quoted, escaped.
        let id = if !self.id.is_empty() && self.id.bytes().all(|b| b.is_ascii_digit()) {
            self.id.clone()
        } else {
            format!("{:?}", self.id)
        };
        match &self.within {
            Some(within) => write!(f, "course {within:?} has no {} {id}", self.what),
            None => write!(f, "unknown {} {id}", self.what),
        }
    }
}

impl std::error::Error for NotFound {}

/// An identifier that may not be used at all (empty, too long, control characters,
/// path separators). The message names the id and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidId(pub String);

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidId {}

/// The embedded store is open in another process (sled locks its files): most often a
/// running `xbhost serve`. Its message says so plainly, without the lock's OS error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInUse {
    /// The store's directory.
    pub dir: std::path::PathBuf,
}

impl fmt::Display for StoreInUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the store in {} is in use by another xbhost process: a running `xbhost serve` \
             holds it for as long as it runs, any other command until it ends. With a \
             server running, use its HTTP API (for example POST /admin/plugins to add a \
             plugin) or stop it first; to run commands beside servers, keep the data in \
             PostgreSQL (--database)",
            self.dir.display()
        )
    }
}

impl std::error::Error for StoreInUse {}

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

/// The first error of type `E` anywhere in `error`'s chain.
pub fn find<E: std::error::Error + 'static>(error: &anyhow::Error) -> Option<&E> {
    error.chain().find_map(|cause| cause.downcast_ref::<E>())
}

/// The store cannot be used now (a full or failing disk, damaged files): `why` is the
/// cause on one line, without paths (clients may see it); `dir` is for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUnavailable {
    pub dir: String,
    pub why: String,
}

impl fmt::Display for StoreUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the store in {} is unavailable: {}", self.dir, self.why)
    }
}

impl std::error::Error for StoreUnavailable {}

/// A change to a course that started from a version the store no longer holds: another
/// change (on this host or another) stored the course meanwhile, and this one was not
/// stored, so neither silently overwrites the other. Read the course again and retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConflict {
    pub course: String,
    /// The version the change started from (`None`: it was a new course).
    pub expected: Option<u64>,
    /// The version the store holds (`None`: no such course).
    pub found: Option<u64>,
}

impl fmt::Display for VersionConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let version = |v: Option<u64>, none: &str| match v {
            Some(v) => format!("version {v}"),
            None => none.to_string(),
        };
        write!(
            f,
            "course {:?} was changed meanwhile: this change started from {}, but the store \
             holds {}; nothing was stored (read the course again and redo the change)",
            self.course,
            version(self.expected, "no stored course (a new course)"),
            version(self.found, "no such course"),
        )
    }
}

impl std::error::Error for VersionConflict {}

/// The caller may not do this (not staff, content they cannot reach).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden(pub String);

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Forbidden {}

/// A block's handler failed; `kind` says how (its own error, a trap, its time limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerFailed {
    pub kind: FailureKind,
    pub message: String,
}

impl fmt::Display for HandlerFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HandlerFailed {}
