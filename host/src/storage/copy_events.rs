//! The events `store copy` moves: the lines of the event log (its size-rotated files
//! oldest first, then the current one), then the entries of the sled store's outbox (events
//! kept pending until the log holds them), read line by line in bounded memory and handed
//! on in bounded batches. A damaged line (torn, not UTF-8, too long or deep, not an event,
//! a time that is not RFC 3339, a field PostgreSQL text cannot hold) is counted per file
//! and reported, never copied. An event is copied as the line it was written as.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

use super::copy_rows::{BATCH_BYTES, BATCH_ROWS, Field, Kind, Row};
use super::sled_store::SledStorage;
use crate::events::reader::{LineReader, ReadLimits, parse_line};
use crate::events::{DamageKind, DamagedLines, Event};

/// A line as `store copy` parses it: an event, with its id when it has one (the lines of
/// logs written before events had ids get one derived from the line).
#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    id: Option<String>,
    #[serde(flatten)]
    event: Event,
}

/// Where an event was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Log,
    Outbox,
}

/// One event to copy: the columns of the events table and the line.
#[derive(Debug, Clone)]
pub struct SourceEvent {
    pub origin: Origin,
    pub id: String,
    pub course_id: String,
    pub user_id: String,
    pub name: String,
    /// RFC 3339, as the line has it.
    pub time: String,
    pub millis: i64,
    pub line: String,
}

/// The kinds of the events table's columns as a copy inserts them (the time as text,
/// which the insert casts).
pub const INSERT_KINDS: [Kind; 6] = [Kind::Text; 6];

impl SourceEvent {
    /// The row the check hashes (see `copy_rows::EVENTS`).
    pub fn check_row(&self) -> Row {
        vec![
            Field::Text(self.id.clone()),
            Field::Text(self.course_id.clone()),
            Field::Text(self.user_id.clone()),
            Field::Text(self.name.clone()),
            Field::Int(self.millis),
            Field::Text(self.line.clone()),
        ]
    }

    /// The row the insert takes (see [`INSERT_KINDS`]).
    pub fn insert_row(&self) -> Row {
        [
            &self.id,
            &self.course_id,
            &self.user_id,
            &self.name,
            &self.time,
            &self.line,
        ]
        .into_iter()
        .map(|s| Field::Text(s.clone()))
        .collect()
    }
}

/// One file of the log as read.
#[derive(Debug, Clone, Serialize)]
pub struct LogFile {
    pub path: String,
    pub events: u64,
    pub damaged: DamagedLines,
}

/// What reading the events found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EventSources {
    pub files: Vec<LogFile>,
    /// Entries of the outbox read, and those that were damaged.
    pub outbox_entries: u64,
    pub outbox_damaged: u64,
}

impl EventSources {
    pub fn damaged(&self) -> u64 {
        self.files.iter().map(|f| f.damaged.total).sum::<u64>() + self.outbox_damaged
    }
}

