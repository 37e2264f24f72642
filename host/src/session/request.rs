//! The request a session serves: who is looking (user and audience), at which course, in
//! which mode, and until when. Owns these facts, fixed when the request starts. May not
//! touch storage, plugins or anything that changes during the request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::model::{Course, CourseBlock};
use crate::request::User;
use crate::runtime::bindings::types::HostError;

/// Whether a request may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A normal request: assignments, tags, state and events are stored.
    Live,
    /// Nothing is written and no event is sent (validation, previews). `group-for` answers
    /// with the stored group or the one the learner would get.
    ReadOnly,
}

/// Who is looking, beyond the user: facts that change what a learner sees in experiments.
#[derive(Debug, Clone, Default)]
pub struct Audience {
    /// The request came from a bot (by user agent): control everywhere, no events.
    pub is_bot: bool,
    /// A staff member viewing as these groups (partition id to group id).
    pub viewed_as: BTreeMap<u64, u64>,
}

/// One request's fixed facts.
pub struct Request {
    pub user: User,
    pub course: Arc<Course>,
    pub mode: Mode,
    pub audience: Audience,
    /// When the request started (wall clock, monotonic).
    pub started: (SystemTime, Instant),
    pub deadline: Instant,
    /// The request's whole budget (a page's, or grading one learner's), as errors name it.
    pub budget: Duration,
    /// One page's time (the configured request deadline): a call the host makes gets at
    /// most this, even in a longer request.
    pub page_deadline: Duration,
}

impl Request {
    pub fn new(
        user: User,
        course: Arc<Course>,
        mode: Mode,
        audience: Audience,
        budget: Duration,
        page_deadline: Duration,
    ) -> Request {
        let now = Instant::now();
        Request {
            user,
            course,
            mode,
            audience,
            started: (SystemTime::now(), now),
            deadline: now + budget,
            budget,
            page_deadline,
        }
    }

    pub fn block(&self, index: usize) -> CourseBlock<'_> {
        self.course.block_at(index)
    }

    pub fn is_live(&self) -> bool {
        self.mode == Mode::Live
    }

    /// Host calls refuse to start work once the request's deadline has passed.
    pub fn check_deadline(&self) -> Result<(), HostError> {
        if Instant::now() >= self.deadline {
            return Err(HostError::LimitExceeded(format!(
                "the request's deadline of {} ms has passed",
                self.budget.as_millis()
            )));
        }
        Ok(())
    }

    /// Refuses a write in a read-only request, saying what was not stored.
    pub fn check_writable(&self, what: &str) -> Result<(), HostError> {
        match self.mode {
            Mode::Live => Ok(()),
            Mode::ReadOnly => Err(HostError::InvalidInput(format!(
                "this request is read-only: {what} is not stored"
            ))),
        }
    }

    /// How long the request has left.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// A host-side failure as a block sees it.
pub fn internal(e: anyhow::Error) -> HostError {
    HostError::Internal(format!("{e:#}"))
}
