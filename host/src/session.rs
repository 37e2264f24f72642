//! One request: its user and course, request-scoped caches (tags are read once and kept
//! consistent with the request's own writes), buffered events, the render tree, and the
//! request's deadline.
//!
//! Blocks reach the session through their store data ([`crate::runtime::BlockState`]);
//! rendering a child creates a new store for the child from inside the parent's call.
//!
//! Writes a block makes (tags, its state) are kept in a frame for its call and stored
//! atomically when the call succeeds; a block that fails leaves nothing behind. Events of
//! a successful call join its parent's frame, so content that never reached the page (its
//! parent failed) sends no exposure. Assignments are the host's own writes and are stored
//! at once, first writer wins.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};
use tracing::{info, warn};
use wasmtime::{Store, UpdateDeadline};

use crate::assignment::{PARTITION_TAG_PREFIX, partition_tag_key};
use crate::events::{self, Event, Experiments};
use crate::experiment::{self, Decision, Facts};
use crate::host::HostInner;
use crate::ids::check_tag_key;
use crate::markup::{self, ConditionMark};
use crate::model::{Course, CourseBlock, Group, UserPartition};
use crate::native::NativeApi;
use crate::request::{BlockFailure, ExperimentStatus, ExperimentView, FailureKind, User, View};
use crate::runtime::bindings::BlockPlugin;
use crate::runtime::bindings::exported::Guest;
use crate::runtime::bindings::types::HostError;
use crate::runtime::{BlockState, LoadedPlugin, SandboxLimits};
use crate::storage::{BlockWrites, CarriedTag, FirstWrite};

/// Largest per-block user state, in bytes.
pub const MAX_USER_STATE_BYTES: usize = 64 * 1024;

/// The event the host sends when a block fails.
pub const BLOCK_FAILED_EVENT: &str = "xbhost.block.failed";

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
    /// The block failed and this is its placeholder.
    pub failed: bool,
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
    /// The block failed: its placeholder replaced whatever its children rendered.
    failed: bool,
}

/// What one block call has done so far, kept until it succeeds.
struct Frame {
    writes: BlockWrites,
    events: Vec<PendingEvent>,
}

/// A healthy instance from an earlier call of this request, kept for the next block of
/// the same plugin.
struct Idle {
    store: Store<BlockState>,
    instance: BlockPlugin,
}

#[derive(Default)]
struct SessionState {
    idle: std::collections::HashMap<String, Vec<Idle>>,
    course_tags: Option<BTreeMap<String, String>>,
    user_tags: Option<BTreeMap<String, String>>,
    frames: Vec<Frame>,
    /// Events that will be sent when the request ends.
    events: Vec<PendingEvent>,
    nodes: Vec<RenderNode>,
    open: Vec<usize>,
    failures: Vec<BlockFailure>,
    wrote: bool,
    tag_writes: u32,
    events_published: u32,
}

/// What content-group restrictions say about a block for the current user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No restriction.
    Open,
    /// Restricted, and the user is in an allowed group; the label says to whom.
    Restricted(String),
    /// Restricted to groups a staff member is not in: shown to staff, marked.
    DeniedStaff(String),
    /// Restricted to groups the learner is not in.
    Denied,
}

/// What a finished session reports.
pub struct Finished {
    pub visible_blocks: Vec<String>,
    pub assignments: BTreeMap<u64, u64>,
    pub experiments: Vec<ExperimentView>,
    pub failures: Vec<BlockFailure>,
    pub events: Vec<Event>,
}

/// Who is looking, beyond the user: facts that change what a learner sees in experiments.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    /// The request came from a bot (by user agent): control everywhere, no events.
    pub is_bot: bool,
    /// A staff member viewing as these groups (partition id to group id).
    pub viewed_as: BTreeMap<u64, u64>,
}

pub struct Session {
    host: Arc<HostInner>,
    course: Arc<Course>,
    user: User,
    mode: Mode,
    audience: Audience,
    /// The learner's course enrollment date, read on first need.
    enrolled_at: std::sync::OnceLock<Option<SystemTime>>,
    started: (SystemTime, Instant),
    deadline: Instant,
    state: Mutex<SessionState>,
}

/// Loads every plugin the course uses (compiled, or from the compiled cache) before a
/// request that calls blocks, so compilation is never charged to its deadline; a plugin
/// that fails to load is reported when a block of its type is called.
fn preload_plugins(host: &HostInner, course: &Course) {
    for block_type in course.block_types() {
        let _ = host.plugin(block_type);
    }
}

