//! The experiment report (`Host::report`, `xbhost report`) at 10k, 100k and 1M events
//! (1M in the full run only), from the event log file and, when the run has a database,
//! from PostgreSQL's events table. The learners are a fixed [`MEMBERS`] with their stored
//! groups, so what grows between the sizes is the log alone: the time per event should
//! stay flat (one streaming pass), and so should the report's peak memory, which is read
//! from an `xbhost report` process of its own (its peak RSS from `wait4`; the same
//! command on no events at all is the floor beside it). The log holds the events the
//! demo unit's visits write (`event_stream`), through the host's own writers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use xbhost::Host;
use xbhost::events::{EventSink, JsonlSink, StoreSink};
use xbhost::model::CourseDoc;

use super::event_stream::EventStream;
use super::linear::{
    ChildRun, TIME_BOUND, demo_course_as, median_time, mib, ratio_row, run_measured, short,
    thousands, xbhost_bin,
};
use super::pg::BenchDatabase;
use super::{Table, open_host_on};

const COURSE: &str = "course-v1:bench+report+1";

/// Learners with a stored group in both experiments, the same at every size.
const MEMBERS: usize = 1_000;

/// Events written to the log in one write (about what a busy host's batches hold).
const BATCH: usize = 1_000;

/// The demo course with a goal in each experiment: a conversion (the problem solved) and
/// a numeric one (the problem's score), so every `problem_check` is tallied.
fn course_doc() -> Result<CourseDoc> {
    let mut doc = demo_course_as(COURSE)?;
    doc["user_partitions"][0]["goals"] = json!([{"name": "solved", "event": "problem_check",
        "match": {"correct": true}, "block_types": ["problem"]}]);
    doc["user_partitions"][1]["goals"] = json!([{"name": "score", "event": "problem_check",
        "value": "score", "block_types": ["problem"]}]);
    CourseDoc::from_json(&doc.to_string())
}

/// One size measured: in-process time, and the separate process's run.
struct Measured {
    events: usize,
    time: std::time::Duration,
    child: Option<ChildRun>,
}

pub fn figures(table: &mut Table, quick: bool, database: Option<&BenchDatabase>) -> Result<()> {
    let sizes: &[usize] = if quick {
        &[10_000, 100_000]
    } else {
        &[10_000, 100_000, 1_000_000]
    };
    let bin = xbhost_bin();
    if let Err(e) = &bin {
        table.add(
            "report: peak memory of `xbhost report`",
            format!("not measured: {e}"),
        );
    }
    let bin = bin.ok();
    let log = log_figures(sizes, bin.as_deref())?;
    print_rows(table, "report from the event log", sizes, &log);
    match database {
        Some(db) => {
            let stored = table_figures(sizes, bin.as_deref(), db)?;
            print_rows(
                table,
                "report from the events table (PostgreSQL)",
                sizes,
                &stored,
            );
        }
        None => table.add(
            "report from the events table (PostgreSQL)",
            format!("not measured: no {}", super::pg::URL_VAR),
        ),
    }
    Ok(())
}

/// A host with the report's course and its members stored.
fn report_host(dir: &Path, database: Option<String>) -> Result<(Host, EventStream)> {
    let host = open_host_on(dir, false, database)?;
    host.load_course(course_doc()?)?;
    let course = host.course(COURSE)?;
    let stream = EventStream::new(&course, "report-", MEMBERS);
    let storage = host.storage();
    for (user, partition, group) in stream.members() {
        storage.set_course_tag(
            COURSE,
            user,
            &xbhost::assignment::partition_tag_key(partition),
            &group.to_string(),
        )?;
    }
    storage.flush()?;
    Ok((host, stream))
}

/// Times `Host::report` on `expected` events, checking it read them all and found every
/// member.
fn time_report(host: &Host, events: &Path, expected: usize) -> Result<std::time::Duration> {
    let runs = if expected <= 10_000 {
        5
    } else if expected <= 100_000 {
        3
    } else {
        1
    };
    median_time(runs, || {
        let report = host.report(COURSE, events)?;
        let members: Vec<u64> = report.partitions.iter().map(|p| p.learners).collect();
        if report.events_read != expected
            || report.damaged_lines.total != 0
            || members != [MEMBERS as u64; 2]
        {
            bail!(
                "the report read {} events ({} damaged lines) and {members:?} members, expected {expected} and {MEMBERS}",
                report.events_read,
                report.damaged_lines.total
            );
        }
        Ok(())
    })
}

