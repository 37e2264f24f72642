//! One request, by capability (in the spirit of Spin's host factors): each file owns one
//! part of what a request holds and says what it may not touch.
//!
//! - `request`: who, which course, mode, audience, deadline (fixed facts).
//! - `handle`: the narrow handle on the host (storage, sink, plugins, limits).
//! - `frames`: each block call's pending writes and events, kept until it succeeds.
//! - `tags`: the user's course and global tags, read once, consistent with own writes.
//! - `assignments`: experiment decisions, first-writer-wins storage, carry-over, membership.
//! - `user_state`: each block's per-user state.
//! - `tallies`: counts shared by every learner of a block (a poll's votes).
//! - `selection`: randomized content, the children picked for the learner (sticky).
//! - `sources`: the learner's state of the blocks a block's author named.
//! - `client`: the client-side code (style sheets, scripts) each block's render added.
//! - `events`: the request's events, their decoration and exposure filtering.
//! - `children`: which child a block may render, condition marks, the render tree.
//! - `access`: content-group restrictions and reachability.
//! - `calls`: instances of this request, limits, failure classification.
//! - `render`: the [`Session`] that holds them all, renders, commits and finishes.
//! - `block_host`: the imports' side of the session (`BlockHost`), thin calls into the
//!   capabilities.
//!
//! Writes a block makes (tags, its state) are kept in a frame for its call and stored
//! atomically when the call succeeds; a block that fails leaves nothing behind. Events of
//! a successful call join its parent's frame, so content that never reached the page (its
//! parent failed) sends no exposure. Assignments are the host's own writes and are stored
//! at once, first writer wins.

mod access;
mod assignments;
mod block_host;
mod calls;
mod children;
mod client;
mod events;
mod frames;
mod handle;
mod render;
mod request;
mod selection;
mod sources;
mod tags;
mod tallies;
mod user_state;

pub use crate::runtime::TagScope;
pub use access::Access;
pub use calls::Failed;
pub use client::{ClientCode, asset_url};
pub use events::BLOCK_FAILED_EVENT;
pub use handle::HostHandle;
pub use render::{Finished, HostFragment, Session};
pub use request::{Audience, Mode};
pub use selection::{ASSIGNED_EVENT as SELECTION_ASSIGNED_EVENT, selection_key};
pub use sources::SOURCES_FIELD;
pub use tallies::{MAX_TALLY_KEY_BYTES, MAX_TALLY_KEYS};
pub use user_state::MAX_USER_STATE_BYTES;
