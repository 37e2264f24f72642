//! What a block's methods receive: typed fields plus the host's services.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::block::BlockError;
use crate::host::HostApi;
use crate::types::{
    Condition, Fragment, Group, HostError, Source, TagScope, User, UserPartition, View,
};

/// The block's view of one call: its typed fields and the host's services.
pub struct Context<'h, F> {
    fields: F,
    host: &'h dyn HostApi,
}

impl<'h, F: DeserializeOwned> Context<'h, F> {
    /// Parses the block's fields from the host. Fails with an error naming the block and
    /// the field (its path, such as `prompts[0].label`) when the authored fields do not
    /// match `F`; the text contains [`FIELDS_MISMATCH`](crate::FIELDS_MISMATCH), by which
    /// the host refuses such a course when it loads (the block's `validate` returns it).
    pub fn new(host: &'h dyn HostApi) -> Result<Self, BlockError> {
        let json = host.fields_json();
        let mut parser = serde_json::Deserializer::from_str(&json);
        let fields = serde_path_to_error::deserialize(&mut parser).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                "the fields as a whole".to_string()
            } else {
                format!("field `{path}`")
            };
            BlockError::new(format!(
                "fields of {} block {:?} {}: {at}: {}",
                host.block_type(),
                host.usage_id(),
                crate::FIELDS_MISMATCH,
                e.inner()
            ))
        })?;
        Ok(Context { fields, host })
    }
}

impl<F> Context<'_, F> {
    /// The block's authored fields, typed.
    pub fn fields(&self) -> &F {
        &self.fields
    }

    /// The host, for calls this context has no helper for.
    pub fn host(&self) -> &dyn HostApi {
        self.host
    }

    pub fn user(&self) -> User {
        self.host.current_user()
    }

    pub fn course_key(&self) -> String {
        self.host.course_key()
    }

    pub fn usage_id(&self) -> String {
        self.host.usage_id()
    }

    /// Usage ids of this block's children, in authored order.
    pub fn children(&self) -> Vec<String> {
        self.host.children()
    }

    /// A tag of the current user in the current course.
    pub fn course_tag(&self, key: &str) -> Result<Option<String>, HostError> {
        self.host.get_tag(TagScope::Course, key)
    }

    pub fn set_course_tag(&self, key: &str, value: &str) -> Result<(), HostError> {
        self.host.set_tag(TagScope::Course, key, value)
    }

    /// A global tag of the current user.
    pub fn user_tag(&self, key: &str) -> Result<Option<String>, HostError> {
        self.host.get_tag(TagScope::User, key)
    }

    pub fn set_user_tag(&self, key: &str, value: &str) -> Result<(), HostError> {
        self.host.set_tag(TagScope::User, key, value)
    }

    pub fn partitions(&self) -> Vec<UserPartition> {
        self.host.partitions()
    }

    pub fn partition(&self, id: u64) -> Option<UserPartition> {
        self.host.partitions().into_iter().find(|p| p.id == id)
    }

    /// The learner's group in a partition (assigned and stored on first use).
    pub fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError> {
        self.host.group_for(partition_id)
    }

    /// Renders one of this block's children. In the host its HTML is a placeholder that the
    /// host fills in with the child's HTML after containing this block's (see the README):
    /// place it as it is.
    pub fn render_child(&self, usage_id: &str, view: View) -> Result<Fragment, HostError> {
        self.host.render_child(usage_id, view, None)
    }

    /// Renders a child as one condition of an experiment (staff and author views).
    pub fn render_condition(
        &self,
        usage_id: &str,
        view: View,
        condition: Condition,
    ) -> Result<Fragment, HostError> {
        self.host.render_child(usage_id, view, Some(condition))
    }

    /// This block's per-user state, deserialized.
    pub fn state<S: DeserializeOwned>(&self) -> Result<Option<S>, BlockError> {
        match self.host.get_state()? {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| BlockError::new(format!("stored state does not parse: {e}"))),
        }
    }

    pub fn set_state<S: Serialize>(&self, state: &S) -> Result<(), BlockError> {
        let json = serde_json::to_string(state).map_err(|e| BlockError::new(e.to_string()))?;
        Ok(self.host.set_state(&json)?)
    }

    /// This block's tallies (key -> count), shared by every learner of the block, this
    /// call's own additions included.
    pub fn tallies(&self) -> Result<std::collections::BTreeMap<String, i64>, HostError> {
        Ok(self.host.tallies()?.into_iter().collect())
    }

    /// Adds `amount` to this block's tally `key` (a poll's count for an answer), stored
    /// with this call's other writes; answers the new count.
    pub fn add_tally(&self, key: &str, amount: i64) -> Result<i64, HostError> {
        self.host.add_tally(key, amount)
    }

    /// `count` of this block's children for the current learner, picked by the host's
    /// sampling authority (sticky, uniform, in authored order): randomized content. In
    /// student view the host hides the children not picked, whatever the block renders.
    pub fn selected_children(&self, count: u32) -> Result<Vec<String>, HostError> {
        self.host.selected_children(count)
    }

    /// The current learner's state of another block of the course, which this block's
    /// authored `sources` field (a list of usage ids) must name.
    pub fn source(&self, usage_id: &str) -> Result<Source, HostError> {
        self.host.source(usage_id)
    }

    /// Publishes an analytics event; the host adds user, course, block and experiments.
    pub fn publish<D: Serialize>(&self, name: &str, data: &D) -> Result<(), BlockError> {
        let json = serde_json::to_string(data).map_err(|e| BlockError::new(e.to_string()))?;
        Ok(self.host.publish(name, &json)?)
    }
}
