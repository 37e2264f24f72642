//! The page on PostgreSQL beside sled, in one run: the real [`Host`] with
//! `HostConfig.database` set to this run's fresh database, the same demo unit and the
//! same learners, first and repeat visits (p50 and p99, with the ratio to sled), pages/s on
//! every core, the learner's tags read alone (the database's share of a repeat visit),
//! and what a visit asks of the database, counted on the wire ([`WireCount`]): the round
//! trips of a repeat visit (the course and global tags must come in one) and the commits
//! of a first visit (one).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use xbhost::storage::StoredEvent;
use xbhost::{Host, HostConfig};

use super::pg::{BenchDatabase, URL_VAR};
use super::wire_count::WireCount;
use super::{DEMO, Table, open_host_on, percentile, render_all, request, throughput, us};

/// Sled's figures of the same run, to set beside.
pub struct SledFigures {
    pub first: Vec<Duration>,
    pub repeat: Vec<Duration>,
    pub pages_per_second: f64,
}

/// Learners of the wire count (each a first then a repeat visit).
const COUNTED: usize = 200;

pub fn figures(
    db: Option<&BenchDatabase>,
    learners: &[String],
    sled: &SledFigures,
    cores: usize,
    quick: bool,
    table: &mut Table,
) -> Result<()> {
    let Some(db) = db else {
        table.add(
            "PostgreSQL rows",
            format!("not measured: set {URL_VAR} (cargo xtask bench does)"),
        );
        return Ok(());
    };
    table.add("PostgreSQL", db.describe_server()?);
    let dir = tempfile::tempdir()?;
    let host = open_host_on(dir.path(), false, Some(db.url()))?;
    let (first, first_failed) = render_counting(&host, learners)?;
    let (repeat, repeat_failed) = render_counting(&host, learners)?;
    table.check(
        "PostgreSQL pages that failed, first / repeat visits",
        format!("{first_failed} / {repeat_failed} of {}", learners.len()),
        "0",
        first_failed + repeat_failed == 0,
    );
    for (what, p, pg, on_sled) in [
        ("first visit p50", 0.5, &first, &sled.first),
        ("first visit p99", 0.99, &first, &sled.first),
        ("repeat visit p50", 0.5, &repeat, &sled.repeat),
        ("repeat visit p99", 0.99, &repeat, &sled.repeat),
    ] {
        let (pg, on_sled) = (percentile(pg, p), percentile(on_sled, p));
        table.add(
            &format!("unit_1 {what}, PostgreSQL / sled"),
            format!(
                "{} / {} ({:.2}x)",
                us(pg),
                us(on_sled),
                pg.as_secs_f64() / on_sled.as_secs_f64()
            ),
        );
    }
    let secs = Duration::from_secs(if quick { 2 } else { 10 });
    let rate = throughput(&host, learners, cores, secs)?;
    table.add(
        &format!("pages/s, {cores} threads, PostgreSQL / sled"),
        format!(
            "{rate:.0} / {:.0} ({:.2}x)",
            sled.pages_per_second,
            rate / sled.pages_per_second
        ),
    );

    // The database's share of a repeat visit: the one read it makes, alone.
    let storage = host.storage();
    let mut reads = Vec::with_capacity(learners.len().min(5_000));
    for l in learners.iter().take(5_000) {
        let t = Instant::now();
        std::hint::black_box(storage.learner_tags(DEMO, l)?);
        reads.push(t.elapsed());
    }
    reads.sort();
    table.add(
        "PostgreSQL: the learner's tags read alone p50 / p99",
        format!(
            "{} / {}",
            us(percentile(&reads, 0.5)),
            us(percentile(&reads, 0.99))
        ),
    );
    // The rest of it: a page's events going in, in a request's transaction of their own
    // (BEGIN with the insert, then the asynchronous COMMIT: two round trips).
    let mut commits = Vec::with_capacity(2_000);
    for i in 0..2_000 {
        let request = storage
            .for_request()
            .expect("PostgreSQL has request stores");
        let events: Vec<StoredEvent> = (0..3)
            .map(|e| StoredEvent {
                id: format!("bench-event-{i}-{e}"),
                course_key: DEMO.into(),
                user_id: learners[i % learners.len()].clone(),
                name: "bench.exposure".into(),
                time: "2026-12-01T00:00:00Z".into(),
                line: "{}".into(),
            })
            .collect();
        let t = Instant::now();
        request.append_events(&events)?;
        request.flush()?;
        commits.push(t.elapsed());
    }
    commits.sort();
    table.add(
        "PostgreSQL: a page's 3 events alone (insert, async commit) p50 / p99",
        format!(
            "{} / {}",
            us(percentile(&commits, 0.5)),
            us(percentile(&commits, 0.99))
        ),
    );
    drop(host);
    wire_counts(db, dir.path(), table)
}

/// Renders unit_1 once for each learner: the sorted latencies of the pages that rendered,
/// and how many failed (a block out of time while the machine or the database stalled is
/// counted, not fatal: the table says how many).
fn render_counting(host: &Host, learners: &[String]) -> Result<(Vec<Duration>, usize)> {
    let mut times = Vec::with_capacity(learners.len());
    let mut failed = 0;
    for l in learners {
        let started = Instant::now();
        let out = host.render(&request(l))?;
        let took = started.elapsed();
        if out.failures.is_empty() {
            times.push(took);
        } else {
            failed += 1;
            eprintln!("bench: PostgreSQL page for {l} failed: {:?}", out.failures);
        }
    }
    times.sort();
    Ok((times, failed))
}

/// Opens a host on a database that already has the plugins and the course.
fn connect(dir: &Path, url: String) -> Result<Host> {
    let mut config = HostConfig::from_env()?;
    config.database = Some(url);
    Host::open(dir, config)
}

fn wire_counts(db: &BenchDatabase, dir: &Path, table: &mut Table) -> Result<()> {
    let proxy = WireCount::start(db.address.clone())?;
    let host = connect(dir, db.url_at(&format!("127.0.0.1:{}", proxy.port)))?;
    // Course and plugins loaded, statements prepared on the connection: what is counted
    // next is what every visit costs.
    let warm = ["wire-warm".to_string()];
    render_all(&host, &warm)?;
    render_all(&host, &warm)?;
    let learners: Vec<String> = (0..COUNTED).map(|i| format!("wire-{i:04}")).collect();
    let n = COUNTED as u64;
    let before = proxy.counts();
    render_all(&host, &learners)?;
    let after_first = proxy.counts();
    render_all(&host, &learners)?;
    let after_repeat = proxy.counts();
    let first = after_first.since(&before);
    let repeat = after_repeat.since(&after_first);
    let per = |x: u64| x as f64 / n as f64;
    // The tags are the repeat visit's only read; the rest is its exposure events going in.
    table.check(
        "PostgreSQL repeat visit: reads, round trips (on the wire)",
        format!(
            "{:.2} SELECT a visit; {:.2} round trips in all ({}; {:.2} prepares)",
            per(repeat.tag("SELECT")),
            per(repeat.round_trips),
            repeat.describe(n),
            per(repeat.parses)
        ),
        "1 SELECT (course and global tags at once)",
        repeat.tag("SELECT") == n,
    );
    table.check(
        "PostgreSQL first visit: commits (on the wire)",
        format!(
            "{:.2} a visit, {:.2} round trips ({}; {:.2} prepares)",
            per(first.tag("COMMIT")),
            per(first.round_trips),
            first.describe(n),
            per(first.parses)
        ),
        "1 (all writes and events in one transaction)",
        first.tag("COMMIT") == n && first.tag("ROLLBACK") == 0,
    );
    Ok(())
}
