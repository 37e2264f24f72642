//! A native test harness: run a block's code without wasm, against an in-memory host.
//!
//! ```
//! use xbhost_sdk::testing::TestHost;
//! use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};
//!
//! struct Hello;
//! impl Block for Hello {
//!     type Fields = serde_json::Value;
//!     fn render(cx: &Context<'_, Self::Fields>, _view: View) -> BlockResult<Fragment> {
//!         Ok(Fragment::html(format!("hello {}", cx.user().username)))
//!     }
//! }
//!
//! let host = TestHost::new("hello", "hello_1").username("ada");
//! assert_eq!(host.render::<Hello>(View::Student).unwrap().html, "hello ada");
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::block::{Block, BlockError, BlockResult};
use crate::context::Context;
use crate::host::HostApi;
use crate::types::{
    Condition, Fragment, Group, HostError, Source, TagScope, User, UserPartition,
    ValidationMessage, View,
};

/// The longest tag key the real host accepts, mirrored here so tests see the same errors.
pub const MAX_TAG_KEY_BYTES: usize = 255;

/// One `render_child` call a block made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRender {
    pub usage_id: String,
    pub view: View,
    pub condition: Option<Condition>,
}

/// An in-memory [`HostApi`] for unit tests. Configure it with the builder methods, run the
/// block with [`TestHost::render`] and friends, then inspect tags, state, events and the
/// children the block asked to render.
pub struct TestHost {
    user: User,
    course_key: String,
    usage_id: String,
    block_type: String,
    fields: serde_json::Value,
    children: Vec<String>,
    partitions: Vec<UserPartition>,
    groups: BTreeMap<u64, u64>,
    child_fragments: HashMap<String, Fragment>,
    tags: RefCell<BTreeMap<(TagScope, String), String>>,
    state: RefCell<Option<String>>,
    events: RefCell<Vec<(String, serde_json::Value)>>,
    rendered: RefCell<Vec<ChildRender>>,
    tallies: RefCell<BTreeMap<String, i64>>,
    selection: Option<Vec<String>>,
    sources: HashMap<String, Source>,
    client_assets: Option<Vec<String>>,
}

impl TestHost {
    /// A host for one block of type `block_type` with usage id `usage_id`, rendered for a
    /// learner `learner` in course `course-v1:test+test+test`, with empty fields.
    pub fn new(block_type: &str, usage_id: &str) -> Self {
        TestHost {
            user: User {
                id: "learner".into(),
                username: "learner".into(),
                is_staff: false,
                is_anonymous: false,
            },
            course_key: "course-v1:test+test+test".into(),
            usage_id: usage_id.into(),
            block_type: block_type.into(),
            fields: serde_json::json!({}),
            children: Vec::new(),
            partitions: Vec::new(),
            groups: BTreeMap::new(),
            child_fragments: HashMap::new(),
            tags: RefCell::default(),
            state: RefCell::default(),
            events: RefCell::default(),
            rendered: RefCell::default(),
            tallies: RefCell::default(),
            selection: None,
            sources: HashMap::new(),
            client_assets: None,
        }
    }

    pub fn fields(mut self, fields: serde_json::Value) -> Self {
        self.fields = fields;
        self
    }

    pub fn children<I: IntoIterator<Item = S>, S: Into<String>>(mut self, children: I) -> Self {
        self.children = children.into_iter().map(Into::into).collect();
        self
    }

    pub fn username(mut self, username: &str) -> Self {
        self.user.username = username.into();
        self
    }

    pub fn staff(mut self) -> Self {
        self.user.is_staff = true;
        self
    }

    pub fn partition(mut self, partition: UserPartition) -> Self {
        self.partitions.push(partition);
        self
    }

    /// Puts the learner in `group_id` of `partition_id` (what `group_for` answers).
    pub fn group(mut self, partition_id: u64, group_id: u64) -> Self {
        self.groups.insert(partition_id, group_id);
        self
    }

    /// Starts with this stored state (JSON) for the block.
    pub fn with_state(self, json: String) -> Self {
        *self.state.borrow_mut() = Some(json);
        self
    }

    /// What rendering `usage_id` returns; by default a visible `<p>{usage_id}</p>`.
    pub fn child_fragment(mut self, usage_id: &str, fragment: Fragment) -> Self {
        self.child_fragments.insert(usage_id.into(), fragment);
        self
    }

    /// Starts with these tallies (as other learners left them).
    pub fn with_tallies<I: IntoIterator<Item = (S, i64)>, S: Into<String>>(
        self,
        tallies: I,
    ) -> Self {
        self.tallies
            .borrow_mut()
            .extend(tallies.into_iter().map(|(k, v)| (k.into(), v)));
        self
    }

    /// The children the host picks for this learner (what `selected_children` answers,
    /// cut to the count asked for); by default the first ones.
    pub fn selection<I: IntoIterator<Item = S>, S: Into<String>>(mut self, picked: I) -> Self {
        self.selection = Some(picked.into_iter().map(Into::into).collect());
        self
    }

