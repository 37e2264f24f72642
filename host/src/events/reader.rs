//! Reading an event log line by line in bounded memory. A log outlives crashes and hands
//! (a torn last line, a bad copy, a hostile edit), so a damaged line is skipped and
//! counted by kind, never a reason to stop reading: what reads the log says how many it
//! skipped and where. A line is held at most [`ReadLimits::max_line_bytes`] long (a longer
//! one is skipped as it streams past) and parsed only when its nesting is within
//! [`ReadLimits::max_depth`]. Imports only `event`.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::event::Event;

/// How much of a line a reader holds, and how deep it parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Longest line read, in bytes (`XBHOST_EVENT_LINE_MAX_BYTES`, default 4 MiB): well
    /// above the longest line the host writes (an event's data is capped by
    /// `XBHOST_MAX_EVENT_KIB`, its course tags by the tag limits).
    pub max_line_bytes: usize,
    /// Deepest nesting of arrays and objects parsed (`XBHOST_EVENT_LINE_MAX_DEPTH`,
    /// default 256; the host writes at most 129).
    pub max_depth: usize,
}

impl Default for ReadLimits {
    fn default() -> ReadLimits {
        ReadLimits {
            max_line_bytes: 4 << 20,
            max_depth: 256,
        }
    }
}

impl ReadLimits {
    /// The defaults with the `XBHOST_EVENT_LINE_MAX_BYTES` and `XBHOST_EVENT_LINE_MAX_DEPTH`
    /// overrides from the environment.
    pub fn from_env() -> Result<ReadLimits> {
        let mut limits = ReadLimits::default();
        for (name, slot) in [
            ("XBHOST_EVENT_LINE_MAX_BYTES", &mut limits.max_line_bytes),
            ("XBHOST_EVENT_LINE_MAX_DEPTH", &mut limits.max_depth),
        ] {
            if let Ok(value) = std::env::var(name) {
                *slot = value
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .with_context(|| format!("{name}={value:?} is not a positive number"))?;
            }
        }
        Ok(limits)
    }
}

/// Why a line was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DamageKind {
    /// Cut short: the writer stopped mid-line (a crash, a full disk).
    Torn,
    /// Not UTF-8.
    InvalidUtf8,
    /// Longer than [`ReadLimits::max_line_bytes`].
    TooLong,
    /// Nested deeper than [`ReadLimits::max_depth`].
    TooDeep,
    /// Not JSON.
    NotJson,
    /// JSON, but not an event.
    NotAnEvent,
}

impl DamageKind {
    fn describe(self, limits: &DamagedLines) -> String {
        match self {
            DamageKind::Torn => "torn (cut short mid-write, as by a crash)".to_string(),
            DamageKind::InvalidUtf8 => "not UTF-8".to_string(),
            DamageKind::TooLong => format!(
                "over {} bytes (XBHOST_EVENT_LINE_MAX_BYTES)",
                limits.max_line_bytes
            ),
            DamageKind::TooDeep => format!(
                "nested over {} deep (XBHOST_EVENT_LINE_MAX_DEPTH)",
                limits.max_depth
            ),
            DamageKind::NotJson => "not JSON".to_string(),
            DamageKind::NotAnEvent => "not an event".to_string(),
        }
    }
}

/// A skipped line: its number (from 1) and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DamagedLine {
    pub line: u64,
    pub kind: DamageKind,
}

/// The damaged lines a reading skipped, by kind, and the first few of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DamagedLines {
    pub total: u64,
    pub torn: u64,
    pub invalid_utf8: u64,
    pub too_long: u64,
    pub too_deep: u64,
    pub not_json: u64,
    pub not_an_event: u64,
    /// The first [`DamagedLines::KEPT`] skipped lines.
    pub first: Vec<DamagedLine>,
    /// The limits the lines were read under.
    pub max_line_bytes: usize,
    pub max_depth: usize,
}

impl DamagedLines {
    /// How many skipped lines are listed by number.
    pub const KEPT: usize = 10;

    /// No damage yet, under these limits.
    pub fn new(limits: &ReadLimits) -> DamagedLines {
        DamagedLines {
            max_line_bytes: limits.max_line_bytes,
            max_depth: limits.max_depth,
            ..DamagedLines::default()
        }
    }

    /// Counts line `line` (from 1) as skipped for `kind`.
    pub fn add(&mut self, line: u64, kind: DamageKind) {
        self.total += 1;
        *match kind {
            DamageKind::Torn => &mut self.torn,
            DamageKind::InvalidUtf8 => &mut self.invalid_utf8,
            DamageKind::TooLong => &mut self.too_long,
            DamageKind::TooDeep => &mut self.too_deep,
            DamageKind::NotJson => &mut self.not_json,
            DamageKind::NotAnEvent => &mut self.not_an_event,
        } += 1;
        if self.first.len() < Self::KEPT {
            self.first.push(DamagedLine { line, kind });
        }
    }

