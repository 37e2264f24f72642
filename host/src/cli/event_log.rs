//! The event log's flags, global to every command that writes events: size rotation and
//! how many events may wait in the store while the log cannot be written.

use anyhow::{Result, bail};
use clap::Args;

use xbhost::events::EventLogOptions;

#[derive(Args)]
#[command(next_help_heading = "Global options")]
pub struct EventLogArgs {
    /// Rotate the event log before it grows past this many bytes: it is renamed
    /// `<file>.1` (older ones shift up) and a new file started. 0: never (rotate by move
    /// and SIGHUP instead).
    #[arg(
        long,
        global = true,
        env = "XBHOST_EVENT_LOG_MAX_BYTES",
        default_value_t = 0
    )]
    event_log_max_bytes: u64,
    /// Rotated event logs kept by size rotation (`<file>.1` .. `<file>.N`).
    #[arg(
        long,
        global = true,
        env = "XBHOST_EVENT_LOG_KEEP",
        default_value_t = 10
    )]
    event_log_keep: u32,
    /// Events kept in the store while the event log cannot be written (a full disk),
    /// written once it can; beyond this many, events are lost (and counted).
    #[arg(
        long,
        global = true,
        env = "XBHOST_EVENT_LOG_MAX_DEFERRED",
        default_value_t = xbhost::events::EventLogOptions::default().max_deferred
    )]
    event_log_max_deferred: usize,
}

impl EventLogArgs {
    pub fn options(&self) -> Result<EventLogOptions> {
        if self.event_log_keep == 0 {
            bail!("--event-log-keep must be at least 1 (the file rotated last)");
        }
        Ok(EventLogOptions {
            max_bytes: self.event_log_max_bytes,
            keep: self.event_log_keep,
            max_deferred: self.event_log_max_deferred,
            ..EventLogOptions::default()
        })
    }
}
