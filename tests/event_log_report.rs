//! The experiment report over a damaged or very large event log, through the `xbhost`
//! binary on a real store: damaged lines (a torn last line, invalid UTF-8, an over-deep and
//! an over-long line) are skipped and counted, and said in the text, JSON and HTML forms,
//! with the figures of the lines that could be read; and a large log is read in bounded
//! memory (the peak resident size of the report process is measured).

use std::collections::BTreeSet;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use xbhost::assignment::partition_tag_key;
use xbhost::events::{Event, EventSink, Experiments, JsonlSink};
use xbhost::model::CourseDoc;
use xbhost::{Host, HostConfig};
use xbhost_tests::{plugin_wasm, xbhost_bin};

const COURSE: &str = "course-v1:xbhost+logs+2026";

/// One experiment with a conversion goal.
fn course() -> CourseDoc {
    serde_json::from_value(json!({
        "course_key": COURSE,
        "user_partitions": [
            {"id": 1, "name": "Solving", "groups": [{"id": 0, "name": "Control"}, {"id": 1, "name": "Treatment"}],
             "goals": [{"name": "solved", "event": "problem_check", "match": {"correct": true}, "block_types": ["problem"]}]}
        ],
        "blocks": [{"usage_id": "page", "type": "html", "fields": {"data": "<p>hi</p>"}}]
    }))
    .unwrap()
}

fn goal_event(user: &str, correct: bool, pad: &str) -> Event {
    Event {
        name: "problem_check".into(),
        time: "2026-11-22T10:00:00.000Z".into(),
        course_key: COURSE.into(),
        user_id: user.into(),
        username: user.into(),
        usage_id: Some("p1".into()),
        plugin: Some("problem".into()),
        data: json!({"correct": correct, "pad": pad}),
        experiments: Experiments {
            enrolled: vec!["Solving".into()],
            assigned: Default::default(),
            forced: Default::default(),
            holdout: false,
        },
        course_tags: Default::default(),
    }
}

/// A data directory with the course and `members` learners stored in its groups.
fn data_dir(members: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::open(dir.path(), HostConfig::default()).unwrap();
    host.add_plugin(&plugin_wasm("html"), None).unwrap();
    host.load_course(course()).unwrap();
    for i in 0..members {
        host.storage()
            .set_course_tag(
                COURSE,
                &format!("u{i}"),
                &partition_tag_key(1),
                &(i % 2).to_string(),
            )
            .unwrap();
    }
    host.storage().flush().unwrap();
    dir
}

