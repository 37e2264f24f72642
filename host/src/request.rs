//! What a caller asks the host to do, and what it gets back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::errors::FailureKind;
use crate::events::Event;

/// Which audience to render for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Student,
    Staff,
    Author,
}

impl std::str::FromStr for View {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "student" => Ok(View::Student),
            "staff" => Ok(View::Staff),
            "author" => Ok(View::Author),
            other => Err(format!("unknown view {other:?} (student, staff or author)")),
        }
    }
}

/// How anonymous visitors' identifiers are stored, apart from user ids.
pub const ANONYMOUS_PREFIX: &str = "anon:";

/// The user a request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub is_staff: bool,
    pub is_anonymous: bool,
}

impl User {
    /// A signed-in learner whose username is their id.
    pub fn learner(id: &str) -> User {
        User {
            id: id.to_string(),
            username: id.to_string(),
            is_staff: false,
            is_anonymous: false,
        }
    }

    /// An anonymous visitor, identified by their session: assigned by the session id
    /// (stored as `anon:{session_id}`) until a refresh carries the groups to a user.
    pub fn anonymous(session_id: &str) -> User {
        User {
            id: format!("{ANONYMOUS_PREFIX}{session_id}"),
            username: String::new(),
            is_staff: false,
            is_anonymous: true,
        }
    }

    /// A signed-in staff member.
    pub fn staff(id: &str) -> User {
        User {
            is_staff: true,
            ..User::learner(id)
        }
    }
}

/// Render one block (and, through it, its descendants) for one user.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub course_key: String,
    pub usage_id: String,
    pub user: User,
    pub view: View,
    /// The User-Agent to judge against the bot patterns: a browser's. The server passes
    /// none for a bearer token's request (an LMS back end's HTTP client says nothing about
    /// the learner it fetches for; see `server::bot_check`).
    pub user_agent: Option<String>,
    /// A staff member viewing as someone else (nothing is written, no event is sent).
    pub masquerade: Option<Masquerade>,
}

impl RenderRequest {
    pub fn new(course_key: &str, usage_id: &str, user: User, view: View) -> RenderRequest {
        RenderRequest {
            course_key: course_key.to_string(),
            usage_id: usage_id.to_string(),
            user,
            view,
            user_agent: None,
            masquerade: None,
        }
    }
}

/// Staff viewing the course as a learner would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Masquerade {
    /// Exactly this learner's view: their groups, their state.
    Learner(String),
    /// The staff member's own view with these groups chosen (partition id to group id).
    Groups(BTreeMap<u64, u64>),
}

/// Where a learner stands in one experiment after a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExperimentView {
    pub partition_id: u64,
    pub partition_name: String,
    /// The group the learner is shown.
    pub group_id: u64,
    pub group_name: String,
    pub status: ExperimentStatus,
}

/// Why the learner is shown that group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    /// Enrolled through a stored group.
    Enrolled,
    /// Shown the group they would be assigned (read-only requests: nothing stored).
    WouldBeAssigned,
    /// Forced into the group for QA.
    Forced,
    /// A staff member chose to view as this group.
    ViewedAs,
    /// Control: the experiment is off.
    Off,
    /// Control: the experiment is paused and the learner was not in it.
    Paused,
    /// Control: the learner's course enrollment is outside the experiment's window.
    OutsideEnrollmentWindow,
    /// Control: the request came from a bot.
    Bot,
    /// Control: the learner is in the course's holdout.
    Holdout,
    /// Control: the learner is outside the experiment's range of its layer.
    OutsideLayerRange,
}

impl ExperimentStatus {
    /// The status of a decision that shows a group (`None` for no group).
    pub fn of(decision: &crate::experiment::Decision) -> Option<ExperimentStatus> {
        use crate::experiment::{Decision, NotEnrolled};
        Some(match decision {
            Decision::NoGroup => return None,
            Decision::Stored(_) => ExperimentStatus::Enrolled,
            Decision::Assign { .. } => ExperimentStatus::WouldBeAssigned,
            Decision::Forced(_) => ExperimentStatus::Forced,
            Decision::ViewedAs(_) => ExperimentStatus::ViewedAs,
            Decision::Control(_, NotEnrolled::Off) => ExperimentStatus::Off,
            Decision::Control(_, NotEnrolled::Paused) => ExperimentStatus::Paused,
            Decision::Control(_, NotEnrolled::OutsideEnrollmentWindow) => {
                ExperimentStatus::OutsideEnrollmentWindow
            }
            Decision::Control(_, NotEnrolled::Bot) => ExperimentStatus::Bot,
            Decision::Control(_, NotEnrolled::Holdout) => ExperimentStatus::Holdout,
            Decision::Control(_, NotEnrolled::OutsideLayerRange) => {
                ExperimentStatus::OutsideLayerRange
            }
        })
    }
}

