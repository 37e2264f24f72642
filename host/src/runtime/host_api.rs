//! What a block instance may ask of the request it serves: the host side of the
//! `xbhost:block` imports as a trait. The render session implements it; the runtime knows
//! only this trait, so the wasmtime layer never depends on the session (and native blocks
//! use the same surface through `crate::native`).

use std::sync::Arc;

use super::bindings::types::{Fragment, HostError};
use crate::model::{Course, Group};
use crate::request::{User, View};

/// Where a tag lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagScope {
    /// Per user, per course.
    Course,
    /// Per user, across courses.
    User,
}

/// The request as a block sees it. Every call answers for the request's own user and
/// course; `block` is the calling block's index in the course. Bad input is an error value.
pub trait BlockHost: Send + Sync {
    fn user(&self) -> &User;
    fn course(&self) -> &Course;
    fn get_tag(&self, scope: TagScope, key: &str) -> Result<Option<String>, HostError>;
    fn set_tag(&self, scope: TagScope, key: &str, value: &str) -> Result<(), HostError>;
    fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError>;
    /// Renders `usage_id`, a child of `parent` (which is `depth` deep), optionally marked
    /// as the condition `(partition, group)` of an experiment.
    fn render_child(
        self: Arc<Self>,
        parent: usize,
        depth: u32,
        usage_id: &str,
        view: View,
        condition: Option<(u64, Option<u64>)>,
    ) -> Result<Fragment, HostError>;
    fn user_state(&self, block: usize) -> Result<Option<String>, HostError>;
    fn set_user_state(&self, block: usize, json: &str) -> Result<(), HostError>;
    fn publish(&self, block: usize, name: &str, json: &str) -> Result<(), HostError>;
    /// The block's tallies, shared by all its learners.
    fn tallies(&self, block: usize) -> Result<Vec<(String, i64)>, HostError>;
    fn add_tally(&self, block: usize, key: &str, amount: i64) -> Result<i64, HostError>;
    /// `count` of the block's children picked for the user (randomized content).
    fn selected(&self, block: usize, count: u32) -> Result<Vec<String>, HostError>;
    /// The type of block `usage_id`, which `block`'s `sources` field lists, and the
    /// user's state of it.
    fn source(&self, block: usize, usage_id: &str) -> Result<(String, Option<String>), HostError>;
    /// Adds the block's plugin's shipped file `name` to its render (contract 0.1.2).
    fn add_client_resource(&self, block: usize, name: &str) -> Result<(), HostError>;
    /// The function the block's frame calls, with `args` (JSON text) (contract 0.1.2).
    fn initialize_client(&self, block: usize, function: &str, args: &str) -> Result<(), HostError>;
}
