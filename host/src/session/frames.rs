//! The block calls in progress: one frame per call, holding its deadline (its share of
//! the request's time, which it shares with everything it causes), the children it has
//! rendered, what it wrote (tags, its state) and the events it sent, kept until the call
//! succeeds; and whether any write reached storage, so the request flushes before it ends.
//! Owns the frames. May not touch storage: committing a frame is the session's job.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::request::Request;
use crate::runtime::bindings::types::HostError;

use crate::storage::BlockWrites;

/// An event waiting for its call to succeed, or for the request to end.
pub struct PendingEvent {
    pub name: String,
    pub usage_id: Option<String>,
    /// The publishing block's type; `None` for the host's own events.
    pub plugin: Option<String>,
    pub data: serde_json::Value,
}

/// What one block call has done so far.
pub struct Frame {
    /// The calling block's index in the course.
    pub block: usize,
    /// When the call, its children and its waits must be done.
    pub deadline: Instant,
    /// Children this call has rendered (each at most once).
    pub rendered: HashSet<usize>,
    pub writes: BlockWrites,
    pub events: Vec<PendingEvent>,
}

#[derive(Default)]
pub struct Frames {
    stack: Mutex<Vec<Frame>>,
    wrote: AtomicBool,
}

impl Frames {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Frame>> {
        self.stack.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block call starts.
    pub fn push(&self, block: usize, deadline: Instant) {
        self.lock().push(Frame {
            block,
            deadline,
            rendered: HashSet::new(),
            writes: BlockWrites::default(),
            events: Vec::new(),
        });
    }

    /// The deadline of a call about to start. A call made by the host (the requested
    /// block, a handler, a grading step) gets the request's deadline, at most one page's
    /// time; a child rendered inside a call gets a fair share of what its parent has left:
    /// the remaining time over the children the parent has not rendered yet (at least a
    /// tenth of a block's own-time limit), never past the parent's deadline. So a parent cannot spend
    /// the page on one child, and a subtree that runs out fails alone.
    pub fn next_deadline(&self, request: &Request, block_time: Duration) -> Instant {
        let now = Instant::now();
        let stack = self.lock();
        let Some(parent) = stack.last() else {
            return request.deadline.min(now + request.page_deadline);
        };
        let remaining = parent.deadline.saturating_duration_since(now);
        let children = request.block(parent.block).def.children.len();
        // The child being started is already counted as rendered.
        let unrendered = (children + 1).saturating_sub(parent.rendered.len()).max(1);
        // A floor, so that in a page of many blocks the first ones are not starved by
        // arithmetic; a tenth of a block's own-time limit keeps one bad child from taking
        // a healthy sibling's turn.
        let share = (remaining / u32::try_from(unrendered).unwrap_or(u32::MAX))
            .max(block_time / 10)
            .min(remaining);
        now + share
    }

    /// Host calls refuse to start work once the current call's deadline (or, outside any
    /// call, the request's) has passed.
    pub fn check_deadline(&self, request: &Request) -> Result<(), HostError> {
        let deadline = self.lock().last().map(|f| f.deadline);
        match deadline {
            Some(d) if Instant::now() >= d && d < request.deadline => {
                Err(HostError::LimitExceeded(
                    "this block's share of the request's time has run out".to_string(),
                ))
            }
            _ => request.check_deadline(),
        }
    }

    /// Records that the current call renders `child`; a second render of the same child
    /// in one call is refused (the page shows each block once).
    pub fn mark_rendered(&self, child: usize, usage_id: &str) -> Result<(), HostError> {
        let mut stack = self.lock();
        let frame = stack
            .last_mut()
            .expect("children are rendered from a block call");
        if !frame.rendered.insert(child) {
            return Err(HostError::LimitExceeded(format!(
                "{usage_id:?} was already rendered in this call: a block renders each child at most once"
            )));
        }
        Ok(())
    }

    /// A block call ends: its frame, to commit or drop.
    pub fn pop(&self) -> Frame {
        self.lock().pop().expect("pushed by the call")
    }

    /// Runs `f` on the frame of the call in progress (host calls come from a block call).
    pub fn with_current<R>(&self, f: impl FnOnce(&mut Frame) -> R) -> R {
        f(self
            .lock()
            .last_mut()
            .expect("host calls come from a block call"))
    }

    /// The innermost pending value `f` finds, from the current call outwards.
    pub fn find_pending<R>(&self, f: impl FnMut(&Frame) -> Option<R>) -> Option<R> {
        self.lock().iter().rev().find_map(f)
    }

    /// Hands a successful call's events to its caller's frame; returns them when the call
    /// was the outermost, for the request's own list.
    pub fn hand_up(&self, events: Vec<PendingEvent>) -> Option<Vec<PendingEvent>> {
        match self.lock().last_mut() {
            Some(parent) => {
                parent.events.extend(events);
                None
            }
            None => Some(events),
        }
    }

    /// The tag keys of a scope that calls in progress have written.
    pub fn pending_tag_keys(&self, scope: crate::runtime::TagScope) -> HashSet<String> {
        let stack = self.lock();
        stack
            .iter()
            .flat_map(|f| match scope {
                crate::runtime::TagScope::Course => f.writes.course_tags.keys(),
                crate::runtime::TagScope::User => f.writes.user_tags.keys(),
            })
            .cloned()
            .collect()
    }

    /// Something was written to storage: the request flushes before it ends.
    pub fn mark_written(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    pub fn written(&self) -> bool {
        self.wrote.load(Ordering::Relaxed)
    }
}
