//! `xbhost store copy --to URL` (issue #19 point 8): a sled store made by rendering the demo
//! for hundreds of learners moves to an empty PostgreSQL database, the copy is checked and
//! the check printed, and every learner renders the same groups and state afterwards; a
//! non-empty database is refused naming a table, a database that differs from the store is
//! caught by `store verify` naming the table, and a server holding the store stops the copy.
//! Everything runs the real built binary on a real store and a real database.

use std::collections::BTreeMap;
use std::path::Path;

use xbhost_tests::pg::TestDatabase;
use xbhost_tests::served::Served;
use xbhost_tests::{DEMO_COURSE, demo_course_path, plugin_path, xbhost, xbhost_ok};

const LEARNERS: usize = 300;
const ASSIGNED: &str = "xmodule.partitions.assigned_user_to_partition";

/// A data directory with the demo course, rendered for `LEARNERS` learners (each stored a
/// group in both partitions), some of whom submitted the problem, with enrollments, a
/// forced user and tags of both kinds. Returns it and the file listing the learners.
fn demo_store_with_learners() -> (tempfile::TempDir, std::path::PathBuf) {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for p in ["html", "vertical", "split_test", "problem"] {
        xbhost_ok(d, &["plugin", "add", plugin_path(p).to_str().unwrap()]);
    }
    xbhost_ok(d, &["course", "load", demo_course_path().to_str().unwrap()]);
    let ids: Vec<String> = (0..LEARNERS).map(|i| format!("learner-{i}")).collect();
    let users = d.join("users.txt");
    std::fs::write(&users, ids.join("\n")).unwrap();
    render_all(d, &[], &users);
    for (i, user) in ids.iter().take(20).enumerate() {
        let answer = format!("{{\"answer\": [{}]}}", i % 3);
        let args = ["handle", "--course", DEMO_COURSE, "--block", "check_sum"];
        xbhost_ok(
            d,
            &[
                &args[..],
                &["--user", user, "--handler", "submit", "--payload", &answer],
            ]
            .concat(),
        );
    }
    let csv = d.join("enrolled.csv");
    let dates: Vec<String> = ids[..100]
        .iter()
        .map(|u| format!("{u},2026-09-0{}", 1 + u.len() % 5))
        .collect();
    std::fs::write(&csv, format!("user_id,date\n{}\n", dates.join("\n"))).unwrap();
    let csv = csv.to_str().unwrap();
    xbhost_ok(d, &["enrollment", "import", "--course", DEMO_COURSE, csv]);
    let force = [
        "experiment",
        "force",
        "--course",
        DEMO_COURSE,
        "--partition",
        "0",
    ];
    xbhost_ok(
        d,
        &[&force[..], &["--user", "learner-5", "--group", "1"]].concat(),
    );
    for user in &ids[..10] {
        xbhost_ok(
            d,
            &["tags", "set", "--user", user, "--global", "lang", "fr"],
        );
        let course = ["--course", DEMO_COURSE];
        xbhost_ok(
            d,
            &[
                &["tags", "set", "--user", user][..],
                &course,
                &["cohort", "b"],
            ]
            .concat(),
        );
    }
    seed_tallies(d);
    (data, users)
}

/// The block tallies `seed_tallies` stores (no CLI writes them; a poll block would):
/// several blocks, negative counts, a count back at 0, and the ends of a count's range.
const TALLIES: &[(&str, &str, i64)] = &[
    ("poll_colors", "blue", 41),
    ("poll_colors", "green", -3),
    ("poll_colors", "red", 0),
    ("poll_z", "a", 7),
    ("survey_1", "q1:agree", i64::MAX),
    ("survey_1", "q1:disagree", i64::MIN),
];

