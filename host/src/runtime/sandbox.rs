//! What a block may use, and how much: the limits, the WASI context that grants nothing
//! (capped output to `tracing`, coarse clocks), the epoch ticker behind deadlines, and the
//! instance allocator.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::SandboxLimits;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

/// Which instance allocator to use (`XBHOST_POOLING`: `auto`, `on` or `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// The pooling allocator where the machine supports it, else on-demand with a warning.
    #[default]
    Auto,
    On,
    Off,
}

impl Pooling {
    pub fn from_env() -> Result<Pooling> {
        match std::env::var("XBHOST_POOLING").as_deref() {
            Err(_) | Ok("auto") => Ok(Pooling::Auto),
            Ok("on") => Ok(Pooling::On),
            Ok("off") => Ok(Pooling::Off),
            Ok(other) => {
                bail!("environment variable XBHOST_POOLING={other:?}: use auto, on or off")
            }
        }
    }
}

/// How much of a freed instance's memory stays mapped and is cleared by hand (only its
/// dirty pages, found with the kernel's pagemap). Pages above it are given back with
/// madvise and fault in again on the next instance. A block's 128 KiB stack, its data and
/// the heap its calls grow fit in 2 MiB (what Spin keeps); at 1 MiB repeat visits were
/// 5-10% slower in one run, at 4 or 16 MiB no faster (BENCHMARKS.md, #13).
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// Core module instances, memories and tables one block component may have (a
/// `wasm32-wasip2` component carries WASI adapters and shims beside its own module).
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;

/// Builds the engine: component model, epoch interruption, and the chosen allocator.
/// Returns whether the pooling allocator is in use.
pub fn engine(limits: &SandboxLimits, pooling: Pooling) -> Result<(Engine, bool)> {
    let base = || {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config
    };
    if pooling != Pooling::Off {
        let mut pool = PoolingAllocationConfig::default();
        pool.max_memory_size(limits.max_memory_bytes);
        // Room for every request that may run at once at its instance limit.
        let components = u32::try_from(limits.concurrent_requests.max(1) * limits.max_instances)
            .unwrap_or(u32::MAX / CORE_INSTANCES_PER_COMPONENT)
            .min(u32::MAX / CORE_INSTANCES_PER_COMPONENT);
        pool.total_component_instances(components);
        pool.total_core_instances(components * CORE_INSTANCES_PER_COMPONENT);
        pool.total_memories(components * MEMORIES_PER_COMPONENT);
        pool.total_tables(components * TABLES_PER_COMPONENT);
        pool.max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT);
        pool.max_memories_per_component(MEMORIES_PER_COMPONENT);
        pool.max_tables_per_component(TABLES_PER_COMPONENT);
        // Reset the first pages of a freed slot with memset instead of madvise: a block's
        // instance is small and short-lived, and the syscall (and the kernel lock it takes)
        // would otherwise dominate, and serialize, concurrent requests.
        pool.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
        pool.table_keep_resident(64 << 10);
        let mut config = base();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        match Engine::new(&config) {
            Ok(engine) => return Ok((engine, true)),
            Err(e) if pooling == Pooling::Auto => tracing::warn!(
                error = %e,
                "the pooling instance allocator is not available on this machine; \
                 falling back to on-demand allocation (slower instantiation)"
            ),
            Err(e) => {
                return Err(anyhow::Error::from(e))
                    .context("XBHOST_POOLING=on, but the pooling allocator failed");
            }
        }
    }
    let engine = Engine::new(&base())
        .map_err(anyhow::Error::from)
        .context("creating the wasmtime engine")?;
    Ok((engine, false))
}

/// Advances the engine's epoch every [`EpochTicker::TICK`] until dropped.
pub struct EpochTicker {
    running: Arc<AtomicBool>,
}

impl EpochTicker {
    pub const TICK: Duration = Duration::from_millis(1);

    pub fn start(engine: &Engine) -> EpochTicker {
        let running = Arc::new(AtomicBool::new(true));
        let (engine, flag) = (engine.clone(), running.clone());
        std::thread::Builder::new()
            .name("xbhost-epoch".into())
            .spawn(move || {
                while flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Self::TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { running }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

/// A guest's stdout or stderr: kept up to a cap, the rest counted and dropped, never an
/// error for the guest (Rust's `print!` panics when a write fails).
#[derive(Clone)]
pub struct GuestOutput {
    inner: Arc<Mutex<OutputBuffer>>,
}

struct OutputBuffer {
    kept: Vec<u8>,
    dropped: usize,
    cap: usize,
}

impl GuestOutput {
    pub fn new(cap: usize) -> GuestOutput {
        GuestOutput {
            inner: Arc::new(Mutex::new(OutputBuffer {
                kept: Vec::new(),
                dropped: 0,
                cap,
            })),
        }
    }

    fn append(&self, bytes: &[u8]) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = b.cap.saturating_sub(b.kept.len());
        let take = room.min(bytes.len());
        b.kept.extend_from_slice(&bytes[..take]);
        b.dropped += bytes.len() - take;
    }

    /// What was kept so far (lossy UTF-8), leaving it in place.
    pub fn peek(&self) -> String {
        let b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&b.kept).into_owned()
    }

    /// What was kept (lossy UTF-8) and how many bytes were dropped, emptying the buffer.
    pub fn take(&self) -> (String, usize) {
        let mut b = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&b.kept).into_owned();
        b.kept.clear();
        (text, std::mem::take(&mut b.dropped))
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The wall clock a block sees: the request's start, in whole seconds, fixed for the
/// request. Enough to know the date; useless for timing anything.
struct RequestWallClock(Duration);

impl HostWallClock for RequestWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// The monotonic clock a block sees: real time since the request started, rounded down
/// to whole milliseconds, so it cannot be used as a fine-grained timer.
struct CoarseMonotonicClock(Instant);

const MONOTONIC_RESOLUTION_NS: u64 = 1_000_000;

impl HostMonotonicClock for CoarseMonotonicClock {
    fn resolution(&self) -> u64 {
        MONOTONIC_RESOLUTION_NS
    }
    fn now(&self) -> u64 {
        let ns = self.0.elapsed().as_nanos() as u64;
        ns - ns % MONOTONIC_RESOLUTION_NS
    }
}

/// A WASI context that grants nothing: no preopened directories, environment, arguments
/// or network (TCP, UDP, name lookup); stdin empty; stdout and stderr captured and capped;
/// the clocks above. Random numbers are granted (hash maps need them).
pub fn wasi_context(
    request_started: (SystemTime, Instant),
    stdout: &GuestOutput,
    stderr: &GuestOutput,
) -> WasiCtx {
    let wall = request_started
        .0
        .duration_since(UNIX_EPOCH)
        .map(|d| Duration::from_secs(d.as_secs()))
        .unwrap_or_default();
    WasiCtx::builder()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .wall_clock(RequestWallClock(wall))
        .monotonic_clock(CoarseMonotonicClock(request_started.1))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_output_keeps_up_to_the_cap_and_counts_the_rest() {
        let out = GuestOutput::new(5);
        out.append(b"hello world");
        out.append(b"!");
        assert_eq!(out.take(), ("hello".to_string(), 7));
        assert_eq!(out.take(), (String::new(), 0));
    }

    #[test]
    fn coarse_clock_rounds_to_milliseconds() {
        let clock = CoarseMonotonicClock(Instant::now() - Duration::from_nanos(2_345_678));
        assert_eq!(clock.now() % MONOTONIC_RESOLUTION_NS, 0);
        assert!(clock.now() >= 2_000_000);
    }
}