    /// One sentence for people: how many lines were skipped, of which kinds, and where
    /// the first ones are. `None` when nothing was skipped.
    pub fn summary(&self) -> Option<String> {
        if self.total == 0 {
            return None;
        }
        let kinds: Vec<String> = [
            (self.torn, DamageKind::Torn),
            (self.invalid_utf8, DamageKind::InvalidUtf8),
            (self.too_long, DamageKind::TooLong),
            (self.too_deep, DamageKind::TooDeep),
            (self.not_json, DamageKind::NotJson),
            (self.not_an_event, DamageKind::NotAnEvent),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, kind)| format!("{n} {}", kind.describe(self)))
        .collect();
        let lines: Vec<String> = self.first.iter().map(|d| d.line.to_string()).collect();
        Some(format!(
            "{} damaged line{} of the event log skipped and not counted: {}; {} at line{} {}{}",
            self.total,
            if self.total == 1 { "" } else { "s" },
            kinds.join(", "),
            if self.total as usize > self.first.len() {
                "the first"
            } else {
                "the damage is"
            },
            if self.first.len() == 1 { "" } else { "s" },
            lines.join(", "),
            if self.total as usize > self.first.len() {
                " (more after)"
            } else {
                ""
            }
        ))
    }
}

/// One line as read: its bytes, whether a newline ended it (the last line of a file may
/// lack one), or that it was over the limit.
enum RawLine {
    Line { complete: bool },
    TooLong,
}

/// Reads lines of at most `max_line_bytes`, numbering them; the line's bytes are in `buf`.
pub struct LineReader<R> {
    reader: R,
    max_line_bytes: usize,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(reader: R, max_line_bytes: usize) -> LineReader<R> {
        LineReader {
            reader,
            max_line_bytes,
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The next line, or `None` at the end. Memory held is at most the line limit plus
    /// the reader's buffer, whatever the line's length.
    fn next_line(&mut self) -> std::io::Result<Option<RawLine>> {
        self.buf.clear();
        let mut too_long = false;
        let mut seen = false;
        let complete = loop {
            let available = match self.reader.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !seen {
                    return Ok(None);
                }
                break false;
            }
            seen = true;
            let (chunk, end) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], Some(i + 1)),
                None => (available, None),
            };
            if !too_long {
                if self.buf.len() + chunk.len() > self.max_line_bytes {
                    too_long = true;
                    self.buf = Vec::new();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            let used = end.unwrap_or(available.len());
            self.reader.consume(used);
            if end.is_some() {
                break true;
            }
        };
        self.line += 1;
        Ok(Some(if too_long {
            RawLine::TooLong
        } else {
            RawLine::Line { complete }
        }))
    }

    /// The next line parsed as `T`: `Ok(None)` at the end, `Some(Err(kind))` for a damaged
    /// line, and blank lines skipped. The line number is [`LineReader::line`].
    pub fn next_parsed<T: DeserializeOwned>(
        &mut self,
        max_depth: usize,
    ) -> std::io::Result<Option<Result<T, DamageKind>>> {
        loop {
            let Some(raw) = self.next_line()? else {
                return Ok(None);
            };
            let complete = match raw {
                RawLine::TooLong => return Ok(Some(Err(DamageKind::TooLong))),
                RawLine::Line { complete } => complete,
            };
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = parse_line(&self.buf, max_depth);
            // A last line without its newline that does not parse was cut short.
            return Ok(Some(match parsed {
                Err(_) if !complete => Err(DamageKind::Torn),
                other => other,
            }));
        }
    }

    /// The bytes of the line [`LineReader::next_parsed`] parsed last (no newline), for
    /// what copies a line as written rather than as this binary would write it again.
    pub fn last_line(&self) -> &[u8] {
        &self.buf
    }

    /// The number of the line read last (from 1).
    pub fn line(&self) -> u64 {
        self.line
    }
}

/// Parses one line as `T`, after checking its nesting (so the parser's recursion is
/// bounded by `max_depth`, whatever the line).
pub fn parse_line<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, DamageKind> {
    let text = std::str::from_utf8(bytes).map_err(|_| DamageKind::InvalidUtf8)?;
    if nesting_exceeds(bytes, max_depth) {
        return Err(DamageKind::TooDeep);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    // Safe: the nesting was checked above, so recursion is at most `max_depth` deep.
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|e| match e.classify() {
        // Valid as far as it goes, then the line ends: the rest was never written.
        serde_json::error::Category::Eof => DamageKind::Torn,
        serde_json::error::Category::Data => DamageKind::NotAnEvent,
        _ => DamageKind::NotJson,
    })
}