    /// Block `usage_id` of type `block_type`, in which the learner has `state` (JSON):
    /// what `source` answers when the block's `sources` field lists it.
    pub fn source_block(mut self, usage_id: &str, block_type: &str, state: Option<&str>) -> Self {
        self.sources.insert(
            usage_id.into(),
            Source {
                block_type: block_type.into(),
                state: state.map(Into::into),
            },
        );
        self
    }

    /// The plugin's shipped client files (`CLIENT_ASSETS` of
    /// [`client_assets!`](crate::client_assets)): [`TestHost::render`] then refuses, as the
    /// host does, a fragment that names a file the plugin does not ship, a file that is not
    /// `.css` or `.js`, a function that is not a JavaScript identifier, or more than 16 files.
    pub fn with_client_assets(mut self, assets: &[(&str, &[u8])]) -> Self {
        self.client_assets = Some(assets.iter().map(|(n, _)| n.to_string()).collect());
        self
    }

    pub fn render<B: Block>(&self, view: View) -> BlockResult<Fragment> {
        let fragment = B::render(&Context::new(self)?, view)?;
        if let Some(shipped) = &self.client_assets {
            check_client(&fragment.client, shipped)?;
        }
        Ok(fragment)
    }

    pub fn visible_children<B: Block>(&self) -> BlockResult<Vec<String>> {
        B::visible_children(&Context::new(self)?)
    }

    pub fn validate<B: Block>(&self) -> Vec<ValidationMessage> {
        match Context::new(self) {
            Ok(cx) => B::validate(&cx),
            Err(e) => vec![ValidationMessage::error(e.0)],
        }
    }

    pub fn handle<B: Block>(
        &self,
        name: &str,
        payload: serde_json::Value,
    ) -> BlockResult<serde_json::Value> {
        B::handle(&Context::new(self)?, name, payload)
    }

    /// Events the block published, in order.
    pub fn events(&self) -> Vec<(String, serde_json::Value)> {
        self.events.borrow().clone()
    }

    /// Children the block rendered, in order.
    pub fn rendered_children(&self) -> Vec<ChildRender> {
        self.rendered.borrow().clone()
    }

    pub fn tag(&self, scope: TagScope, key: &str) -> Option<String> {
        self.tags.borrow().get(&(scope, key.to_string())).cloned()
    }

    pub fn stored_state(&self) -> Option<String> {
        self.state.borrow().clone()
    }

    /// The block's tallies now.
    pub fn stored_tallies(&self) -> BTreeMap<String, i64> {
        self.tallies.borrow().clone()
    }
}

