//! What one block instance's store holds: its WASI context (which grants nothing), its
//! limits and what tripped them, its time accounting, and the request it serves (as the
//! [`BlockHost`] trait: the runtime does not know the session type).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::host_api::BlockHost;
use super::limits::SandboxLimits;
use super::sandbox::{self, GuestOutput};

/// Store data of one block instance.
pub struct BlockState {
    /// Weak, because a session keeps idle instances (and so their stores) for reuse.
    host: Weak<dyn BlockHost>,
    /// Index of the block in the course.
    pub(crate) block: usize,
    /// How deep in child rendering this instance is (the requested block is 0).
    pub(crate) depth: u32,
    pub(crate) limiter: Limiter,
    /// When this call started, and how long it has spent waiting for its children: the
    /// block's own time is the difference.
    pub(crate) started: Instant,
    pub(crate) child_time: Duration,
    /// The block's own-time limit per call.
    pub(crate) block_time: Duration,
    /// When this call (with its children and waits) must be done, and why that moment:
    /// what an interruption says.
    pub(crate) deadline: Instant,
    pub(crate) deadline_reason: DeadlineReason,
    /// Set by the epoch callback when it interrupts the block, saying why.
    pub(crate) interrupted: Option<String>,
    pub(crate) stdout: GuestOutput,
    pub(crate) stderr: GuestOutput,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl BlockState {
    pub(crate) fn new(
        host: Weak<dyn BlockHost>,
        limits: &SandboxLimits,
        request_started: (SystemTime, Instant),
        call: CallLimits,
    ) -> Self {
        let stdout = GuestOutput::new(limits.max_output_bytes);
        let stderr = GuestOutput::new(limits.max_output_bytes);
        let wasi = sandbox::wasi_context(request_started, &stdout, &stderr);
        BlockState {
            limiter: Limiter {
                max_memory: limits.max_memory_bytes,
                refused: None,
            },
            host,
            block: call.block,
            depth: call.depth,
            started: Instant::now(),
            child_time: Duration::ZERO,
            block_time: limits.block_time,
            deadline: call.deadline,
            deadline_reason: call.deadline_reason,
            interrupted: None,
            stdout,
            stderr,
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// The request this instance serves. Instances never outlive their request's calls.
    pub(crate) fn host(&self) -> Arc<dyn BlockHost> {
        self.host
            .upgrade()
            .expect("a block runs only while its request is alive")
    }

    /// Prepares a healthy instance from an earlier call of this request for another block.
    pub(crate) fn reuse_for(&mut self, call: CallLimits) {
        self.block = call.block;
        self.depth = call.depth;
        self.deadline = call.deadline;
        self.deadline_reason = call.deadline_reason;
        self.started = Instant::now();
        self.child_time = Duration::ZERO;
        self.interrupted = None;
        self.limiter.refused = None;
    }

    /// Time this block has run itself (waits included), its children's time excluded.
    pub(crate) fn own_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.child_time)
    }

    /// How long this block may still wait: what is left of its own time and of its
    /// call's deadline, whichever is less.
    pub(crate) fn wait_allowance(&self) -> Duration {
        self.block_time
            .saturating_sub(self.own_time())
            .min(self.deadline.saturating_duration_since(Instant::now()))
    }

    /// Why the block must stop now, if it must: past its own time or its call's deadline.
    pub(crate) fn overrun(&self) -> Option<String> {
        if Instant::now() >= self.deadline {
            Some(format!("interrupted: {}", self.deadline_reason.describe()))
        } else if self.own_time() >= self.block_time {
            Some(format!(
                "interrupted: it ran for more than its limit of {} ms",
                self.block_time.as_millis()
            ))
        } else {
            None
        }
    }
}

/// Which block a call is for, how deep, and until when.
pub struct CallLimits {
    pub block: usize,
    pub depth: u32,
    pub deadline: Instant,
    /// What the deadline is, as an interruption names it.
    pub deadline_reason: DeadlineReason,
}

/// Where a call's deadline comes from.
#[derive(Debug, Clone, Copy)]
pub enum DeadlineReason {
    /// The request's own deadline (its whole budget).
    Request(Duration),
    /// A share of the parent's remaining time, this long when the call started.
    Share(Duration),
}

impl DeadlineReason {
    fn describe(self) -> String {
        match self {
            DeadlineReason::Request(budget) => {
                format!("the request's deadline of {} ms passed", budget.as_millis())
            }
            DeadlineReason::Share(share) => format!(
                "its share of the request's time ({} ms, its children included) ran out",
                share.as_millis()
            ),
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

/// Caps a block's memory and tables, and records what it refused so the failure can say so.
pub struct Limiter {
    max_memory: usize,
    pub(crate) refused: Option<String>,
}

/// Table elements one instance may have; generous for Rust guests, bounded for hostile ones.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            let message = format!(
                "memory limit exceeded: the block asked to grow its memory from {} to {} MiB; the limit is {} MiB",
                current >> 20,
                desired >> 20,
                self.max_memory >> 20
            );
            self.refused = Some(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            let message = format!(
                "table limit exceeded: {desired} elements; the limit is {MAX_TABLE_ELEMENTS}"
            );
            self.refused = Some(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(true)
    }
}
