//! The host's services as a block sees them.

use crate::types::{Condition, Fragment, Group, HostError, TagScope, User, UserPartition, View};

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
}