impl HostApi for TestHost {
    fn current_user(&self) -> User {
        self.user.clone()
    }
    fn course_key(&self) -> String {
        self.course_key.clone()
    }
    fn usage_id(&self) -> String {
        self.usage_id.clone()
    }
    fn block_type(&self) -> String {
        self.block_type.clone()
    }
    fn fields_json(&self) -> String {
        self.fields.to_string()
    }
    fn children(&self) -> Vec<String> {
        self.children.clone()
    }
    fn get_tag(&self, scope: TagScope, key: &str) -> Result<Option<String>, HostError> {
        check_key(key)?;
        Ok(self.tags.borrow().get(&(scope, key.to_string())).cloned())
    }
    fn set_tag(&self, scope: TagScope, key: &str, value: &str) -> Result<(), HostError> {
        check_key(key)?;
        self.tags
            .borrow_mut()
            .insert((scope, key.to_string()), value.to_string());
        Ok(())
    }
    fn partitions(&self) -> Vec<UserPartition> {
        self.partitions.clone()
    }
    fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError> {
        let partition = self
            .partitions
            .iter()
            .find(|p| p.id == partition_id)
            .ok_or_else(|| HostError::NotFound(format!("user partition {partition_id}")))?;
        Ok(self
            .groups
            .get(&partition_id)
            .and_then(|g| partition.group(*g))
            .cloned())
    }
    fn render_child(
        &self,
        usage_id: &str,
        view: View,
        condition: Option<Condition>,
    ) -> Result<Fragment, HostError> {
        if !self.children.iter().any(|c| c == usage_id) {
            return Err(HostError::NotFound(format!(
                "{usage_id:?} is not a child of {:?}",
                self.usage_id
            )));
        }
        self.rendered.borrow_mut().push(ChildRender {
            usage_id: usage_id.into(),
            view,
            condition,
        });
        Ok(self
            .child_fragments
            .get(usage_id)
            .cloned()
            .unwrap_or_else(|| Fragment::html(format!("<p>{usage_id}</p>"))))
    }
    fn get_state(&self) -> Result<Option<String>, HostError> {
        Ok(self.state.borrow().clone())
    }
    fn set_state(&self, json: &str) -> Result<(), HostError> {
        *self.state.borrow_mut() = Some(json.into());
        Ok(())
    }
    fn publish(&self, name: &str, json: &str) -> Result<(), HostError> {
        // As the real host: assignments, exposures and failures are the host's to send.
        let host_owned = name == "xmodule.partitions.assigned_user_to_partition"
            || name == "xblock.split_test.child_render"
            || name.starts_with("xbhost.")
            || name.starts_with("xmodule.partitions.")
            || name.starts_with("edx.librarycontentblock.");
        if host_owned {
            return Err(HostError::InvalidInput(format!(
                "event {name:?} is the host's own: blocks may not send it"
            )));
        }
        let data = serde_json::from_str(json)
            .map_err(|e| HostError::InvalidInput(format!("event {name:?} is not JSON: {e}")))?;
        self.events.borrow_mut().push((name.into(), data));
        Ok(())
    }
    fn tallies(&self) -> Result<Vec<(String, i64)>, HostError> {
        Ok(self
            .tallies
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }
    fn add_tally(&self, key: &str, amount: i64) -> Result<i64, HostError> {
        self.tally_add(key, amount)
    }
    fn selected_children(&self, count: u32) -> Result<Vec<String>, HostError> {
        Ok(self.pick(count))
    }
    fn source(&self, usage_id: &str) -> Result<Source, HostError> {
        self.source_of(usage_id)
    }
}

/// Most tally keys a block may have, as the real host allows.
pub const MAX_TALLY_KEYS: usize = 256;

impl TestHost {
    fn tally_add(&self, key: &str, amount: i64) -> Result<i64, HostError> {
        check_key(key)?;
        let mut tallies = self.tallies.borrow_mut();
        if !tallies.contains_key(key) && tallies.len() >= MAX_TALLY_KEYS {
            return Err(HostError::LimitExceeded(format!(
                "block {:?} has {MAX_TALLY_KEYS} tally keys, the most a block may have",
                self.usage_id
            )));
        }
        let now = tallies.get(key).copied().unwrap_or(0);
        let next = now.checked_add(amount).ok_or_else(|| {
            HostError::InvalidInput(format!("tally {key:?} would overflow: {now} + {amount}"))
        })?;
        tallies.insert(key.to_string(), next);
        Ok(next)
    }

    fn pick(&self, count: u32) -> Vec<String> {
        let picked: Vec<&String> = match &self.selection {
            Some(s) => s.iter().collect(),
            None => self.children.iter().collect(),
        };
        let picked: Vec<&String> = picked.into_iter().take(count as usize).collect();
        // In authored order, as the host answers.
        self.children
            .iter()
            .filter(|c| picked.contains(c))
            .cloned()
            .collect()
    }

    fn source_of(&self, usage_id: &str) -> Result<Source, HostError> {
        let listed = self.fields["sources"]
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(usage_id)));
        if !listed {
            return Err(HostError::InvalidInput(format!(
                "block {:?} does not list {usage_id:?} in its sources field",
                self.usage_id
            )));
        }
        self.sources
            .get(usage_id)
            .cloned()
            .ok_or_else(|| HostError::NotFound(format!("no block {usage_id:?} in the course")))
    }
}

fn check_key(key: &str) -> Result<(), HostError> {
    if key.is_empty() {
        return Err(HostError::InvalidInput("tag key is empty".into()));
    }
    if key.len() > MAX_TAG_KEY_BYTES {
        return Err(HostError::InvalidInput(format!(
            "tag key is {} bytes, over the limit of {MAX_TAG_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(())
}

/// The host's checks of a render's client code (`session/client.rs`), for native tests.
fn check_client(client: &crate::ClientCode, shipped: &[String]) -> BlockResult<()> {
    if client.resources.len() > crate::MAX_CLIENT_FILES {
        return Err(BlockError::new(format!(
            "the render adds {} client files, more than {}",
            client.resources.len(),
            crate::MAX_CLIENT_FILES
        )));
    }
    for name in &client.resources {
        if !(name.ends_with(".css") || name.ends_with(".js")) {
            return Err(BlockError::new(format!(
                "client file {name:?} is neither a .css nor a .js file"
            )));
        }
        if !shipped.contains(name) {
            return Err(BlockError::new(format!(
                "client file {name:?} is not among the plugin's client_assets! {shipped:?}"
            )));
        }
    }
    if let Some((function, args)) = &client.initialize {
        if !crate::is_js_identifier(function) {
            return Err(BlockError::new(format!(
                "initialize_js function {function:?} is not a JavaScript identifier"
            )));
        }
        if args.len() > crate::MAX_CLIENT_ARGS_BYTES {
            return Err(BlockError::new(format!(
                "initialize_js args are {} bytes, over {}",
                args.len(),
                crate::MAX_CLIENT_ARGS_BYTES
            )));
        }
    }
    Ok(())
}
