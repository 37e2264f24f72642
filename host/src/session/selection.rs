//! Randomized content: which of a block's children the learner gets (a `library_content`
//! block's `max_count` of its pool), drawn by the sampling authority
//! ([`crate::assignment::rank`]: the learner's lowest-ranked children) and sticky. The
//! picks are the host's own write, stored at once under a key no block can name (the
//! learner's state of [`selection_key`], which holds a `/`, never in a usage id), with
//! the host's events: `edx.librarycontentblock.content.assigned` (what was added) and
//! `.removed` (picks no longer children, or over the count), as Open edX sends them. A
//! later change to the children keeps every pick that is still a child and draws only the
//! missing ones. Read-only requests (grading), staff and bots get the picks they would
//! get, stored for nobody. A block asks once per request (another count is refused), so
//! a request stores and announces at most one selection per block. Owns the request's
//! picks per block, which child rendering, reachability, grading and the staff marks
//! read. May not render.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde_json::json;

use super::events::EventBuffer;
use super::frames::{Frames, PendingEvent};
use super::request::{Request, internal};
use crate::assignment::rank;
use crate::runtime::bindings::types::HostError;
use crate::storage::Storage;

/// The event of picks added; `removed` for picks taken away.
pub const ASSIGNED_EVENT: &str = "edx.librarycontentblock.content.assigned";
pub const REMOVED_EVENT: &str = "edx.librarycontentblock.content.removed";

/// Where the learner's picks of `usage_id`'s children are stored (as state of a block no
/// block can be: usage ids never hold `/`).
pub fn selection_key(usage_id: &str) -> String {
    format!("xbhost/selection/{usage_id}")
}

/// The picks this request made or read, per block index: the count asked and the picks,
/// in authored order.
#[derive(Default)]
pub struct Selections {
    picked: Mutex<HashMap<usize, (u32, Vec<String>)>>,
}

impl Selections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, (u32, Vec<String>)>> {
        self.picked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `child` is among `parent`'s picks; `None` when `parent` picked nothing in
    /// this request (it shows its children as it likes).
    pub fn is_picked(&self, parent: usize, child: &str) -> Option<bool> {
        self.lock()
            .get(&parent)
            .map(|(_, p)| p.iter().any(|c| c == child))
    }

    /// `count` of `block`'s children for the request's user: see the module doc.
    pub fn selected(
        &self,
        request: &Request,
        storage: &dyn Storage,
        frames: &Frames,
        events: &EventBuffer,
        block: usize,
        count: u32,
    ) -> Result<Vec<String>, HostError> {
        frames.check_deadline(request)?;
        let def = request.block(block).def;
        let children = &def.children;
        let want = (count as usize).min(children.len());
        // Picks are made once per block per request: a block asking again with another
        // count would make the host store and announce a selection per call.
        if let Some((asked, picked)) = self.lock().get(&block) {
            if *asked == count {
                return Ok(picked.clone());
            }
            return Err(HostError::InvalidInput(format!(
                "block {:?} asked for {count} of its children after asking for {asked} in this request: a block's count is the same for the whole request",
                def.usage_id
            )));
        }
        let course = request.course.key();
        let user = &request.user.id;
        let key = selection_key(&def.usage_id);
        let stored: Option<Vec<String>> = storage
            .user_state(course, user, &key)
            .map_err(internal)?
            .and_then(|json| serde_json::from_str(&json).ok());
        let previous = stored.clone().unwrap_or_default();
        // Picks still children, in the order picked, at most `want` of them.
        let pool: HashSet<&str> = children.iter().map(String::as_str).collect();
        let mut kept: Vec<String> = Vec::with_capacity(want);
        let mut kept_set: HashSet<String> = HashSet::with_capacity(want);
        let mut invalid = Vec::new();
        let mut overlimit = Vec::new();
        for pick in &previous {
            if !pool.contains(pick.as_str()) || kept_set.contains(pick) {
                invalid.push(pick.clone());
            } else if kept.len() >= want {
                overlimit.push(pick.clone());
            } else {
                kept_set.insert(pick.clone());
                kept.push(pick.clone());
            }
        }
        // The missing ones: the learner's lowest-ranked children not kept.
        let mut candidates: Vec<(u64, &String)> = children
            .iter()
            .filter(|c| !kept_set.contains(*c))
            .map(|c| (rank(course, &def.usage_id, user, c), c))
            .collect();
        candidates.sort_unstable();
        let added: Vec<String> = candidates
            .into_iter()
            .take(want - kept.len())
            .map(|(_, c)| c.clone())
            .collect();
        kept_set.extend(added.iter().cloned());
        kept.extend(added.iter().cloned());
        let changed = stored.as_ref() != Some(&kept);
        // Staff and bots are never part of the randomization (as with partitions): they
        // get the picks they would get, stored for nobody.
        if changed && request.is_live() && !request.user.is_staff && !request.audience.is_bot {
            let json = serde_json::to_string(&kept).map_err(|e| internal(e.into()))?;
            storage
                .set_user_state(course, user, &key, &json)
                .map_err(internal)?;
            frames.mark_written();
            let event = |name: &str, data: serde_json::Value| PendingEvent {
                name: name.into(),
                usage_id: Some(def.usage_id.clone()),
                plugin: None,
                data,
            };
            for (reason, removed) in [("invalid", &invalid), ("overlimit", &overlimit)] {
                if !removed.is_empty() {
                    events.push_host(event(
                        REMOVED_EVENT,
                        json!({ "removed": removed, "reason": reason, "result": kept, "max_count": count }),
                    ));
                }
            }
            if !added.is_empty() {
                events.push_host(event(
                    ASSIGNED_EVENT,
                    json!({
                        "added": added,
                        "result": kept,
                        "previous_count": previous.len(),
                        "max_count": count,
                    }),
                ));
            }
        }
        // Answered in authored order.
        let ordered: Vec<String> = children
            .iter()
            .filter(|c| kept_set.contains(*c))
            .cloned()
            .collect();
        self.lock().insert(block, (count, ordered.clone()));
        Ok(ordered)
    }
}
