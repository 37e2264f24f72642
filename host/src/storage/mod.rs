//! Persistent state behind one trait (`contract.rs`), with the embedded sled store
//! (`sled_store.rs`) as its backend; `sled_outbox.rs` is its outbox of pending events.

mod contract;
mod health;
mod recovering;
mod sled_outbox;
mod sled_store;

pub use contract::{BlockWrites, CarriedTag, FirstWrite, OutboxEntry, PluginRecord, Storage};
pub use recovering::RecoveringStore;
pub use sled_store::SledStorage;
