//! Persistent state behind one trait (`contract.rs`), with the embedded sled store
//! (`sled_store.rs`) as its backend.

mod contract;
mod sled_store;

pub use contract::{BlockWrites, CarriedTag, FirstWrite, PluginRecord, Storage};
pub use sled_store::SledStorage;
