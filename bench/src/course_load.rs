//! Loading large courses: `Host::load_course` (the structure checked, every block's
//! `validate` run in the sandbox, the document stored and flushed) on a chain of
//! verticals 1,000, 10,000 and 100,000 deep, the shape that made the old cycle check
//! quadratic (a 20,000-deep chain took 43 s). Linear loading shows as a flat time per
//! block, and the last row is the time per block at 100k over the time per block at 1k
//! (`linear::ratio_row`); the structure check alone (`Course::new`) is shown beside it.

use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use xbhost::model::{Course, CourseDoc};
use xbhost::{Host, HostConfig};

use super::linear::{TIME_BOUND, ratio_row, short, thousands};
use super::{Table, wasm};

/// A course that is one chain of `n` verticals, each the only child of the one before
/// (its key names the size and `copy`, so each load is of a new course).
fn chain(n: usize, copy: usize) -> Result<CourseDoc> {
    let blocks: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let children: Vec<String> = if i + 1 < n {
                vec![format!("v{}", i + 1)]
            } else {
                vec![]
            };
            json!({"usage_id": format!("v{i}"), "type": "vertical", "children": children})
        })
        .collect();
    Ok(serde_json::from_value(json!({
        "course_key": format!("course-v1:bench+chain+{n}-{copy}"),
        "blocks": blocks,
    }))?)
}

pub fn figures(table: &mut Table) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let host = Host::open(dir.path(), HostConfig::from_env()?)?;
    host.add_plugin(&wasm("vertical")?, None)?;
    let sizes = [1_000, 10_000, 100_000];
    let mut per_block = Vec::new();
    for n in sizes {
        // The median of a few loads (five where one is quick): one sample is at the mercy
        // of a neighbour's burst on this shared machine.
        let copies = (300_000 / n).clamp(3, 5);
        let mut checks = Vec::new();
        let mut loads = Vec::new();
        for copy in 0..copies {
            let doc = chain(n, copy)?;
            let t = Instant::now();
            Course::new(doc.clone())?;
            checks.push(t.elapsed());
            let t = Instant::now();
            let report = host.load_course(doc)?;
            loads.push(t.elapsed());
            assert_eq!(report.blocks, n);
        }
        checks.sort();
        loads.sort();
        let (checked, loaded) = (checks[copies / 2], loads[copies / 2]);
        per_block.push(loaded.as_secs_f64() / n as f64);
        table.add(
            &format!(
                "course load, {} blocks (a chain {} deep)",
                short(n),
                thousands(n)
            ),
            format!(
                "{:.0} ms, {:.1} µs/block (structure check {:.1} ms; median of {copies})",
                loaded.as_secs_f64() * 1e3,
                loaded.as_secs_f64() * 1e6 / n as f64,
                checked.as_secs_f64() * 1e3
            ),
        );
    }
    ratio_row(
        table,
        &format!(
            "course load: time per block {} / {}",
            short(sizes[2]),
            short(sizes[0])
        ),
        per_block[2],
        per_block[0],
        TIME_BOUND,
    );
    Ok(())
}
