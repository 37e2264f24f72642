//! The session: one request's capabilities together. It renders blocks (access, then a
//! sandboxed or native call, then the host's wrapper or a placeholder), runs every block
//! call inside a frame whose writes are committed only when the call succeeds, implements
//! [`BlockHost`] for the imports as thin calls into the capabilities, and finishes the
//! request (durable writes first, then decorated events). The only file that knows every
//! capability; none of them knows it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tracing::info;
use wasmtime::Store;

use super::access::{self, Access};
use super::assignments::Assignments;
use super::calls::{Failed, Failures, Instances};
use super::children::RenderTree;
use super::client::ClientCodes;
use super::events::EventBuffer;
use super::frames::Frames;
use super::handle::HostHandle;
use super::request::{Audience, Mode, Request};
use super::selection::Selections;
use super::tags::Tags;
use crate::events::Event;
use crate::events::outbox;
use crate::experiment::Decision;
use crate::markup::{self, ChildSlots, ConditionMark};
use crate::model::{Course, CourseBlock, Group, UserPartition};
use crate::native::NativeApi;
use crate::request::{BlockFailure, ExperimentView, FailureKind, User, View};
use crate::runtime::bindings::exported::Guest;
use crate::runtime::bindings::types::{Fragment, HostError};
use crate::runtime::{
    BlockHost, BlockState, CallLimits, DeadlineReason, LoadedPlugin, SandboxLimits,
};
use crate::storage::CarriedTag;

/// A fragment as the host passes it between blocks (already contained and wrapped).
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

/// What a finished session reports.
pub struct Finished {
    pub visible_blocks: Vec<String>,
    pub assignments: std::collections::BTreeMap<u64, u64>,
    pub experiments: Vec<ExperimentView>,
    pub failures: Vec<BlockFailure>,
    pub events: Vec<Event>,
    pub printed: crate::request::GuestPrints,
}

pub struct Session {
    pub(super) request: Request,
    pub(super) host: HostHandle,
    pub(super) tags: Tags,
    assignments: Assignments,
    pub(super) frames: Frames,
    pub(super) events: EventBuffer,
    tree: RenderTree,
    instances: Instances,
    failures: Failures,
    /// Children's finished HTML, held for their parents (see `markup`'s module doc).
    pub(super) slots: ChildSlots,
    /// Randomized content: the children picked for the learner, per block.
    pub(super) selections: Selections,
    /// Client-side code each block's render added (contract 0.1.2).
    pub(super) clients: ClientCodes,
    /// The store this request reads and writes: the host's, or one of the request's own
    /// (a database transaction, see `Storage::for_request`).
    pub(super) store: Arc<dyn crate::storage::Storage>,
    /// The store's epoch when the request began (see `Storage::epoch`).
    store_epoch: u64,
}

impl Session {
    /// Starts a request that calls blocks (plugins are loaded first, see
    /// [`HostHandle::preload_plugins`]).
    pub(crate) fn new(
        host: &HostHandle,
        course: Arc<Course>,
        user: User,
        mode: Mode,
    ) -> Arc<Session> {
        Session::for_audience(host, course, user, mode, Audience::default())
    }

    /// A page request with what is known about who is looking.
    pub(crate) fn for_audience(
        host: &HostHandle,
        course: Arc<Course>,
        user: User,
        mode: Mode,
        audience: Audience,
    ) -> Arc<Session> {
        host.preload_plugins(&course);
        let budget = host.limits().request_deadline;
        Session::build(host, course, user, mode, audience, budget)
    }

    /// A session that calls no block: experiment decisions, carrying an anonymous
    /// visitor's groups over, reassignment. Plugins are not loaded (nothing runs them).
    pub(crate) fn for_experiments(
        host: &HostHandle,
        course: Arc<Course>,
        user: User,
        mode: Mode,
    ) -> Arc<Session> {
        let budget = host.limits().request_deadline;
        Session::build(host, course, user, mode, Audience::default(), budget)
    }

    /// A session with its own deadline, for work that is not a page request (grading a
    /// learner walks the whole course).
    pub(crate) fn with_deadline(
        host: &HostHandle,
        course: Arc<Course>,
        user: User,
        mode: Mode,
        budget: Duration,
    ) -> Arc<Session> {
        host.preload_plugins(&course);
        Session::build(host, course, user, mode, Audience::default(), budget)
    }

    fn build(
        host: &HostHandle,
        course: Arc<Course>,
        user: User,
        mode: Mode,
        audience: Audience,
        budget: Duration,
    ) -> Arc<Session> {
        let page_deadline = host.limits().request_deadline;
        Arc::new(Session {
            request: Request::new(user, course, mode, audience, budget, page_deadline),
            host: host.clone(),
            tags: Tags::default(),
            assignments: Assignments::default(),
            frames: Frames::default(),
            events: EventBuffer::default(),
            tree: RenderTree::default(),
            instances: Instances::default(),
            failures: Failures::default(),
            slots: ChildSlots::default(),
            selections: Selections::default(),
            clients: ClientCodes::default(),
            store: host
                .storage
                .for_request()
                .unwrap_or_else(|| host.storage.clone()),
            store_epoch: host.storage.epoch(),
        })
    }

