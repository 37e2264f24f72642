//! `xbhost events export --course KEY [--since T] [--out FILE]` and the report on a store
//! that keeps the events (issue #19 point 4): on PostgreSQL the lines are the course's rows
//! of the events table in stored order (one assignment event per stored group, `--since`
//! filtering, a malformed `--since` refused naming it); on sled the same command reads the
//! event log and writes the same lines, which is what the database holds after `store
//! copy`; the report on the database counts what the report on sled counts.

use std::path::Path;

use xbhost_tests::pg::TestDatabase;
use xbhost_tests::{DEMO_COURSE, demo_course_path, plugin_path, xbhost, xbhost_ok};

const ASSIGNED: &str = "xmodule.partitions.assigned_user_to_partition";

fn users_file(dir: &Path, n: usize) -> std::path::PathBuf {
    let ids: Vec<String> = (0..n).map(|i| format!("reader-{i}")).collect();
    let path = dir.join("users.txt");
    std::fs::write(&path, ids.join("\n")).unwrap();
    path
}

fn render_args(users: &Path) -> Vec<String> {
    [
        "render",
        "--course",
        DEMO_COURSE,
        "--block",
        "unit_1",
        "--json",
        "--users-file",
        users.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn on_postgres_the_export_is_the_events_table_in_stored_order_and_since_filters() {
    let db = TestDatabase::fresh();
    db.load_demo();
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), 60);
    let args = render_args(&users);
    db.cli_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let export = db.cli_ok(&["events", "export", "--course", DEMO_COURSE]);
    let stored: Vec<String> = db
        .query(
            "SELECT line FROM events WHERE course_id = $1 ORDER BY seq",
            &[&DEMO_COURSE],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!stored.is_empty());
    assert_eq!(export.lines().collect::<Vec<_>>(), stored);
    // One assignment event per stored group, naming the group stored.
    let events = lines(&export);
    let groups = db.query(
        "SELECT user_id, key, value FROM user_course_tags WHERE course_id = $1
         AND key LIKE 'xblock.partition_service.partition_%' ORDER BY 1, 2",
        &[&DEMO_COURSE],
    );
    assert_eq!(groups.len(), 120);
    let mut assigned: Vec<(String, String, String)> = events
        .iter()
        .filter(|e| e["name"] == ASSIGNED)
        .map(|e| {
            let key = format!(
                "xblock.partition_service.partition_{}",
                e["data"]["partition_id"]
            );
            let group = e["data"]["group_id"].to_string();
            (e["user_id"].as_str().unwrap().to_string(), key, group)
        })
        .collect();
    assigned.sort();
    let mut stored_groups: Vec<(String, String, String)> = groups
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    stored_groups.sort();
    assert_eq!(assigned, stored_groups);

    // --since keeps the events at or after the time given, in the same order.
    let times: Vec<&str> = events.iter().map(|e| e["time"].as_str().unwrap()).collect();
    let since = times[times.len() / 2];
    let after = db.cli_ok(&[
        "events",
        "export",
        "--course",
        DEMO_COURSE,
        "--since",
        since,
    ]);
    let expected: Vec<&str> = export
        .lines()
        .zip(&times)
        .filter(|(_, t)| **t >= since)
        .map(|(l, _)| l)
        .collect();
    assert!(!expected.is_empty() && expected.len() < stored.len());
    assert_eq!(after.lines().collect::<Vec<_>>(), expected);
    let future = db.cli_ok(&[
        "events",
        "export",
        "--course",
        DEMO_COURSE,
        "--since",
        "2999-01-01",
    ]);
    assert!(future.is_empty(), "{future}");
    let (ok, _, err) = db.cli(&[
        "events",
        "export",
        "--course",
        DEMO_COURSE,
        "--since",
        "last tuesday",
    ]);
    assert!(
        !ok && err.contains("--since") && err.contains("last tuesday"),
        "{err}"
    );
    // Another course's export is empty; --out writes the same lines to a file.
    assert!(
        db.cli_ok(&["events", "export", "--course", "course-v1:x+none+1"])
            .is_empty()
    );
    let file = dir.path().join("events-out.jsonl");
    db.cli_ok(&[
        "events",
        "export",
        "--course",
        DEMO_COURSE,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), export);
}

#[test]
fn on_sled_the_export_reads_the_log_and_matches_the_database_after_a_copy() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for p in ["html", "vertical", "split_test", "problem"] {
        xbhost_ok(d, &["plugin", "add", plugin_path(p).to_str().unwrap()]);
    }
    xbhost_ok(d, &["course", "load", demo_course_path().to_str().unwrap()]);
    let users = users_file(d, 80);
    let args = render_args(&users);
    xbhost_ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let submit = [
        "handle",
        "--course",
        DEMO_COURSE,
        "--block",
        "check_sum",
        "--user",
        "reader-1",
        "--handler",
        "submit",
        "--payload",
        "{\"answer\": [1]}",
    ];
    xbhost_ok(d, &submit);
    // A damaged line is skipped by the export, as by the report.
    let log = d.join("events.jsonl");
    let written = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, format!("{written}{{\"torn\": \n")).unwrap();

    let export = xbhost_ok(d, &["events", "export", "--course", DEMO_COURSE]);
    assert_eq!(
        export, written,
        "the export is the log's lines of the course"
    );
    let events = lines(&export);
    assert_eq!(events.iter().filter(|e| e["name"] == ASSIGNED).count(), 160);
    let since = events[events.len() / 2]["time"]
        .as_str()
        .unwrap()
        .to_string();
    let after_on_sled = xbhost_ok(
        d,
        &[
            "events",
            "export",
            "--course",
            DEMO_COURSE,
            "--since",
            &since,
        ],
    );
    assert!(!after_on_sled.is_empty());
    let (ok, _, err) = xbhost(
        d,
        &[
            "events",
            "export",
            "--course",
            DEMO_COURSE,
            "--since",
            "2026-13-45",
        ],
    );
    assert!(!ok && err.contains("--since"), "{err}");
    let report_on_sled: serde_json::Value = serde_json::from_str(&xbhost_ok(
        d,
        &["report", "--course", DEMO_COURSE, "--json"],
    ))
    .unwrap();
    assert_eq!(report_on_sled["damaged_lines"]["total"], 1);

    let db = TestDatabase::fresh();
    xbhost_ok(d, &["store", "copy", "--to", &db.url]);
    let on_db = ["--database", db.url.as_str()];
    let export_args = ["events", "export", "--course", DEMO_COURSE];
    assert_eq!(xbhost_ok(d, &[&on_db[..], &export_args].concat()), export);
    let since_args = [&export_args[..], &["--since", &since]].concat();
    assert_eq!(
        xbhost_ok(d, &[&on_db[..], &since_args].concat()),
        after_on_sled
    );

    let report_on_db: serde_json::Value = serde_json::from_str(&xbhost_ok(
        d,
        &[&on_db[..], &["report", "--course", DEMO_COURSE, "--json"]].concat(),
    ))
    .unwrap();
    assert_eq!(report_on_db["events_read"], report_on_sled["events_read"]);
    assert_eq!(report_on_db["partitions"], report_on_sled["partitions"]);
    assert_eq!(report_on_db["events_source"], "the events table");
    assert_eq!(report_on_db["damaged_lines"]["total"], 0);
}
