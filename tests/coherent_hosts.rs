//! Coherent hosts (#19 point 5): several `xbhost serve` processes on one PostgreSQL
//! database. A course change or a plugin upload made through one host (or the CLI) is in
//! force on the others within a second (the delay is measured and printed); two changes of
//! one course made at once never overwrite each other silently (a version compare-and-swap,
//! 409 over HTTP naming the versions); a host whose change listener loses its connection
//! reconnects and forgets what it cached, so changes it did not hear of are in force after.
//! The compare-and-swap is also tested on the `Host` itself, on sled and on PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use xbhost::errors::VersionConflict;
use xbhost::model::CourseDoc;
use xbhost::olx::LoadDeadline;
use xbhost::server::auth::Role;
use xbhost::{Host, HostConfig};
use xbhost_tests::http::{client, error_of, send};
use xbhost_tests::pg::TestDatabase;
use xbhost_tests::served::{Served, admin_token, learner_token, token};
use xbhost_tests::{
    DEMO_COURSE, PRODUCT_PLUGINS, copy_dir, demo_course, demo_course_path, patient_config,
    plugin_path, plugin_wasm, xbhost_ok,
};

/// The bound the issue sets for a change to be in force on every host.
const IN_FORCE_WITHIN: Duration = Duration::from_secs(1);

/// A data directory whose CLI put the shipped plugins and the demo course in `db` (its
/// cache holds the plugins compiled under the database's cache key: hosts started on copies
/// of it do not compile them again).
fn load_demo(db: &TestDatabase) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for p in PRODUCT_PLUGINS {
        cli_ok(
            dir.path(),
            db,
            &["plugin", "add", plugin_path(p).to_str().unwrap()],
        );
    }
    cli_ok(
        dir.path(),
        db,
        &["course", "load", demo_course_path().to_str().unwrap()],
    );
    dir
}

fn cli_ok(data: &Path, db: &TestDatabase, args: &[&str]) -> String {
    let mut all = vec!["--database", db.url.as_str()];
    all.extend_from_slice(args);
    xbhost_ok(data, &all)
}

/// `n` servers on `db`, each on a copy of `template`.
fn hosts(db: &TestDatabase, template: &Path, n: usize) -> Vec<Served> {
    (0..n)
        .map(|_| {
            let data = tempfile::tempdir().unwrap();
            copy_dir(template, data.path());
            Served::start(data, &["--database", &db.url])
        })
        .collect()
}