/// Whether arrays and objects nest deeper than `max` outside strings (a JSON parser's
/// recursion follows exactly this nesting, up to where the text stops being JSON).
fn nesting_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Reads every event of a log, handing each to `each`, in memory bounded by the line
/// limit; damaged lines are skipped and counted. A missing log has no events. Errors
/// only when the file cannot be read (naming it).
pub fn read_log(path: &Path, limits: &ReadLimits, each: impl FnMut(Event)) -> Result<DamagedLines> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DamagedLines::new(limits));
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot open the event log {}", path.display()));
        }
    };
    read_events(BufReader::with_capacity(64 << 10, file), limits, each)
        .with_context(|| format!("reading the event log {}", path.display()))
}

/// [`read_log`] over any reader.
pub fn read_events(
    reader: impl BufRead,
    limits: &ReadLimits,
    mut each: impl FnMut(Event),
) -> std::io::Result<DamagedLines> {
    let mut damaged = DamagedLines::new(limits);
    let mut lines = LineReader::new(reader, limits.max_line_bytes);
    while let Some(parsed) = lines.next_parsed::<Event>(limits.max_depth)? {
        match parsed {
            Ok(event) => each(event),
            Err(kind) => damaged.add(lines.line(), kind),
        }
    }
    Ok(damaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_line(user: &str) -> String {
        format!(
            r#"{{"id":"x","name":"n","time":"t","course_key":"c","user_id":"{user}","username":"u","usage_id":null,"data":{{}},"experiments":{{"enrolled":[],"assigned":{{}}}},"course_tags":{{}}}}"#
        )
    }

    fn read(bytes: &[u8], limits: ReadLimits) -> (Vec<String>, DamagedLines) {
        let mut users = Vec::new();
        let damaged = read_events(bytes, &limits, |e| users.push(e.user_id)).unwrap();
        (users, damaged)
    }

    #[test]
    fn every_kind_of_damage_is_skipped_counted_and_placed() {
        let limits = ReadLimits {
            max_line_bytes: 1024,
            max_depth: 8,
        };
        let mut log = Vec::new();
        log.extend(event_line("a").as_bytes());
        log.extend(b"\n\n");
        log.extend(b"\xff\xfe not utf-8\n");
        log.extend(format!("{}\n", "[".repeat(20) + &"]".repeat(20)).as_bytes());
        log.extend(format!("\"{}\"\n", "x".repeat(5000)).as_bytes());
        log.extend(b"not json\n");
        log.extend(b"{\"name\": 1}\n");
        log.extend(&event_line("b").as_bytes()[..40]);
        log.extend(b"\n");
        log.extend(event_line("c").as_bytes());
        log.extend(b"\n");
        log.extend(&event_line("d").as_bytes()[..50]);
        let (users, damaged) = read(&log, limits);
        assert_eq!(users, ["a", "c"]);
        assert_eq!(damaged.total, 7);
        assert_eq!(
            (
                damaged.torn,
                damaged.invalid_utf8,
                damaged.too_deep,
                damaged.too_long,
                damaged.not_json,
                damaged.not_an_event
            ),
            (2, 1, 1, 1, 1, 1)
        );
        let lines: Vec<u64> = damaged.first.iter().map(|d| d.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 10]);
        let summary = damaged.summary().unwrap();
        assert!(summary.contains("7 damaged lines"), "{summary}");
        assert!(summary.contains("XBHOST_EVENT_LINE_MAX_BYTES"), "{summary}");
    }

    #[test]
    fn a_last_line_without_its_newline_that_parses_is_an_event() {
        let (users, damaged) = read(event_line("a").as_bytes(), ReadLimits::default());
        assert_eq!(users, ["a"]);
        assert_eq!(damaged.total, 0);
        assert!(damaged.summary().is_none());
    }

    #[test]
    fn the_deepest_line_the_host_writes_is_read() {
        // serde_json refuses to parse 128 levels by default; a block's data may be 127
        // deep, inside the event's object.
        let data = "[".repeat(127) + &"]".repeat(127);
        let line = event_line("a").replace(r#""data":{}"#, &format!(r#""data":{data}"#));
        let (users, damaged) = read(line.as_bytes(), ReadLimits::default());
        assert_eq!((users.len(), damaged.total), (1, 0));
    }
}
