//! `cargo xtask bench [--quick]`: the figures of BENCHMARKS.md, printed as a table.
//!
//! Everything runs in this process on the real host, real sled store and real built
//! plugins (from `XBHOST_PLUGIN_DIR`, default `target/plugins`). The native floor runs the
//! same block code (html, vertical, split_test) compiled into this binary through the
//! SDK's native entry points, over the same session, storage and events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use xbhost::model::CourseDoc;
use xbhost::runtime::cache::CompiledCache;
use xbhost::runtime::{Pooling, Runtime};
use xbhost::storage::PluginRecord;
use xbhost::{Host, HostConfig, RenderRequest, User, View};
use xbhost_sdk::native::NativeBlock;

const DEMO: &str = "course-v1:xbhost+demo+2026";
const SOAK_COURSE: &str = "course-v1:xbhost+soak+1";

struct Row {
    what: String,
    value: String,
    target: Option<(String, bool)>,
}

struct Table(Vec<Row>);

impl Table {
    fn add(&mut self, what: &str, value: String) {
        self.0.push(Row {
            what: what.into(),
            value,
            target: None,
        });
    }
    fn check(&mut self, what: &str, value: String, target: &str, met: bool) {
        self.0.push(Row {
            what: what.into(),
            value,
            target: Some((target.into(), met)),
        });
    }
    fn print(&self) {
        let w = self.0.iter().map(|r| r.what.len()).max().unwrap_or(0);
        let v = self.0.iter().map(|r| r.value.len()).max().unwrap_or(0);
        println!("\n{:w$}  {:>v$}  target", "measure", "value");
        for r in &self.0 {
            let target = match &r.target {
                Some((t, met)) => format!("{t} ({})", if *met { "met" } else { "MISSED" }),
                None => String::new(),
            };
            println!("{:w$}  {:>v$}  {target}", r.what, r.value);
        }
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn plugin_dir() -> PathBuf {
    std::env::var_os("XBHOST_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"))
}

fn wasm(name: &str) -> Result<Vec<u8>> {
    // Shipped plugins at the top (Python ones under python/), test-only ones (tag_probe)
    // under testing/, as `cargo xtask build` lays them out.
    let file = format!("{name}.wasm");
    let path = ["", "python", "testing/python"]
        .iter()
        .map(|sub| plugin_dir().join(sub).join(&file))
        .find(|p| p.is_file())
        .unwrap_or_else(|| plugin_dir().join("testing").join(&file));
    std::fs::read(&path).with_context(|| format!("{} (run cargo xtask build)", path.display()))
}

/// The demo course as the benchmark has measured it since the start: `unit_1` with its
/// three split tests and html, without the problem the demo gained for the workbench (so
/// figures stay comparable across commits; the problem's cost is the soak's).
fn demo_course() -> Result<CourseDoc> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/demo-course/course.json");
    let mut doc = CourseDoc::from_json(&std::fs::read_to_string(path)?)?;
    let problems: Vec<String> = doc
        .blocks
        .iter()
        .filter(|b| b.block_type == "problem")
        .map(|b| b.usage_id.clone())
        .collect();
    doc.blocks.retain(|b| !problems.contains(&b.usage_id));
    for block in &mut doc.blocks {
        block.children.retain(|c| !problems.contains(c));
    }
    Ok(doc)
}

/// A second course for the soak: a problem and a block that writes tags.
fn soak_course() -> CourseDoc {
    serde_json::from_value(json!({
        "course_key": SOAK_COURSE,
        "blocks": [
            {"usage_id": "p", "type": "problem", "fields": {"question": "2+2?", "choices": [{"text": "4", "correct": true}, {"text": "5"}]}},
            {"usage_id": "t", "type": "tag_probe"}
        ]
    }))
    .expect("a valid course")
}

/// CPU time this process has used so far, every thread's.
fn process_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn open_host(dir: &Path, native: bool) -> Result<Host> {
    open_host_on(dir, native, None)
}

/// A host with the plugins and courses of the benchmark, on sled in `dir` or on the
/// PostgreSQL `database`.
fn open_host_on(dir: &Path, native: bool, database: Option<String>) -> Result<Host> {
    let mut config = HostConfig::from_env()?;
    config.database = database;
    if native {
        config.native_blocks = BTreeMap::from([
            ("html".to_string(), NativeBlock::of::<html::Html>()),
            (
                "vertical".to_string(),
                NativeBlock::of::<vertical::Vertical>(),
            ),
            (
                "split_test".to_string(),
                NativeBlock::of::<split_test::SplitTest>(),
            ),
        ]);
    }
    let host = Host::open(dir, config)?;
    for p in ["html", "vertical", "split_test", "problem", "tag_probe"] {
        host.add_plugin(&wasm(p)?, None)?;
    }
    host.load_course(demo_course()?)?;
    host.load_course(soak_course())?;
    Ok(host)
}

