//! Video events as the page script reports them (handler `event`), checked and published
//! under Open edX's names and fields, so the host's pipeline adds user, course and
//! experiment membership and a video can be an experiment's goal.
//!
//! The payload comes from a learner's browser: the event name must be one of
//! [`EVENTS`], only the fields of that event are accepted, every time must be a number
//! from 0 to the end of the video (its window's end, or the duration the player reported,
//! bounded by a day), and `complete_video` counts once per learner, once 95% of the video
//! was reached. `id` and `code` are the block's own, never the browser's.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xbhost_sdk::{BlockError, BlockResult, Context};

use crate::fields::{Fields, MAX_MEDIA_SECONDS};

/// The events a page may report, as Open edX's player names them.
pub const EVENTS: &[&str] = &[
    "play_video",
    "pause_video",
    "seek_video",
    "stop_video",
    "complete_video",
];

/// How a seek happened, as Open edX names it.
const SEEK_TYPES: &[&str] = &[
    "onSlideSeek",
    "onSkipSeek",
    "onCaptionSeek",
    "onKeyboardSeek",
];

/// A player may report a time a little past the end it was given (a frame, a rounding).
const SLACK_SECONDS: f64 = 1.0;

/// Share of the video a learner reaches for `complete_video`.
pub const COMPLETE_SHARE: f64 = 0.95;

/// What the video keeps per learner.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct State {
    /// `complete_video` was published for this learner.
    pub completed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    event: String,
    #[serde(rename = "currentTime")]
    current_time: Option<f64>,
    old_time: Option<f64>,
    new_time: Option<f64>,
    #[serde(rename = "type")]
    seek_type: Option<String>,
    duration: Option<f64>,
}

/// Checks a reported event and publishes it; answers whether it was published.
pub fn handle_event(cx: &Context<'_, Fields>, payload: Value) -> BlockResult<Value> {
    let p: Payload = serde_json::from_value(payload).map_err(|e| {
        BlockError::new(format!(
            "event expects {{\"event\": one of {EVENTS:?}, \"currentTime\": seconds}} \
             (seek_video: old_time, new_time, type): {e}"
        ))
    })?;
    let f = cx.fields();
    let name = EVENTS
        .iter()
        .copied()
        .find(|e| *e == p.event)
        .ok_or_else(|| {
            BlockError::new(format!(
                "event {:?} is not a video event (one of {EVENTS:?})",
                truncated(&p.event)
            ))
        })?;
    let duration = match p.duration {
        None => None,
        Some(d) if d.is_finite() && d > 0.0 && d <= MAX_MEDIA_SECONDS => Some(d),
        Some(d) => {
            return Err(BlockError::new(format!(
                "duration {d} is not a length from 0 to {MAX_MEDIA_SECONDS} seconds"
            )));
        }
    };
    let latest = duration.map_or(f.latest_time(), |d| d.min(f.latest_time())) + SLACK_SECONDS;
    let time = |field: &str, value: Option<f64>| -> BlockResult<f64> {
        let t = value.ok_or_else(|| BlockError::new(format!("{name} needs {field}")))?;
        if !(t.is_finite() && (0.0..=latest).contains(&t)) {
            return Err(BlockError::new(format!(
                "{name}: {field} {t} is not a time in the video (0 to {latest} seconds)"
            )));
        }
        Ok(t)
    };
    let mut data = json!({ "id": cx.usage_id(), "code": f.code() });
    if name == "seek_video" {
        if p.current_time.is_some() {
            return Err(BlockError::new(
                "seek_video takes old_time and new_time, not currentTime",
            ));
        }
        let seek_type = p.seek_type.as_deref().unwrap_or("onSlideSeek");
        if !SEEK_TYPES.contains(&seek_type) {
            return Err(BlockError::new(format!(
                "seek_video type {:?} is not one of {SEEK_TYPES:?}",
                truncated(seek_type)
            )));
        }
        data["old_time"] = json!(time("old_time", p.old_time)?);
        data["new_time"] = json!(time("new_time", p.new_time)?);
        data["type"] = json!(seek_type);
    } else {
        if p.old_time.is_some() || p.new_time.is_some() || p.seek_type.is_some() {
            return Err(BlockError::new(format!(
                "{name} takes currentTime (and duration), not old_time, new_time or type"
            )));
        }
        data["currentTime"] = json!(time("currentTime", p.current_time)?);
    }
    if let Some(d) = duration {
        data["duration"] = json!(d);
    }
    if name == "complete_video" {
        let at = data["currentTime"].as_f64().unwrap_or(0.0);
        let (start, end) = f.window().unwrap_or((0.0, None));
        if let Some(stop) = end.or(duration).filter(|s| *s > start) {
            let needed = start + COMPLETE_SHARE * (stop - start);
            if at + 1e-9 < needed {
                return Err(BlockError::new(format!(
                    "complete_video at {at} s: the video completes at {needed} s (95% watched)"
                )));
            }
        }
        let mut state: State = cx.state()?.unwrap_or_default();
        if state.completed {
            return Ok(json!({ "published": false, "reason": "already complete" }));
        }
        state.completed = true;
        cx.set_state(&state)?;
    }
    cx.publish(name, &data)?;
    Ok(json!({ "published": true, "event": name }))
}

/// At most 64 characters of what a browser sent, for an error message.
fn truncated(s: &str) -> String {
    s.chars().take(64).collect()
}
