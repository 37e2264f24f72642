//! First visits under load (issue #13, point 3): how many first visits a second the host
//! serves one at a time, and with [`CONCURRENT`] learners visiting at once, through the
//! real [`Host::render`] of the demo unit, each visit a distinct new learner (so each
//! stores two assignments with their outbox events and must make them durable before the
//! page is acknowledged). On sled each acknowledged first visit needs a disk sync; when
//! concurrent visits share syncs (group commit), the concurrent rate rises well above the
//! one-at-a-time rate, which a sync per visit bounds. The same rows run on PostgreSQL when
//! the run has a database (it groups concurrent WAL flushes itself). Beside them, repeat
//! visits by as many learners at once: the CPU's ceiling, with no sync at all.
//!
//! `--first-visits` runs only these rows.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::Result;
use xbhost::Host;
use xbhost::storage::{OutboxEntry, Storage};

use super::pg::BenchDatabase;
use super::{DEMO, Table, open_host_on, percentile, process_cpu, request, us};

/// Learners visiting at once in the concurrent rows.
pub const CONCURRENT: usize = 8;

/// What the target asks of the concurrent rate against the one-at-a-time rate.
const TARGET_RATIO: f64 = 3.0;

/// A run of first visits: pages/s over the wall time, the sorted latencies, and how many
/// pages had a block fail (counted, not fatal: a block out of time on a loaded database).
struct Run {
    pages_per_second: f64,
    times: Vec<Duration>,
    failed: usize,
    /// The process's CPU time a page (every thread's, sled's own included).
    cpu: Duration,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "{:.0} pages/s (p50 {}, p99 {}; CPU {} a page)",
            self.pages_per_second,
            us(percentile(&self.times, 0.5)),
            us(percentile(&self.times, 0.99)),
            us(self.cpu)
        )
    }
}

/// Renders the demo unit once for each of `learners`, split over `threads` threads that
/// start together; pages/s is over the wall time from their start to the last page.
fn visit(host: &Host, learners: &[String], threads: usize) -> Result<Run> {
    let chunks: Vec<&[String]> = learners
        .chunks(learners.len().div_ceil(threads).max(1))
        .collect();
    let barrier = Arc::new(Barrier::new(chunks.len() + 1));
    let ((elapsed, cpu), results) = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|mine| {
                let (host, barrier) = (host.clone(), barrier.clone());
                scope.spawn(move || -> Result<(Vec<Duration>, usize)> {
                    barrier.wait();
                    let mut times = Vec::with_capacity(mine.len());
                    let mut failed = 0;
                    for l in mine {
                        let started = Instant::now();
                        let out = host.render(&request(l))?;
                        times.push(started.elapsed());
                        if !out.failures.is_empty() {
                            failed += 1;
                            eprintln!("bench: the page of {l} failed: {:?}", out.failures);
                        }
                    }
                    Ok((times, failed))
                })
            })
            .collect();
        barrier.wait();
        let (started, cpu) = (Instant::now(), process_cpu());
        let results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .collect();
        ((started.elapsed(), process_cpu() - cpu), results)
    });
    let mut times = Vec::with_capacity(learners.len());
    let mut failed = 0;
    for result in results {
        let (t, f) = result?;
        times.extend(t);
        failed += f;
    }
    times.sort();
    Ok(Run {
        pages_per_second: learners.len() as f64 / elapsed.as_secs_f64(),
        times,
        failed,
        cpu: cpu / learners.len() as u32,
    })
}

fn learners(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:06}")).collect()
}