/// On sled with the log file: one log per size (the same events, each a prefix of the
/// next), timed in process, then each reported by its own `xbhost report` once this
/// process has let go of the store.
fn log_figures(sizes: &[usize], bin: Option<&Path>) -> Result<Vec<Measured>> {
    let dir = tempfile::tempdir()?;
    let (host, mut stream) = report_host(dir.path(), None)?;
    let logs: Vec<(usize, PathBuf)> = sizes
        .iter()
        .map(|&n| (n, dir.path().join(format!("events-{}.jsonl", short(n)))))
        .collect();
    let sinks = logs
        .iter()
        .map(|(_, path)| JsonlSink::open(path))
        .collect::<Result<Vec<_>>>()?;
    let largest = *sizes.last().context("sizes")?;
    let mut written = 0;
    while written < largest {
        let batch = stream.take(BATCH.min(largest - written));
        for ((n, _), sink) in logs.iter().zip(&sinks) {
            if written < *n {
                sink.append(&batch[..batch.len().min(n - written)])?;
            }
        }
        written += batch.len();
    }
    drop(sinks);
    let mut measured = Vec::new();
    for (n, path) in &logs {
        measured.push(Measured {
            events: *n,
            time: time_report(&host, path, *n)?,
            child: None,
        });
    }
    drop(host);
    if let Some(bin) = bin {
        let report = |events: &Path| -> Result<ChildRun> {
            let args: Vec<OsString> = vec![
                "--data".into(),
                dir.path().into(),
                "--events".into(),
                events.into(),
                "report".into(),
                "--course".into(),
                COURSE.into(),
                "--json".into(),
            ];
            run_measured(bin, &args, &[("XBHOST_LOG", "warn")])
        };
        let floor = report(&dir.path().join("no-events.jsonl"))?;
        measured.insert(
            0,
            Measured {
                events: 0,
                time: floor.wall,
                child: Some(floor),
            },
        );
        for (m, (_, path)) in measured[1..].iter_mut().zip(&logs) {
            m.child = Some(report(path)?);
        }
    }
    Ok(measured)
}

/// On PostgreSQL: the events appended to the events table through the host's own sink,
/// growing to each size in turn; each size timed in process and reported by an
/// `xbhost --database URL report` beside it.
fn table_figures(sizes: &[usize], bin: Option<&Path>, db: &BenchDatabase) -> Result<Vec<Measured>> {
    let dir = tempfile::tempdir()?;
    let (host, mut stream) = report_host(dir.path(), Some(db.url()))?;
    let sink = StoreSink::new(host.storage_arc());
    let child_dir = tempfile::tempdir()?;
    let report = |bin: &Path| -> Result<ChildRun> {
        let args: Vec<OsString> = vec![
            "--data".into(),
            child_dir.path().into(),
            "--database".into(),
            db.url().into(),
            "report".into(),
            "--course".into(),
            COURSE.into(),
            "--json".into(),
        ];
        run_measured(bin, &args, &[("XBHOST_LOG", "warn")])
    };
    let unused = dir.path().join("unused.jsonl");
    let mut measured = Vec::new();
    if let Some(bin) = bin {
        let floor = report(bin)?;
        measured.push(Measured {
            events: 0,
            time: floor.wall,
            child: Some(floor),
        });
    }
    let mut written = 0;
    for &n in sizes {
        while written < n {
            let batch = stream.take(BATCH.min(n - written));
            sink.append(&batch)?;
            written += batch.len();
        }
        measured.push(Measured {
            events: n,
            time: time_report(&host, &unused, n)?,
            child: bin.map(report).transpose()?,
        });
    }
    Ok(measured)
}

/// A row per size, then the ratios: time per event and peak memory, largest / smallest.
fn print_rows(table: &mut Table, what: &str, sizes: &[usize], measured: &[Measured]) {
    let floor = measured
        .iter()
        .find(|m| m.events == 0)
        .and_then(|m| m.child.as_ref());
    if let Some(floor) = floor {
        table.add(
            &format!("{what}, no events: `xbhost report` peak RSS"),
            format!("{} ({:.0} ms)", mib(floor.peak_rss_kib), ms(floor.wall)),
        );
    }
    let sized: Vec<&Measured> = measured.iter().filter(|m| m.events > 0).collect();
    for m in &sized {
        let mut value = format!(
            "{:.0} ms, {:.2} µs/event",
            ms(m.time),
            m.time.as_secs_f64() * 1e6 / m.events as f64
        );
        if let Some(child) = &m.child {
            value.push_str(&format!(
                "; `xbhost report` peak RSS {}{} ({:.0} ms)",
                mib(child.peak_rss_kib),
                floor.map_or(String::new(), |f| format!(
                    ", +{} over no events",
                    mib(child.peak_rss_kib.saturating_sub(f.peak_rss_kib))
                )),
                ms(child.wall)
            ));
        }
        table.add(
            &format!(
                "{what}, {} events ({} members)",
                short(m.events),
                thousands(MEMBERS)
            ),
            value,
        );
    }
    let (Some(small), Some(large)) = (sized.first(), sized.last()) else {
        return;
    };
    let per_event = |m: &Measured| m.time.as_secs_f64() / m.events as f64;
    let label = format!("{} / {}", short(large.events), short(small.events));
    ratio_row(
        table,
        &format!("{what}: time per event {label}"),
        per_event(large),
        per_event(small),
        TIME_BOUND,
    );
    if let (Some(s), Some(l)) = (&small.child, &large.child) {
        ratio_row(
            table,
            &format!("{what}: peak RSS {label} (sizes {})", {
                let s: Vec<String> = sizes.iter().map(|&n| short(n)).collect();
                s.join(", ")
            }),
            l.peak_rss_kib as f64,
            s.peak_rss_kib as f64,
            1.25,
        );
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
