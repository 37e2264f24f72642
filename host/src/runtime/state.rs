//! What one block instance's store holds: a WASI context that grants nothing, its memory
//! limit, the block it runs as, and the request's session.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::session::Session;

/// Store data of one block instance.
pub struct BlockState {
    pub(crate) session: Arc<Session>,
    /// Index of the block in the course.
    pub(crate) block: usize,
    /// How deep in child rendering this instance is (the requested block is 0).
    pub(crate) depth: u32,
    pub(crate) limits: StoreLimits,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl BlockState {
    pub(crate) fn new(session: Arc<Session>, block: usize, depth: u32, max_memory: usize) -> Self {
        BlockState {
            session,
            block,
            depth,
            limits: StoreLimitsBuilder::new()
                .memory_size(max_memory)
                .instances(4)
                .trap_on_grow_failure(true)
                .build(),
            // No preopened directories, no environment, no arguments, no stdio, and no
            // network (TCP, UDP and name lookup refused).
            wasi: WasiCtx::builder()
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for BlockState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
