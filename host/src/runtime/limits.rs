//! Every limit a block runs under, with its default and its `XBHOST_*` environment
//! override. Everything a block can make the host wait for, allocate or store has one.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};

/// Stack of the threads that run renders (the server's blocking pool, `render_bounded`'s
/// worker): nested blocks recurse through host frames and wasm stacks at every level.
pub const RENDER_STACK_BYTES: usize = 16 << 20;

/// Every limit a block runs under. Each has a default and an environment override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall-clock budget of a whole request (`XBHOST_REQUEST_DEADLINE_MS`, default 200).
    /// A block and everything it causes (its children, their waits) share the part of it
    /// the block's parent gave it, so a misbehaving subtree fails alone.
    pub request_deadline: Duration,
    /// A block's own running time per call, its children's time excluded
    /// (`XBHOST_BLOCK_TIME_MS`, default 50), so one stuck block leaves time for the rest.
    pub block_time: Duration,
    /// How long a caller waits for a request whose host calls are stuck, beyond the deadline
    /// (`XBHOST_OUTER_GRACE_MS`, default 1000).
    pub outer_grace: Duration,
    /// Linear memory of one block instance (`XBHOST_MEMORY_MIB`, default 64).
    pub max_memory_bytes: usize,
    /// HTML of one block's fragment (`XBHOST_MAX_HTML_KIB`, default 1024).
    pub max_html_bytes: usize,
    /// A fragment's title, icon or tooltip (`XBHOST_MAX_FRAGMENT_FIELD_BYTES`, default 1024).
    pub max_fragment_field_bytes: usize,
    /// A handler's answer (`XBHOST_MAX_ANSWER_KIB`, default 256).
    pub max_answer_bytes: usize,
    /// Validation messages of one block (`XBHOST_MAX_MESSAGES`, default 100), and the
    /// bytes of one (`XBHOST_MAX_MESSAGE_BYTES`, default 2048).
    pub max_messages: usize,
    pub max_message_bytes: usize,
    /// Events one request may publish (`XBHOST_MAX_EVENTS`, default 100).
    pub max_events: u32,
    /// Bytes of one event's data (`XBHOST_MAX_EVENT_KIB`, default 16), and of all the
    /// events of a request (`XBHOST_MAX_REQUEST_EVENT_KIB`, default 256).
    pub max_event_bytes: usize,
    pub max_request_event_bytes: usize,
    /// Tag writes one request may make (`XBHOST_MAX_TAG_WRITES`, default 100).
    pub max_tag_writes: u32,
    /// Bytes of one tag value (`XBHOST_MAX_TAG_VALUE_BYTES`, default 1024).
    pub max_tag_value_bytes: usize,
    /// Distinct tag keys one user may have in a course, and across courses
    /// (`XBHOST_MAX_TAG_KEYS`, default 256 each).
    pub max_tag_keys: usize,
    /// Nesting of child rendering (`XBHOST_MAX_DEPTH`, default 32).
    pub max_render_depth: u32,
    /// Sandbox instances one request may hold at once (`XBHOST_MAX_INSTANCES`, default
    /// 64): a nested chain holds one per level.
    pub max_instances: usize,
    /// Requests that render at once (the server's `--max-concurrent-renders`; default
    /// 32). The pooling allocator is sized for this many requests at their instance
    /// limit, so no course can take the instances another request needs.
    pub concurrent_requests: usize,
    /// Bytes of stdout and of stderr kept per block call (`XBHOST_MAX_OUTPUT_KIB`, default 16).
    pub max_output_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            request_deadline: Duration::from_millis(200),
            block_time: Duration::from_millis(50),
            outer_grace: Duration::from_millis(1000),
            max_memory_bytes: 64 << 20,
            max_html_bytes: 1 << 20,
            max_fragment_field_bytes: 1024,
            max_answer_bytes: 256 << 10,
            max_messages: 100,
            max_message_bytes: 2048,
            max_events: 100,
            max_event_bytes: 16 << 10,
            max_request_event_bytes: 256 << 10,
            max_tag_writes: 100,
            max_tag_value_bytes: 1024,
            max_tag_keys: 256,
            max_render_depth: 32,
            max_instances: 64,
            concurrent_requests: 32,
            max_output_bytes: 16 << 10,
        }
    }
}

fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .with_context(|| format!("environment variable {name}={v:?} is not a whole number")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => bail!("environment variable {name}: {e}"),
    }
}

impl SandboxLimits {
    /// The defaults, with any `XBHOST_*` overrides from the environment applied. An
    /// override that is not a positive whole number is an error naming the variable.
    pub fn from_env() -> Result<SandboxLimits> {
        let mut l = SandboxLimits::default();
        let ms = |v: u64| Duration::from_millis(v);
        let count = |v: u64| v.min(u32::MAX.into()) as u32;
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let set = |name: &str, apply: &mut dyn FnMut(u64)| -> Result<()> {
            if let Some(v) = env_number(name)? {
                if v == 0 {
                    bail!("environment variable {name} must be above 0");
                }
                apply(v);
            }
            Ok(())
        };
        set("XBHOST_REQUEST_DEADLINE_MS", &mut |v| {
            l.request_deadline = ms(v)
        })?;
        set("XBHOST_BLOCK_TIME_MS", &mut |v| l.block_time = ms(v))?;
        set("XBHOST_OUTER_GRACE_MS", &mut |v| l.outer_grace = ms(v))?;
        set("XBHOST_MEMORY_MIB", &mut |v| {
            l.max_memory_bytes = size(v) << 20
        })?;
        set("XBHOST_MAX_HTML_KIB", &mut |v| {
            l.max_html_bytes = size(v) << 10
        })?;
        set("XBHOST_MAX_FRAGMENT_FIELD_BYTES", &mut |v| {
            l.max_fragment_field_bytes = size(v)
        })?;
        set("XBHOST_MAX_ANSWER_KIB", &mut |v| {
            l.max_answer_bytes = size(v) << 10
        })?;
        set("XBHOST_MAX_MESSAGES", &mut |v| l.max_messages = size(v))?;
        set("XBHOST_MAX_MESSAGE_BYTES", &mut |v| {
            l.max_message_bytes = size(v)
        })?;
        set("XBHOST_MAX_EVENTS", &mut |v| l.max_events = count(v))?;
        set("XBHOST_MAX_EVENT_KIB", &mut |v| {
            l.max_event_bytes = size(v) << 10
        })?;
        set("XBHOST_MAX_REQUEST_EVENT_KIB", &mut |v| {
            l.max_request_event_bytes = size(v) << 10
        })?;
        set("XBHOST_MAX_TAG_WRITES", &mut |v| {
            l.max_tag_writes = count(v)
        })?;
        set("XBHOST_MAX_TAG_VALUE_BYTES", &mut |v| {
            l.max_tag_value_bytes = size(v)
        })?;
        set("XBHOST_MAX_TAG_KEYS", &mut |v| l.max_tag_keys = size(v))?;
        set("XBHOST_MAX_DEPTH", &mut |v| l.max_render_depth = count(v))?;
        set("XBHOST_MAX_INSTANCES", &mut |v| l.max_instances = size(v))?;
        set("XBHOST_MAX_OUTPUT_KIB", &mut |v| {
            l.max_output_bytes = size(v) << 10
        })?;
        Ok(l)
    }
}
