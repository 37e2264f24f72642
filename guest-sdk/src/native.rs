//! Blocks compiled into a host process instead of the sandbox: the same block code, called
//! through function pointers over a [`HostApi`] the host implements natively. xbhost uses
//! it to measure what the sandbox costs (the benchmark's "native floor"); it gives a block
//! none of the sandbox's protection, so only trusted, first-party code belongs here.

use crate::block::Block;
use crate::context::Context;
use crate::host::HostApi;
use crate::types::{Fragment, ValidationMessage, View};

/// A block type's entry points, for a native host.
#[derive(Debug, Clone, Copy)]
pub struct NativeBlock {
    pub render: fn(&dyn HostApi, View) -> Result<Fragment, String>,
    pub visible_children: fn(&dyn HostApi) -> Result<Vec<String>, String>,
    pub validate: fn(&dyn HostApi) -> Vec<ValidationMessage>,
    pub handle: fn(&dyn HostApi, &str, serde_json::Value) -> Result<serde_json::Value, String>,
}

impl NativeBlock {
    /// The entry points of block type `B`.
    pub fn of<B: Block>() -> NativeBlock {
        NativeBlock {
            render: |host, view| {
                let cx = Context::<B::Fields>::new(host).map_err(|e| e.0)?;
                B::render(&cx, view).map_err(|e| e.0)
            },
            visible_children: |host| {
                let cx = Context::<B::Fields>::new(host).map_err(|e| e.0)?;
                B::visible_children(&cx).map_err(|e| e.0)
            },
            validate: |host| match Context::<B::Fields>::new(host) {
                Ok(cx) => B::validate(&cx),
                Err(e) => vec![ValidationMessage::error(e.0)],
            },
            handle: |host, name, payload| {
                let cx = Context::<B::Fields>::new(host).map_err(|e| e.0)?;
                B::handle(&cx, name, payload).map_err(|e| e.0)
            },
        }
    }
}