/// A block that failed during a request and was replaced by a placeholder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockFailure {
    pub usage_id: String,
    pub block_type: String,
    pub plugin_version: Option<String>,
    pub kind: FailureKind,
    pub error: String,
}

/// The result of a render.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderOutput {
    pub user: String,
    /// The page's HTML; empty when the requested block is hidden for this user.
    pub html: String,
    pub hidden: bool,
    pub title: Option<String>,
    pub icon: Option<String>,
    pub tooltip: Option<String>,
    /// Usage ids of every block rendered visibly, containers included, in document order.
    pub visible_blocks: Vec<String>,
    /// The learner's groups after the request, where they are a member (stored or forced)
    /// or shown a group by choice (viewed-as, would-be): partition id to group id.
    pub assignments: BTreeMap<u64, u64>,
    /// Every experiment the learner is shown a group of, with why (control included).
    pub experiments: Vec<ExperimentView>,
    pub failures: Vec<BlockFailure>,
    /// The events this request sent, as written to the event log.
    pub events: Vec<Event>,
    /// What the blocks printed (for staff: the workbench). Never serialized, so no JSON
    /// answer or export carries it.
    #[serde(skip)]
    pub printed: GuestPrints,
}

/// What one block call printed to one stream (stdout or stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestPrint {
    pub usage_id: String,
    pub plugin: String,
    pub version: String,
    /// `stdout` or `stderr`.
    pub stream: &'static str,
    /// What was kept: at most the sandbox's output limit per call and stream (lossy UTF-8).
    pub text: String,
    /// Bytes written past that limit, not kept.
    pub dropped_bytes: usize,
}

/// What a request's block calls printed, bounded: at most [`GuestPrints::MAX_PRINTS`]
/// entries and [`GuestPrints::MAX_BYTES`] of text (a block that renders thousands of
/// children that print cannot make a request hold more); the rest is counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestPrints {
    pub prints: Vec<GuestPrint>,
    /// Calls' outputs not kept (over the entry or byte bound); they are still logged.
    pub omitted: usize,
    bytes: usize,
}

impl GuestPrints {
    pub const MAX_PRINTS: usize = 64;
    pub const MAX_BYTES: usize = 256 << 10;

    /// Keeps `printed` while it fits.
    pub fn keep(&mut self, printed: Vec<GuestPrint>) {
        for print in printed {
            let bytes = print.text.len();
            if self.prints.len() >= Self::MAX_PRINTS || self.bytes + bytes > Self::MAX_BYTES {
                self.omitted += 1;
            } else {
                self.bytes += bytes;
                self.prints.push(print);
            }
        }
    }
}

/// What `render --json` prints per user and the server answers a JSON render with: the
/// page and the learner's experiment standing, without the events (they go to the log).
#[derive(Debug, Clone, Serialize)]
pub struct RenderSummary<'a> {
    pub user: &'a str,
    pub view: View,
    pub html: &'a str,
    pub hidden: bool,
    pub title: Option<&'a str>,
    pub visible_blocks: &'a [String],
    pub assignments: &'a BTreeMap<u64, u64>,
    pub experiments: &'a [ExperimentView],
    pub failures: Vec<FailureSummary<'a>>,
}

/// A failed block as a JSON render reports it. Learners get the kind only: the error
/// text can carry a plugin's internals (traps, paths in its messages, limits), which are
/// for staff.
#[derive(Debug, Clone, Serialize)]
pub struct FailureSummary<'a> {
    pub usage_id: &'a str,
    pub block_type: &'a str,
    pub plugin_version: Option<&'a str>,
    pub kind: FailureKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
}

impl RenderOutput {
    /// The JSON summary of this render for `user` in `view`; failures carry their error
    /// text only with `details` (the reader is staff or the operator).
    pub fn summary<'a>(&'a self, user: &'a str, view: View, details: bool) -> RenderSummary<'a> {
        RenderSummary {
            user,
            view,
            html: &self.html,
            hidden: self.hidden,
            title: self.title.as_deref(),
            visible_blocks: &self.visible_blocks,
            assignments: &self.assignments,
            experiments: &self.experiments,
            failures: self
                .failures
                .iter()
                .map(|f| FailureSummary {
                    usage_id: &f.usage_id,
                    block_type: &f.block_type,
                    plugin_version: f.plugin_version.as_deref(),
                    kind: f.kind,
                    error: details.then_some(f.error.as_str()),
                })
                .collect(),
        }
    }
}