/// Adds [`TALLIES`] to the demo course's sled store (committed by two learners, each a
/// part), then waits until the CLI can open the store again.
fn seed_tallies(data: &Path) {
    use xbhost::storage::{BlockWrites, Storage};
    let store = open_sled(data);
    for (user, first_half) in [("learner-1", true), ("learner-2", false)] {
        let tallies = TALLIES
            .iter()
            .map(|(usage, key, n)| {
                let part = if first_half { n / 2 } else { n - n / 2 };
                ((usage.to_string(), key.to_string()), part)
            })
            .collect();
        let writes = BlockWrites {
            tallies,
            ..BlockWrites::default()
        };
        store.commit(DEMO_COURSE, user, &writes).unwrap();
    }
    store.flush().unwrap();
    drop(store);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !xbhost(data, &["course", "list"]).0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the store stayed locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// [`TALLIES`] as `block_tallies` reads one block's.
fn seeded(usage: &str) -> BTreeMap<String, i64> {
    TALLIES
        .iter()
        .filter(|(u, _, _)| *u == usage)
        .map(|(_, k, n)| (k.to_string(), *n))
        .collect()
}

/// Every learner of `users` renders the demo unit (on the store `store` selects: nothing
/// for sled, `--database URL`): one JSON summary per learner.
fn render_all(data: &Path, store: &[&str], users: &Path) -> Vec<serde_json::Value> {
    let render = [
        "render",
        "--course",
        DEMO_COURSE,
        "--block",
        "unit_1",
        "--json",
        "--users-file",
        users.to_str().unwrap(),
    ];
    let out = xbhost_ok(data, &[store, &render[..]].concat());
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn json_of(data: &Path, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(xbhost_ok(data, args).trim()).unwrap()
}

/// The check `store copy` and `store verify` print: table to (store rows, database rows,
/// whether it agrees).
fn printed_checks(out: &str) -> BTreeMap<String, (u64, u64, bool)> {
    out.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let [table, store, _, database, _, check] = cols[..] else {
                return None;
            };
            let (store, database) = (store.parse().ok()?, database.parse().ok()?);
            Some((table.to_string(), (store, database, check == "ok")))
        })
        .collect()
}

/// `store verify` fails once `change` is made to the database, naming `table` and only it,
/// and agrees again once `undo` is.
fn verify_catches_a_change(data: &Path, db: &TestDatabase, table: &str, change: &str, undo: &str) {
    db.execute(change);
    let (ok, out, err) = xbhost(data, &["store", "verify", "--against", &db.url]);
    assert!(!ok, "a changed row of {table} was not caught: {out}");
    assert!(err.contains(&format!("table {table}")), "{err}");
    let bad: Vec<String> = printed_checks(&out)
        .into_iter()
        .filter(|(_, c)| !c.2)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(bad, [table], "{out}");
    db.execute(undo);
    xbhost_ok(data, &["store", "verify", "--against", &db.url]);
}

