//! The request's writes: one frame per block call in progress, holding what the call wrote
//! (tags, its state) and the events it sent, kept until the call succeeds; and whether any
//! write reached storage, so the request flushes before it ends. Owns the frames. May not
//! touch storage: committing a frame is the session's job.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::storage::BlockWrites;

/// An event waiting for its call to succeed, or for the request to end.
pub struct PendingEvent {
    pub name: String,
    pub usage_id: Option<String>,
    pub data: serde_json::Value,
}

/// What one block call has done so far.
#[derive(Default)]
pub struct Frame {
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
    pub fn push(&self) {
        self.lock().push(Frame::default());
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

    /// Something was written to storage: the request flushes before it ends.
    pub fn mark_written(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    pub fn written(&self) -> bool {
        self.wrote.load(Ordering::Relaxed)
    }
}
