//! The host's services for native blocks (see `xbhost_sdk::native`): the SDK's `HostApi`
//! over the request's [`BlockHost`], the same calls the sandboxed imports make.

use std::sync::Arc;

use xbhost_sdk::{
    Condition, Fragment, Group, HostApi, HostError, Source, TagScope, User, UserPartition, View,
};

use crate::runtime::bindings::types::HostError as WitHostError;
use crate::runtime::{self, BlockHost};

/// One native block call's view of its request.
pub struct NativeApi {
    pub(crate) host: Arc<dyn BlockHost>,
    pub(crate) block: usize,
    pub(crate) depth: u32,
}

fn error(e: WitHostError) -> HostError {
    match e {
        WitHostError::InvalidInput(m) => HostError::InvalidInput(m),
        WitHostError::NotFound(m) => HostError::NotFound(m),
        WitHostError::LimitExceeded(m) => HostError::LimitExceeded(m),
        WitHostError::Internal(m) => HostError::Internal(m),
    }
}

fn scope(s: TagScope) -> runtime::TagScope {
    match s {
        TagScope::Course => runtime::TagScope::Course,
        TagScope::User => runtime::TagScope::User,
    }
}

fn view(v: View) -> crate::request::View {
    match v {
        View::Student => crate::request::View::Student,
        View::Staff => crate::request::View::Staff,
        View::Author => crate::request::View::Author,
    }
}

impl HostApi for NativeApi {
    fn current_user(&self) -> User {
        let u = self.host.user();
        User {
            id: u.id.clone(),
            username: u.username.clone(),
            is_staff: u.is_staff,
            is_anonymous: u.is_anonymous,
        }
    }
    fn course_key(&self) -> String {
        self.host.course().key().to_string()
    }
    fn usage_id(&self) -> String {
        self.host.course().block_at(self.block).def.usage_id.clone()
    }
    fn block_type(&self) -> String {
        self.host
            .course()
            .block_at(self.block)
            .def
            .block_type
            .clone()
    }
    fn fields_json(&self) -> String {
        self.host
            .course()
            .block_at(self.block)
            .fields_json
            .to_string()
    }
    fn children(&self) -> Vec<String> {
        self.host.course().block_at(self.block).def.children.clone()
    }
    fn get_tag(&self, s: TagScope, key: &str) -> Result<Option<String>, HostError> {
        self.host.get_tag(scope(s), key).map_err(error)
    }
    fn set_tag(&self, s: TagScope, key: &str, value: &str) -> Result<(), HostError> {
        self.host.set_tag(scope(s), key, value).map_err(error)
    }
    fn partitions(&self) -> Vec<UserPartition> {
        self.host
            .course()
            .partitions()
            .iter()
            .map(|p| UserPartition {
                id: p.id,
                name: p.name.clone(),
                description: p.description.clone(),
                scheme: p.scheme.clone(),
                active: p.active,
                groups: p
                    .groups
                    .iter()
                    .map(|g| Group {
                        id: g.id,
                        name: g.name.clone(),
                    })
                    .collect(),
            })
            .collect()
    }
    fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError> {
        Ok(self
            .host
            .group_for(partition_id)
            .map_err(error)?
            .map(|g| Group {
                id: g.id,
                name: g.name,
            }))
    }
    fn render_child(
        &self,
        usage_id: &str,
        v: View,
        condition: Option<Condition>,
    ) -> Result<Fragment, HostError> {
        let f = self
            .host
            .clone()
            .render_child(
                self.block,
                self.depth,
                usage_id,
                view(v),
                condition.map(|c| (c.partition_id, c.group_id)),
            )
            .map_err(error)?;
        Ok(Fragment {
            html: f.html,
            hidden: f.hidden,
            title: f.title,
            icon: f.icon,
            tooltip: f.tooltip,
            client: Default::default(),
        })
    }
    fn get_state(&self) -> Result<Option<String>, HostError> {
        self.host.user_state(self.block).map_err(error)
    }
    fn set_state(&self, json: &str) -> Result<(), HostError> {
        self.host.set_user_state(self.block, json).map_err(error)
    }
    fn publish(&self, name: &str, json: &str) -> Result<(), HostError> {
        self.host.publish(self.block, name, json).map_err(error)
    }
    fn tallies(&self) -> Result<Vec<(String, i64)>, HostError> {
        self.host.tallies(self.block).map_err(error)
    }
    fn add_tally(&self, key: &str, amount: i64) -> Result<i64, HostError> {
        self.host.add_tally(self.block, key, amount).map_err(error)
    }
    fn selected_children(&self, count: u32) -> Result<Vec<String>, HostError> {
        self.host.selected(self.block, count).map_err(error)
    }
    fn source(&self, usage_id: &str) -> Result<Source, HostError> {
        let (block_type, state) = self.host.source(self.block, usage_id).map_err(error)?;
        Ok(Source { block_type, state })
    }
}

impl From<crate::request::View> for View {
    fn from(v: crate::request::View) -> View {
        match v {
            crate::request::View::Student => View::Student,
            crate::request::View::Staff => View::Staff,
            crate::request::View::Author => View::Author,
        }
    }
}