fn request(learner: &str) -> RenderRequest {
    RenderRequest {
        course_key: DEMO.into(),
        usage_id: "unit_1".into(),
        user: User::learner(learner),
        view: View::Student,
        user_agent: None,
        masquerade: None,
    }
}

/// Renders unit_1 once for each learner, returning sorted latencies.
fn render_all(host: &Host, learners: &[String]) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(learners.len());
    for l in learners {
        let started = Instant::now();
        let out = host.render(&request(l))?;
        times.push(started.elapsed());
        if !out.failures.is_empty() {
            bail!("render for {l} failed: {:?}", out.failures);
        }
    }
    times.sort();
    Ok(times)
}

/// Pages per second with `threads` threads rendering repeat visits for `duration`.
fn throughput(host: &Host, learners: &[String], threads: usize, duration: Duration) -> Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for t in 0..threads {
            let (host, stop, count) = (host.clone(), stop.clone(), count.clone());
            handles.push(scope.spawn(move || -> Result<()> {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    host.render(&request(&learners[i % learners.len()]))?;
                    count.fetch_add(1, Ordering::Relaxed);
                    i += threads;
                }
                Ok(())
            }));
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().expect("bench thread")?;
        }
        Ok(())
    })?;
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

mod course_load;
mod event_stream;
mod first_visits;
mod grade_rows;
mod http;
mod http_hosts;
mod linear;
mod pg;
mod pg_figures;
mod python_block;
mod report_rows;
mod soak_new;
mod wire_count;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == linear::PEAK_RSS_FLAG) {
        // First, while this process is small: it runs one measured command.
        return linear::peak_rss_helper(&args[i + 1..]);
    }
    let quick = args.iter().any(|a| a == "--quick");
    if args.iter().any(|a| a == "--profile-repeat") {
        return profile_repeat(None);
    }
    if args.iter().any(|a| a == "--profile-repeat-postgres") {
        let db = pg::BenchDatabase::create()?
            .with_context(|| format!("--profile-repeat-postgres needs {}", pg::URL_VAR))?;
        return profile_repeat(Some(&db));
    }
    if let Some(i) = args.iter().position(|a| a == soak_new::CHILD_FLAG) {
        return soak_new::child(&args[i + 1..]);
    }
    if args.iter().any(|a| a == "--http") {
        // Only the in-process repeat visit and the HTTP rows beside it (iterating on the
        // server's path), in one run.
        let dir = tempfile::tempdir()?;
        let host = open_host(dir.path(), false)?;
        let learners: Vec<String> = (0..2_000).map(|i| format!("bench-{i:06}")).collect();
        render_all(&host, &learners)?;
        let cpu = process_cpu();
        let wall = Instant::now();
        let repeat = render_all(&host, &learners)?;
        let mut table = Table(Vec::new());
        table.add(
            "in process one at a time: CPU / wall time, per page",
            format!(
                "{} / {}",
                us((process_cpu() - cpu) / learners.len() as u32),
                us(wall.elapsed() / learners.len() as u32)
            ),
        );
        table.add(
            "unit_1 repeat visit p50 (sandboxed)",
            us(percentile(&repeat, 0.5)),
        );
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let all = throughput(&host, &learners, cores, Duration::from_secs(2))?;
        table.add(&format!("pages/s, {cores} threads"), format!("{all:.0}"));
        http::figures(&host, dir.path(), &learners, quick, &mut table)?;
        table.print();
        return Ok(());
    }
    if args.iter().any(|a| a == "--python") {
        // Only the Python block's rows.
        let mut table = Table(Vec::new());
        python_block::figures(&mut table, quick)?;
        table.print();
        return Ok(());
    }
    if args.iter().any(|a| a == "--course-load") {
        // Only the course-load rows (they take a few seconds).
        let mut table = Table(Vec::new());
        course_load::figures(&mut table)?;
        table.print();
        return Ok(());
    }
    let soak_secs: u64 = match args.iter().position(|a| a == "--soak") {
        Some(i) => args.get(i + 1).context("--soak SECONDS")?.parse()?,
        None if quick => 0,
        None => 60,
    };
    // The soak whose every request is a new learner (`soak_new`); none in a quick run.
    let soak_new_secs: u64 = match args.iter().position(|a| a == "--soak-new-learners") {
        Some(i) => args
            .get(i + 1)
            .context("--soak-new-learners SECONDS")?
            .parse()?,
        None if quick => 0,
        None => 60,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = if quick { 2_000 } else { 20_000 };
    let mut table = Table(Vec::new());
    let database = pg::BenchDatabase::create()?;
    if args.iter().any(|a| a == "--first-visits") {
        // Only the first-visit rows: one at a time against concurrent learners.
        first_visits::figures(database.as_ref(), quick, &mut table)?;
        table.print();
        return Ok(());
    }
    if args.iter().any(|a| a == "--linear") {
        // Only the costs that grow linearly, and the soak with new learners.
        // The rows measured so far are printed even when a later one fails.
        let ok = linear::figures(&mut table, quick, database.as_ref()).and_then(|()| {
            Ok(soak_new_secs == 0
                || soak_new::figures(&mut table, cores, soak_new_secs, database.as_ref())?)
        });
        table.print();
        if !ok? {
            bail!("the soak with new learners failed (see the table)");
        }
        return Ok(());
    }

    let dir = tempfile::tempdir()?;
    let rss_start = rss_kib("VmRSS:");
    let host = open_host(dir.path(), false)?;
    table.add("pooling allocator", format!("{}", host.pooling()));
    table.add(
        "resident memory, plugins loaded",
        format!("{} MiB", rss_kib("VmRSS:") / 1024),
    );
    let _ = rss_start;

    // Page render: first visit (assignment written and flushed), then repeat visits.
    let learners: Vec<String> = (0..n).map(|i| format!("bench-{i:06}")).collect();
    let first = render_all(&host, &learners)?;
    let first_p50 = percentile(&first, 0.5);
    table.check(
        "unit_1 first visit p50 (sandboxed)",
        us(first_p50),
        "≤ 250 µs",
        first_p50 <= Duration::from_micros(250),
    );
    table.add("unit_1 first visit p99", us(percentile(&first, 0.99)));
    let repeat = render_all(&host, &learners)?;
    let repeat_p50 = percentile(&repeat, 0.5);
    table.check(
        "unit_1 repeat visit p50 (sandboxed)",
        us(repeat_p50),
        "≤ 100 µs",
        repeat_p50 <= Duration::from_micros(100),
    );
    table.add("unit_1 repeat visit p99", us(percentile(&repeat, 0.99)));
    let total: Duration = repeat.iter().sum();
    table.add(
        "pages/s, one thread",
        format!("{:.0}", n as f64 / total.as_secs_f64()),
    );
    let secs = Duration::from_secs(if quick { 2 } else { 10 });
    let all = throughput(&host, &learners, cores, secs)?;
    table.check(
        &format!("pages/s, {cores} threads"),
        format!("{all:.0}"),
        "≥ 10000",
        all >= 10_000.0,
    );
    let sled_figures = pg_figures::SledFigures {
        first,
        repeat,
        pages_per_second: all,
    };
    pg_figures::figures(
        database.as_ref(),
        &learners,
        &sled_figures,
        cores,
        quick,
        &mut table,
    )?;
    if args.iter().any(|a| a == "--postgres") {
        // Only the rows that compare PostgreSQL with sled.
        http_hosts::figures(database.as_ref(), &learners, cores, quick, &mut table)?;
        table.print();
        return Ok(());
    }

    // Memory per concurrent render: the peak over a burst of concurrent renders.
    let burst = 32;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = rss_kib("VmHWM:");
    let barrier = Arc::new(Barrier::new(burst));
    std::thread::scope(|scope| {
        for learner in learners.iter().take(burst) {
            let (host, barrier, l) = (host.clone(), barrier.clone(), learner.clone());
            scope.spawn(move || {
                barrier.wait();
                let _ = host.render(&request(&l));
            });
        }
    });
    let peak = rss_kib("VmHWM:");
    table.add(
        "resident memory per concurrent render",
        format!(
            "{:.0} KiB ({burst} at once)",
            (peak.saturating_sub(before)) as f64 / burst as f64
        ),
    );

    // The native floor: the same block code and page, without the sandbox.
    let native_dir = tempfile::tempdir()?;
    let native = open_host(native_dir.path(), true)?;
    let native_first = render_all(&native, &learners)?;
    let native_repeat = render_all(&native, &learners)?;
    let native_p50 = percentile(&native_repeat, 0.5);
    table.add(
        "unit_1 first visit p50 (native)",
        us(percentile(&native_first, 0.5)),
    );
    table.add("unit_1 repeat visit p50 (native floor)", us(native_p50));
    table.add(
        "sandboxed / native, repeat p50",
        format!(
            "{:.2}x",
            repeat_p50.as_secs_f64() / native_p50.as_secs_f64()
        ),
    );

    // Containment (markup::contain): every page parses each block's own HTML once and
    // writes it out again. Measured here on the whole rendered unit as one fragment, which
    // is more than a render parses (it includes the host's wrappers and labels).
    let mut contained = Vec::new();
    for (user, view) in [
        (User::learner(&learners[0]), View::Student),
        (User::staff("bench-staff"), View::Staff),
    ] {
        let page = host.render(&RenderRequest {
            user,
            view,
            ..request(&learners[0])
        })?;
        let rounds = if quick { 2_000 } else { 20_000 };
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            std::hint::black_box(xbhost::markup::contain_block_html(&page.html, view));
            times.push(t.elapsed());
        }
        times.sort();
        contained.push(format!(
            "{} ({} bytes)",
            us(percentile(&times, 0.5)),
            page.html.len()
        ));
    }
    table.add(
        "containment of unit_1's HTML p50, student / staff",
        contained.join(" / "),
    );

    http::figures(&host, dir.path(), &learners, quick, &mut table)?;
    http_hosts::figures(database.as_ref(), &learners, cores, quick, &mut table)?;
    linear::figures(&mut table, quick, database.as_ref())?;
    first_visits::figures(database.as_ref(), quick, &mut table)?;

    // Plugin cold start: compiling versus loading from the compiled cache.
    let runtime = Runtime::new(xbhost::runtime::SandboxLimits::default(), Pooling::Auto)?;
    let bytes = wasm("split_test")?;
    let record = PluginRecord {
        name: "split_test".into(),
        version: "0".into(),
        contract: "0.1.0".into(),
        hash: blake3::hash(&bytes).to_hex().to_string(),
        size: bytes.len() as u64,
    };
    let mut compile = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        runtime.load(record.clone(), &bytes, None)?;
        compile.push(t.elapsed());
    }
    compile.sort();
    let cache_dir = tempfile::tempdir()?;
    let cache = CompiledCache::new(cache_dir.path(), runtime.engine())?;
    runtime.load(record.clone(), &bytes, Some(&cache))?;
    let mut cached = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let loaded = runtime.load(record.clone(), &bytes, Some(&cache))?;
        cached.push(t.elapsed());
        assert_eq!(loaded.origin, xbhost::runtime::cache::Origin::Cache);
    }
    cached.sort();
    table.add(
        "split_test plugin: compile",
        format!("{:.1} ms", compile[1].as_secs_f64() * 1e3),
    );
    let cached_p50 = percentile(&cached, 0.5);
    table.check(
        "split_test plugin: load from compiled cache",
        format!("{:.2} ms", cached_p50.as_secs_f64() * 1e3),
        "≤ 10 ms",
        cached_p50 <= Duration::from_millis(10),
    );

    python_block::figures(&mut table, quick)?;

    // Pure assignments.
    let partition = host
        .course(DEMO)?
        .partition(1)
        .expect("demo partition 1")
        .clone();
    let ids: Vec<String> = (0..100_000).map(|i| format!("user-{i}")).collect();
    let rounds = if quick { 5 } else { 30 };
    let t = Instant::now();
    let mut sum = 0u64;
    for _ in 0..rounds {
        for id in &ids {
            sum += xbhost::assignment::assign(DEMO, &partition, id).map_or(0, |g| g.id);
        }
    }
    let rate = (rounds * ids.len()) as f64 / t.elapsed().as_secs_f64();
    std::hint::black_box(sum);
    table.check(
        "pure assignments/s, one core",
        format!("{rate:.0}"),
        "≥ 2000000",
        rate >= 2_000_000.0,
    );

    // Tags, straight on the store.
    let storage = host.storage();
    let writes = if quick { 20_000 } else { 200_000 };
    let t = Instant::now();
    for i in 0..writes {
        storage.set_course_tag(DEMO, &learners[i % learners.len()], "bench.tag", "v")?;
    }
    table.add(
        "tag writes/s (unflushed)",
        format!("{:.0}", writes as f64 / t.elapsed().as_secs_f64()),
    );
    let t = Instant::now();
    for i in 0..writes {
        std::hint::black_box(storage.course_tag(
            DEMO,
            &learners[i % learners.len()],
            "bench.tag",
        )?);
    }
    table.add(
        "tag reads/s",
        format!("{:.0}", writes as f64 / t.elapsed().as_secs_f64()),
    );
    let flushed = 200;
    let t = Instant::now();
    for learner in learners.iter().take(flushed) {
        storage.set_course_tag(DEMO, learner, "bench.flushed", "v")?;
        storage.flush()?;
    }
    table.add(
        "tag writes/s, each flushed",
        format!("{:.0}", flushed as f64 / t.elapsed().as_secs_f64()),
    );

    let soak_ok = if soak_secs > 0 {
        soak(&host, cores, Duration::from_secs(soak_secs), &mut table)?
    } else {
        true
    };
    let soak_new_ok = soak_new_secs == 0
        || soak_new::figures(&mut table, cores, soak_new_secs, database.as_ref())?;
    table.print();
    if !soak_ok {
        bail!("the soak failed (see the table)");
    }
    if !soak_new_ok {
        bail!("the soak with new learners failed (see the table)");
    }
    Ok(())
}

