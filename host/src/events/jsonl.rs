//! The event log file: newline-delimited JSON, one line per event, appended by one write
//! per batch under a lock, so concurrent requests never interleave within a line.
//!
//! What a bad day does to it, and what the sink does back:
//!
//! - A write fails (a full disk, an I/O error): whatever part of the batch reached the file
//!   is cut back off, so a later retry writes no event twice and no torn line is left. If
//!   even that fails, the next write starts on a new line.
//! - The process dies mid-write: the file ends in a torn line; the next open starts the
//!   next write on a new line, so the torn line stays one damaged line the report skips.
//! - The log is rotated by move: [`request_reopen`] (SIGHUP in `xbhost serve`) makes every
//!   sink open its path again before its next write, so events go to exactly one file.
//! - The log grows: with [`EventLogOptions::max_bytes`], a write that would pass it first
//!   renames the file to `<file>.1` (shifting older ones up to `<file>.<keep>`).
//!
//! Imports `event`, `sink` and `reader`.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use super::event::{Event, LoggedEvent};
use super::reader::{self, LineReader, ReadLimits};
use super::sink::{DEFAULT_MAX_DEFERRED, Deferred, EventSink};

/// How the log file is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLogOptions {
    /// Rotate before a write would make the file larger than this many bytes
    /// (`--event-log-max-bytes`); 0 never rotates by size (default: rotate by move and
    /// SIGHUP, as logrotate does).
    pub max_bytes: u64,
    /// Files kept by size rotation: `<file>.1` (newest) to `<file>.<keep>`
    /// (`--event-log-keep`, default 10); the oldest beyond is removed.
    pub keep: u32,
    /// Events kept in the store after failed writes, waiting to be written
    /// (`--event-log-max-deferred`, default 100000); beyond, events are lost (counted).
    pub max_deferred: usize,
    /// How far from the end of the log (and of `<file>.1`) a replay looks for the ids of
    /// events already written, in bytes (default 16 MiB).
    pub replay_tail_bytes: u64,
}

impl Default for EventLogOptions {
    fn default() -> EventLogOptions {
        EventLogOptions {
            max_bytes: 0,
            keep: 10,
            max_deferred: DEFAULT_MAX_DEFERRED,
            replay_tail_bytes: 16 << 20,
        }
    }
}

