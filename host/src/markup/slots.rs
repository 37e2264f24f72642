//! Children's finished HTML held for the block that rendered them until that block's own
//! HTML is contained: each child is handed to its parent as a placeholder with a
//! per-request unguessable token, filled in at most once (see the markup module doc).

use std::collections::HashMap;
use std::sync::Mutex;

use super::reserved::{PLACEHOLDER_ELEMENT, PLACEHOLDER_TOKEN};

/// Children's finished HTML by token, with the child each is (its index in the course,
/// when known): what [`ChildSlots::take`] hands one block.
#[derive(Debug, Default)]
pub struct ChildHtml(HashMap<String, (Option<usize>, String)>);

impl ChildHtml {
    /// A child's HTML, once.
    pub(super) fn take(&mut self, token: &str) -> Option<String> {
        self.0.remove(token).map(|(_, html)| html)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The children whose placeholders were not placed (what is left after containing):
    /// they are not on the page.
    pub fn unplaced(&self) -> Vec<usize> {
        self.0.values().filter_map(|(child, _)| *child).collect()
    }
}

/// The request's children's finished HTML, held for the block that rendered them until
/// that block's own HTML is contained (see the module doc).
#[derive(Default)]
pub struct ChildSlots {
    inner: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    key: Option<[u8; 32]>,
    issued: u64,
    slots: Vec<Slot>,
}

struct Slot {
    token: String,
    owner: usize,
    child: Option<usize>,
    html: String,
}

impl ChildSlots {
    /// Keeps a child's finished HTML for the block `owner` (its index in the course) and
    /// returns the placeholder that block gets instead. Empty HTML stays empty.
    pub fn hold(&self, owner: usize, html: String) -> String {
        self.hold_child(owner, None, html)
    }

    /// [`ChildSlots::hold`], remembering which child (its index in the course) the HTML
    /// is, so the host can tell whether the owner placed it ([`ChildHtml::unplaced`]).
    pub fn hold_child(&self, owner: usize, child: Option<usize>, html: String) -> String {
        if html.is_empty() {
            return html;
        }
        let mut held = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = *held.key.get_or_insert_with(|| {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the OS random source works");
            key
        });
        held.issued += 1;
        let token = blake3::keyed_hash(&key, &held.issued.to_le_bytes()).to_hex()[..32].to_string();
        let placeholder = format!(
            "<{PLACEHOLDER_ELEMENT} {PLACEHOLDER_TOKEN}=\"{token}\"></{PLACEHOLDER_ELEMENT}>"
        );
        held.slots.push(Slot {
            token,
            owner,
            child,
            html,
        });
        placeholder
    }

    /// Everything held for `owner`, which no longer holds it (its call ended).
    pub fn take(&self, owner: usize) -> ChildHtml {
        let mut held = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        ChildHtml(
            held.slots
                .extract_if(.., |s| s.owner == owner)
                .map(|s| (s.token, (s.child, s.html)))
                .collect(),
        )
    }
}
