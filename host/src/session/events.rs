//! The request's events: blocks publish into their call's frame (checked, capped); the
//! host's own events (assignments, failures) go straight into the request's list; at the
//! end every event is decorated with the learner's membership and course tags, and
//! exposures the analysis must not count are dropped. Owns the request's event list and
//! its count. May not decide membership (that is `assignments`) or send anything: the
//! session emits after its writes are durable.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::frames::{Frames, PendingEvent};
use super::request::Request;
use crate::events::{self, Event, Experiments};
use crate::model::AuthoredCondition;
use crate::runtime::SandboxLimits;
use crate::runtime::bindings::types::HostError;

pub use crate::events::BLOCK_FAILED_EVENT;

#[derive(Default)]
pub struct EventBuffer {
    events: Mutex<Vec<PendingEvent>>,
    published: AtomicU32,
    /// Bytes of event data blocks published in this request.
    published_bytes: AtomicUsize,
}

impl EventBuffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PendingEvent>> {
        self.events.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block publishes an event: kept in its call's frame until the call succeeds.
    /// Names the host owns are refused; data is capped per event and per request. A
    /// read-only request accepts and drops it.
    pub fn publish(
        &self,
        request: &Request,
        limits: &SandboxLimits,
        frames: &Frames,
        block: usize,
        name: &str,
        json: &str,
    ) -> Result<(), HostError> {
        if name.is_empty() || name.len() > 255 {
            return Err(HostError::InvalidInput(format!(
                "event name must be 1 to 255 bytes, not {}",
                name.len()
            )));
        }
        if events::is_host_event(name) {
            return Err(HostError::InvalidInput(format!(
                "event {name:?} is the host's own: blocks may not send it"
            )));
        }
        let max_bytes = limits.max_event_bytes;
        if json.len() > max_bytes {
            return Err(HostError::LimitExceeded(format!(
                "event {name:?} data is {} bytes, over the limit of {max_bytes}",
                json.len()
            )));
        }
        let data: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            HostError::InvalidInput(format!("event {name:?} data is not JSON: {e}"))
        })?;
        if !request.is_live() {
            return Ok(());
        }
        let max_total = limits.max_request_event_bytes;
        let size = json.len() + name.len();
        if self
            .published_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n + size <= max_total).then_some(n + size)
            })
            .is_err()
        {
            return Err(HostError::LimitExceeded(format!(
                "a request may publish at most {max_total} bytes of events"
            )));
        }
        let max = limits.max_events;
        if self
            .published
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(HostError::LimitExceeded(format!(
                "a request may publish at most {max} events"
            )));
        }
        let def = request.block(block).def;
        let (usage_id, plugin) = (Some(def.usage_id.clone()), Some(def.block_type.clone()));
        frames.with_current(|frame| {
            frame.events.push(PendingEvent {
                name: name.into(),
                usage_id,
                plugin,
                data,
            })
        });
        Ok(())
    }

    /// The host's exposure event: a condition of an experiment reached the learner's
    /// page inside `parent`'s call. Kept in that call's frame, so it is dropped when the
    /// parent fails (the condition never reached the page).
    pub fn exposure(
        &self,
        frames: &Frames,
        request: &Request,
        parent: usize,
        child_id: &str,
        condition: AuthoredCondition,
    ) {
        if !request.is_live() {
            return;
        }
        let event = PendingEvent {
            name: events::CHILD_RENDER_EVENT.into(),
            usage_id: Some(request.block(parent).def.usage_id.clone()),
            plugin: None,
            data: serde_json::json!({
                "child_id": child_id,
                "user_partition_id": condition.partition_id,
                "group_id": condition.group_id,
            }),
        };
        frames.with_current(|frame| frame.events.push(event));
    }

    /// One of the host's own events, or the events of a finished outermost call.
    pub fn push_host(&self, event: PendingEvent) {
        self.lock().push(event);
    }

    pub fn extend(&self, events: Vec<PendingEvent>) {
        self.lock().extend(events);
    }

    /// Takes the request's events, decorated: each carries the learner's membership as
    /// this request decided it and their course tags. Exposure events
    /// (`xblock.split_test.child_render`) are the analysis' denominator, so one is kept
    /// only when the learner is enrolled in its partition (not off, paused, outside the
    /// window, a bot or viewed-as) and the condition it names rendered without failing and
    /// is on the page (its parent placed it). A bot's request sends nothing.
    pub fn decorate(
        &self,
        request: &Request,
        experiments: &Experiments,
        enrolled: &HashSet<u64>,
        failed: &HashSet<String>,
        on_page: &[String],
        course_tags: &BTreeMap<String, String>,
    ) -> Vec<Event> {
        let keep = |e: &PendingEvent| {
            if request.audience.is_bot {
                return false;
            }
            if e.name != events::CHILD_RENDER_EVENT {
                return true;
            }
            let enrolled = e.data["user_partition_id"]
                .as_u64()
                .is_none_or(|p| enrolled.contains(&p));
            let rendered = e.data["child_id"]
                .as_str()
                .is_none_or(|c| !failed.contains(c) && on_page.iter().any(|b| b == c));
            enrolled && rendered
        };
        let pending: Vec<PendingEvent> = self.lock().drain(..).collect();
        let time = events::now();
        pending
            .into_iter()
            .filter(|e| keep(e))
            .map(|e| Event {
                name: e.name,
                time: time.clone(),
                course_key: request.course.key().to_string(),
                user_id: request.user.id.clone(),
                username: request.user.username.clone(),
                usage_id: e.usage_id,
                plugin: e.plugin,
                data: e.data,
                experiments: experiments.clone(),
                course_tags: course_tags.clone(),
            })
            .collect()
    }
}