/// Bumped by [`request_reopen`]; each sink reopens its file when it sees a new value.
static REOPEN_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Asks every event log of this process to open its path again before its next write:
/// after the operator moved the file away (a rotation), new events go to a new file at
/// the configured path. What `xbhost serve` does on SIGHUP.
pub fn request_reopen() {
    REOPEN_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// The open file and what the next write must know about it.
struct OpenLog {
    file: File,
    /// The [`REOPEN_GENERATION`] it was opened at.
    generation: u64,
    /// The file does not end with a newline (a torn line, a write that could not be cut
    /// back): the next write starts with one.
    needs_newline: bool,
}

/// Appends events to a file, one JSON object per line.
pub struct JsonlSink {
    path: PathBuf,
    options: EventLogOptions,
    open: Mutex<OpenLog>,
    deferred: Deferred,
}

impl JsonlSink {
    pub fn open(path: &Path) -> Result<JsonlSink> {
        JsonlSink::open_with(path, EventLogOptions::default())
    }

    pub fn open_with(path: &Path, options: EventLogOptions) -> Result<JsonlSink> {
        let generation = REOPEN_GENERATION.load(Ordering::SeqCst);
        let (file, needs_newline) = open_file(path)?;
        Ok(JsonlSink {
            path: path.to_path_buf(),
            options,
            open: Mutex::new(OpenLog {
                file,
                generation,
                needs_newline,
            }),
            deferred: Deferred::new(options.max_deferred),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every event of a log written by this sink, skipping damaged lines. Holds
    /// them all: for small logs and tests (the report streams, see [`reader::read_log`]).
    pub fn read_all(path: &Path) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        reader::read_log(path, &ReadLimits::default(), |e| events.push(e))?;
        Ok(events)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenLog> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the path again if a reopen was asked for since the file was opened. If the
    /// path cannot be opened, writing goes on to the old file (and the next write tries
    /// again): an event in a moved file is not lost.
    fn reopen_if_asked(&self, log: &mut OpenLog) {
        let generation = REOPEN_GENERATION.load(Ordering::SeqCst);
        if generation == log.generation {
            return;
        }
        match open_file(&self.path) {
            Ok((file, needs_newline)) => {
                *log = OpenLog {
                    file,
                    generation,
                    needs_newline,
                };
                tracing::info!(file = %self.path.display(), "reopened the event log");
            }
            Err(e) => tracing::error!(
                file = %self.path.display(),
                "cannot reopen the event log, still writing to the file open before: {e:#}"
            ),
        }
    }

    /// Rotates by size: when writing `incoming` bytes would take the file past
    /// `max_bytes`, renames `<file>.N` to `<file>.N+1` (the last one kept is replaced),
    /// the file to `<file>.1`, and opens a new file. A rename that fails leaves the file
    /// growing (logged); nothing is lost.
    fn rotate_if_full(&self, log: &mut OpenLog, incoming: usize) {
        let max = self.options.max_bytes;
        if max == 0 {
            return;
        }
        let len = log.file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 || len + incoming as u64 <= max {
            return;
        }
        let keep = self.options.keep.max(1);
        let rotated = (|| -> Result<()> {
            for n in (1..keep).rev() {
                match std::fs::rename(rotated_path(&self.path, n), rotated_path(&self.path, n + 1))
                {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
            std::fs::rename(&self.path, rotated_path(&self.path, 1))?;
            let (file, needs_newline) = open_file(&self.path)?;
            log.file = file;
            log.needs_newline = needs_newline;
            Ok(())
        })();
        match rotated {
            Ok(()) => tracing::info!(
                file = %self.path.display(),
                max_bytes = max,
                "rotated the event log (--event-log-max-bytes)"
            ),
            Err(e) => tracing::error!(
                file = %self.path.display(),
                "cannot rotate the event log, writing on past --event-log-max-bytes: {e:#}"
            ),
        }
    }

    /// One write of a whole batch; on failure, what reached the file is cut back off.
    fn write(&self, log: &mut OpenLog, batch: &[u8]) -> std::io::Result<()> {
        let newline_first = log.needs_newline;
        let before = log.file.metadata().map(|m| m.len());
        let written = (|| {
            if newline_first {
                log.file.write_all(b"\n")?;
            }
            log.file.write_all(batch)
        })();
        let Err(error) = written else {
            log.needs_newline = false;
            return Ok(());
        };
        match before.and_then(|len| log.file.set_len(len)) {
            Ok(()) => log.needs_newline = newline_first,
            Err(cut) => {
                log.needs_newline = true;
                tracing::error!(
                    file = %self.path.display(),
                    "a failed write to the event log could not be cut back off ({cut}): \
                     the log may hold part of a line, which readers skip as damaged"
                );
            }
        }
        Err(error)
    }
}

/// `<file>.N`.
fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Opens (or creates) the log for appending; whether it ends without a newline.
fn open_file(path: &Path) -> Result<(File, bool)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .with_context(|| format!("cannot open the event log {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read the event log {}", path.display()))?;
    if !meta.is_file() {
        bail!("the event log {} is not a regular file", path.display());
    }
    let mut last = [0u8; 1];
    let needs_newline = meta.len() > 0
        && file
            .read_at(&mut last, meta.len() - 1)
            .is_ok_and(|n| n == 1 && last[0] != b'\n');
    Ok((file, needs_newline))
}

/// Just the id of a line (the rest is checked to be whole JSON, so a torn line whose id
/// survived does not count as written).
#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// Adds to `found` the ids of `wanted` in the last `budget` bytes of `path`; returns how
/// many bytes it looked at.
fn scan_tail(
    path: &Path,
    budget: u64,
    wanted: &BTreeSet<String>,
    found: &mut BTreeSet<String>,
) -> Result<u64> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(budget);
    file.seek(SeekFrom::Start(start))?;
    let limits = ReadLimits::default();
    let mut lines = LineReader::new(
        BufReader::with_capacity(64 << 10, file),
        limits.max_line_bytes,
    );
    let mut first = start > 0; // the first line read is only the end of one
    while let Some(parsed) = lines
        .next_parsed::<IdOnly>(limits.max_depth)
        .with_context(|| format!("reading {}", path.display()))?
    {
        if std::mem::take(&mut first) {
            continue;
        }
        if let Ok(line) = parsed
            && wanted.contains(&line.id)
        {
            found.insert(line.id);
        }
    }
    Ok(len - start)
}

impl EventSink for JsonlSink {
    fn append(&self, events: &[LoggedEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::new();
        for event in events {
            serde_json::to_writer(&mut batch, event)?;
            batch.push(b'\n');
        }
        let mut log = self.lock();
        self.reopen_if_asked(&mut log);
        self.rotate_if_full(&mut log, batch.len());
        self.write(&mut log, &batch)
            .with_context(|| format!("writing to the event log {}", self.path.display()))
    }

    fn logged_ids(&self, wanted: &BTreeSet<String>) -> Result<BTreeSet<String>> {
        let mut found = BTreeSet::new();
        let mut budget = self.options.replay_tail_bytes;
        for path in [self.path.clone(), rotated_path(&self.path, 1)] {
            if budget == 0 || found.len() == wanted.len() {
                break;
            }
            budget -= scan_tail(&path, budget, wanted, &mut found)?.min(budget);
        }
        Ok(found)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn deferred(&self) -> &Deferred {
        &self.deferred
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str) -> LoggedEvent {
        LoggedEvent::new(Event {
            name: "n".into(),
            time: "t".into(),
            course_key: "c".into(),
            user_id: user.into(),
            username: user.into(),
            usage_id: None,
            plugin: None,
            data: serde_json::json!({}),
            experiments: Default::default(),
            course_tags: Default::default(),
        })
    }

    #[test]
    fn a_torn_last_line_stays_one_damaged_line_and_ids_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let (a, b) = (event("a"), event("b"));
        let torn = serde_json::to_string(&b).unwrap();
        std::fs::write(
            &path,
            format!("{}\n{}", serde_json::to_string(&a).unwrap(), &torn[..30]),
        )
        .unwrap();
        let sink = JsonlSink::open(&path).unwrap();
        sink.append(std::slice::from_ref(&b)).unwrap();
        let mut users = Vec::new();
        let damaged =
            reader::read_log(&path, &ReadLimits::default(), |e| users.push(e.user_id)).unwrap();
        assert_eq!(users, ["a", "b"]);
        assert_eq!((damaged.total, damaged.torn), (1, 1));
        let wanted: BTreeSet<String> = [a.id.clone(), b.id.clone(), "nope".into()].into();
        assert_eq!(sink.logged_ids(&wanted).unwrap(), [a.id, b.id].into());
    }

    #[test]
    fn size_rotation_keeps_every_event_in_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let options = EventLogOptions {
            max_bytes: 1000,
            keep: 3,
            ..EventLogOptions::default()
        };
        let sink = JsonlSink::open_with(&path, options).unwrap();
        let events: Vec<LoggedEvent> = (0..40).map(|i| event(&format!("u{i}"))).collect();
        for e in &events {
            sink.append(std::slice::from_ref(e)).unwrap();
        }
        let mut ids = Vec::new();
        for p in [
            rotated_path(&path, 3),
            rotated_path(&path, 2),
            rotated_path(&path, 1),
            path.clone(),
        ] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 1000);
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                ids.push(serde_json::from_str::<LoggedEvent>(line).unwrap().id);
            }
        }
        assert!(!rotated_path(&path, 4).exists());
        // The newest events, in order, each once; the oldest went with the file dropped.
        let expected: Vec<String> = events[events.len() - ids.len()..]
            .iter()
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(ids, expected);
    }
}