#[test]
fn a_store_rendered_for_hundreds_of_learners_moves_to_postgres_and_every_learner_sees_the_same() {
    let (data, users) = demo_store_with_learners();
    let d = data.path();
    // Two damaged lines in the log: counted and reported, never copied.
    let log = d.join("events.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("not an event at all\n{\"id\": \"half\", \"name\": \"xbl\n");
    std::fs::write(&log, &text).unwrap();

    let pages_on_sled = render_all(d, &[], &users);
    let grades_on_sled = json_of(d, &["grades", "--course", DEMO_COURSE, "--json"]);
    let report_on_sled = json_of(d, &["report", "--course", DEMO_COURSE, "--json"]);
    // Every line of the log but the two damaged ones (the renders above added exposures).
    let valid_lines = std::fs::read_to_string(&log).unwrap().lines().count() as i64 - 2;

    let db = TestDatabase::fresh();
    let out = xbhost_ok(d, &["store", "copy", "--to", &db.url]);
    let checks = printed_checks(&out);
    let tables = [
        "user_course_tags",
        "user_global_tags",
        "user_state",
        "courses",
        "plugin_wasm",
        "plugins",
        "enrollments",
        "store_meta",
        "block_tallies",
        "events",
    ];
    for table in tables {
        let (store, database, ok) = checks[table];
        let rows = db.count(&format!("SELECT count(*) FROM {table}"), &[]) as u64;
        assert!(
            ok && store == database && database == rows,
            "{table}: {out}"
        );
        assert!(rows > 0, "{table} was copied empty: {out}");
    }
    // Every group, every tag: two partitions per learner and the ten course tags.
    assert_eq!(
        checks["user_course_tags"].1 as usize,
        2 * LEARNERS + 10,
        "{out}"
    );
    assert_eq!(checks["user_state"].1, 20, "{out}");
    assert_eq!(checks["enrollments"].1, 100, "{out}");
    assert_eq!(checks["block_tallies"].1 as usize, TALLIES.len(), "{out}");
    // Every block's tallies read the same from the database as they were added on sled.
    let pg = xbhost::storage::PgStorage::connect(&db.url, &Default::default()).unwrap();
    for usage in ["poll_colors", "poll_z", "survey_1"] {
        use xbhost::storage::Storage;
        assert_eq!(pg.block_tallies(DEMO_COURSE, usage).unwrap(), seeded(usage));
    }
    drop(pg);
    assert_eq!(checks["events"].1 as i64, valid_lines, "{out}");
    assert!(out.contains("2 damaged lines"), "{out}");
    let assigned = db.count("SELECT count(*) FROM events WHERE name = $1", &[&ASSIGNED]);
    assert_eq!(assigned as usize, 2 * LEARNERS);
    // The course at the version sled holds (loaded, then changed by the force).
    let listed = xbhost_ok(d, &["course", "list"]);
    let version = db.count(
        "SELECT version FROM courses WHERE course_id = $1",
        &[&DEMO_COURSE],
    );
    assert!(
        listed.contains(&format!("version {version}")) && version > 1,
        "{listed}"
    );
    // The compiled-cache key came along: the store's metadata is the same value.
    let meta = db.count("SELECT count(*) FROM store_meta", &[]);
    assert_eq!(meta, 1);

    // A second copy into the database, now not empty, is refused naming a table.
    let (ok, _, err) = xbhost(d, &["store", "copy", "--to", &db.url]);
    assert!(!ok, "a second copy was not refused");
    assert!(
        err.contains("not empty") && err.contains("user_course_tags"),
        "{err}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM user_course_tags", &[]) as usize,
        2 * LEARNERS + 10
    );

    // The check catches one changed row, naming its table, and agrees again once undone.
    let verified = xbhost_ok(d, &["store", "verify", "--against", &db.url]);
    assert!(
        printed_checks(&verified).values().all(|c| c.2),
        "{verified}"
    );
    verify_catches_a_change(
        d,
        &db,
        "user_state",
        "UPDATE user_state SET state = state || ' ' WHERE user_id = 'learner-3'",
        "UPDATE user_state SET state = rtrim(state) WHERE user_id = 'learner-3'",
    );
    // One count that differs by one vote is caught too.
    verify_catches_a_change(
        d,
        &db,
        "block_tallies",
        "UPDATE block_tallies SET value = value + 1 WHERE key = 'blue'",
        "UPDATE block_tallies SET value = value - 1 WHERE key = 'blue'",
    );

    // The report counts the same on the database.
    let on_db = ["--database", db.url.as_str()];
    let report_on_db = json_of(
        d,
        &[&on_db[..], &["report", "--course", DEMO_COURSE, "--json"]].concat(),
    );
    assert_eq!(report_on_db["partitions"], report_on_sled["partitions"]);
    assert_eq!(report_on_db["events_read"], report_on_sled["events_read"]);
    assert_eq!(report_on_db["events_source"], "the events table");

    // Every learner sees the same page (groups, blocks, state) on the database.
    let pages_on_db = render_all(d, &on_db, &users);
    assert_eq!(pages_on_db.len(), LEARNERS);
    for (sled, pg) in pages_on_sled.iter().zip(&pages_on_db) {
        assert_eq!(sled, pg, "{}", sled["user"]);
    }
    let grades_on_db = json_of(
        d,
        &[&on_db[..], &["grades", "--course", DEMO_COURSE, "--json"]].concat(),
    );
    assert_eq!(grades_on_db, grades_on_sled);
    for (user, args) in [
        ("learner-2", vec!["--global"]),
        ("learner-2", vec!["--course", DEMO_COURSE]),
    ] {
        let list = [&["tags", "list", "--user", user][..], &args].concat();
        assert_eq!(
            xbhost_ok(d, &[&on_db[..], &list].concat()),
            xbhost_ok(d, &list)
        );
    }
    let assign = [
        "assign",
        "--course",
        DEMO_COURSE,
        "--partition",
        "0",
        "--user",
        "learner-5",
        "--json",
    ];
    let forced = json_of(d, &[&on_db[..], &assign].concat());
    assert_eq!(forced["status"], json_of(d, &assign)["status"], "{forced}");
    // No new group was stored on the database: everyone had theirs.
    let assigned_after = db.count("SELECT count(*) FROM events WHERE name = $1", &[&ASSIGNED]);
    assert_eq!(assigned_after, assigned);
}