/// Only repeat visits of unit_1, for 10 seconds: run under `perf record` to see what a
/// sandboxed page costs (see BENCHMARKS.md), on sled or on this run's PostgreSQL database.
fn profile_repeat(database: Option<&pg::BenchDatabase>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let host = open_host_on(dir.path(), false, database.map(|d| d.url()))?;
    let learners: Vec<String> = (0..1000).map(|i| format!("profile-{i}")).collect();
    render_all(&host, &learners)?;
    let started = Instant::now();
    let mut pages = 0u64;
    while started.elapsed() < Duration::from_secs(10) {
        render_all(&host, &learners)?;
        pages += learners.len() as u64;
    }
    println!(
        "{pages} repeat visits in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Mixed load on every core: repeat and first visits, tag writes, problem submissions.
/// Fails on any error, or if resident memory keeps growing after warm-up.
fn soak(host: &Host, cores: usize, duration: Duration, table: &mut Table) -> Result<bool> {
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut samples = Vec::new();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..cores {
            let (host, stop, ops, errors) =
                (host.clone(), stop.clone(), ops.clone(), errors.clone());
            scope.spawn(move || {
                let mut i: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let learner = format!("soak-{t}-{}", i % 5_000);
                    let ok = match i % 10 {
                        // First visits from a pool that runs out after about 15 s, so stored
                        // data stops growing and any later growth of memory is a leak.
                        0 => host
                            .render(&request(&format!("soak-new-{t}-{}", (i / 10) % 5_000)))
                            .map(|o| o.failures.is_empty()),
                        1 => host
                            .render(&RenderRequest {
                                course_key: SOAK_COURSE.into(),
                                usage_id: "t".into(),
                                user: User::learner(&learner),
                                view: View::Student,
                                user_agent: None,
                                masquerade: None,
                            })
                            .map(|o| o.failures.is_empty()),
                        2 => host
                            .handle(
                                SOAK_COURSE,
                                "p",
                                &User::learner(&learner),
                                "submit",
                                &json!({"answer": i as usize % 2}),
                            )
                            .map(|a| a["attempts"].as_u64().is_some()),
                        _ => host
                            .render(&request(&learner))
                            .map(|o| o.failures.is_empty()),
                    };
                    if !matches!(ok, Ok(true)) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while started.elapsed() < duration {
            std::thread::sleep(Duration::from_secs(1));
            samples.push(rss_kib("VmRSS:"));
        }
        stop.store(true, Ordering::Relaxed);
    });
    let errors = errors.load(Ordering::Relaxed);
    let ops = ops.load(Ordering::Relaxed);
    // Memory after warm-up (a sixth of the run) against the end.
    let warm = samples[samples.len() / 6];
    let end = *samples.last().expect("samples");
    let max = samples.iter().copied().max().unwrap_or(0);
    let flat = end <= warm + warm / 5 + 16 * 1024;
    table.add(
        &format!("soak: {}s on {cores} threads", duration.as_secs()),
        format!(
            "{ops} operations, {:.0}/s",
            ops as f64 / started.elapsed().as_secs_f64()
        ),
    );
    table.check("soak: errors", format!("{errors}"), "0", errors == 0);
    let curve: Vec<String> = samples
        .iter()
        .step_by(10)
        .map(|kib| format!("{}", kib / 1024))
        .collect();
    table.add("soak: resident memory every 10 s (MiB)", curve.join(" "));
    table.check(
        "soak: resident memory after warm-up / end / max",
        format!("{} / {} / {} MiB", warm / 1024, end / 1024, max / 1024),
        "flat (end ≤ warm-up + 20% + 16 MiB)",
        flat,
    );
    Ok(errors == 0 && flat)
}
