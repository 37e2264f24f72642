//! One request: its user and course, request-scoped caches (tags are read once and kept
//! consistent with the request's own writes), buffered events, and the render tree.
//!
//! Blocks reach the session through their store data ([`crate::runtime::BlockState`]);
//! rendering a child creates a new store for the child from inside the parent's call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;
use tracing::{info, warn};
use wasmtime::Store;

use crate::assignment::{self, PARTITION_TAG_PREFIX, partition_tag_key};
use crate::events::{self, Event, Experiments};
use crate::host::HostInner;
use crate::ids::{check_tag_key, check_tag_value};
use crate::markup::{self, ConditionMark};
use crate::model::{Course, CourseBlock, Group};
use crate::request::{BlockFailure, User, View};
use crate::runtime::bindings::exported::Guest;
use crate::runtime::bindings::types::HostError;
use crate::runtime::{BlockState, LoadedPlugin};
use crate::storage::FirstWrite;

/// Largest per-block user state, in bytes.
pub const MAX_USER_STATE_BYTES: usize = 64 * 1024;

/// Where a tag lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagScope {
    Course,
    User,
}

/// Whether a request may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A normal request: assignments, tags, state and events are stored.
    Live,
    /// Nothing is written and no event is sent (validation, previews). `group-for` answers
    /// with the stored group or the one the learner would get.
    ReadOnly,
}

/// A fragment as the host passes it between blocks (already wrapped).
#[derive(Debug, Clone, Default)]
pub struct HostFragment {
    pub html: String,
    pub hidden: bool,
    pub title: Option<String>,
    pub icon: Option<String>,
    pub tooltip: Option<String>,
}

struct PendingEvent {
    name: String,
    usage_id: Option<String>,
    data: serde_json::Value,
}

struct RenderNode {
    usage_id: String,
    parent: Option<usize>,
    hidden: bool,
}

#[derive(Default)]
struct SessionState {
    course_tags: Option<BTreeMap<String, String>>,
    user_tags: Option<BTreeMap<String, String>>,
    events: Vec<PendingEvent>,
    nodes: Vec<RenderNode>,
    open: Vec<usize>,
    failures: Vec<BlockFailure>,
    wrote: bool,
}

/// What a finished session reports.
pub struct Finished {
    pub visible_blocks: Vec<String>,
    pub assignments: BTreeMap<u64, u64>,
    pub failures: Vec<BlockFailure>,
    pub events: Vec<Event>,
}

pub struct Session {
    host: Arc<HostInner>,
    course: Arc<Course>,
    user: User,
    mode: Mode,
    state: Mutex<SessionState>,
}

fn internal(e: anyhow::Error) -> HostError {
    HostError::Internal(format!("{e:#}"))
}