/// `xbhost report` over `events`: (success, stdout, stderr).
fn report(data: &Path, events: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(xbhost_bin())
        .arg("--data")
        .arg(data)
        .arg("--events")
        .arg(events)
        .args(["report", "--course", COURSE])
        .args(args)
        .env("XBHOST_LOG", "off")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report_json(data: &Path, events: &Path) -> Value {
    let (ok, out, err) = report(data, events, &["--json"]);
    assert!(ok, "the report failed: {err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_report_skips_counts_and_names_damaged_lines_in_text_json_and_html() {
    let data = data_dir(200);
    let (first, second): (Vec<Event>, Vec<Event>) = (
        (0..100)
            .map(|i| goal_event(&format!("u{i}"), i % 3 == 0, ""))
            .collect(),
        (100..200)
            .map(|i| goal_event(&format!("u{i}"), i % 4 == 0, ""))
            .collect(),
    );
    let clean = data.path().join("clean.jsonl");
    JsonlSink::open(&clean).unwrap().emit(&first).unwrap();
    JsonlSink::open(&clean).unwrap().emit(&second).unwrap();

    // The same events with damage between and after them.
    let damaged = data.path().join("damaged.jsonl");
    JsonlSink::open(&damaged).unwrap().emit(&first).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&damaged)
        .unwrap();
    file.write_all(b"{\"name\": \"\xff\xfe not UTF-8\"}\n")
        .unwrap();
    file.write_all(format!("{}{}\n", "[".repeat(300), "]".repeat(300)).as_bytes())
        .unwrap();
    let long = serde_json::to_string(&goal_event("u1", true, &"x".repeat(5 << 20))).unwrap();
    file.write_all(format!("{long}\n").as_bytes()).unwrap();
    drop(file);
    JsonlSink::open(&damaged).unwrap().emit(&second).unwrap();
    // A crash mid-write leaves the last line torn.
    let torn = serde_json::to_string(&goal_event("u2", true, "")).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&damaged)
        .unwrap();
    file.write_all(&torn.as_bytes()[..60]).unwrap();
    drop(file);
    let damaged_bytes = std::fs::read(&damaged).unwrap();

    let expected = report_json(data.path(), &clean);
    let got = report_json(data.path(), &damaged);
    // The figures are those of the lines that could be read.
    assert_eq!(got["partitions"], expected["partitions"]);
    assert_eq!(got["events_read"], 200);
    let n = first.len() as u64;
    assert_eq!(
        got["damaged_lines"],
        json!({
            "total": 4, "torn": 1, "invalid_utf8": 1, "too_long": 1, "too_deep": 1,
            "not_json": 0, "not_an_event": 0,
            "first": [
                {"line": n + 1, "kind": "invalid_utf8"},
                {"line": n + 2, "kind": "too_deep"},
                {"line": n + 3, "kind": "too_long"},
                {"line": n + 3 + second.len() as u64 + 1, "kind": "torn"},
            ],
            "max_line_bytes": 4 << 20,
            "max_depth": 256,
        }),
        "{got}"
    );
    assert_eq!(expected["damaged_lines"]["total"], 0);

    let html = data.path().join("report.html");
    let (ok, text, err) = report(data.path(), &damaged, &["--html", html.to_str().unwrap()]);
    assert!(ok, "{err}");
    let warning = format!(
        "WARNING: 4 damaged lines of the event log skipped and not counted: 1 torn (cut short \
         mid-write, as by a crash), 1 not UTF-8, 1 over 4194304 bytes \
         (XBHOST_EVENT_LINE_MAX_BYTES), 1 nested over 256 deep (XBHOST_EVENT_LINE_MAX_DEPTH); \
         the damage is at lines {}, {}, {}, {}",
        n + 1,
        n + 2,
        n + 3,
        n + 3 + second.len() as u64 + 1
    );
    assert!(text.contains(&warning), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<p class=\"damaged\">4 damaged lines of the event log skipped"),
        "{page}"
    );
    // Reading never changes the log.
    assert_eq!(std::fs::read(&damaged).unwrap(), damaged_bytes);

    // The limit is the operator's: under 200 bytes, every event line here is too long.
    let out = Command::new(xbhost_bin())
        .arg("--data")
        .arg(data.path())
        .arg("--events")
        .arg(&damaged)
        .args(["report", "--course", COURSE, "--json"])
        .env("XBHOST_LOG", "off")
        .env("XBHOST_EVENT_LINE_MAX_BYTES", "200")
        .output()
        .unwrap();
    assert!(out.status.success());
    let small: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(small["damaged_lines"]["max_line_bytes"], 200);
    assert_eq!(small["damaged_lines"]["too_long"], 200 + 1 + 1, "{small}");
}

/// Peak resident memory of a finished child, in bytes (it is reaped here).
fn wait_peak_rss(child: std::process::Child) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    // Linux reports ru_maxrss in KiB.
    (status, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn the_report_reads_a_large_log_in_bounded_memory() {
    const MEMBERS: usize = 2000;
    const EVENTS: usize = 300_000;
    let data = data_dir(MEMBERS);
    let log = data.path().join("large.jsonl");
    let pad = "p".repeat(600);
    let mut converted = BTreeSet::new();
    {
        let mut out = BufWriter::new(std::fs::File::create(&log).unwrap());
        for i in 0..EVENTS {
            let user = format!("u{}", i % MEMBERS);
            let correct = i % 7 == 0;
            if correct {
                converted.insert(user.clone());
            }
            serde_json::to_writer(&mut out, &goal_event(&user, correct, &pad)).unwrap();
            out.write_all(b"\n").unwrap();
        }
    }
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size > 200 << 20, "a log of {size} bytes");

    let mut child = Command::new(xbhost_bin())
        .arg("--data")
        .arg(data.path())
        .arg("--events")
        .arg(&log)
        .args(["report", "--course", COURSE, "--json"])
        .env("XBHOST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let (status, peak) = wait_peak_rss(child);
    assert_eq!(status, 0, "the report failed");
    println!(
        "report over a {} MiB log of {EVENTS} events: peak resident memory {} MiB",
        size >> 20,
        peak >> 20
    );
    // Reading the log whole would take more than its size; the stream takes what the host
    // itself needs (the wasm engine, the store's cache) and a line at a time.
    assert!(
        peak < 96 << 20 && peak < size / 2,
        "peak resident memory {} MiB over a {} MiB log",
        peak >> 20,
        size >> 20
    );

    // What it read is every event, and the figures follow from them.
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["events_read"], EVENTS);
    assert_eq!(report["damaged_lines"]["total"], 0);
    let groups = report["partitions"][0]["goals"][0]["groups"]
        .as_array()
        .unwrap();
    let conversions: u64 = groups
        .iter()
        .map(|g| g["conversions"].as_u64().unwrap())
        .sum();
    assert_eq!(conversions, converted.len() as u64);
}
