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
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

/// Every limit a block runs under. Each has a default and an environment override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Wall-clock budget of a whole request (`XBHOST_REQUEST_DEADLINE_MS`, default 200).
    pub request_deadline: Duration,
    /// A block's own running time per call, its children's time excluded
    /// (`XBHOST_BLOCK_TIME_MS`, default 50), so one stuck block leaves time for the rest.
    pub block_time: Duration,
    /// How long a caller waits for a request whose host calls are stuck, beyond the deadline
    /// (`XBHOST_OUTER_GRACE_MS`, default 1000).
    pub outer_grace: Duration,
    /// Linear memory of one block instance (`XBHOST_MEMORY_MIB`, default 64).
    pub max_memory_bytes: usize,
    /// HTML of one block's fragment (`XBHOST_MAX_HTML_KIB`, default 1024).
    pub max_html_bytes: usize,
    /// Events one request may publish (`XBHOST_MAX_EVENTS`, default 100).
    pub max_events: u32,
    /// Tag writes one request may make (`XBHOST_MAX_TAG_WRITES`, default 100).
    pub max_tag_writes: u32,
    /// Bytes of one tag value (`XBHOST_MAX_TAG_VALUE_BYTES`, default 1024).
    pub max_tag_value_bytes: usize,
    /// Nesting of child rendering (`XBHOST_MAX_DEPTH`, default 32).
    pub max_render_depth: u32,
    /// Bytes of stdout and of stderr kept per block call (`XBHOST_MAX_OUTPUT_KIB`, default 16).
    pub max_output_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            request_deadline: Duration::from_millis(200),
            block_time: Duration::from_millis(50),
            outer_grace: Duration::from_millis(1000),
            max_memory_bytes: 64 << 20,
            max_html_bytes: 1 << 20,
            max_events: 100,
            max_tag_writes: 100,
            max_tag_value_bytes: 1024,
            max_render_depth: 32,
            max_output_bytes: 16 << 10,
        }
    }
}

fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .with_context(|| format!("environment variable {name}={v:?} is not a whole number")),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => bail!("environment variable {name}: {e}"),
    }
}

impl SandboxLimits {
    /// The defaults, with any `XBHOST_*` overrides from the environment applied. An
    /// override that is not a positive whole number is an error naming the variable.
    pub fn from_env() -> Result<SandboxLimits> {
        let mut l = SandboxLimits::default();
        let ms = |v: u64| Duration::from_millis(v);
        let set = |name: &str, apply: &mut dyn FnMut(u64)| -> Result<()> {
            if let Some(v) = env_number(name)? {
                if v == 0 {
                    bail!("environment variable {name} must be above 0");
                }
                apply(v);
            }
            Ok(())
        };
        set("XBHOST_REQUEST_DEADLINE_MS", &mut |v| {
            l.request_deadline = ms(v)
        })?;
        set("XBHOST_BLOCK_TIME_MS", &mut |v| l.block_time = ms(v))?;
        set("XBHOST_OUTER_GRACE_MS", &mut |v| l.outer_grace = ms(v))?;
        set("XBHOST_MEMORY_MIB", &mut |v| {
            l.max_memory_bytes = (v as usize) << 20
        })?;
        set("XBHOST_MAX_HTML_KIB", &mut |v| {
            l.max_html_bytes = (v as usize) << 10
        })?;
        set("XBHOST_MAX_EVENTS", &mut |v| {
            l.max_events = v.min(u32::MAX.into()) as u32
        })?;
        set("XBHOST_MAX_TAG_WRITES", &mut |v| {
            l.max_tag_writes = v.min(u32::MAX.into()) as u32
        })?;
        set("XBHOST_MAX_TAG_VALUE_BYTES", &mut |v| {
            l.max_tag_value_bytes = v as usize
        })?;
        set("XBHOST_MAX_DEPTH", &mut |v| {
            l.max_render_depth = v.min(u32::MAX.into()) as u32
        })?;
        set("XBHOST_MAX_OUTPUT_KIB", &mut |v| {
            l.max_output_bytes = (v as usize) << 10
        })?;
        Ok(l)
    }
}

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

/// How much of a freed instance's memory stays mapped and is cleared by hand.
const KEEP_RESIDENT_BYTES: usize = 1 << 20;

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
