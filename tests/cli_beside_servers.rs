//! The CLI and servers together on one PostgreSQL database (#19 point 7): with an
//! `xbhost serve --database URL` running (and serving pages all along), every CLI command
//! works against the same database at the same time, each sees what the server stored and
//! the server what it stored; and what the CLI changes in a course (a course load, an
//! experiment's state) is in force on the server within about a second (the store's change
//! notices, LISTEN/NOTIFY), without restarting it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use xbhost_tests::olx::{CONTENT_GROUPS, TEST_COURSE, olx};
use xbhost_tests::pg::TestDatabase;
use xbhost_tests::served::{Served, admin_token, learner_token};
use xbhost_tests::{DEMO_COURSE, PRODUCT_PLUGINS, demo_course_path, plugin_path};

/// How long a change made through the CLI may take to be in force on a server. The store
/// announces changes at once (NOTIFY at commit); this bound is generous for a loaded CI
/// machine, and the delay measured is printed.
const PROPAGATION_BOUND: Duration = Duration::from_secs(3);

/// A learner's page of the demo unit from the server: its status and, for a 200, the groups
/// it shows (partition id to group) and its HTML.
async fn page(
    c: &reqwest::Client,
    served: &Served,
    learner: &str,
) -> (StatusCode, BTreeMap<String, u64>, String) {
    let response = c
        .get(format!("{}?format=json", served.block_url("unit_1")))
        .bearer_auth(learner_token(learner))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{learner}'s page: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap();
    if status != StatusCode::OK {
        return (status, BTreeMap::new(), text);
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(
        body["failures"].as_array().unwrap().is_empty(),
        "{learner}: blocks failed: {body}"
    );
    let groups = serde_json::from_value(body["assignments"].clone()).unwrap();
    (status, groups, body["html"].as_str().unwrap().to_string())
}

/// Polls the server until `done` holds of the page of `learner(attempt)`, and returns how
/// long that took; fails when it takes longer than `bound`.
async fn in_force_within(
    bound: Duration,
    c: &reqwest::Client,
    served: &Served,
    what: &str,
    learner: impl Fn(usize) -> String,
    done: impl Fn(StatusCode, &BTreeMap<String, u64>, &str) -> bool,
) -> Duration {
    let started = Instant::now();
    for attempt in 0.. {
        let (status, groups, html) = page(c, served, &learner(attempt)).await;
        let took = started.elapsed();
        if done(status, &groups, &html) {
            println!("{what}: in force on the server after {took:?}");
            assert!(took <= bound, "{what}: in force only after {took:?}");
            return took;
        }
        assert!(
            took < bound,
            "{what}: not in force on the server after {:?} (last page: {status}, {groups:?}) \
             server log:\n{}",
            started.elapsed(),
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!()
}

/// Pages of the demo unit for new learners, all the time the CLI works: none may fail with
/// a server error (before the course exists, a 404 is the right answer).
fn keep_serving(
    served: &Served,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>)> {
    let url = format!("{}?format=json", served.block_url("unit_1"));
    tokio::spawn(async move {
        let c = xbhost_tests::http::client();
        let (mut served_ok, mut bad) = (0, Vec::new());
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let learner = format!("background-{n}");
            match c
                .get(&url)
                .bearer_auth(learner_token(&learner))
                .timeout(Duration::from_secs(60))
                .send()
                .await
            {
                Ok(r) if r.status() == StatusCode::OK => served_ok += 1,
                Ok(r) if r.status() == StatusCode::NOT_FOUND => {}
                Ok(r) => bad.push(format!("{learner}: {}", r.status())),
                Err(e) => bad.push(format!("{learner}: {e}")),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (served_ok, bad)
    })
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cli_command_works_beside_a_server_on_the_same_database() {
    let db = TestDatabase::fresh();
    // The server starts on the empty database: everything it serves comes from the CLI.
    let served = Served::on_database(&db.url, &[]);
    let c = xbhost_tests::http::client();
    let stop = Arc::new(AtomicBool::new(false));
    let background = keep_serving(&served, stop.clone());

    // plugin add / list
    for p in PRODUCT_PLUGINS {
        db.cli_ok(&["plugin", "add", plugin_path(p).to_str().unwrap()]);
    }
    let listed = db.cli_ok(&["plugin", "list"]);
    for p in PRODUCT_PLUGINS {
        assert!(listed.contains(p), "plugin list lacks {p}: {listed}");
    }

    // course load: the server, which had no such course, serves it (its first page compiles
    // every plugin: the propagation alone is measured by the test below, on a warm server).
    db.cli_ok(&["course", "load", demo_course_path().to_str().unwrap()]);
    in_force_within(
        Duration::from_secs(60),
        &c,
        &served,
        "a course loaded through the CLI (and the plugins compiled)",
        |i| format!("first-{i}"),
        |status, _, _| status == StatusCode::OK,
    )
    .await;

    // course list / show / import
    db.cli_ok(&[
        "course",
        "import",
        olx("openedx-test-course").to_str().unwrap(),
    ]);
    let courses = db.cli_ok(&["course", "list"]);
    assert!(
        courses.contains(DEMO_COURSE) && courses.contains(TEST_COURSE),
        "{courses}"
    );
    let shown = db.cli_ok(&["course", "show", DEMO_COURSE]);
    assert_eq!(json_of(&shown)["course_key"], DEMO_COURSE);

    // render through the CLI, then the server shows that learner the same groups; and the
    // other way round: `assign` reads the group a server page stored.
    let rendered = db.cli_ok(&[
        "render",
        "--course",
        DEMO_COURSE,
        "--block",
        "unit_1",
        "--user",
        "cli-ann",
        "--json",
    ]);
    let cli_groups: BTreeMap<String, u64> =
        serde_json::from_value(json_of(rendered.lines().next().unwrap())["assignments"].clone())
            .unwrap();
    assert_eq!(cli_groups.len(), 2, "{rendered}");
    let (status, server_groups, _) = page(&c, &served, "cli-ann").await;
    assert_eq!((status, &server_groups), (StatusCode::OK, &cli_groups));
    let (_, bob_groups, _) = page(&c, &served, "srv-bob").await;
    for (partition, group) in &bob_groups {
        let out = db.cli_ok(&[
            "assign",
            "--course",
            DEMO_COURSE,
            "--partition",
            partition,
            "--user",
            "srv-bob",
            "--json",
        ]);
        assert!(
            out.contains(&group.to_string()),
            "assign of srv-bob in {partition} ({group} on the server): {out}"
        );
    }

    // experiment force / unforce / window / show
    let other = 1 - bob_groups["0"];
    db.cli_ok(&[
        "experiment",
        "force",
        "--course",
        DEMO_COURSE,
        "--partition",
        "0",
        "--user",
        "srv-bob",
        "--group",
        &other.to_string(),
    ]);
    in_force_within(
        PROPAGATION_BOUND,
        &c,
        &served,
        "a user forced through the CLI",
        |_| "srv-bob".into(),
        |_, groups, _| groups.get("0") == Some(&other),
    )
    .await;
    db.cli_ok(&[
        "experiment",
        "unforce",
        "--course",
        DEMO_COURSE,
        "--partition",
        "0",
        "--user",
        "srv-bob",
    ]);
    in_force_within(
        PROPAGATION_BOUND,
        &c,
        &served,
        "a user unforced through the CLI",
        |_| "srv-bob".into(),
        |_, groups, _| groups.get("0") == Some(&bob_groups["0"]),
    )
    .await;
    db.cli_ok(&[
        "experiment",
        "window",
        "--course",
        DEMO_COURSE,
        "--partition",
        "1",
        "--start",
        "2026-01-01",
        "--end",
        "2099-01-01",
    ]);
    let show = db.cli_ok(&["experiment", "show", "--course", DEMO_COURSE]);
    assert!(show.contains("2026-01-01"), "{show}");
    db.cli_ok(&[
        "experiment",
        "window",
        "--course",
        DEMO_COURSE,
        "--partition",
        "1",
        "--clear",
    ]);

    // enrollment set / import
    db.cli_ok(&[
        "enrollment",
        "set",
        "--course",
        DEMO_COURSE,
        "--user",
        "cli-ann",
        "--date",
        "2026-02-01",
    ]);
    let csv = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        csv.path(),
        "user_id,date\nsrv-bob,2026-02-02\ncarl,2026-02-03\n",
    )
    .unwrap();
    db.cli_ok(&[
        "enrollment",
        "import",
        "--course",
        DEMO_COURSE,
        csv.path().to_str().unwrap(),
    ]);
    assert_eq!(
        db.count(
            "SELECT count(*) FROM enrollments WHERE course_id = $1",
            &[&DEMO_COURSE]
        ),
        3
    );

    // tags set / get / list, beside the server's own tags of the same learner
    db.cli_ok(&["tags", "set", "--user", "cli-ann", "--global", "lang", "fr"]);
    assert_eq!(
        db.cli_ok(&["tags", "get", "--user", "cli-ann", "--global", "lang"])
            .trim(),
        "fr"
    );
    db.cli_ok(&[
        "tags",
        "set",
        "--user",
        "cli-ann",
        "--course",
        DEMO_COURSE,
        "note",
        "hello",
    ]);
    let tags = db.cli_ok(&["tags", "list", "--user", "cli-ann", "--course", DEMO_COURSE]);
    assert!(
        tags.contains("note") && tags.contains("partition_0"),
        "{tags}"
    );

    // handle (a problem submission) and grades
    let answer = db.cli_ok(&[
        "handle",
        "--course",
        DEMO_COURSE,
        "--block",
        "check_sum",
        "--user",
        "cli-ann",
        "--handler",
        "submit",
        "--payload",
        r#"{"answer": 1}"#,
    ]);
    assert!(answer.contains("attempts"), "{answer}");
    let grades = db.cli_ok(&[
        "grades",
        "--course",
        DEMO_COURSE,
        "--user",
        "cli-ann",
        "--json",
    ]);
    assert!(grades.contains("cli-ann"), "{grades}");

    // cohort set / list on the imported course
    db.cli_ok(&[
        "cohort",
        "set",
        "--course",
        TEST_COURSE,
        "--partition",
        &CONTENT_GROUPS.to_string(),
        "--user",
        "zed",
        "--group",
        "1255884249",
    ]);
    let cohort = db.cli_ok(&[
        "cohort",
        "list",
        "--course",
        TEST_COURSE,
        "--partition",
        &CONTENT_GROUPS.to_string(),
    ]);
    assert!(cohort.contains("zed"), "{cohort}");

    // refresh-identifier: an anonymous session's groups go to the user who signs in
    let session = db.cli_ok(&[
        "render",
        "--course",
        DEMO_COURSE,
        "--block",
        "unit_1",
        "--session",
        "sess-42",
        "--json",
    ]);
    let session_groups: BTreeMap<String, u64> =
        serde_json::from_value(json_of(session.lines().next().unwrap())["assignments"].clone())
            .unwrap();
    db.cli_ok(&[
        "refresh-identifier",
        "--session",
        "sess-42",
        "--user",
        "dora",
    ]);
    let (_, dora_groups, _) = page(&c, &served, "dora").await;
    assert_eq!(
        dora_groups, session_groups,
        "the server shows dora her session's groups"
    );

    // course add-missing-groups: split_hints' group 0 of partition 1 has no child; a
    // learner of that group sees the empty unit the CLI adds, on the server, without a
    // restart.
    let mut in_group_0 = None;
    for i in 0..60 {
        let learner = format!("hints-{i}");
        let (_, groups, _) = page(&c, &served, &learner).await;
        if groups.get("1") == Some(&0) {
            in_group_0 = Some(learner);
            break;
        }
    }
    let in_group_0 = in_group_0.expect("one of 60 learners is in group 0 of partition 1");
    let added = db.cli_ok(&[
        "course",
        "add-missing-groups",
        "--course",
        DEMO_COURSE,
        "--block",
        "split_hints",
    ]);
    assert!(added.contains("added split_hints_group_0"), "{added}");
    in_force_within(
        PROPAGATION_BOUND,
        &c,
        &served,
        "a group's child added through the CLI",
        |_| in_group_0.clone(),
        |_, _, html| html.contains("data-usage-id=\"split_hints_group_0\""),
    )
    .await;

    // events export: the JSON lines hold what the server stored (srv-bob's assignments,
    // made by server pages) and what the CLI did (cli-ann's), while pages keep coming.
    let exported = db.cli_ok(&["events", "export", "--course", DEMO_COURSE]);
    let lines: Vec<Value> = exported.lines().map(json_of).collect();
    let assigned = |user: &str| {
        lines
            .iter()
            .filter(|e| e["name"] == xbhost::events::ASSIGNED_EVENT && e["user_id"] == user)
            .count()
    };
    assert!(
        assigned("srv-bob") >= 2 && assigned("cli-ann") >= 2,
        "srv-bob's and cli-ann's assignments in the export: {} lines",
        lines.len()
    );
    let stored = db.count(
        "SELECT count(*) FROM events WHERE course_id = $1",
        &[&DEMO_COURSE],
    );
    assert!(
        lines.len() as i64 <= stored && lines.len() > 10,
        "{} lines exported, {stored} stored after",
        lines.len()
    );
    let since = db.cli_ok(&[
        "events",
        "export",
        "--course",
        DEMO_COURSE,
        "--since",
        "2099-01-01T00:00:00Z",
    ]);
    assert_eq!(since.trim(), "", "nothing is after 2099: {since}");

    // grades export, beside the server
    let grades_csv = tempfile::NamedTempFile::new().unwrap();
    db.cli_ok(&[
        "grades",
        "export",
        "--course",
        DEMO_COURSE,
        "--csv",
        grades_csv.path().to_str().unwrap(),
    ]);
    let csv_text = std::fs::read_to_string(grades_csv.path()).unwrap();
    assert!(csv_text.contains("cli-ann"), "{csv_text}");

    // report, over what the server and the CLI both stored
    let report = json_of(&db.cli_ok(&["report", "--course", DEMO_COURSE, "--json"]));
    assert!(report.to_string().contains("partition"), "{report}");

    stop.store(true, Ordering::SeqCst);
    let (served_ok, bad) = background.await.unwrap();
    assert!(
        bad.is_empty(),
        "the server failed pages while the CLI worked: {bad:?}"
    );
    assert!(served_ok > 0, "the server served pages all along");
    let health = c
        .get(format!("{}/healthz", served.url))
        .bearer_auth(admin_token("ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    println!("{served_ok} background pages served while the CLI worked");
}

/// A course load and an experiment state set through the CLI are in force on a running
/// server within the bound (no restart, no cache of the old course kept).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_course_changes_are_in_force_on_the_server_within_a_second() {
    let db = TestDatabase::fresh();
    db.load_demo();
    let served = Served::on_database(&db.url, &[]);
    let c = xbhost_tests::http::client();
    let (status, _, html) = page(&c, &served, "warm").await;
    assert_eq!(status, StatusCode::OK);
    const OLD: &str = "A fraction names a part of a whole.";
    assert!(html.contains(OLD), "the demo's introduction: {html}");

    // A changed course loaded through the CLI: the server shows the new text.
    let changed = std::fs::read_to_string(demo_course_path())
        .unwrap()
        .replace(OLD, "A fraction, changed through the CLI.");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), changed).unwrap();
    db.cli_ok(&["course", "load", file.path().to_str().unwrap()]);
    let course_took = in_force_within(
        PROPAGATION_BOUND,
        &c,
        &served,
        "a course loaded through the CLI",
        |i| format!("reader-{i}"),
        |status, _, html| status == StatusCode::OK && html.contains("changed through the CLI"),
    )
    .await;

    // An experiment paused through the CLI takes nobody new on the server.
    let (_, before, _) = page(&c, &served, "before-pause").await;
    assert!(before.contains_key("0"), "{before:?}");
    db.cli_ok(&[
        "experiment",
        "state",
        "--course",
        DEMO_COURSE,
        "--partition",
        "0",
        "paused",
    ]);
    let state_took = in_force_within(
        PROPAGATION_BOUND,
        &c,
        &served,
        "an experiment paused through the CLI",
        |i| format!("after-pause-{i}"),
        |status, groups, _| status == StatusCode::OK && !groups.contains_key("0"),
    )
    .await;
    // Learners assigned before keep their group.
    let (_, kept, _) = page(&c, &served, "before-pause").await;
    assert_eq!(kept.get("0"), before.get("0"));
    println!("propagation: course load {course_took:?}, experiment state {state_took:?}");
}

/// `store verify` beside a server on the database it checks: a sled store made with the CLI
/// is copied into the database and a server started on it; verify agrees while the server
/// only serves, and once a server page stores a new learner's groups it no longer agrees,
/// naming the table: it reads the live database, not a snapshot of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_verify_works_beside_a_server_on_the_database_it_checks() {
    let sled = tempfile::tempdir().unwrap();
    let d = sled.path();
    for p in PRODUCT_PLUGINS {
        xbhost_tests::xbhost_ok(d, &["plugin", "add", plugin_path(p).to_str().unwrap()]);
    }
    xbhost_tests::xbhost_ok(d, &["course", "load", demo_course_path().to_str().unwrap()]);
    for user in ["sled-ann", "sled-bob"] {
        xbhost_tests::xbhost_ok(
            d,
            &[
                "render",
                "--course",
                DEMO_COURSE,
                "--block",
                "unit_1",
                "--user",
                user,
            ],
        );
    }
    let db = TestDatabase::fresh();
    let copied = xbhost_tests::xbhost_ok(d, &["store", "copy", "--to", &db.url]);
    assert!(copied.contains("every table agrees"), "{copied}");
    let served = Served::on_database(&db.url, &[]);
    let c = xbhost_tests::http::client();
    // Beside the running server (which stores nothing until it serves a page: a repeat
    // visit stores its exposure events), verify agrees.
    let (ok, out, err) = xbhost_tests::xbhost(d, &["store", "verify", "--against", &db.url]);
    assert!(ok, "store verify beside a running server: {out}{err}");
    assert!(out.contains("holds what the store holds"), "{out}");

    let (status, _, _) = page(&c, &served, "server-only-learner").await;
    assert_eq!(status, StatusCode::OK);
    let (ok, out, err) = xbhost_tests::xbhost(d, &["store", "verify", "--against", &db.url]);
    assert!(
        !ok,
        "the server stored a new learner, yet verify agrees: {out}"
    );
    assert!(
        format!("{out}{err}").contains("user_course_tags"),
        "verify names the table that differs: {out}{err}"
    );
}
