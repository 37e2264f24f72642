//! Sandbox calls: the instances of this request (a fresh store and instance from the
//! plugin's `InstancePre`, or one an earlier call of the same request left healthy), the
//! epoch callback that stops a block past its own time or the request's deadline, running
//! one export, classifying what went wrong, and recording failures (log line, event,
//! list). Owns the request's idle instances and its failures. May not commit writes or
//! touch tags, state or groups: the session does, around each call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Weak};

use tracing::{info, warn};
use wasmtime::{Store, UpdateDeadline};

use super::events::{BLOCK_FAILED_EVENT, EventBuffer};
use super::frames::PendingEvent;
use super::request::Request;
use crate::request::{BlockFailure, FailureKind, GuestPrint, GuestPrints};
use crate::runtime::bindings::BlockPlugin;
use crate::runtime::bindings::exported::Guest;
use crate::runtime::{BlockHost, BlockState, CallLimits, LoadedPlugin, SandboxLimits};

/// What a call came to when it did not succeed.
pub type Failed = (FailureKind, String);

/// A healthy instance from an earlier call of this request, kept for the next block of
/// the same plugin.
struct Idle {
    store: Store<BlockState>,
    instance: BlockPlugin,
}

/// Instances of one request. They never cross requests, and one that trapped is never
/// reused.
#[derive(Default)]
pub struct Instances {
    idle: Mutex<HashMap<String, Vec<Idle>>>,
    /// Instances of this request alive now (running or idle): counted when created,
    /// uncounted when dropped after a call that did not leave them healthy.
    alive: AtomicUsize,
    /// What the calls printed, kept (bounded) for the caller (the workbench shows it to
    /// staff).
    printed: Mutex<GuestPrints>,
}

impl Instances {
    fn take(&self, plugin: &str) -> Option<Idle> {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(plugin)
            .and_then(Vec::pop)
    }

