//! The `xbhost:block` imports, thin calls into the request's [`BlockHost`]. Every call
//! answers for the instance's own user, course and block; bad input is an error value,
//! never a trap.

use super::bindings::types::{self as wit, HostError};
use super::bindings::xbhost::block::{
    children, client, context, events, partitions, selection, sources, tallies, user_state,
    user_tags,
};
use super::host_api::TagScope;
use super::state::BlockState;

impl wit::Host for BlockState {}

impl context::Host for BlockState {
    fn current_user(&mut self) -> wit::User {
        let session = self.host();
        let u = session.user();
        wit::User {
            id: u.id.clone(),
            username: u.username.clone(),
            is_staff: u.is_staff,
            is_anonymous: u.is_anonymous,
        }
    }

    fn course_key(&mut self) -> String {
        self.host().course().key().to_string()
    }

    fn usage_id(&mut self) -> String {
        self.host()
            .course()
            .block_at(self.block)
            .def
            .usage_id
            .clone()
    }

    fn block_type(&mut self) -> String {
        self.host()
            .course()
            .block_at(self.block)
            .def
            .block_type
            .clone()
    }

    fn fields(&mut self) -> String {
        self.host()
            .course()
            .block_at(self.block)
            .fields_json
            .to_string()
    }

    fn children(&mut self) -> Vec<String> {
        self.host()
            .course()
            .block_at(self.block)
            .def
            .children
            .clone()
    }
}

fn scope(s: user_tags::Scope) -> TagScope {
    match s {
        user_tags::Scope::Course => TagScope::Course,
        user_tags::Scope::User => TagScope::User,
    }
}

impl user_tags::Host for BlockState {
    fn get(&mut self, s: user_tags::Scope, key: String) -> Result<Option<String>, HostError> {
        self.host().get_tag(scope(s), &key)
    }

    fn set(&mut self, s: user_tags::Scope, key: String, value: String) -> Result<(), HostError> {
        self.host().set_tag(scope(s), &key, &value)
    }
}

impl partitions::Host for BlockState {
    fn all(&mut self) -> Vec<wit::UserPartition> {
        self.host()
            .course()
            .partitions()
            .iter()
            .map(|p| wit::UserPartition {
                id: p.id,
                name: p.name.clone(),
                description: p.description.clone(),
                scheme: p.scheme.clone(),
                active: p.active,
                groups: p
                    .groups
                    .iter()
                    .map(|g| wit::Group {
                        id: g.id,
                        name: g.name.clone(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn group_for(&mut self, partition_id: u64) -> Result<Option<wit::Group>, HostError> {
        Ok(self.host().group_for(partition_id)?.map(|g| wit::Group {
            id: g.id,
            name: g.name,
        }))
    }
}

impl children::Host for BlockState {
    fn render_child(
        &mut self,
        usage_id: String,
        view: wit::View,
        condition: Option<wit::Condition>,
    ) -> Result<wit::Fragment, HostError> {
        // Time spent in the child is not this block's own time.
        let started = std::time::Instant::now();
        let result = self.host().render_child(
            self.block,
            self.depth,
            &usage_id,
            view.into(),
            condition.map(|c| (c.partition_id, c.group_id)),
        );
        self.child_time += started.elapsed();
        result
    }
}

impl user_state::Host for BlockState {
    fn get(&mut self) -> Result<Option<String>, HostError> {
        self.host().user_state(self.block)
    }

    fn set(&mut self, json: String) -> Result<(), HostError> {
        self.host().set_user_state(self.block, &json)
    }
}

impl events::Host for BlockState {
    fn publish(&mut self, name: String, json: String) -> Result<(), HostError> {
        self.host().publish(self.block, &name, &json)
    }
}

impl tallies::Host for BlockState {
    fn all(&mut self) -> Result<Vec<(String, i64)>, HostError> {
        self.host().tallies(self.block)
    }

    fn add(&mut self, key: String, amount: i64) -> Result<i64, HostError> {
        self.host().add_tally(self.block, &key, amount)
    }
}

impl selection::Host for BlockState {
    fn selected(&mut self, count: u32) -> Result<Vec<String>, HostError> {
        self.host().selected(self.block, count)
    }
}

impl sources::Host for BlockState {
    fn state_of(&mut self, usage_id: String) -> Result<sources::Source, HostError> {
        let (block_type, state) = self.host().source(self.block, &usage_id)?;
        Ok(sources::Source { block_type, state })
    }
}

impl client::Host for BlockState {
    fn add_resource(&mut self, name: String) -> Result<(), HostError> {
        self.host().add_client_resource(self.block, &name)
    }

    fn initialize(&mut self, function: String, args_json: String) -> Result<(), HostError> {
        self.host()
            .initialize_client(self.block, &function, &args_json)
    }
}
