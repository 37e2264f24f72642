//! The host's services as a block sees them.

use crate::types::{
    Condition, Fragment, Group, HostError, Source, TagScope, User, UserPartition, View,
};

/// Everything the host offers a block. Inside the sandbox it is backed by the WIT imports;
/// in native tests by [`crate::testing::TestHost`]; a native host can implement it too.
///
/// Every call is about the current user, course and block: there is no way to name another.
pub trait HostApi {
    fn current_user(&self) -> User;
    fn course_key(&self) -> String;
    fn usage_id(&self) -> String;
    fn block_type(&self) -> String;
    /// This block's fields as a JSON object.
    fn fields_json(&self) -> String;
    fn children(&self) -> Vec<String>;

    fn get_tag(&self, scope: TagScope, key: &str) -> Result<Option<String>, HostError>;
    fn set_tag(&self, scope: TagScope, key: &str, value: &str) -> Result<(), HostError>;

    fn partitions(&self) -> Vec<UserPartition>;
    fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError>;

    fn render_child(
        &self,
        usage_id: &str,
        view: View,
        condition: Option<Condition>,
    ) -> Result<Fragment, HostError>;

    fn get_state(&self) -> Result<Option<String>, HostError>;
    fn set_state(&self, json: &str) -> Result<(), HostError>;

    fn publish(&self, name: &str, json: &str) -> Result<(), HostError>;

    /// This block's tallies, counts shared by all its learners (contract 0.1.1).
    fn tallies(&self) -> Result<Vec<(String, i64)>, HostError>;
    /// Adds `amount` to this block's tally `key`; answers the new count (contract 0.1.1).
    fn add_tally(&self, key: &str, amount: i64) -> Result<i64, HostError>;

    /// `count` of this block's children picked for the current learner by the host
    /// (sticky, uniform, in authored order) (contract 0.1.1).
    fn selected_children(&self, count: u32) -> Result<Vec<String>, HostError>;

    /// The current learner's state of block `usage_id`, which this block's authored
    /// `sources` field must list (contract 0.1.1).
    fn source(&self, usage_id: &str) -> Result<Source, HostError>;
}