    fn keep(&self, plugin: &str, idle: Idle) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(plugin.to_string())
            .or_default()
            .push(idle);
    }

    /// Runs one export of `plugin` for the call `limits` describes (block, depth,
    /// deadline), in an idle instance of this request or a new one. `accept` may still
    /// refuse the result (an output limit, an answer that is not JSON).
    #[allow(clippy::too_many_arguments)]
    pub fn run<R>(
        &self,
        host: Weak<dyn BlockHost>,
        request: &Request,
        limits: &SandboxLimits,
        plugin: &LoadedPlugin,
        call_limits: CallLimits,
        call: impl FnOnce(&Guest, &mut Store<BlockState>) -> wasmtime::Result<Result<R, String>>,
        accept: impl FnOnce(&R) -> Result<(), Failed>,
    ) -> Result<R, Failed> {
        let (mut store, instance) = match self.take(&plugin.record.name) {
            Some(Idle {
                mut store,
                instance,
            }) => {
                store.data_mut().reuse_for(call_limits);
                store.set_epoch_deadline(1);
                (store, Ok(instance))
            }
            None => {
                let max = limits.max_instances;
                if self.alive.fetch_add(1, Ordering::Relaxed) >= max {
                    self.alive.fetch_sub(1, Ordering::Relaxed);
                    return Err((
                        FailureKind::Memory,
                        format!("the request already holds {max} sandbox instances, its limit"),
                    ));
                }
                let mut store = new_store(plugin, host, request, limits, call_limits);
                let instance = plugin.pre.instantiate(&mut store);
                (store, instance)
            }
        };
        let mut healthy = false;
        let outcome = match &instance {
            // Start functions run during instantiation, under the same limits.
            Err(e)
                if store.data().interrupted.is_some() || store.data().limiter.refused.is_some() =>
            {
                Err(classify_trap(store.data(), e))
            }
            Err(e) => Err((
                FailureKind::Unavailable,
                format!("instantiation failed: {e:#}"),
            )),
            Ok(instance) => match call(instance.xbhost_block_block(), &mut store) {
                Ok(result) => {
                    healthy = true;
                    match result {
                        Ok(r) => accept(&r).map(|()| r),
                        Err(message) => Err((
                            FailureKind::BlockError,
                            format!("the block returned an error: {message}"),
                        )),
                    }
                }
                Err(trap) => Err(classify_trap(store.data(), &trap)),
            },
        };
        let printed = log_guest_output(request, store.data(), plugin);
        self.printed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keep(printed);
        if let (true, Ok(instance)) = (healthy, instance) {
            self.keep(&plugin.record.name, Idle { store, instance });
        } else {
            self.alive.fetch_sub(1, Ordering::Relaxed);
        }
        outcome
    }

    /// What the request's calls printed, emptying the list.
    pub fn take_printed(&self) -> GuestPrints {
        std::mem::take(&mut *self.printed.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A new store for one block instance: its limiter, and an epoch callback that
/// interrupts it past its own time limit (children excluded) or its call's deadline (its
/// share of the request's time, children included).
fn new_store(
    plugin: &LoadedPlugin,
    host: Weak<dyn BlockHost>,
    request: &Request,
    limits: &SandboxLimits,
    call_limits: CallLimits,
) -> Store<BlockState> {
    let mut store = Store::new(
        plugin.pre.engine(),
        BlockState::new(host, limits, request.started, call_limits),
    );
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |mut cx| {
        let s = cx.data_mut();
        let Some(why) = s.overrun() else {
            return Ok(UpdateDeadline::Continue(1));
        };
        s.interrupted = Some(why.clone());
        Err(wasmtime::Error::msg(why))
    });
    store
}

/// Why a block trapped: interrupted, out of memory, panicked, or another trap.
fn classify_trap(state: &BlockState, trap: &wasmtime::Error) -> Failed {
    if let Some(why) = &state.interrupted {
        return (FailureKind::Timeout, why.clone());
    }
    if let Some(why) = &state.limiter.refused {
        return (FailureKind::Memory, why.clone());
    }
    // Rust guests print their panic message to stderr before trapping.
    let stderr = state.stderr.peek();
    if let Some(at) = stderr.find("panicked at") {
        let message: String = stderr[at..].lines().take(2).collect::<Vec<_>>().join(" ");
        return (FailureKind::Panic, message);
    }
    let root = trap.root_cause().to_string();
    (FailureKind::Trap, format!("it trapped: {root}"))
}

/// Guest stdout and stderr go to `tracing`, named by plugin and block, and are returned
/// (each stream as its [`GuestOutput`](crate::runtime::sandbox::GuestOutput) kept it:
/// at most the output limit a call, the rest counted).
fn log_guest_output(
    request: &Request,
    state: &BlockState,
    plugin: &LoadedPlugin,
) -> Vec<GuestPrint> {
    let usage_id = &request.block(state.block).def.usage_id;
    let mut printed = Vec::new();
    for (stream, output) in [("stdout", &state.stdout), ("stderr", &state.stderr)] {
        let (text, dropped) = output.take();
        if !text.is_empty() || dropped > 0 {
            info!(
                target: "xbhost::guest",
                plugin = %plugin.record.name,
                version = %plugin.record.version,
                %usage_id,
                stream,
                dropped_bytes = dropped,
                "{}",
                text.trim_end()
            );
            printed.push(GuestPrint {
                usage_id: usage_id.clone(),
                plugin: plugin.record.name.clone(),
                version: plugin.record.version.clone(),
                stream,
                text,
                dropped_bytes: dropped,
            });
        }
    }
    printed
}

/// The blocks of this request that failed.
#[derive(Default)]
pub struct Failures {
    list: Mutex<Vec<BlockFailure>>,
}

impl Failures {
    /// Records a failure: a log line and an event naming the plugin, its version, the
    /// block, the course and the user.
    pub fn record(
        &self,
        request: &Request,
        events: &EventBuffer,
        index: usize,
        plugin: Option<&LoadedPlugin>,
        (kind, error): Failed,
    ) -> BlockFailure {
        let block = request.block(index);
        let version = plugin.map(|p| p.record.version.clone());
        warn!(
            plugin = %block.def.block_type,
            version = version.as_deref().unwrap_or("-"),
            usage_id = %block.def.usage_id,
            course = %request.course.key(),
            user = %request.user.id,
            ?kind,
            %error,
            "block failed"
        );
        let failure = BlockFailure {
            usage_id: block.def.usage_id.clone(),
            block_type: block.def.block_type.clone(),
            plugin_version: version,
            kind,
            error,
        };
        if request.is_live() {
            events.push_host(PendingEvent {
                name: BLOCK_FAILED_EVENT.into(),
                usage_id: Some(failure.usage_id.clone()),
                plugin: None,
                data: serde_json::json!({
                    "plugin": failure.block_type,
                    "plugin_version": failure.plugin_version,
                    "kind": failure.kind,
                    "error": failure.error,
                }),
            });
        }
        self.list
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(failure.clone());
        failure
    }

    pub fn take(&self) -> Vec<BlockFailure> {
        std::mem::take(&mut *self.list.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