fn internal(e: anyhow::Error) -> HostError {
    HostError::Internal(format!("{e:#}"))
}

impl Session {
    /// Starts a request that calls blocks (see [`preload_plugins`]).
    pub(crate) fn new(
        host: Arc<HostInner>,
        course: Arc<Course>,
        user: User,
        mode: Mode,
    ) -> Arc<Session> {
        Session::for_audience(host, course, user, mode, Audience::default())
    }

    /// A page request with what is known about who is looking.
    pub(crate) fn for_audience(
        host: Arc<HostInner>,
        course: Arc<Course>,
        user: User,
        mode: Mode,
        audience: Audience,
    ) -> Arc<Session> {
        let deadline = host.runtime.limits.request_deadline;
        preload_plugins(&host, &course);
        Session::build(host, course, user, mode, audience, deadline)
    }

    /// A session that calls no block: experiment decisions, carrying an anonymous
    /// visitor's groups over, reassignment. Plugins are not loaded (nothing runs them).
    pub(crate) fn for_experiments(
        host: Arc<HostInner>,
        course: Arc<Course>,
        user: User,
        mode: Mode,
    ) -> Arc<Session> {
        let deadline = host.runtime.limits.request_deadline;
        Session::build(host, course, user, mode, Audience::default(), deadline)
    }

    /// A session with its own deadline, for work that is not a page request (grading a
    /// learner walks the whole course).
    pub(crate) fn with_deadline(
        host: Arc<HostInner>,
        course: Arc<Course>,
        user: User,
        mode: Mode,
        budget: Duration,
    ) -> Arc<Session> {
        preload_plugins(&host, &course);
        Session::build(host, course, user, mode, Audience::default(), budget)
    }

