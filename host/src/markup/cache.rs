//! Contained HTML of blocks that render no children, kept by process: the same authored
//! HTML is contained for every learner who sees it, and parsing is most of what
//! containment costs. Containment is a pure function of the HTML and the view, so a hit
//! is exactly what containing again would give. Bounded: only HTML up to [`MAX_ENTRY`]
//! bytes is kept, and when the entries reach [`MAX_BYTES`] the cache starts over (a block
//! that writes new HTML every time only makes others miss).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::contain::{self, Contained};
use super::slots::ChildHtml;
use crate::request::View;

/// Largest block HTML kept.
pub const MAX_ENTRY: usize = 64 << 10;
/// The contained HTML kept, in bytes, before the cache starts over.
pub const MAX_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Cache {
    entries: HashMap<blake3::Hash, (Arc<str>, bool)>,
    bytes: usize,
}

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// `contain::contain` of HTML with no children to fill in, from the cache when it can.
pub fn contain_leaf(html: &str, view: View) -> (Arc<str>, bool) {
    if html.len() > MAX_ENTRY {
        let Contained { html, cut } = contain::contain(html, view, &mut ChildHtml::default());
        return (html.into(), cut);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[view as u8]).update(html.as_bytes());
    let key = hasher.finalize();
    let lock = || CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hit) = lock().get_or_insert_with(Cache::default).entries.get(&key) {
        return hit.clone();
    }
    let Contained { html, cut } = contain::contain(html, view, &mut ChildHtml::default());
    let value: (Arc<str>, bool) = (html.into(), cut);
    let mut guard = lock();
    let cache = guard.get_or_insert_with(Cache::default);
    if cache.bytes + value.0.len() > MAX_BYTES {
        *cache = Cache::default();
    }
    cache.bytes += value.0.len();
    cache.entries.insert(key, value.clone());
    value
}
