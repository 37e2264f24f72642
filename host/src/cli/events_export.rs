//! `events export`: a course's events as JSON lines for analytics pipelines, one event a
//! line in stored order, the same on either store: from the database's events table with
//! `--database`, else from the event log's files (size-rotated ones first), which it reads
//! without opening the store (so it runs beside a server). Lines of the log that are not
//! events are skipped and counted in a warning, as the report does.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};

use xbhost::Host;
use xbhost::events::reader::{LineReader, ReadLimits};
use xbhost::events::{DamageKind, DamagedLines, Event};

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Write a course's events as JSON lines, one event a line, in the order stored.
    #[command(after_help = "Examples:\n  \
        xbhost --data ./xbhost-data events export --course course-v1:xbhost+demo+2026 --out events.jsonl\n  \
        xbhost --database postgres://xbhost@db/xbhost events export --course course-v1:xbhost+demo+2026 --since 2026-09-01T00:00:00Z")]
    Export(ExportArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// The course whose events to write (course-v1:ORG+COURSE+RUN).
    #[arg(long, value_name = "KEY")]
    course: String,
    /// Only events at or after this time: RFC 3339 in UTC (2026-09-01T12:00:00Z) or a
    /// date (2026-09-01).
    #[arg(long, value_name = "RFC3339")]
    since: Option<String>,
    /// Write to this file (put in place only once complete) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `--since` as a time, or an error naming the flag.
fn since(args: &ExportArgs) -> Result<Option<std::time::SystemTime>> {
    args.since
        .as_deref()
        .map(|text| xbhost::controls::parse_date(text).context("--since"))
        .transpose()
}

/// Writes the export through `write` to `--out` (a partial file renamed once complete)
/// or to `stdout`.
fn with_output(
    args: &ExportArgs,
    stdout: &mut impl Write,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let Some(path) = &args.out else {
        write(stdout)?;
        return Ok(stdout.flush()?);
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let outcome = (|| {
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut file = BufWriter::new(file);
        write(&mut file)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("cannot put the export in place at {}", path.display()))
    })();
    if outcome.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    outcome.with_context(|| format!("exporting events to {}", path.display()))
}

/// `events export` on a store that keeps the events (PostgreSQL).
pub fn from_store(host: &Host, cmd: EventsCommand, out: &mut impl Write) -> Result<()> {
    let EventsCommand::Export(args) = cmd;
    xbhost::ids::check_id("course key", &args.course)?;
    let since = since(&args)?.map(|t| humantime::format_rfc3339_micros(t).to_string());
    with_output(&args, out, |w| {
        host.storage()
            .course_events(&args.course, since.as_deref(), &mut |event| {
                w.write_all(event.line.as_bytes())?;
                w.write_all(b"\n")?;
                Ok(())
            })
    })
}

/// `events export` from the event log's files at `log`.
pub fn from_log(log: &Path, cmd: EventsCommand, out: &mut impl Write) -> Result<()> {
    let EventsCommand::Export(args) = cmd;
    xbhost::ids::check_id("course key", &args.course)?;
    let since = since(&args)?;
    let limits = ReadLimits::from_env()?;
    with_output(&args, out, |w| {
        for path in xbhost::storage::copy::log_files(log) {
            let file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot open the event log {}", path.display()));
                }
            };
            let mut damaged = DamagedLines::new(&limits);
            let reader = BufReader::with_capacity(64 << 10, file);
            let mut lines = LineReader::new(reader, limits.max_line_bytes);
            while let Some(parsed) = lines
                .next_parsed::<Event>(limits.max_depth)
                .with_context(|| format!("reading the event log {}", path.display()))?
            {
                // An event without an RFC 3339 time is not one a database could hold.
                let event = parsed.and_then(|e| {
                    let time =
                        humantime::parse_rfc3339(&e.time).map_err(|_| DamageKind::NotAnEvent)?;
                    Ok((e, time))
                });
                match event {
                    Ok((e, time)) => {
                        if e.course_key != args.course || since.is_some_and(|s| time < s) {
                            continue;
                        }
                        w.write_all(lines.last_line().trim_ascii())?;
                        w.write_all(b"\n")?;
                    }
                    Err(kind) => damaged.add(lines.line(), kind),
                }
            }
            if let Some(summary) = damaged.summary() {
                tracing::warn!(file = %path.display(), "{summary}");
            }
        }
        Ok(())
    })
}