    fn build(
        host: Arc<HostInner>,
        course: Arc<Course>,
        user: User,
        mode: Mode,
        audience: Audience,
        budget: Duration,
    ) -> Arc<Session> {
        let now = Instant::now();
        let deadline = now + budget;
        Arc::new(Session {
            host,
            course,
            user,
            mode,
            audience,
            enrolled_at: std::sync::OnceLock::new(),
            started: (SystemTime::now(), now),
            deadline,
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

    pub fn limits(&self) -> &SandboxLimits {
        &self.host.runtime.limits
    }

    /// When the request started (wall clock, monotonic).
    pub fn started(&self) -> (SystemTime, Instant) {
        self.started
    }

    /// Host calls refuse to start work once the request's deadline has passed.
    fn check_deadline(&self) -> Result<(), HostError> {
        if Instant::now() >= self.deadline {
            return Err(HostError::LimitExceeded(format!(
                "the request's deadline of {} ms has passed",
                self.limits().request_deadline.as_millis()
            )));
        }
        Ok(())
    }

    fn read_only(&self, what: &str) -> Result<(), HostError> {
        match self.mode {
            Mode::Live => Ok(()),
            Mode::ReadOnly => Err(HostError::InvalidInput(format!(
                "this request is read-only: {what} is not stored"
            ))),
        }
    }

    /// Runs `f` on the user's stored course tags, reading them on first use.
    fn with_course_tags<R>(&self, f: impl FnOnce(&mut SessionState) -> R) -> Result<R> {
        let mut state = self.lock();
        if state.course_tags.is_none() {
            state.course_tags = Some(
                self.host
                    .storage
                    .course_tags(self.course.key(), &self.user.id)?,
            );
        }
        Ok(f(&mut state))
    }

    fn with_user_tags<R>(&self, f: impl FnOnce(&mut SessionState) -> R) -> Result<R> {
        let mut state = self.lock();
        if state.user_tags.is_none() {
            state.user_tags = Some(self.host.storage.user_tags(&self.user.id)?);
        }
        Ok(f(&mut state))
    }

    pub fn get_tag(&self, scope: TagScope, key: &str) -> Result<Option<String>, HostError> {
        check_tag_key(key).map_err(HostError::InvalidInput)?;
        self.check_deadline()?;
        // The innermost pending write wins, then what is stored.
        match scope {
            TagScope::Course => self.with_course_tags(|s| {
                s.frames
                    .iter()
                    .rev()
                    .find_map(|f| f.writes.course_tags.get(key))
                    .or_else(|| s.course_tags.as_ref()?.get(key))
                    .cloned()
            }),
            TagScope::User => self.with_user_tags(|s| {
                s.frames
                    .iter()
                    .rev()
                    .find_map(|f| f.writes.user_tags.get(key))
                    .or_else(|| s.user_tags.as_ref()?.get(key))
                    .cloned()
            }),
        }
        .map_err(internal)
    }

    pub fn set_tag(&self, scope: TagScope, key: &str, value: &str) -> Result<(), HostError> {
        check_tag_key(key).map_err(HostError::InvalidInput)?;
        let max_value = self.limits().max_tag_value_bytes;
        if value.len() > max_value {
            return Err(HostError::InvalidInput(format!(
                "value of tag {key:?} is {} bytes, over the limit of {max_value}",
                value.len()
            )));
        }
        if scope == TagScope::Course && key.starts_with(PARTITION_TAG_PREFIX) {
            return Err(HostError::InvalidInput(format!(
                "tag {key:?} is kept by the host's partition service: blocks may read it, not write it"
            )));
        }
        self.read_only("a tag")?;
        self.check_deadline()?;
        let max_writes = self.limits().max_tag_writes;
        let mut state = self.lock();
        if state.tag_writes >= max_writes {
            return Err(HostError::LimitExceeded(format!(
                "a request may write at most {max_writes} tags"
            )));
        }
        state.tag_writes += 1;
        let frame = state
            .frames
            .last_mut()
            .expect("host calls come from a block call");
        match scope {
            TagScope::Course => frame.writes.course_tags.insert(key.into(), value.into()),
            TagScope::User => frame.writes.user_tags.insert(key.into(), value.into()),
        };
        Ok(())
    }

    /// The learner's course enrollment date, or the request's start when none is stored
    /// (as edX does: a visitor who enrolled now would see the same). Read once.
    fn enrollment_date(&self) -> Result<SystemTime> {
        if let Some(date) = self.enrolled_at.get() {
            return Ok(date.unwrap_or(self.started.0));
        }
        let stored = self
            .host
            .storage
            .enrollment(self.course.key(), &self.user.id)?
            .map(|d| {
                experiment::parse_date(&d).with_context(|| {
                    format!(
                        "stored enrollment date of user {:?} in {:?}",
                        self.user.id,
                        self.course.key()
                    )
                })
            })
            .transpose()?;
        let _ = self.enrolled_at.set(stored);
        Ok(stored.unwrap_or(self.started.0))
    }

    /// What the learner sees in a partition and what is recorded about it, from this
    /// request's view of their tags (read once, including its own assignments).
    pub fn decision(&self, partition: &UserPartition) -> Result<Decision> {
        let key = partition_tag_key(partition.id);
        let stored =
            self.with_course_tags(|s| s.course_tags.as_ref().and_then(|t| t.get(&key)).cloned())?;
        let has_window = partition.enrollment_start.is_some() || partition.enrollment_end.is_some();
        let enrolled_at = if has_window {
            self.enrollment_date()?
        } else {
            self.started.0
        };
        Ok(experiment::decide(
            partition,
            &Facts {
                course_key: self.course.key(),
                identifier: &self.user.id,
                stored: stored.as_deref(),
                enrolled_at,
                is_bot: self.audience.is_bot,
                viewed_as: self.audience.viewed_as.get(&partition.id).copied(),
            },
        ))
    }

    /// The group the learner sees in a partition; a new member's group is stored now
    /// (sticky, first writer wins) with an assignment event. See [`experiment::decide`].
    pub fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError> {
        let partition = self.course.partition(partition_id).ok_or_else(|| {
            HostError::NotFound(format!(
                "course {:?} has no user partition {partition_id}",
                self.course.key()
            ))
        })?;
        self.check_deadline()?;
        let group = match self.decision(partition).map_err(internal)? {
            Decision::Assign { group, replacing } if self.mode == Mode::Live => {
                self.store_assignment(partition, group, replacing)?
            }
            other => other.group(),
        };
        Ok(group.and_then(|id| partition.group(id).cloned()))
    }

    /// Stores a new member's group: first assignment (first writer wins) or the
    /// replacement of a deleted group (only if nobody replaced it meanwhile). Returns the
    /// group storage holds afterwards, which is final.
    fn store_assignment(
        &self,
        partition: &UserPartition,
        new_id: u64,
        stored: Option<String>,
    ) -> Result<Option<u64>, HostError> {
        let storage = &self.host.storage;
        let key = partition_tag_key(partition.id);
        let new_value = new_id.to_string();
        let (course, user) = (self.course.key(), self.user.id.as_str());
        let (final_value, won) = match &stored {
            None => match storage.set_course_tag_if_absent(course, user, &key, &new_value) {
                Ok(FirstWrite::Written) => (new_value.clone(), true),
                Ok(FirstWrite::Existing(v)) => (v, false),
                Err(e) => return Err(internal(e)),
            },
            Some(old) => match storage.replace_course_tag(course, user, &key, old, &new_value) {
                Ok(FirstWrite::Written) => (new_value.clone(), true),
                Ok(FirstWrite::Existing(v)) => (v, false),
                Err(e) => return Err(internal(e)),
            },
        };
        let group = final_value.parse::<u64>().ok();
        let mut state = self.lock();
        if let Some(tags) = state.course_tags.as_mut() {
            tags.insert(key, final_value);
        }
        if won {
            let new = partition.group(new_id).map(|g| g.name.clone());
            let mut data = serde_json::json!({
                "group_id": new_id,
                "group_name": new,
                "partition_id": partition.id,
                "partition_name": partition.name,
            });
            if let Some(old) = &stored {
                data["reassigned_from_group_id"] = serde_json::Value::String(old.clone());
                info!(user = %user, partition = partition.id, from = %old, to = new_id, "learner reassigned: stored group was deleted");
            } else {
                info!(user = %user, partition = partition.id, group = new_id, "learner assigned");
            }
            state.wrote = true;
            state.events.push(PendingEvent {
                name: events::ASSIGNED_EVENT.into(),
                usage_id: None,
                data,
            });
        }
        Ok(group)
    }

    /// Moves an anonymous visitor's assignments in this course over to the session's
    /// (signed-in) user, where the user has none; the user's own groups win. Each group
    /// carried over is the user's first assignment, so it sends the assignment event.
    pub fn carry_over_from(&self, from: &str) -> Result<Vec<CarriedTag>> {
        let keys: Vec<String> = self
            .course
            .partitions()
            .iter()
            .map(|p| partition_tag_key(p.id))
            .collect();
        let carried = self.host.storage.carry_over_course_tags(
            self.course.key(),
            from,
            &self.user.id,
            &keys,
        )?;
        let mut state = self.lock();
        state.course_tags = None; // read again: the request's view must include these
        // Carried or not, the visitor's tags were removed: flush at the end.
        state.wrote |= !carried.is_empty();
        for tag in carried.iter().filter(|t| t.carried) {
            let Some(partition) = crate::assignment::partition_of_tag(&tag.key)
                .and_then(|id| self.course.partition(id))
            else {
                continue;
            };
            let group = tag.to_value.parse::<u64>().ok();
            state.events.push(PendingEvent {
                name: events::ASSIGNED_EVENT.into(),
                usage_id: None,
                data: serde_json::json!({
                    "group_id": group,
                    "group_name": group.and_then(|g| partition.group(g)).map(|g| g.name.clone()),
                    "partition_id": partition.id,
                    "partition_name": partition.name,
                    "carried_over_from": from,
                }),
            });
        }
        Ok(carried)
    }

    pub fn user_state(&self, block: usize) -> Result<Option<String>, HostError> {
        self.check_deadline()?;
        let usage = &self.block(block).def.usage_id;
        let pending = self
            .lock()
            .frames
            .iter()
            .rev()
            .find_map(|f| f.writes.state.as_ref().filter(|(u, _)| u == usage))
            .map(|(_, json)| json.clone());
        if pending.is_some() {
            return Ok(pending);
        }
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
        self.check_deadline()?;
        let usage = self.block(block).def.usage_id.clone();
        let mut state = self.lock();
        let frame = state
            .frames
            .last_mut()
            .expect("host calls come from a block call");
        frame.writes.state = Some((usage, json.to_string()));
        Ok(())
    }

    pub fn publish(&self, block: usize, name: &str, json: &str) -> Result<(), HostError> {
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
        let max = self.limits().max_events;
        let mut state = self.lock();
        if state.events_published >= max {
            return Err(HostError::LimitExceeded(format!(
                "a request may publish at most {max} events"
            )));
        }
        state.events_published += 1;
        let usage_id = Some(self.block(block).def.usage_id.clone());
        state
            .frames
            .last_mut()
            .expect("host calls come from a block call")
            .events
            .push(PendingEvent {
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
        let max_depth = self.limits().max_render_depth;
        if depth + 1 > max_depth {
            return Err(HostError::LimitExceeded(format!(
                "child rendering is nested deeper than {max_depth} blocks"
            )));
        }
        self.check_deadline()?;
        // Only staff may see other views of a child.
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
        // The staff member's own group: what they would see as a learner.
        let own = match (group_id, self.course.partition(partition_id)) {
            (Some(g), Some(p)) if group_name.is_some() => self.decision(p)?.group() == Some(g),
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
                failed: false,
            });
            let node = state.nodes.len() - 1;
            state.open.push(node);
            node
        };
        let fragment = match self.access(index) {
            // A learner outside the block's content groups: the block is not even called.
            Ok(Access::Denied) if view == View::Student => HostFragment {
                hidden: true,
                ..HostFragment::default()
            },
            Ok(access) => {
                let restriction = match access {
                    Access::Restricted(label) | Access::DeniedStaff(label) => Some(label),
                    _ => None,
                };
                self.render_called_block(index, depth, view, mark, restriction.as_deref())
            }
            Err(e) => {
                let failure = self.fail(
                    index,
                    None,
                    FailureKind::Unavailable,
                    format!("checking access failed: {e}"),
                );
                HostFragment {
                    html: markup::placeholder(
                        view,
                        &failure.usage_id,
                        &failure.block_type,
                        None,
                        &failure.error,
                    ),
                    failed: true,
                    ..HostFragment::default()
                }
            }
        };
        let mut state = self.lock();
        state.nodes[node].hidden = fragment.hidden;
        state.nodes[node].failed = fragment.failed;
        state.open.pop();
        fragment
    }

    /// Calls a block's `render` and wraps what it returns (or its placeholder).
    fn render_called_block(
        self: &Arc<Self>,
        index: usize,
        depth: u32,
        view: View,
        mark: Option<&ConditionMark>,
        restriction: Option<&str>,
    ) -> HostFragment {
        let block = self.block(index);
        let max_html = self.limits().max_html_bytes;
        let result = match self.host.native.get(&block.def.block_type) {
            Some(native) => self
                .call_native(index, depth, |api| (native.render)(api, view.into()))
                .map(|f| crate::runtime::bindings::types::Fragment {
                    html: f.html,
                    hidden: f.hidden,
                    title: f.title,
                    icon: f.icon,
                    tooltip: f.tooltip,
                }),
            None => {
                let wit_view = view.into();
                self.call(
                    index,
                    depth,
                    |guest, store| guest.call_render(store, wit_view),
                    |f| {
                        if f.html.len() > max_html {
                            return Err(format!(
                                "its HTML is {} bytes, over the limit of {max_html}",
                                f.html.len()
                            ));
                        }
                        Ok(())
                    },
                )
            }
        };
        match result {
            Ok(f) => HostFragment {
                html: markup::wrap_block(
                    &f.html,
                    &block.def.usage_id,
                    &block.def.block_type,
                    view,
                    mark,
                    restriction,
                ),
                hidden: f.hidden,
                failed: false,
                title: f.title,
                icon: f.icon,
                tooltip: f.tooltip,
            },
            Err(failure) => HostFragment {
                html: markup::placeholder(
                    view,
                    &failure.usage_id,
                    &failure.block_type,
                    failure.plugin_version.as_deref(),
                    &failure.error,
                ),
                failed: true,
                ..HostFragment::default()
            },
        }
    }

    /// Whether the user may see a block: every content-group restriction on it names a
    /// group the user is in (for random partitions the group is assigned as usual; for
    /// cohorts it is the one staff put them in). Restrictions on a partition the course no
    /// longer has, or an inactive one, are ignored, as Open edX does. Staff see everything,
    /// with the restriction described.
    pub fn access(&self, index: usize) -> Result<Access, HostError> {
        let mut labels = Vec::new();
        let mut denied = false;
        for (partition_id, groups) in self.course.restrictions(index) {
            let Some(partition) = self.course.partition(partition_id) else {
                continue;
            };
            if !partition.active {
                continue;
            }
            let names: Vec<&str> = groups
                .iter()
                .map(|g| {
                    partition
                        .group(*g)
                        .map_or("(deleted group)", |g| g.name.as_str())
                })
                .collect();
            labels.push(format!("{}: {}", partition.name, names.join(", ")));
            if !denied {
                let mine = self.group_for(partition_id)?;
                denied = !mine.is_some_and(|g| groups.contains(&g.id));
            }
        }
        Ok(match (labels.is_empty(), denied, self.user.is_staff) {
            (true, _, _) => Access::Open,
            (false, false, _) => Access::Restricted(labels.join("; ")),
            (false, true, true) => Access::DeniedStaff(labels.join("; ")),
            (false, true, false) => Access::Denied,
        })
    }

    /// Whether the user can reach the block from the top of the course: it and each of its
    /// ancestors pass their content-group restrictions, and each ancestor lists the child on
    /// the way down among its `visible-children` (so a split test lets a learner reach only
    /// their own condition). Staff reach everything. Used where a caller names a block
    /// directly (render, handlers), so a learner cannot open another group's content.
    pub fn reachable(self: &Arc<Self>, index: usize) -> Result<bool> {
        if self.user.is_staff {
            return Ok(true);
        }
        let mut child = index;
        loop {
            if self.access(child).map_err(|e| anyhow::anyhow!("{e:?}"))? == Access::Denied {
                return Ok(false);
            }
            let Some(parent) = self.course.parent(&self.block(child).def.usage_id) else {
                return Ok(true);
            };
            let parent = self.course.block(parent).expect("parents are blocks").index;
            let visible = self
                .call(
                    parent,
                    0,
                    |guest, store| guest.call_visible_children(store),
                    |_| Ok(()),
                )
                .map_err(|f| {
                    anyhow::anyhow!(
                        "block {:?} could not list its visible children: {}",
                        f.usage_id,
                        f.error
                    )
                })?;
            if !visible.contains(&self.block(child).def.usage_id) {
                return Ok(false);
            }
            child = parent;
        }
    }

    /// Calls one export of the block's plugin, in an instance of this request: a fresh one
    /// from the plugin's `InstancePre`, or one an earlier call of this same request left
    /// healthy (instances never cross requests, and one that trapped is never reused).
    /// `accept` may still refuse the result (an output limit). The call's writes are
    /// stored, and its events handed to its parent, only if it succeeds.
    pub fn call<R>(
        self: &Arc<Self>,
        index: usize,
        depth: u32,
        call: impl FnOnce(&Guest, &mut Store<BlockState>) -> wasmtime::Result<Result<R, String>>,
        accept: impl FnOnce(&R) -> Result<(), String>,
    ) -> Result<R, BlockFailure> {
        let block = self.block(index);
        let plugin = match self.host.plugin(&block.def.block_type) {
            Ok(plugin) => plugin,
            Err(e) => {
                return Err(self.fail(index, None, FailureKind::Unavailable, format!("{e:#}")));
            }
        };
        self.push_frame();
        let idle = self
            .lock()
            .idle
            .get_mut(&plugin.record.name)
            .and_then(Vec::pop);
        let (mut store, instance) = match idle {
            Some(Idle {
                mut store,
                instance,
            }) => {
                store.data_mut().reuse_for(index, depth);
                store.set_epoch_deadline(1);
                (store, Ok(instance))
            }
            None => {
                let mut store = self.new_store(index, depth);
                let instance = plugin.pre.instantiate(&mut store);
                (store, instance)
            }
        };
        let mut healthy = false;
        let outcome = match &instance {
            // Start functions run during instantiation, under the same limits.
            Err(e)
                if store.data().interrupted.is_some() || store.data().limiter.refused.is_some() =>
            {
                Err(classify_trap(store.data(), e))
            }
            Err(e) => Err((
                FailureKind::Unavailable,
                format!("instantiation failed: {e:#}"),
            )),
            Ok(instance) => match call(instance.xbhost_block_block(), &mut store) {
                Ok(result) => {
                    healthy = true;
                    match result {
                        Ok(r) => accept(&r)
                            .map(|()| r)
                            .map_err(|e| (FailureKind::OutputTooLarge, e)),
                        Err(message) => Err((
                            FailureKind::BlockError,
                            format!("the block returned an error: {message}"),
                        )),
                    }
                }
                Err(trap) => Err(classify_trap(store.data(), &trap)),
            },
        };
        self.log_guest_output(store.data(), &plugin);
        if let (true, Ok(instance)) = (healthy, instance) {
            self.lock()
                .idle
                .entry(plugin.record.name.clone())
                .or_default()
                .push(Idle { store, instance });
        }
        self.end_call(index, Some(&plugin), outcome)
    }

    /// A new store for one block instance: its limiter, and an epoch callback that
    /// interrupts it past its own time limit (children excluded) or the request deadline.
    fn new_store(self: &Arc<Self>, index: usize, depth: u32) -> Store<BlockState> {
        let mut store = Store::new(
            &self.host.runtime.engine,
            BlockState::new(self, index, depth),
        );
        store.limiter(|s| &mut s.limiter);
        let deadline = self.deadline;
        let block_time = self.limits().block_time;
        let request_ms = self.limits().request_deadline.as_millis();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut cx| {
            let s = cx.data_mut();
            let why = if Instant::now() >= deadline {
                format!("interrupted: the request's deadline of {request_ms} ms passed")
            } else if s.own_time() >= block_time {
                format!(
                    "interrupted: it ran for more than its limit of {} ms",
                    block_time.as_millis()
                )
            } else {
                return Ok(UpdateDeadline::Continue(1));
            };
            s.interrupted = Some(why.clone());
            Err(wasmtime::Error::msg(why))
        });
        store
    }

    /// Calls a native block (compiled into the host: see `xbhost_sdk::native`). Same
    /// frames, commits and failures as a sandboxed call, without the sandbox.
    pub fn call_native<R>(
        self: &Arc<Self>,
        index: usize,
        depth: u32,
        call: impl FnOnce(&NativeApi) -> Result<R, String>,
    ) -> Result<R, BlockFailure> {
        self.push_frame();
        let api = NativeApi {
            session: self.clone(),
            block: index,
            depth,
        };
        let outcome = call(&api).map_err(|e| {
            (
                FailureKind::BlockError,
                format!("the block returned an error: {e}"),
            )
        });
        self.end_call(index, None, outcome)
    }

    fn push_frame(&self) {
        self.lock().frames.push(Frame {
            writes: BlockWrites::default(),
            events: Vec::new(),
        });
    }

    /// Ends a call: commits its frame if it succeeded, else records the failure.
    fn end_call<R>(
        &self,
        index: usize,
        plugin: Option<&LoadedPlugin>,
        outcome: Result<R, (FailureKind, String)>,
    ) -> Result<R, BlockFailure> {
        let frame = self.lock().frames.pop().expect("pushed by the call");
        match outcome {
            Ok(r) => match self.commit(frame) {
                Ok(()) => Ok(r),
                Err(e) => Err(self.fail(
                    index,
                    plugin,
                    FailureKind::Unavailable,
                    format!("storing its writes failed: {e:#}"),
                )),
            },
            Err((kind, error)) => Err(self.fail(index, plugin, kind, error)),
        }
    }

    /// Stores a successful call's writes atomically, then hands its events up.
    fn commit(&self, frame: Frame) -> Result<()> {
        if !frame.writes.is_empty() {
            self.host
                .storage
                .commit(self.course.key(), &self.user.id, &frame.writes)?;
        }
        let mut state = self.lock();
        if !frame.writes.is_empty() {
            state.wrote = true;
            if let Some(tags) = state.course_tags.as_mut() {
                tags.extend(frame.writes.course_tags);
            }
            if let Some(tags) = state.user_tags.as_mut() {
                tags.extend(frame.writes.user_tags);
            }
        }
        match state.frames.last_mut() {
            Some(parent) => parent.events.extend(frame.events),
            None => state.events.extend(frame.events),
        }
        Ok(())
    }

    /// Records a failure: a log line and an event naming the plugin, its version, the
    /// block, the course and the user.
    fn fail(
        &self,
        index: usize,
        plugin: Option<&LoadedPlugin>,
        kind: FailureKind,
        error: String,
    ) -> BlockFailure {
        let block = self.block(index);
        let version = plugin.map(|p| p.record.version.clone());
        warn!(
            plugin = %block.def.block_type,
            version = version.as_deref().unwrap_or("-"),
            usage_id = %block.def.usage_id,
            course = %self.course.key(),
            user = %self.user.id,
            ?kind,
            %error,
            "block failed"
        );
        let failure = BlockFailure {
            usage_id: block.def.usage_id.clone(),
            block_type: block.def.block_type.clone(),
            plugin_version: version,
            kind,
            error,
        };
        let mut state = self.lock();
        if self.mode == Mode::Live {
            state.events.push(PendingEvent {
                name: BLOCK_FAILED_EVENT.into(),
                usage_id: Some(failure.usage_id.clone()),
                data: serde_json::json!({
                    "plugin": failure.block_type,
                    "plugin_version": failure.plugin_version,
                    "kind": failure.kind,
                    "error": failure.error,
                }),
            });
        }
        state.failures.push(failure.clone());
        failure
    }

    /// Guest stdout and stderr go to `tracing`, named by plugin and block.
    fn log_guest_output(&self, state: &BlockState, plugin: &LoadedPlugin) {
        let usage_id = &self.block(state.block).def.usage_id;
        for (stream, output) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
            let (text, dropped) = output.take();
            if !text.is_empty() || dropped > 0 {
                info!(
                    target: "xbhost::guest",
                    plugin = %plugin.record.name,
                    version = %plugin.record.version,
                    %usage_id,
                    stream,
                    dropped_bytes = dropped,
                    "{}",
                    text.trim_end()
                );
            }
        }
    }

    /// Ends the request: makes its writes durable, then decorates and sends its events,
    /// and reports what was rendered.
    ///
    /// Every event carries the learner's membership as this request decided it. Exposure
    /// events (`xblock.split_test.child_render`) are the analysis' denominator, so the host
    /// keeps one only when the learner is enrolled in its partition (not off, paused,
    /// outside the window, a bot or viewed-as) and the condition it names rendered.
    pub fn finish(&self) -> Result<Finished> {
        let tags = self.with_course_tags(|s| s.course_tags.clone().unwrap_or_default())?;
        let mut assignments = BTreeMap::new();
        let mut experiments = Experiments::default();
        let mut views = Vec::new();
        let mut enrolled_ids = std::collections::HashSet::new();
        for partition in self.course.partitions() {
            let decision = self.decision(partition)?;
            let (Some(group_id), Some(status)) =
                (decision.group(), ExperimentStatus::of(&decision))
            else {
                continue;
            };
            let group_name = partition.group(group_id).map(|g| g.name.clone());
            views.push(ExperimentView {
                partition_id: partition.id,
                partition_name: partition.name.clone(),
                group_id,
                group_name: group_name.clone().unwrap_or_default(),
                status,
            });
            if matches!(decision, Decision::Control(..)) {
                continue;
            }
            assignments.insert(partition.id, group_id);
            // Enrolled: stored or forced. (A would-be group of a read-only request is shown
            // but not enrolled; such requests send no events anyway.)
            if matches!(decision, Decision::Stored(_) | Decision::Forced(_)) {
                enrolled_ids.insert(partition.id);
                experiments.enrolled.push(partition.name.clone());
                experiments
                    .assigned
                    .insert(partition.name.clone(), group_name.unwrap_or_default());
                if matches!(decision, Decision::Forced(_)) {
                    experiments.forced.insert(partition.name.clone(), true);
                }
            }
        }
        let mut state = self.lock();
        let failed: std::collections::HashSet<String> = state
            .nodes
            .iter()
            .filter(|n| n.failed)
            .map(|n| n.usage_id.clone())
            .collect();
        let keep = |e: &PendingEvent| {
            if self.audience.is_bot {
                return false;
            }
            if e.name != events::CHILD_RENDER_EVENT {
                return true;
            }
            let enrolled = e.data["user_partition_id"]
                .as_u64()
                .is_none_or(|p| enrolled_ids.contains(&p));
            let rendered = e.data["child_id"]
                .as_str()
                .is_none_or(|c| !failed.contains(c));
            enrolled && rendered
        };
        let pending: Vec<PendingEvent> = state.events.drain(..).collect();
        let time = events::now();
        let events: Vec<Event> = pending
            .into_iter()
            .filter(|e| keep(e))
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
        for e in &events {
            info!(target: "xbhost::events", event = %e.name, user = %e.user_id, course = %e.course_key, usage_id = e.usage_id.as_deref().unwrap_or(""), data = %e.data, "event");
        }
        self.host.sink.emit(&events)?;
        let visible_blocks = (0..state.nodes.len())
            .filter(|&i| {
                // Visible: neither it nor an ancestor is hidden, and no ancestor failed (a
                // failed block's placeholder replaced its children's HTML).
                if state.nodes[i].hidden {
                    return false;
                }
                let mut at = state.nodes[i].parent;
                while let Some(n) = at {
                    if state.nodes[n].hidden || state.nodes[n].failed {
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
            experiments: views,
            failures: std::mem::take(&mut state.failures),
            events,
        })
    }

    /// How long the request has left.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Why a block trapped: interrupted, out of memory, panicked, or another trap.
fn classify_trap(state: &BlockState, trap: &wasmtime::Error) -> (FailureKind, String) {
    if let Some(why) = &state.interrupted {
        return (FailureKind::Timeout, why.clone());
    }
    if let Some(why) = &state.limiter.refused {
        return (FailureKind::Memory, why.clone());
    }
    // Rust guests print their panic message to stderr before trapping.
    let stderr = state.stderr.peek();
    if let Some(at) = stderr.find("panicked at") {
        let message: String = stderr[at..].lines().take(2).collect::<Vec<_>>().join(" ");
        return (FailureKind::Panic, message);
    }
    let root = trap.root_cause().to_string();
    (FailureKind::Trap, format!("it trapped: {root}"))
}
