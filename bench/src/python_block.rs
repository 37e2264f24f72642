//! A page with a Python block (#16): what componentize-py's 18 MB component (CPython and
//! the block, pre-initialized) costs to compile, to load from the compiled cache, to render
//! with a fresh instance per request, and in resident memory per instance.
//!
//! The page is a vertical holding one `thumbs_py` block; beside it the same vertical
//! holding one html block, so the Python block's own share is the difference of the two
//! p50s, measured in the same run. Resident memory per instance is the process's peak
//! resident size (VmHWM, reset through `/proc/self/clear_refs` before each measure) above
//! its resident size before: once for one render at a time, once with two threads
//! rendering at once (two instances alive together), divided by two.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use xbhost::runtime::cache::{CompiledCache, Origin};
use xbhost::runtime::{Pooling, Runtime};
use xbhost::storage::PluginRecord;
use xbhost::{Host, HostConfig, RenderRequest, User, View};

use crate::{Table, percentile, rss_kib, us, wasm};

const COURSE: &str = "course-v1:xbhost+python-bench+1";

/// The render p50 a page with a Python block is to stay within (#16).
const TARGET: Duration = Duration::from_millis(1);

pub fn figures(table: &mut Table, quick: bool) -> Result<()> {
    let bytes = wasm("thumbs_py")?;
    let record = PluginRecord {
        name: "thumbs_py".into(),
        version: "0".into(),
        contract: xbhost_sdk::CONTRACT_VERSION.into(),
        hash: blake3::hash(&bytes).to_hex().to_string(),
        size: bytes.len() as u64,
    };
    let runtime = Runtime::new(xbhost::runtime::SandboxLimits::default(), Pooling::Auto)?;
    let t = Instant::now();
    runtime.load(record.clone(), &bytes, None)?;
    let compile = t.elapsed();
    let cache_dir = tempfile::tempdir()?;
    let cache = CompiledCache::new(cache_dir.path(), runtime.engine())?;
    runtime.load(record.clone(), &bytes, Some(&cache))?;
    let mut cached = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let loaded = runtime.load(record.clone(), &bytes, Some(&cache))?;
        cached.push(t.elapsed());
        if loaded.origin != Origin::Cache {
            bail!("thumbs_py was compiled again instead of loaded from the cache");
        }
    }
    cached.sort();
    drop(runtime);
    table.add(
        &format!(
            "Python block (thumbs_py, {:.1} MB): compile / load from compiled cache p50",
            bytes.len() as f64 / 1e6
        ),
        format!(
            "{:.1} s / {:.1} ms",
            compile.as_secs_f64(),
            percentile(&cached, 0.5).as_secs_f64() * 1e3
        ),
    );

    let dir = tempfile::tempdir()?;
    let host = open(dir.path(), &bytes)?;
    let learners: Vec<String> = (0..if quick { 300 } else { 2_000 })
        .map(|i| format!("py-bench-{i:05}"))
        .collect();
    // First visits, then the measured repeat visits of both pages, interleaved so that
    // the machine's drift falls on both alike.
    for l in &learners {
        render(&host, "py_unit", l)?;
        render(&host, "html_unit", l)?;
        render(&host, "min_unit", l)?;
    }
    let (mut python, mut html) = (Vec::new(), Vec::new());
    for l in &learners {
        python.push(render(&host, "py_unit", l)?);
        html.push(render(&host, "html_unit", l)?);
    }
    python.sort();
    html.sort();
    let (py50, html50) = (percentile(&python, 0.5), percentile(&html, 0.5));
    table.check(
        "page with a Python block, repeat visit p50 (fresh instance each)",
        us(py50),
        "≤ 1 ms",
        py50 <= TARGET,
    );
    table.add(
        "  same page with an html block instead / the Python block's share",
        format!("{} / {}", us(html50), us(py50.saturating_sub(html50))),
    );
    table.add("  Python page p99", us(percentile(&python, 0.99)));
    // The same page with a Python block that does nearly nothing (it sleeps 0 ms and
    // answers a constant fragment): what every Python call costs before its own work.
    let mut minimal = Vec::new();
    for l in &learners {
        minimal.push(render(&host, "min_unit", l)?);
    }
    minimal.sort();
    table.add(
        "  page with a Python block that does nothing, p50",
        us(percentile(&minimal, 0.5)),
    );

    let one = peak_above_base(|| {
        for l in learners.iter().take(50) {
            render(&host, "py_unit", l)?;
        }
        Ok(())
    })?;
    let two = peak_above_base(|| {
        std::thread::scope(|scope| -> Result<()> {
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let (host, learners) = (host.clone(), &learners);
                    scope.spawn(move || -> Result<()> {
                        for l in learners.iter().skip(t).step_by(2).take(100) {
                            render(&host, "py_unit", l)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("bench thread")?;
            }
            Ok(())
        })
    })?;
    table.add(
        "Python block: resident memory per instance, one at a time / two at once (each)",
        match (one, two) {
            (Some(one), Some(two)) => format!("{:.1} MiB / {:.1} MiB", mib(one), mib(two) / 2.0),
            _ => "not measured (no /proc/self/clear_refs)".into(),
        },
    );
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A host with vertical, html and the Python block, and a course of two units: one
/// holding a `thumbs_py` block, one an html block.
fn open(dir: &Path, python: &[u8]) -> Result<Host> {
    let host = Host::open(dir, HostConfig::from_env()?)?;
    for p in ["html", "vertical"] {
        host.add_plugin(&wasm(p)?, None)?;
    }
    host.add_plugin(python, None)?;
    host.add_plugin(&wasm("hostile_py")?, None)?;
    host.load_course(serde_json::from_value(json!({
        "course_key": COURSE,
        "blocks": [
            {"usage_id": "py_unit", "type": "vertical", "children": ["vote"]},
            {"usage_id": "vote", "type": "thumbs_py", "fields": {"prompt": "Was this useful?"}},
            {"usage_id": "html_unit", "type": "vertical", "children": ["text"]},
            {"usage_id": "text", "type": "html", "fields": {"data": "<p>Was this useful?</p>"}},
            {"usage_id": "min_unit", "type": "vertical", "children": ["nothing"]},
            {"usage_id": "nothing", "type": "hostile_py", "fields": {"mode": "sleep", "ms": 0}}
        ]
    }))?)?;
    Ok(host)
}

fn render(host: &Host, unit: &str, learner: &str) -> Result<Duration> {
    let started = Instant::now();
    let out = host.render(&RenderRequest {
        course_key: COURSE.into(),
        usage_id: unit.into(),
        user: User::learner(learner),
        view: View::Student,
        user_agent: None,
        masquerade: None,
    })?;
    let took = started.elapsed();
    if !out.failures.is_empty() {
        bail!("{unit} for {learner} failed: {:?}", out.failures);
    }
    Ok(took)
}

/// The process's peak resident size while `run` runs, above its resident size before
/// (KiB); `None` where the peak cannot be reset.
fn peak_above_base(run: impl FnOnce() -> Result<()>) -> Result<Option<u64>> {
    // "5" resets the peak resident size to the current one (proc(5), clear_refs).
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        run()?;
        return Ok(None);
    }
    let base = rss_kib("VmRSS:");
    run().context("rendering the Python page")?;
    Ok(Some(rss_kib("VmHWM:").saturating_sub(base)))
}