    pub fn user(&self) -> &User {
        &self.request.user
    }

    pub fn course(&self) -> &Course {
        &self.request.course
    }

    pub fn block(&self, index: usize) -> CourseBlock<'_> {
        self.request.block(index)
    }

    pub fn limits(&self) -> &SandboxLimits {
        self.host.limits()
    }

    /// How long the request has left.
    pub fn remaining(&self) -> Duration {
        self.request.remaining()
    }

    /// What the learner sees in a partition (see [`Assignments::decision`]).
    pub fn decision(&self, partition: &UserPartition) -> Result<Decision> {
        self.assignments
            .decision(&self.request, self.store.as_ref(), &self.tags, partition)
    }

    /// The group the learner sees in a partition, stored now for a new member.
    pub fn group_for(&self, partition_id: u64) -> Result<Option<Group>, HostError> {
        self.assignments.group_for(
            &self.request,
            self.store.as_ref(),
            &self.tags,
            &self.frames,
            &self.events,
            partition_id,
        )
    }

    /// Carries an anonymous visitor's groups over to this request's user.
    pub fn carry_over_from(&self, from: &str) -> Result<Vec<CarriedTag>> {
        self.assignments.carry_over_from(
            &self.request,
            self.store.as_ref(),
            &self.tags,
            &self.frames,
            &self.events,
            from,
        )
    }

    /// Content-group restrictions on a block for this user (see [`access::access`]).
    pub fn access(&self, index: usize) -> Result<Access, HostError> {
        access::access(&self.request, index, |p| self.group_for(p))
    }

    /// Whether the user can reach the block from the top of the course (see
    /// [`access::reachable`]).
    pub fn reachable(self: &Arc<Self>, index: usize) -> Result<bool> {
        access::reachable(
            &self.request,
            index,
            |i| self.access(i),
            |parent| {
                self.call(
                    parent,
                    0,
                    |guest, store| guest.call_visible_children(store),
                    |_| Ok(()),
                )
                .map(|children| self.picked_only(parent, children))
                .map_err(|f| {
                    anyhow::anyhow!(
                        "block {:?} could not list its visible children: {}",
                        f.usage_id,
                        f.error
                    )
                })
            },
        )
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
        let node = self.tree.open(&block.def.usage_id);
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
                self.render_called_block(index, node, depth, view, mark, restriction.as_deref())
            }
            Err(e) => {
                let failure = self.fail(
                    index,
                    None,
                    (
                        FailureKind::Unavailable,
                        format!("checking access failed: {e}"),
                    ),
                );
                placeholder(view, &failure)
            }
        };
        self.tree.close(node, fragment.hidden, fragment.failed);
        fragment
    }

    /// `children`, as `parent` says the learner sees them, without those the host did not
    /// pick for the learner when `parent` asked for picks (randomized content): a block's
    /// own list cannot let a learner reach, or be graded on, a child not picked.
    pub fn picked_only(&self, parent: usize, mut children: Vec<String>) -> Vec<String> {
        children.retain(|c| self.selections.is_picked(parent, c) != Some(false));
        children
    }

    /// Whether the block is among the children its parent picked for the viewer
    /// (randomized content), for the staff and author views' mark; `None` in student view
    /// and where the parent picked nothing.
    fn selected_mark(&self, view: View, usage_id: &str) -> Option<bool> {
        if view == View::Student {
            return None;
        }
        let parent = self.request.course.parent(usage_id)?;
        let parent = self.request.course.block(parent)?.index;
        self.selections.is_picked(parent, usage_id)
    }

    /// Calls a block's `render` and wraps what it returns (or its placeholder).
    fn render_called_block(
        self: &Arc<Self>,
        index: usize,
        node: usize,
        depth: u32,
        view: View,
        mark: Option<&ConditionMark>,
        restriction: Option<&str>,
    ) -> HostFragment {
        let block = self.block(index);
        let max_html = self.limits().max_html_bytes;
        let max_field = self.limits().max_fragment_field_bytes;
        let result = match self.host.native.get(&block.def.block_type) {
            Some(native) => self
                .call_native(index, depth, |api| (native.render)(api, view.into()))
                .map(|f| Fragment {
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
                        let too_large = |m| Err((FailureKind::OutputTooLarge, m));
                        if f.html.len() > max_html {
                            return too_large(format!(
                                "its HTML is {} bytes, over the limit of {max_html}",
                                f.html.len()
                            ));
                        }
                        for (what, value) in [
                            ("title", &f.title),
                            ("icon", &f.icon),
                            ("tooltip", &f.tooltip),
                        ] {
                            let len = value.as_deref().map_or(0, str::len);
                            if len > max_field {
                                return too_large(format!(
                                    "its {what} is {len} bytes, over the limit of {max_field}"
                                ));
                            }
                        }
                        Ok(())
                    },
                )
            }
        };
        // The children it rendered, for its placeholders, and its client code (both
        // dropped if it failed).
        let mut children = self.slots.take(index);
        let client = self.clients.take(index).map(|c| c.attribute());
        // Its children's HTML and the host's marks on them would be inside its frame,
        // where its script could read and change them.
        let result = match result {
            Ok(_) if client.is_some() && !children.is_empty() => Err(self.fail(
                index,
                None,
                (
                    FailureKind::BlockError,
                    "it has client-side code and rendered children: a block with client code \
                     cannot hold children (their HTML and the host's marks would be in its frame)"
                        .into(),
                ),
            )),
            other => other,
        };
        match result {
            Ok(f) => HostFragment {
                html: {
                    let marks = markup::HostMarks {
                        condition: mark,
                        restriction,
                        selected: self.selected_mark(view, &block.def.usage_id),
                        client: client.as_deref(),
                    };
                    let html = markup::wrap_placing(
                        &f.html,
                        &mut children,
                        &block.def.usage_id,
                        &block.def.block_type,
                        view,
                        &marks,
                    );
                    // Children it rendered but did not place are not on the page: not
                    // in `visible_blocks`, and no exposure.
                    for child in children.unplaced() {
                        self.tree.not_placed(node, &self.block(child).def.usage_id);
                    }
                    html
                },
                hidden: f.hidden,
                failed: false,
                title: f.title,
                icon: f.icon,
                tooltip: f.tooltip,
            },
            Err(failure) => placeholder(view, &failure),
        }
    }

    /// Calls one export of the block's plugin in an instance of this request (see
    /// [`Instances::run`]). The call's writes are stored, and its events handed to its
    /// parent, only if it succeeds.
    pub fn call<R>(
        self: &Arc<Self>,
        index: usize,
        depth: u32,
        call: impl FnOnce(&Guest, &mut Store<BlockState>) -> wasmtime::Result<Result<R, String>>,
        accept: impl FnOnce(&R) -> Result<(), Failed>,
    ) -> Result<R, BlockFailure> {
        let block = self.block(index);
        let plugin = match self.host.plugin(&block.def.block_type) {
            Ok(plugin) => plugin,
            Err(e) => {
                return Err(self.fail(index, None, (FailureKind::Unavailable, format!("{e:#}"))));
            }
        };
        let call_limits = self.start_call(index, depth);
        let me: Arc<dyn BlockHost> = self.clone();
        let outcome = self.instances.run(
            Arc::downgrade(&me),
            &self.request,
            self.limits(),
            &plugin,
            call_limits,
            call,
            accept,
        );
        self.end_call(index, Some(&plugin), outcome)
    }

    /// Calls a native block (compiled into the host: see `xbhost_sdk::native`). Same
    /// frames, commits and failures as a sandboxed call, without the sandbox.
    pub fn call_native<R>(
        self: &Arc<Self>,
        index: usize,
        depth: u32,
        call: impl FnOnce(&NativeApi) -> Result<R, String>,
    ) -> Result<R, BlockFailure> {
        self.start_call(index, depth);
        let api = NativeApi {
            host: self.clone(),
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

    /// Starts a call: its deadline (see [`Frames::next_deadline`]) and its frame.
    fn start_call(&self, index: usize, depth: u32) -> CallLimits {
        let now = std::time::Instant::now();
        let deadline = self
            .frames
            .next_deadline(&self.request, self.limits().block_time);
        self.frames.push(index, deadline);
        // Said only when it interrupts the block: nothing is formatted per call.
        let deadline_reason = if deadline >= self.request.deadline {
            DeadlineReason::Request(self.request.budget)
        } else {
            DeadlineReason::Share(deadline.saturating_duration_since(now))
        };
        CallLimits {
            block: index,
            depth,
            deadline,
            deadline_reason,
        }
    }

    /// Ends a call: commits its frame if it succeeded, else records the failure.
    fn end_call<R>(
        &self,
        index: usize,
        plugin: Option<&LoadedPlugin>,
        outcome: Result<R, Failed>,
    ) -> Result<R, BlockFailure> {
        let frame = self.frames.pop();
        match outcome {
            Ok(r) => match self.commit(frame) {
                Ok(()) => Ok(r),
                Err(e) => Err(self.fail(
                    index,
                    plugin,
                    (
                        FailureKind::Unavailable,
                        format!("storing its writes failed: {e:#}"),
                    ),
                )),
            },
            Err(failed) => Err(self.fail(index, plugin, failed)),
        }
    }

    /// Stores a successful call's writes atomically, then hands its events up.
    fn commit(&self, frame: super::frames::Frame) -> Result<()> {
        if !frame.writes.is_empty() {
            let request = &self.request;
            self.store
                .commit(request.course.key(), &request.user.id, &frame.writes)?;
            self.frames.mark_written();
            self.tags.committed(frame.writes);
        }
        if let Some(events) = self.frames.hand_up(frame.events) {
            self.events.extend(events);
        }
        Ok(())
    }

    fn fail(&self, index: usize, plugin: Option<&LoadedPlugin>, failed: Failed) -> BlockFailure {
        self.failures
            .record(&self.request, &self.events, index, plugin, failed)
    }

    /// Ends the request: makes its writes durable, then decorates and sends its events
    /// (see [`EventBuffer::decorate`] and [`outbox::deliver`]: the log never fails the
    /// page), and reports what was rendered.
    pub fn finish(&self) -> Result<Finished> {
        let storage = self.store.as_ref();
        let tags = self.tags.course_tags(&self.request, storage)?;
        let membership = self
            .assignments
            .membership(&self.request, storage, &self.tags)?;
        let visible = self.tree.visible_blocks();
        let events = self.events.decorate(
            &self.request,
            &membership.experiments,
            &membership.enrolled,
            &self.tree.failed(),
            &visible,
            &tags,
        );
        if storage.keeps_events() {
            // The store is the event log: the events go in with the request's writes, and
            // one commit makes both durable (an acknowledged group always has its event).
            let events: Vec<crate::events::LoggedEvent> = events
                .into_iter()
                .map(crate::events::LoggedEvent::new)
                .collect();
            let stored = events
                .iter()
                .map(crate::events::to_stored)
                .collect::<Result<Vec<_>>>()?;
            storage.append_events(&stored)?;
            storage.flush()?;
            return Ok(self.finished(membership, visible, events));
        }
        // Each new assignment's event is pending in the store since its group was stored;
        // its decorated form replaces it there, made durable by the flush below.
        let stored_with_groups = self.assignments.take_pending();
        let (events, unclaimed) = outbox::identify(events, &stored_with_groups);
        let pending: Vec<String> = stored_with_groups
            .into_iter()
            .map(|(_, id)| id)
            .filter(|id| !unclaimed.contains(id))
            .collect();
        outbox::refresh(storage, &events, &pending);
        outbox::keep_for_later(self.host.sink.as_ref(), &unclaimed);
        // Writes first: an event must never describe an assignment that was not stored.
        // And no page shows a group before it is durable: one another request stored but
        // has not flushed yet, or one left in memory by a flush that failed.
        let must_flush = self.frames.written() || !membership.enrolled.is_empty();
        let flushed = || -> Result<()> {
            storage.flush()?;
            // A store closed and reopened during the request lost what it held unflushed,
            // perhaps this request's writes or the group it read: do not acknowledge them.
            if storage.epoch() == self.store_epoch {
                Ok(())
            } else {
                Err(anyhow::Error::new(crate::errors::StoreUnavailable {
                    dir: "the data directory".into(),
                    why: "the store was reopened after a failure during this request".into(),
                }))
            }
        };
        if must_flush && let Err(e) = flushed() {
            // The page fails; the assignment events wait in the store for a later delivery
            // (their groups may yet become durable).
            outbox::keep_for_later(self.host.sink.as_ref(), &pending);
            return Err(e);
        }
        // Never fails the page: what the log does not take is deferred or counted lost.
        outbox::deliver(storage, self.host.sink.as_ref(), &events, &pending);
        Ok(self.finished(membership, visible, events))
    }

    fn finished(
        &self,
        membership: super::assignments::Membership,
        visible: Vec<String>,
        events: Vec<crate::events::LoggedEvent>,
    ) -> Finished {
        for logged in &events {
            let e = &logged.event;
            info!(target: "xbhost::events", event = %e.name, user = %e.user_id, course = %e.course_key, usage_id = e.usage_id.as_deref().unwrap_or(""), data = %e.data, "event");
        }
        Finished {
            visible_blocks: visible,
            assignments: membership.assignments,
            experiments: membership.views,
            failures: self.failures.take(),
            events: events.into_iter().map(|l| l.event).collect(),
            printed: self.instances.take_printed(),
        }
    }
}

/// The placeholder of a failed block.
fn placeholder(view: View, failure: &BlockFailure) -> HostFragment {
    HostFragment {
        html: markup::placeholder(
            view,
            &failure.usage_id,
            &failure.block_type,
            failure.plugin_version.as_deref(),
            &failure.error,
        ),
        failed: true,
        ..HostFragment::default()
    }
}