/// The rows of one backend, `label` naming it.
fn rows(host: &Host, label: &str, quick: bool, table: &mut Table) -> Result<()> {
    let (one, many) = if quick { (300, 1_200) } else { (2_000, 8_000) };
    let tag = label.to_lowercase();
    // Plugins compiled and instances warm before anything is timed.
    visit(host, &learners(&format!("warm-{tag}"), 50), 1)?;
    let alone = visit(host, &learners(&format!("first-one-{tag}"), one), 1)?;
    let many = learners(&format!("first-many-{tag}"), many);
    let together = visit(host, &many, CONCURRENT)?;
    let ceiling = visit(host, &many, CONCURRENT)?;
    table.add(
        &format!("{label}: first visits, one at a time"),
        alone.describe(),
    );
    table.add(
        &format!("{label}: first visits, {CONCURRENT} learners at once"),
        together.describe(),
    );
    table.add(
        &format!("{label}: repeat visits, {CONCURRENT} at once (no sync: the CPU ceiling)"),
        ceiling.describe(),
    );
    let ratio = together.pages_per_second / alone.pages_per_second;
    table.check(
        &format!("{label}: first visits, {CONCURRENT} at once / one at a time"),
        format!("{ratio:.2}x"),
        &format!("≥ {TARGET_RATIO:.0}x"),
        ratio >= TARGET_RATIO,
    );
    // A page whose block ran out of its time share (waiting on a loaded machine or store)
    // is counted, not fatal.
    table.check(
        &format!("{label}: pages with a failed block, first visits alone / at once / repeat"),
        format!(
            "{} / {} / {} of {} / {} / {}",
            alone.failed,
            together.failed,
            ceiling.failed,
            one,
            many.len(),
            many.len()
        ),
        "0",
        alone.failed + together.failed + ceiling.failed == 0,
    );
    Ok(())
}

/// What a first visit asks of the store, alone (no render): two assignments stored with
/// their outbox entries, the entries replaced, the flush, the entries removed; for `n`
/// learners split over `threads` threads. Separates what the store serializes from what
/// the render does.
fn store_ops(storage: &dyn Storage, prefix: &str, n: usize, threads: usize) -> Result<f64> {
    let learners = learners(prefix, n);
    let chunks: Vec<&[String]> = learners.chunks(n.div_ceil(threads)).collect();
    let barrier = Barrier::new(chunks.len() + 1);
    let elapsed = std::thread::scope(|scope| -> Result<Duration> {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|mine| {
                let barrier = &barrier;
                scope.spawn(move || -> Result<()> {
                    barrier.wait();
                    for l in mine {
                        let entries: Vec<OutboxEntry> = (0..2)
                            .map(|p| OutboxEntry {
                                id: format!("{l}-{p}"),
                                line: format!("{{\"partition\":{p}}}").into_bytes(),
                            })
                            .collect();
                        for (p, entry) in entries.iter().enumerate() {
                            storage.assign_course_tag(
                                DEMO,
                                l,
                                &format!("bench.partition.{p}"),
                                None,
                                "1",
                                entry,
                            )?;
                        }
                        storage.put_outbox(&entries)?;
                        storage.flush()?;
                        let ids: Vec<String> = entries.into_iter().map(|e| e.id).collect();
                        storage.remove_from_outbox(&ids)?;
                    }
                    Ok(())
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        for h in handles {
            h.join().expect("bench thread")?;
        }
        Ok(started.elapsed())
    })?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

pub fn figures(database: Option<&BenchDatabase>, quick: bool, table: &mut Table) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let host = open_host_on(dir.path(), false, None)?;
    rows(&host, "sled", quick, table)?;
    let n = if quick { 300 } else { 2_000 };
    let alone = store_ops(host.storage(), "store-one", n, 1)?;
    let together = store_ops(host.storage(), "store-many", n * 4, CONCURRENT)?;
    table.add(
        &format!("sled: a first visit's store writes and flush alone, one / {CONCURRENT} at once"),
        format!(
            "{alone:.0} / {together:.0} a second ({:.2}x)",
            together / alone
        ),
    );
    drop(host);
    match database {
        Some(db) => {
            let dir = tempfile::tempdir()?;
            let host = open_host_on(dir.path(), false, Some(db.url()))?;
            rows(&host, "PostgreSQL", quick, table)?;
        }
        None => table.add(
            "PostgreSQL: first visits",
            format!("not measured: set {}", super::pg::URL_VAR),
        ),
    }
    Ok(())
}