impl Session {
    pub(crate) fn new(
        host: Arc<HostInner>,
        course: Arc<Course>,
        user: User,
        mode: Mode,
    ) -> Arc<Session> {
        Arc::new(Session {
            host,
            course,
            user,
            mode,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn course(&self) -> &Course {
        &self.course
    }

    pub fn block(&self, index: usize) -> CourseBlock<'_> {
        self.course.block_at(index)
    }

    fn read_only(&self, what: &str) -> Result<(), HostError> {
        match self.mode {
            Mode::Live => Ok(()),
            Mode::ReadOnly => Err(HostError::InvalidInput(format!(
                "this request is read-only: {what} is not stored"
            ))),
        }
    }

    /// Runs `f` on the user's course tags, reading them from storage on first use.
    fn with_course_tags<R>(&self, f: impl FnOnce(&mut BTreeMap<String, String>) -> R) -> Result<R> {
        let mut state = self.lock();
        if state.course_tags.is_none() {
            state.course_tags = Some(
                self.host
                    .storage
                    .course_tags(self.course.key(), &self.user.id)?,
            );
        }
        Ok(f(state.course_tags.as_mut().expect("loaded above")))
    }

    fn with_user_tags<R>(&self, f: impl FnOnce(&mut BTreeMap<String, String>) -> R) -> Result<R> {
        let mut state = self.lock();
        if state.user_tags.is_none() {
            state.user_tags = Some(self.host.storage.user_tags(&self.user.id)?);
        }
        Ok(f(state.user_tags.as_mut().expect("loaded above")))
    }

    pub fn get_tag(&self, scope: TagScope, key: &str) -> Result<Option<String>, HostError> {
        check_tag_key(key).map_err(HostError::InvalidInput)?;
        match scope {
            TagScope::Course => self.with_course_tags(|t| t.get(key).cloned()),
            TagScope::User => self.with_user_tags(|t| t.get(key).cloned()),
        }
        .map_err(internal)
    }

    pub fn set_tag(&self, scope: TagScope, key: &str, value: &str) -> Result<(), HostError> {
        check_tag_key(key).map_err(HostError::InvalidInput)?;
        check_tag_value(key, value).map_err(HostError::InvalidInput)?;
        if scope == TagScope::Course && key.starts_with(PARTITION_TAG_PREFIX) {
            return Err(HostError::InvalidInput(format!(
                "tag {key:?} is kept by the host's partition service: blocks may read it, not write it"
            )));
        }
        self.read_only("a tag")?;
        let storage = &self.host.storage;
        let (course, user) = (self.course.key(), self.user.id.as_str());
        match scope {
            TagScope::Course => storage
                .set_course_tag(course, user, key, value)
                .and_then(|()| self.with_course_tags(|t| t.insert(key.into(), value.into()))),
            TagScope::User => storage
                .set_user_tag(user, key, value)
                .and_then(|()| self.with_user_tags(|t| t.insert(key.into(), value.into()))),
        }
        .map_err(internal)?;
        self.lock().wrote = true;
        Ok(())
    }

    /// The learner's stored group in a partition, if it is still one of its groups.
    fn stored_group(&self, partition_id: u64) -> Result<(Option<String>, Option<Group>)> {
        let raw = self.with_course_tags(|t| t.get(&partition_tag_key(partition_id)).cloned())?;
        let group = raw
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|id| self.course.partition(partition_id)?.group(id).cloned());
        Ok((raw, group))
    }

    /// The learner's group: stored, or assigned now (sticky, first writer wins).
    pub fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError> {
        let partition = self.course.partition(partition_id).ok_or_else(|| {
            HostError::NotFound(format!(
                "course {:?} has no user partition {partition_id}",
                self.course.key()
            ))
        })?;
        if !partition.active {
            return Ok(None);
        }
        let (stored, valid) = self.stored_group(partition_id).map_err(internal)?;
        if valid.is_some() || !partition.is_random() {
            return Ok(valid);
        }
        let Some(new) = assignment::assign(self.course.key(), partition, &self.user.id) else {
            return Ok(None);
        };
        if self.mode == Mode::ReadOnly {
            return Ok(Some(new.clone()));
        }
        let storage = &self.host.storage;
        let key = partition_tag_key(partition_id);
        let new_value = new.id.to_string();
        let (course, user) = (self.course.key(), self.user.id.as_str());
        // Either first assignment (first writer wins) or replacing a deleted group (only if
        // nobody replaced it meanwhile). Either way, what storage holds afterwards is final.
        let (final_value, won) = match &stored {
            None => match storage.set_course_tag_if_absent(course, user, &key, &new_value) {
                Ok(FirstWrite::Written) => (new_value.clone(), true),
                Ok(FirstWrite::Existing(v)) => (v, false),
                Err(e) => return Err(internal(e)),
            },
            Some(old) => {
                let v = storage
                    .replace_course_tag(course, user, &key, old, &new_value)
                    .map_err(internal)?;
                let won = v == new_value;
                (v, won)
            }
        };
        self.with_course_tags(|t| t.insert(key, final_value.clone()))
            .map_err(internal)?;
        let group = final_value
            .parse::<u64>()
            .ok()
            .and_then(|id| partition.group(id).cloned());
        if won {
            let mut data = serde_json::json!({
                "group_id": new.id,
                "group_name": new.name,
                "partition_id": partition.id,
                "partition_name": partition.name,
            });
            if let Some(old) = &stored {
                data["reassigned_from_group_id"] = serde_json::Value::String(old.clone());
                info!(user = %user, partition = partition.id, from = %old, to = new.id, "learner reassigned: stored group was deleted");
            } else {
                info!(user = %user, partition = partition.id, group = new.id, "learner assigned");
            }
            let mut state = self.lock();
            state.wrote = true;
            state.events.push(PendingEvent {
                name: events::ASSIGNED_EVENT.into(),
                usage_id: None,
                data,
            });
        }
        Ok(group)
    }

    pub fn user_state(&self, block: usize) -> Result<Option<String>, HostError> {
        let usage = &self.block(block).def.usage_id;
        self.host
            .storage
            .user_state(self.course.key(), &self.user.id, usage)
            .map_err(internal)
    }

    pub fn set_user_state(&self, block: usize, json: &str) -> Result<(), HostError> {
        if json.len() > MAX_USER_STATE_BYTES {
            return Err(HostError::LimitExceeded(format!(
                "user state is {} bytes, over the limit of {MAX_USER_STATE_BYTES}",
                json.len()
            )));
        }
        serde_json::from_str::<serde_json::Value>(json)
            .map_err(|e| HostError::InvalidInput(format!("user state is not JSON: {e}")))?;
        self.read_only("user state")?;
        let usage = &self.block(block).def.usage_id;
        self.host
            .storage
            .set_user_state(self.course.key(), &self.user.id, usage, json)
            .map_err(internal)?;
        self.lock().wrote = true;
        Ok(())
    }

    pub fn publish(&self, block: Option<usize>, name: &str, json: &str) -> Result<(), HostError> {
        if name.is_empty() || name.len() > 255 {
            return Err(HostError::InvalidInput(format!(
                "event name must be 1 to 255 bytes, not {}",
                name.len()
            )));
        }
        let data: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            HostError::InvalidInput(format!("event {name:?} data is not JSON: {e}"))
        })?;
        if self.mode == Mode::ReadOnly {
            return Ok(());
        }
        let usage_id = block.map(|b| self.block(b).def.usage_id.clone());
        self.lock().events.push(PendingEvent {
            name: name.into(),
            usage_id,
            data,
        });
        Ok(())
    }

    /// Renders a child on behalf of `parent`, which must own it.
    pub fn render_child(
        self: &Arc<Self>,
        parent: usize,
        depth: u32,
        usage_id: &str,
        view: View,
        condition: Option<(u64, Option<u64>)>,
    ) -> Result<HostFragment, HostError> {
        let parent = self.block(parent);
        if !parent.def.children.iter().any(|c| c == usage_id) {
            return Err(HostError::NotFound(format!(
                "{usage_id:?} is not a child of {:?}",
                parent.def.usage_id
            )));
        }
        if depth + 1 > self.host.runtime.limits.max_render_depth {
            return Err(HostError::LimitExceeded(format!(
                "child rendering is nested deeper than {} blocks",
                self.host.runtime.limits.max_render_depth
            )));
        }
        // Only staff and authors are allowed to see other views of a child.
        let view = if view != View::Student && self.user.is_staff {
            view
        } else {
            View::Student
        };
        let child = self
            .course
            .block(usage_id)
            .expect("children of a validated course exist");
        let mark = match condition {
            Some((partition, group)) => {
                Some(self.condition_mark(partition, group).map_err(internal)?)
            }
            None => None,
        };
        Ok(self.render_block(child.index, depth + 1, view, mark.as_ref()))
    }

    fn condition_mark(&self, partition_id: u64, group_id: Option<u64>) -> Result<ConditionMark> {
        let group_name = group_id.and_then(|g| {
            self.course
                .partition(partition_id)?
                .group(g)
                .map(|g| g.name.clone())
        });
        let own = match group_id {
            Some(g) if group_name.is_some() => self
                .stored_group(partition_id)?
                .1
                .is_some_and(|own| own.id == g),
            _ => false,
        };
        Ok(ConditionMark {
            partition_id,
            group_id,
            group_name,
            own,
        })
    }

    /// Renders a block. Never fails: a failing block becomes a placeholder.
    pub fn render_block(
        self: &Arc<Self>,
        index: usize,
        depth: u32,
        view: View,
        mark: Option<&ConditionMark>,
    ) -> HostFragment {
        let block = self.block(index);
        let span = tracing::info_span!(
            "render_block",
            usage_id = %block.def.usage_id,
            block_type = %block.def.block_type,
            depth
        );
        let _entered = span.enter();
        let node = {
            let mut state = self.lock();
            let parent = state.open.last().copied();
            state.nodes.push(RenderNode {
                usage_id: block.def.usage_id.clone(),
                parent,
                hidden: false,
            });
            let node = state.nodes.len() - 1;
            state.open.push(node);
            node
        };
        let wit_view = view.into();
        let result = self.call(index, depth, |guest, store| {
            guest.call_render(store, wit_view)
        });
        let fragment = match result {
            Ok(f) => HostFragment {
                html: markup::wrap_block(
                    &f.html,
                    &block.def.usage_id,
                    &block.def.block_type,
                    view,
                    mark,
                ),
                hidden: f.hidden,
                title: f.title,
                icon: f.icon,
                tooltip: f.tooltip,
            },
            Err(failure) => {
                let html = markup::placeholder(
                    view,
                    &failure.usage_id,
                    &failure.block_type,
                    failure.plugin_version.as_deref(),
                    &failure.error,
                );
                self.lock().failures.push(failure);
                HostFragment {
                    html,
                    ..HostFragment::default()
                }
            }
        };
        let mut state = self.lock();
        state.nodes[node].hidden = fragment.hidden;
        state.open.pop();
        fragment
    }

    /// Instantiates the block's plugin in a fresh store and calls one export.
    pub fn call<R>(
        self: &Arc<Self>,
        index: usize,
        depth: u32,
        f: impl FnOnce(&Guest, &mut Store<BlockState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, BlockFailure> {
        let block = self.block(index);
        let failure = |plugin: Option<&LoadedPlugin>, error: String| {
            warn!(
                plugin = %block.def.block_type,
                usage_id = %block.def.usage_id,
                course = %self.course.key(),
                user = %self.user.id,
                %error,
                "block failed"
            );
            BlockFailure {
                usage_id: block.def.usage_id.clone(),
                block_type: block.def.block_type.clone(),
                plugin_version: plugin.map(|p| p.record.version.clone()),
                error,
            }
        };
        let plugin = self
            .host
            .plugin(&block.def.block_type)
            .map_err(|e| failure(None, format!("{e:#}")))?;
        let runtime = &self.host.runtime;
        let state = BlockState::new(self.clone(), index, depth, runtime.limits.max_memory_bytes);
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.limits);
        let instance = plugin
            .pre
            .instantiate(&mut store)
            .map_err(|e| failure(Some(&plugin), format!("instantiation failed: {e:#}")))?;
        match f(instance.xbhost_block_block(), &mut store) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(message)) => Err(failure(
                Some(&plugin),
                format!("the block returned an error: {message}"),
            )),
            Err(trap) => Err(failure(
                Some(&plugin),
                format!("the block trapped: {trap:#}"),
            )),
        }
    }

    /// Ends the request: decorates and sends its events, makes its writes durable, and
    /// reports what was rendered.
    pub fn finish(&self) -> Result<Finished> {
        let tags = self.with_course_tags(|t| t.clone())?;
        let mut assignments = BTreeMap::new();
        let mut experiments = Experiments::default();
        for partition in self.course.partitions() {
            let group = tags
                .get(&partition_tag_key(partition.id))
                .and_then(|v| v.parse::<u64>().ok())
                .and_then(|id| partition.group(id));
            if let Some(group) = group {
                assignments.insert(partition.id, group.id);
                experiments.enrolled.push(partition.name.clone());
                experiments
                    .assigned
                    .insert(partition.name.clone(), group.name.clone());
            }
        }
        let mut state = self.lock();
        let time = events::now();
        let events: Vec<Event> = state
            .events
            .drain(..)
            .map(|e| Event {
                name: e.name,
                time: time.clone(),
                course_key: self.course.key().to_string(),
                user_id: self.user.id.clone(),
                username: self.user.username.clone(),
                usage_id: e.usage_id,
                data: e.data,
                experiments: experiments.clone(),
                course_tags: tags.clone(),
            })
            .collect();
        // Writes first: an event must never describe an assignment that was not stored.
        if state.wrote {
            self.host.storage.flush()?;
        }
        self.host.sink.emit(&events)?;
        let visible_blocks = (0..state.nodes.len())
            .filter(|&i| {
                let mut at = Some(i);
                while let Some(n) = at {
                    if state.nodes[n].hidden {
                        return false;
                    }
                    at = state.nodes[n].parent;
                }
                true
            })
            .map(|i| state.nodes[i].usage_id.clone())
            .collect();
        Ok(Finished {
            visible_blocks,
            assignments,
            failures: std::mem::take(&mut state.failures),
            events,
        })
    }
}