/// A learner's page as JSON (status 200 required).
async fn page(c: &reqwest::Client, served: &Served, course: &str, block: &str, who: &str) -> Value {
    let (status, body) = send(
        c.get(format!(
            "{}/courses/{course}/blocks/{block}?format=json",
            served.url
        ))
        .bearer_auth(who),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `served` every 10 ms until `seen(page)`, from now; the time it took. Fails after
/// ten seconds (far past the bound, so a slow machine shows as a figure, not a hang).
async fn delay_until(
    c: &reqwest::Client,
    served: &Served,
    course: &str,
    block: &str,
    who: &str,
    seen: impl Fn(&Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let body = page(c, served, course, block, who).await;
        if seen(&body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "host {} still shows the old version after 10 s: {body}\n{}",
            served.url,
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn html_of(page: &Value) -> &str {
    page["html"].as_str().unwrap_or_default()
}

/// The status (`enrolled`, `off`, ...) a page shows for a partition.
fn status_in(page: &Value, partition: u64) -> String {
    page["experiments"]
        .as_array()
        .and_then(|all| all.iter().find(|e| e["partition_id"] == partition))
        .and_then(|e| e["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The demo course with the text of block `between` replaced by `text`.
fn demo_saying(text: &str) -> Value {
    let mut doc = serde_json::to_value(demo_course()).unwrap();
    for block in doc["blocks"].as_array_mut().unwrap() {
        if block["usage_id"] == "between" {
            block["fields"]["data"] = json!(format!("<p>{text}</p>"));
        }
    }
    doc
}

async fn upload_course(
    c: &reqwest::Client,
    base: &str,
    doc: &Value,
    version: Option<u64>,
) -> (StatusCode, Value) {
    let key = doc["course_key"].as_str().unwrap().to_string();
    let mut query = vec![("course", key.clone())];
    if let Some(v) = version {
        query.push(("version", v.to_string()));
    }
    send(
        c.post(format!("{base}/admin/courses"))
            .query(&query)
            .bearer_auth(token("course-admin", &[(&key, Role::Admin)]))
            .json(doc),
    )
    .await
}

/// The version `course list` prints for `key`.
fn listed_version(data: &Path, db: &TestDatabase, key: &str) -> u64 {
    let out = cli_ok(data, db, &["course", "list"]);
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{key} ")))
        .unwrap_or_else(|| panic!("course list does not list {key}: {out}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_course_change_on_one_host_is_in_force_on_the_others_within_a_second() {
    let db = TestDatabase::fresh();
    let template = load_demo(&db);
    let servers = hosts(&db, template.path(), 3);
    let (a, others) = (&servers[0], &servers[1..]);
    let c = client();
    let lena = learner_token("lena");
    // Every host has the course in memory, and lena is enrolled in both experiments.
    for host in &servers {
        let body = page(&c, host, DEMO_COURSE, "unit_1", &lena).await;
        assert!(
            html_of(&body).contains("Now let us look at subtraction."),
            "{body}"
        );
        assert_eq!(status_in(&body, 0), "enrolled", "{body}");
    }

    // A new version uploaded through host A.
    for round in 1..=3 {
        let text = format!("Changed through host A, round {round}.");
        let (status, body) = upload_course(&c, &a.url, &demo_saying(&text), None).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["version"], 1 + round, "{body}");
        for (i, host) in others.iter().enumerate() {
            let took = delay_until(&c, host, DEMO_COURSE, "unit_1", &lena, |p| {
                html_of(p).contains(&text)
            })
            .await;
            println!(
                "course upload round {round}: in force on host {} after {took:?}",
                i + 1
            );
            assert!(took < IN_FORCE_WITHIN, "host {} took {took:?}", i + 1);
        }
    }

    // An experiment switched off with the CLI, on no host at all.
    let cli_data = tempfile::tempdir().unwrap();
    let out = cli_ok(
        cli_data.path(),
        &db,
        &[
            "experiment",
            "state",
            "--course",
            DEMO_COURSE,
            "--partition",
            "0",
            "off",
        ],
    );
    assert!(out.contains("off"), "{out}");
    for (i, host) in servers.iter().enumerate() {
        let took = delay_until(&c, host, DEMO_COURSE, "unit_1", &lena, |p| {
            status_in(p, 0) == "off"
        })
        .await;
        println!("experiment switched off with the CLI: in force on host {i} after {took:?}");
        assert!(took < IN_FORCE_WITHIN, "host {i} took {took:?}");
    }
    assert_eq!(listed_version(cli_data.path(), &db, DEMO_COURSE), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plugin_uploaded_through_one_host_is_what_the_others_render_within_a_second() {
    let db = TestDatabase::fresh();
    let template = load_demo(&db);
    let servers = hosts(&db, template.path(), 2);
    let (a, b) = (&servers[0], &servers[1]);
    let c = client();
    let admin = admin_token("root");
    // Block type `widget` is the html plugin at first.
    let (status, body) = send(
        c.post(format!("{}/admin/plugins", a.url))
            .query(&[("name", "widget")])
            .bearer_auth(&admin)
            .body(plugin_wasm("html")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let key = "course-v1:xbhost+coherent+1";
    let course = json!({
        "course_key": key,
        "blocks": [
            {"usage_id": "unit", "type": "vertical", "children": ["w"]},
            {"usage_id": "w", "type": "widget", "fields": {"data": "<p>a widget made of html</p>"}}
        ]
    });
    let (status, body) = upload_course(&c, &a.url, &course, None).await;
    assert_eq!(status, 201, "{body}");
    let lena = token("lena", &[(key, Role::Learner)]);
    let before = page(&c, b, key, "unit", &lena).await;
    assert!(
        html_of(&before).contains("a widget made of html"),
        "{before}"
    );
    assert_eq!(before["failures"], json!([]), "{before}");

    // Host A installs another component as `widget`: host B runs it.
    let (status, body) = send(
        c.post(format!("{}/admin/plugins", a.url))
            .query(&[("name", "widget")])
            .bearer_auth(&admin)
            .body(plugin_wasm("panicker")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let took = delay_until(&c, b, key, "unit", &lena, |p| {
        p["failures"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["block_type"] == "widget"))
    })
    .await;
    // Measured from the upload's acknowledgement, so the delay includes host B compiling
    // the new component (its compiled cache is its own, as on separate machines): it starts
    // compiling on the notice, and a page arriving meanwhile waits for that compilation.
    println!("plugin upload: in force on host B after {took:?}");
    assert!(took < IN_FORCE_WITHIN, "host B took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_of_one_course_through_two_hosts_never_lose_one_silently() {
    let db = TestDatabase::fresh();
    let template = load_demo(&db);
    let servers = hosts(&db, template.path(), 2);
    let c = client();

    // Two uploads from the same version, one through each host: the second is refused,
    // naming both versions, and stores nothing.
    let base = listed_version(template.path(), &db, DEMO_COURSE);
    assert_eq!(base, 1);
    let (status, body) = upload_course(
        &c,
        &servers[0].url,
        &demo_saying("first from version 1"),
        Some(1),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"], 2, "{body}");
    let (status, body) = upload_course(
        &c,
        &servers[1].url,
        &demo_saying("second from version 1"),
        Some(1),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let error = error_of(&body);
    assert!(
        error.contains(DEMO_COURSE)
            && error.contains("started from version 1")
            && error.contains("holds version 2"),
        "{error}"
    );
    // A new course that already exists (version=0) is a conflict too.
    let (status, body) = upload_course(&c, &servers[1].url, &demo_saying("as new"), Some(0)).await;
    assert_eq!(status, 409, "{body}");
    assert!(error_of(&body).contains("a new course"), "{body}");
    let lena = learner_token("lena");
    let shown = page(&c, &servers[1], DEMO_COURSE, "unit_1", &lena).await;
    assert!(html_of(&shown).contains("first from version 1"), "{shown}");

    // Racing uploads through both hosts, each starting from whatever is stored: each is
    // either stored as a version of its own or refused naming the versions; the store ends
    // at the base plus the number stored, holding the one stored last.
    let base = listed_version(template.path(), &db, DEMO_COURSE);
    let racers = (0..8).map(|i| {
        let c = c.clone();
        let base = servers[i % 2].url.clone();
        async move {
            let text = format!("racer {i}");
            let (status, body) = upload_course(&c, &base, &demo_saying(&text), None).await;
            (text, status, body)
        }
    });
    let outcomes = futures_join_all(racers).await;
    let mut stored: Vec<(u64, String)> = Vec::new();
    let mut refused = 0;
    for (text, status, body) in &outcomes {
        match status.as_u16() {
            201 => stored.push((body["version"].as_u64().unwrap(), text.clone())),
            409 => {
                refused += 1;
                let error = error_of(body);
                assert!(
                    error.contains("started from version") && error.contains("holds version"),
                    "{error}"
                );
            }
            _ => panic!("{text}: {status} {body}"),
        }
    }
    stored.sort();
    println!("racing uploads: {} stored, {refused} refused", stored.len());
    let versions: Vec<u64> = stored.iter().map(|(v, _)| *v).collect();
    let expected: Vec<u64> = (base + 1..=base + stored.len() as u64).collect();
    assert_eq!(
        versions, expected,
        "every stored upload is a version of its own"
    );
    assert_eq!(
        listed_version(template.path(), &db, DEMO_COURSE),
        base + stored.len() as u64
    );
    let last = &stored.last().expect("at least one upload is stored").1;
    let shown = cli_ok(template.path(), &db, &["course", "show", DEMO_COURSE]);
    assert!(
        shown.contains(last.as_str()),
        "the store holds {last:?}: {shown}"
    );

    // Experiment changes racing from separate CLI processes (the lost update a plain
    // read-modify-write makes: each forces another user): the course ends with exactly the
    // forces whose command succeeded; the others failed naming the versions.
    let forces: Vec<_> = (0..6)
        .map(|i| {
            let user = format!("qa-{i}");
            let mut command = std::process::Command::new(xbhost_tests::xbhost_bin());
            command
                .arg("--data")
                .arg(template.path())
                .args(["--database", &db.url, "experiment", "force"])
                .args(["--course", DEMO_COURSE, "--partition", "0"])
                .args(["--user", &user, "--group", "1"])
                .env("XBHOST_LOG", "off")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            (user, command.spawn().unwrap())
        })
        .collect();
    let mut forced = Vec::new();
    for (user, child) in forces {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            forced.push(user);
        } else {
            assert!(
                err.contains("was changed meanwhile") && err.contains("holds version"),
                "{user}: {err}"
            );
        }
    }
    println!("racing CLI forces: {} of 6 stored", forced.len());
    assert!(!forced.is_empty());
    let shown: Value = serde_json::from_str(&cli_ok(
        template.path(),
        &db,
        &["course", "show", DEMO_COURSE],
    ))
    .unwrap();
    let partition = &shown["user_partitions"][0];
    let mut in_doc: Vec<String> = partition["forced"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    in_doc.sort();
    forced.sort();
    assert_eq!(
        in_doc, forced,
        "the course holds exactly the forces that succeeded"
    );
}

/// Runs futures at once (a small `join_all`, the tests have no `futures` dependency).
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_whose_listener_is_cut_off_reconnects_and_forgets_what_it_cached() {
    let db = TestDatabase::fresh();
    let template = load_demo(&db);
    let servers = hosts(&db, template.path(), 2);
    let c = client();
    let lena = learner_token("lena");
    for host in &servers {
        let body = page(&c, host, DEMO_COURSE, "unit_1", &lena).await;
        assert!(
            html_of(&body).contains("Now let us look at subtraction."),
            "{body}"
        );
    }
    let listeners = |db: &TestDatabase| {
        db.count(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%'",
            &[],
        )
    };
    // One listener a host (its host and its token ledger share it).
    let listening = listeners(&db);
    assert!(listening >= 2, "{listening} listeners");

    // A change no host hears of (stored behind their backs, no notice): they keep the
    // course they cached...
    db.execute(&format!(
        "UPDATE courses SET version = version + 1,
             doc = replace(doc, 'Now let us look at subtraction.', 'Changed unheard.')
         WHERE course_id = '{DEMO_COURSE}'"
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for host in &servers {
        let body = page(&c, host, DEMO_COURSE, "unit_1", &lena).await;
        assert!(
            html_of(&body).contains("Now let us look at subtraction."),
            "{body}"
        );
    }
    // ...until their listeners' connections drop: they reconnect, and forget it.
    let killed = db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        &[],
    );
    assert_eq!(killed.len() as i64, listening);
    for (i, host) in servers.iter().enumerate() {
        let took = delay_until(&c, host, DEMO_COURSE, "unit_1", &lena, |p| {
            html_of(p).contains("Changed unheard.")
        })
        .await;
        println!("after the listener was cut off: host {i} shows the change after {took:?}");
    }
    // They listen again: a change through host 0 is in force on host 1 as before.
    let started = Instant::now();
    while listeners(&db) < listening {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the listeners did not return"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body) =
        upload_course(&c, &servers[0].url, &demo_saying("heard again"), None).await;
    assert_eq!(status, 201, "{body}");
    let took = delay_until(&c, &servers[1], DEMO_COURSE, "unit_1", &lena, |p| {
        html_of(p).contains("heard again")
    })
    .await;
    println!("after reconnecting: a change through host 0 is in force on host 1 after {took:?}");
    assert!(took < IN_FORCE_WITHIN, "host 1 took {took:?}");
    assert!(
        servers[1].log().contains("the change listener"),
        "the lost connection is logged: {}",
        servers[1].log()
    );
}

/// The compare-and-swap on the host: `a` and `b` are hosts on one store (the same host
/// for sled, which one process opens).
fn versions_compare_and_swap(a: &Host, b: &Host) {
    for p in ["html", "vertical", "split_test", "problem"] {
        a.add_plugin(&plugin_wasm(p), None).unwrap();
    }
    let deadline = || LoadDeadline::after(Duration::from_secs(60));
    let doc = demo_course();
    assert_eq!(a.course_version(DEMO_COURSE).unwrap(), None);
    let loaded = a.load_course_from(doc.clone(), None, deadline()).unwrap();
    assert_eq!((loaded.version, loaded.replaced), (1, false));
    // A second "new" course of that key is refused: the first is not overwritten.
    let e = b
        .load_course_from(doc.clone(), None, deadline())
        .unwrap_err();
    let conflict = xbhost::errors::find::<VersionConflict>(&e).expect("a version conflict");
    assert_eq!(
        (conflict.expected, conflict.found, conflict.course.as_str()),
        (None, Some(1), DEMO_COURSE)
    );

    // b reads version 1 to change it; a changes the course meanwhile.
    let (read, version) = b.course_for_change(DEMO_COURSE).unwrap();
    assert_eq!(version, 1);
    a.update_experiment(DEMO_COURSE, 0, |p| {
        p.forced.insert("qa".into(), 1);
        Ok(())
    })
    .unwrap();
    assert_eq!(b.course_version(DEMO_COURSE).unwrap(), Some(2));
    let mut edited: CourseDoc = read;
    edited.display_name = Some("b's edit of version 1".into());
    let e = b.load_course_from(edited, Some(1), deadline()).unwrap_err();
    let conflict = xbhost::errors::find::<VersionConflict>(&e).expect("a version conflict");
    assert_eq!((conflict.expected, conflict.found), (Some(1), Some(2)));
    assert!(
        format!("{e:#}").contains("started from version 1, but the store holds version 2"),
        "{e:#}"
    );
    // Nothing of b's change is stored; a's is, on both hosts.
    let (stored, version) = a.course_for_change(DEMO_COURSE).unwrap();
    assert_eq!(version, 2);
    assert_ne!(
        stored.display_name.as_deref(),
        Some("b's edit of version 1")
    );
    assert_eq!(stored.user_partitions[0].forced.get("qa"), Some(&1));

    // Experiment changes racing on both hosts: each either stored or refused, and the
    // course holds exactly the stored ones.
    let outcomes: Vec<(String, bool)> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..8)
            .map(|i| {
                let host = if i % 2 == 0 { a } else { b };
                s.spawn(move || {
                    let user = format!("racer-{i}");
                    let who = user.clone();
                    let outcome = host.update_experiment(DEMO_COURSE, 1, move |p| {
                        p.forced.insert(who, 0);
                        Ok(())
                    });
                    if let Err(e) = &outcome {
                        assert!(
                            xbhost::errors::find::<VersionConflict>(e).is_some(),
                            "{e:#}"
                        );
                    }
                    (user, outcome.is_ok())
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won: Vec<&String> = outcomes
        .iter()
        .filter(|(_, ok)| *ok)
        .map(|(u, _)| u)
        .collect();
    let (stored, version) = b.course_for_change(DEMO_COURSE).unwrap();
    assert_eq!(version, 2 + won.len() as u64);
    let in_doc: Vec<&String> = stored.user_partitions[1].forced.keys().collect();
    assert_eq!(
        in_doc, won,
        "the course holds exactly the changes that were stored"
    );

    // The storage contract itself.
    let storage = a.storage();
    let write = storage
        .put_course_if_version(&stored, Some(version - 1))
        .unwrap();
    assert_eq!(write, xbhost::storage::CourseWrite::Conflict(Some(version)));
    let write = storage
        .put_course_if_version(&stored, Some(version))
        .unwrap();
    assert_eq!(write, xbhost::storage::CourseWrite::Stored(version + 1));
    let mut other = stored.clone();
    other.course_key = "course-v1:xbhost+other+1".into();
    assert_eq!(
        storage.put_course_if_version(&other, Some(3)).unwrap(),
        xbhost::storage::CourseWrite::Conflict(None)
    );
    assert_eq!(
        storage.put_course_if_version(&other, None).unwrap(),
        xbhost::storage::CourseWrite::Stored(1)
    );
}

#[test]
fn the_cli_shows_versions_and_a_load_from_another_version_fails_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for p in ["html", "vertical", "split_test", "problem"] {
        xbhost_ok(d, &["plugin", "add", plugin_path(p).to_str().unwrap()]);
    }
    let file = demo_course_path();
    let file = file.to_str().unwrap();
    let out = xbhost_ok(d, &["course", "load", file]);
    assert!(out.contains("user partitions, version 1"), "{out}");
    let out = xbhost_ok(d, &["course", "load", "--expect-version", "1", file]);
    assert!(
        out.contains("replaced course") && out.contains("version 2"),
        "{out}"
    );
    // From a version the store no longer holds: refused, nothing stored, exit status 1.
    for (expect, from) in [("1", "version 1"), ("0", "no stored course (a new course)")] {
        let (ok, _, err) =
            xbhost_tests::xbhost(d, &["course", "load", "--expect-version", expect, file]);
        assert!(!ok, "{err}");
        assert!(
            err.contains(DEMO_COURSE)
                && err.contains(&format!(
                    "started from {from}, but the store holds version 2"
                )),
            "{err}"
        );
    }
    assert_eq!(
        xbhost_ok(d, &["course", "list"]).trim(),
        format!("{DEMO_COURSE} version 2")
    );
    let (ok, shown, err) = xbhost_tests::xbhost(d, &["course", "show", DEMO_COURSE]);
    assert!(
        ok && err.contains(&format!("course {DEMO_COURSE} version 2")),
        "{err}"
    );
    // What `course show` prints is the document, as it loads.
    CourseDoc::from_json(&shown).unwrap();
}

#[test]
fn course_versions_compare_and_swap_on_sled() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::open(dir.path(), patient_config()).unwrap();
    versions_compare_and_swap(&host, &host);
}

#[test]
fn course_versions_compare_and_swap_on_postgres_across_two_hosts() {
    let db = TestDatabase::fresh();
    let open = |dir: &Path| {
        let config = HostConfig {
            database: Some(db.url.clone()),
            ..patient_config()
        };
        Host::open(dir, config).unwrap()
    };
    let (da, dbb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(dbb.path()));
    versions_compare_and_swap(&a, &b);
}