#[test]
fn the_copy_refuses_to_run_while_a_server_holds_the_store() {
    let (data, _) = demo_store_with_learners();
    let db = TestDatabase::fresh();
    let server = Served::start(data, &[]);
    let (ok, _, err) = xbhost(server.data.path(), &["store", "copy", "--to", &db.url]);
    assert!(!ok, "the copy ran beside a server");
    assert!(err.contains("in use by another xbhost process"), "{err}");
    assert!(err.contains("stop every xbhost"), "{err}");
    // Refused before the database was touched: not even the schema was made.
    let tables = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'";
    assert_eq!(db.count(tables, &[]), 0);
    // Once the server stops, the copy goes through.
    let data = server.stop();
    let out = xbhost_ok(data.path(), &["store", "copy", "--to", &db.url]);
    assert!(printed_checks(&out).values().all(|c| c.2), "{out}");
}

/// Opens the sled store of a data directory in this process, waiting for the lock a
/// process (or a store of this one) just closed may still hold.
fn open_sled(data: &Path) -> xbhost::storage::SledStorage {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match xbhost::storage::SledStorage::open(&data.join("db")) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("opening the store: {e:#}"),
        }
    }
}

#[test]
fn pending_outbox_events_are_copied_once_and_damaged_ones_counted() {
    use xbhost::storage::{OutboxEntry, Storage};
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for p in ["html", "vertical", "split_test", "problem"] {
        xbhost_ok(d, &["plugin", "add", plugin_path(p).to_str().unwrap()]);
    }
    xbhost_ok(d, &["course", "load", demo_course_path().to_str().unwrap()]);
    let render = ["render", "--course", DEMO_COURSE, "--block", "unit_1"];
    xbhost_ok(d, &[&render[..], &["--user", "early"]].concat());
    let log = std::fs::read_to_string(d.join("events.jsonl")).unwrap();
    let logged: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    // What a crash between a group's store and its log write leaves: a pending event the
    // log lacks; one the log already holds (a crash after the write, before the removal);
    // and an entry that is not an event.
    let mut pending = logged.clone();
    pending["id"] = "0000000000010000000000000001".into();
    pending["user_id"] = "pending-learner".into();
    let store = open_sled(d);
    store
        .put_outbox(&[
            OutboxEntry {
                id: "0000000000010000000000000001".into(),
                line: serde_json::to_vec(&pending).unwrap(),
            },
            OutboxEntry {
                id: logged["id"].as_str().unwrap().into(),
                line: serde_json::to_vec(&logged).unwrap(),
            },
            OutboxEntry {
                id: "0000000000020000000000000002".into(),
                line: b"{\"half\": ".to_vec(),
            },
        ])
        .unwrap();
    store.flush().unwrap();
    // Entries the render left behind (how many depends on how far its drain got before the
    // process ended; one may share the logged event's id, which the put above replaced) are
    // all in the log: a repeat each, never copied twice. Only the pending and the damaged
    // entries are not repeats.
    let entries = store.outbox().unwrap().len();
    drop(store);

    let db = TestDatabase::fresh();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let out = loop {
        let (ok, out, err) = xbhost(d, &["store", "copy", "--to", &db.url]);
        if ok {
            break out;
        }
        // This process's store may hold sled's lock a moment after it was dropped.
        assert!(
            err.contains("in use") && std::time::Instant::now() < deadline,
            "{err}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let lines = log.lines().count() as i64;
    assert_eq!(
        db.count("SELECT count(*) FROM events", &[]),
        lines + 1,
        "{out}"
    );
    let rows = db.query(
        "SELECT user_id FROM events WHERE id = $1",
        &[&"0000000000010000000000000001"],
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "pending-learner");
    assert_eq!(
        printed_checks(&out)["events"],
        (lines as u64 + 1, lines as u64 + 1, true)
    );
    let read = format!("{entries} entries of the store's outbox read (1 damaged");
    assert!(out.contains(&read), "{out}");
    let repeats = format!("events: {} lines left out as repeats", entries - 2);
    assert!(out.contains(&repeats), "{out}");
}
