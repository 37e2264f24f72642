//! No block waits past its time. Blocks have nothing legitimate to wait for, but Rust's
//! `std::thread::sleep` (and any timer) is a monotonic-clock subscription followed by a
//! `poll`, and the host thread would sit in that poll where epoch interruption cannot
//! reach it. So the host replaces the clock's two `subscribe` functions: a wait that fits
//! in what is left of the block's own time and of its call's deadline is granted as
//! asked (it counts as the block's own time); a longer one interrupts the block at once,
//! without waiting at all. Every other WASI pollable the sandbox hands out (the capped
//! output streams, the empty input) is ready at once.

use std::time::Duration;

use anyhow::{Context as _, Result};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;

use super::state::BlockState;

/// The monotonic clock interface as wasmtime-wasi 48 defines it; guests' `0.2.x` imports
/// resolve to it by semver.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces `subscribe-duration` and `subscribe-instant` in a linker that already has WASI.
pub fn bound_clock_waits(linker: &mut Linker<BlockState>) -> Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker
        .instance(MONOTONIC_CLOCK)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("finding {MONOTONIC_CLOCK} in the linker"))?;
    clock
        .func_wrap(
            "subscribe-duration",
            |mut store: StoreContextMut<'_, BlockState>, (nanos,): (u64,)| {
                let state = store.data_mut();
                allow(state, Duration::from_nanos(nanos))?;
                let pollable = state.clocks().subscribe_duration(nanos)?;
                Ok((pollable,))
            },
        )
        .map_err(anyhow::Error::from)
        .context("replacing subscribe-duration")?;
    clock
        .func_wrap(
            "subscribe-instant",
            |mut store: StoreContextMut<'_, BlockState>, (when,): (u64,)| {
                let state = store.data_mut();
                let now = state.clocks().now()?;
                allow(state, Duration::from_nanos(when.saturating_sub(now)))?;
                let pollable: Resource<DynPollable> = state.clocks().subscribe_instant(when)?;
                Ok((pollable,))
            },
        )
        .map_err(anyhow::Error::from)
        .context("replacing subscribe-instant")?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Grants a wait that fits the block's allowance; otherwise marks the block interrupted
/// and traps it.
fn allow(state: &mut BlockState, wait: Duration) -> wasmtime::Result<()> {
    let allowance = state.wait_allowance();
    if wait <= allowance {
        return Ok(());
    }
    let why = format!(
        "interrupted: it asked to wait {} ms, more than the {} ms it had left (blocks may not wait)",
        wait.as_millis(),
        allowance.as_millis()
    );
    state.interrupted = Some(why.clone());
    Err(wasmtime::Error::msg(why))
}
