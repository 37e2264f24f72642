//! Tags of the request's user: the course tags and global tags, read from storage once per
//! request and kept consistent with the request's own writes. Reads see the innermost
//! pending write first; writes go into the current call's frame (stored when it succeeds)
//! under the key, value and count limits. Owns the request-scoped tag caches. May not
//! write storage: assignments (the host's partition tags) are stored by `assignments`,
//! block writes by the session's commit.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::Result;

use super::frames::Frames;
use super::request::{Request, internal};
use crate::assignment::PARTITION_SERVICE_PREFIX;
use crate::ids::check_tag_key;
use crate::runtime::bindings::types::HostError;
use crate::runtime::{SandboxLimits, TagScope};
use crate::storage::{BlockWrites, Storage};

#[derive(Default)]
struct Cache {
    course: Option<BTreeMap<String, String>>,
    user: Option<BTreeMap<String, String>>,
    writes: u32,
}

#[derive(Default)]
pub struct Tags {
    cache: Mutex<Cache>,
}

impl Tags {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the stored tags of a scope, reading them on first use.
    fn with_stored<R>(
        &self,
        request: &Request,
        storage: &dyn Storage,
        scope: TagScope,
        f: impl FnOnce(&BTreeMap<String, String>) -> R,
    ) -> Result<R> {
        let mut cache = self.lock();
        let missing = match scope {
            TagScope::Course => cache.course.is_none(),
            TagScope::User => cache.user.is_none(),
        };
        if missing {
            // Both scopes in one read: a page needs both, and a database one round trip.
            let (course, user) = storage.learner_tags(request.course.key(), &request.user.id)?;
            cache.course.get_or_insert(course);
            cache.user.get_or_insert(user);
        }
        let slot = match scope {
            TagScope::Course => &cache.course,
            TagScope::User => &cache.user,
        };
        Ok(f(slot.as_ref().expect("just read")))
    }

    /// A block reads a tag: the innermost pending write wins, then what is stored.
    pub fn get(
        &self,
        request: &Request,
        storage: &dyn Storage,
        frames: &Frames,
        scope: TagScope,
        key: &str,
    ) -> Result<Option<String>, HostError> {
        check_tag_key(key).map_err(HostError::InvalidInput)?;
        frames.check_deadline(request)?;
        let stored = self
            .with_stored(request, storage, scope, |tags| tags.get(key).cloned())
            .map_err(internal)?;
        let pending = frames.find_pending(|f| match scope {
            TagScope::Course => f.writes.course_tags.get(key).cloned(),
            TagScope::User => f.writes.user_tags.get(key).cloned(),
        });
        Ok(pending.or(stored))
    }

    /// A block writes a tag into its call's frame. A key the user does not have yet counts
    /// against the per-user number of keys in its scope.
    #[allow(clippy::too_many_arguments)]
    pub fn set(
        &self,
        request: &Request,
        storage: &dyn Storage,
        limits: &SandboxLimits,
        frames: &Frames,
        scope: TagScope,
        key: &str,
        value: &str,
    ) -> Result<(), HostError> {
        check_tag_key(key).map_err(HostError::InvalidInput)?;
        let max_value = limits.max_tag_value_bytes;
        if value.len() > max_value {
            return Err(HostError::InvalidInput(format!(
                "value of tag {key:?} is {} bytes, over the limit of {max_value}",
                value.len()
            )));
        }
        if let Some(at) = value.find('\0') {
            // Kept alike by every store: PostgreSQL's text cannot hold a NUL.
            return Err(HostError::InvalidInput(format!(
                "value of tag {key:?} holds a NUL character at byte {at}; tag values may not"
            )));
        }
        if scope == TagScope::Course && key.starts_with(PARTITION_SERVICE_PREFIX) {
            return Err(HostError::InvalidInput(format!(
                "tag {key:?} is kept by the host's partition service: blocks may read it, not write it"
            )));
        }
        request.check_writable("a tag")?;
        frames.check_deadline(request)?;
        let pending_keys = frames.pending_tag_keys(scope);
        let (stored, count) = self
            .with_stored(request, storage, scope, |tags| {
                let new_pending = pending_keys
                    .iter()
                    .filter(|k| !tags.contains_key(*k))
                    .count();
                (tags.contains_key(key), tags.len() + new_pending)
            })
            .map_err(internal)?;
        let max_keys = limits.max_tag_keys;
        if !stored && !pending_keys.contains(key) && count >= max_keys {
            return Err(HostError::LimitExceeded(format!(
                "a user may have at most {max_keys} {} tag keys",
                match scope {
                    TagScope::Course => "course",
                    TagScope::User => "global",
                }
            )));
        }
        let max_writes = limits.max_tag_writes;
        {
            let mut cache = self.lock();
            if cache.writes >= max_writes {
                return Err(HostError::LimitExceeded(format!(
                    "a request may write at most {max_writes} tags"
                )));
            }
            cache.writes += 1;
        }
        frames.with_current(|frame| match scope {
            TagScope::Course => frame.writes.course_tags.insert(key.into(), value.into()),
            TagScope::User => frame.writes.user_tags.insert(key.into(), value.into()),
        });
        Ok(())
    }

    /// A stored course tag as this request knows it (its own stored writes included,
    /// pending ones not): what experiment decisions read.
    pub fn stored_course_tag(
        &self,
        request: &Request,
        storage: &dyn Storage,
        key: &str,
    ) -> Result<Option<String>> {
        self.with_stored(request, storage, TagScope::Course, |tags| {
            tags.get(key).cloned()
        })
    }

    /// Every stored course tag, as events carry them.
    pub fn course_tags(
        &self,
        request: &Request,
        storage: &dyn Storage,
    ) -> Result<BTreeMap<String, String>> {
        self.with_stored(request, storage, TagScope::Course, BTreeMap::clone)
    }

    /// A course tag the host just stored (an assignment): the request's view includes it.
    pub fn stored(&self, key: String, value: String) {
        if let Some(tags) = self.lock().course.as_mut() {
            tags.insert(key, value);
        }
    }

    /// A call's writes were committed: the request's view includes them.
    pub fn committed(&self, writes: BlockWrites) {
        let mut cache = self.lock();
        if let Some(tags) = cache.course.as_mut() {
            tags.extend(writes.course_tags);
        }
        if let Some(tags) = cache.user.as_mut() {
            tags.extend(writes.user_tags);
        }
    }

    /// The stored course tags changed behind the request (carry-over): read them again.
    pub fn forget_course_tags(&self) {
        self.lock().course = None;
    }
}