/// The log's files in the order they were written: `<log>.N` down to `<log>.1` (size
/// rotation, newest `.1`), then the log itself.
pub fn log_files(log: &Path) -> Vec<PathBuf> {
    let rotated = |n: u32| {
        let mut name = log.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    let mut files: Vec<PathBuf> = (1..).map(rotated).take_while(|p| p.exists()).collect();
    files.reverse();
    files.push(log.to_path_buf());
    files
}

/// A line as an event to copy, or why it cannot be.
fn event_of(origin: Origin, bytes: &[u8], limits: &ReadLimits) -> Result<SourceEvent, DamageKind> {
    if bytes.len() > limits.max_line_bytes {
        return Err(DamageKind::TooLong);
    }
    let parsed: Line = parse_line(bytes, limits.max_depth)?;
    let line = std::str::from_utf8(bytes)
        .map_err(|_| DamageKind::InvalidUtf8)?
        .trim()
        .to_string();
    from_line(origin, parsed, line).ok_or(DamageKind::NotAnEvent)
}

fn from_line(origin: Origin, parsed: Line, line: String) -> Option<SourceEvent> {
    let Line { id, event } = parsed;
    let time = humantime::parse_rfc3339(&event.time).ok()?;
    let millis =
        i64::try_from(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let id = id.unwrap_or_else(|| blake3::hash(line.as_bytes()).to_hex()[..28].to_string());
    let fields = [&id, &event.course_key, &event.user_id, &event.name];
    if fields.iter().any(|f| f.contains('\0')) {
        return None;
    }
    Some(SourceEvent {
        origin,
        id,
        course_id: event.course_key,
        user_id: event.user_id,
        name: event.name,
        time: event.time,
        millis,
        line,
    })
}

/// Reads every event of the log's files and then of the store's outbox, in that order,
/// a bounded batch at a time (pulled, so a copy can insert each batch before reading on).
/// A missing file has no events.
pub struct EventReader<'a> {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(LogFile, LineReader<BufReader<std::fs::File>>)>,
    store: &'a SledStorage,
    outbox: Option<sled::Iter>,
    limits: ReadLimits,
    found: EventSources,
}

impl<'a> EventReader<'a> {
    pub fn new(files: Vec<PathBuf>, store: &'a SledStorage, limits: &ReadLimits) -> Self {
        EventReader {
            files: files.into_iter(),
            current: None,
            store,
            outbox: None,
            limits: *limits,
            found: EventSources::default(),
        }
    }

    /// The next batch (at most `BATCH_ROWS` events or `BATCH_BYTES` of lines), or `None`
    /// at the end.
    pub fn next_batch(&mut self) -> Result<Option<Vec<SourceEvent>>> {
        let (mut batch, mut bytes) = (Vec::new(), 0);
        while batch.len() < BATCH_ROWS && bytes < BATCH_BYTES {
            let Some(event) = self.next_event()? else {
                break;
            };
            bytes += event.line.len();
            batch.push(event);
        }
        Ok((!batch.is_empty()).then_some(batch))
    }

    /// What the reading found (call at the end).
    pub fn finish(self) -> EventSources {
        self.found
    }

    fn next_event(&mut self) -> Result<Option<SourceEvent>> {
        let limits = self.limits;
        loop {
            if let Some((log, lines)) = &mut self.current {
                let parsed = lines
                    .next_parsed::<Line>(limits.max_depth)
                    .with_context(|| format!("reading the event log {}", log.path))?;
                let Some(parsed) = parsed else {
                    let (log, _) = self.current.take().expect("a file is being read");
                    self.found.files.push(log);
                    continue;
                };
                let event = parsed.and_then(|parsed| {
                    let line = String::from_utf8_lossy(lines.last_line())
                        .trim()
                        .to_string();
                    from_line(Origin::Log, parsed, line).ok_or(DamageKind::NotAnEvent)
                });
                match event {
                    Ok(event) => {
                        log.events += 1;
                        return Ok(Some(event));
                    }
                    Err(kind) => log.damaged.add(lines.line(), kind),
                }
                continue;
            }
            if let Some(path) = self.files.next() {
                let file = match std::fs::File::open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(e).with_context(|| {
                            format!("cannot open the event log {}", path.display())
                        });
                    }
                };
                let log = LogFile {
                    path: path.display().to_string(),
                    events: 0,
                    damaged: DamagedLines::new(&limits),
                };
                let reader = BufReader::with_capacity(64 << 10, file);
                self.current = Some((log, LineReader::new(reader, limits.max_line_bytes)));
                continue;
            }
            if self.outbox.is_none() {
                let tree = self
                    .store
                    .tree("outbox")
                    .context("the sled store has no outbox tree")?;
                self.outbox = Some(tree.iter());
            }
            let outbox = self.outbox.as_mut().expect("just set");
            let Some(item) = outbox.next() else {
                return Ok(None);
            };
            let (_, line) = item.context("reading the sled store's outbox")?;
            self.found.outbox_entries += 1;
            match event_of(Origin::Outbox, &line, &limits) {
                Ok(event) => return Ok(Some(event)),
                Err(_) => self.found.outbox_damaged += 1,
            }
        }
    }
}
