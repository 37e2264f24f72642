//! The SDK's own types. They mirror the WIT contract but belong to the SDK, so the generated
//! bindings can change without touching block code.

use serde::{Deserialize, Serialize};

/// Which audience a block renders for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    Student,
    Staff,
    Author,
}

/// The user the current request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub is_staff: bool,
    pub is_anonymous: bool,
}

/// What a block renders: HTML plus the hiding flag and navigation pass-throughs, and the
/// block's client-side code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    pub html: String,
    pub hidden: bool,
    pub title: Option<String>,
    pub icon: Option<String>,
    pub tooltip: Option<String>,
    /// Files of the plugin's [`client_assets!`](crate::client_assets) and the function
    /// its frame calls (contract 0.1.2); empty for a block without client-side code.
    /// Child fragments never carry it: a child's client code is the host's to draw.
    #[serde(default)]
    pub client: ClientCode,
}

/// A render's client-side code (XBlock's `add_css`, `add_javascript`, `initialize_js`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCode {
    /// Shipped files (names under `static/`), style sheets and scripts, in order.
    pub resources: Vec<String>,
    /// The script's function the frame calls as `function(runtime, element, args)`, and
    /// `args` as JSON text.
    pub initialize: Option<(String, String)>,
}

impl ClientCode {
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.initialize.is_none()
    }
}

impl Fragment {
    /// A visible fragment with this HTML.
    pub fn html(html: impl Into<String>) -> Self {
        Fragment {
            html: html.into(),
            ..Fragment::default()
        }
    }

    /// A hidden fragment: the block shows nothing and its container drops it.
    pub fn hidden() -> Self {
        Fragment {
            hidden: true,
            ..Fragment::default()
        }
    }

    /// Sets the title passed through to sequence navigation.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Adds a style sheet the plugin ships (a name of its
    /// [`client_assets!`](crate::client_assets)), as XBlock's `add_css`.
    pub fn add_css(self, name: impl Into<String>) -> Self {
        self.add_resource(name)
    }

    /// Adds a script the plugin ships (a name of its
    /// [`client_assets!`](crate::client_assets)), as XBlock's `add_javascript`.
    pub fn add_javascript(self, name: impl Into<String>) -> Self {
        self.add_resource(name)
    }

    fn add_resource(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.client.resources.contains(&name) {
            self.client.resources.push(name);
        }
        self
    }

    /// Names the function of the block's script the frame calls once its files are loaded,
    /// as `function(runtime, element, args)` with `args` (as XBlock's `initialize_js`):
    /// `runtime.call(handler, payload)` calls this block's handler and resolves with its
    /// answer; `element` holds the block's HTML.
    pub fn initialize_js(mut self, function: impl Into<String>, args: &impl Serialize) -> Self {
        let args = serde_json::to_string(args).unwrap_or_else(|_| "null".into());
        self.client.initialize = Some((function.into(), args));
        self
    }
}

/// An error returned by the host as a value. Host calls never trap on bad input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostError {
    InvalidInput(String),
    NotFound(String),
    LimitExceeded(String),
    Internal(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            HostError::NotFound(m) => write!(f, "not found: {m}"),
            HostError::LimitExceeded(m) => write!(f, "limit exceeded: {m}"),
            HostError::Internal(m) => write!(f, "host error: {m}"),
        }
    }
}

impl std::error::Error for HostError {}

/// Where a user tag lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagScope {
    /// Per user per course (the current course).
    Course,
    /// Global per user.
    User,
}

/// One group (experimental condition) of a user partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: u64,
    pub name: String,
}

/// A user partition (experiment group configuration) of the current course.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPartition {
    pub id: u64,
    pub name: String,
    pub description: String,
    pub scheme: String,
    pub active: bool,
    pub groups: Vec<Group>,
}

impl UserPartition {
    /// The group with this id, if the partition (still) has it.
    pub fn group(&self, id: u64) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }
}

/// Severity of a validation message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// A message for course authors, shown in author view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationMessage {
    pub severity: Severity,
    pub text: String,
}

impl ValidationMessage {
    pub fn error(text: impl Into<String>) -> Self {
        ValidationMessage {
            severity: Severity::Error,
            text: text.into(),
        }
    }
    pub fn warning(text: impl Into<String>) -> Self {
        ValidationMessage {
            severity: Severity::Warning,
            text: text.into(),
        }
    }
    pub fn info(text: impl Into<String>) -> Self {
        ValidationMessage {
            severity: Severity::Info,
            text: text.into(),
        }
    }
}

/// Marks a child as one condition of an experiment when rendering it; the host writes the
/// group markers (`data-group-id`, `data-group-name`, `data-inactive`), which it removes
/// from every block's own HTML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub partition_id: u64,
    /// `None` for a child that no group maps to.
    pub group_id: Option<u64>,
}

/// Another block as the current learner left it (see [`crate::Context::source`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The block's type (its plugin's name), so its state can be read.
    pub block_type: String,
    /// The learner's state of that block (JSON), `None` when they have none.
    pub state: Option<String>,
}
