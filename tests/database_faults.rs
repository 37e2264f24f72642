//! The host through PostgreSQL's faults, on a private cluster each test starts and stops
//! (never the shared test server): PostgreSQL stopped (pages and `/healthz` answer 503 with
//! `Retry-After`, no page shows a wrong or missing group, serving resumes by itself), an
//! immediate restart under load (nothing acknowledged is lost), connections the restart
//! killed (a request that gets one fails with 503 at worst, the next succeeds), and a pool
//! with no free connection (a bounded wait, then an answer saying so, never a hang).

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use xbhost::storage::{PgOptions, PgStorage, Storage};
use xbhost_tests::db_pages::{
    Answer, assignment_events, install_slow_experiment, stored_groups, visit, warm_up,
};
use xbhost_tests::http::client;
use xbhost_tests::pg::{PgCluster, TestDatabase};
use xbhost_tests::served::Served;

/// Bounds that keep a fault's cost short: a call waits at most a second for a connection.
const HOST_ARGS: &[&str] = &["--database-wait-ms", "1000"];

/// The postmaster of the cluster listening on `port`: its pid and data directory, read from
/// `/proc` (its command line is `postgres -D DATA -p PORT ...`).
fn postmaster(port: u16) -> (u32, PathBuf) {
    let port = port.to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let after = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
        };
        if args.first().is_some_and(|a| a.ends_with("/postgres"))
            && after("-p") == Some(&port)
            && let Some(data) = after("-D")
        {
            return (pid, PathBuf::from(data));
        }
    }
    panic!("no postmaster listens on port {port}");
}

/// `pg_ctl restart -m immediate` of the cluster: every server process is killed without a
/// checkpoint, as in a crash of the database, and the server started again with the same
/// options (same port). Only what was committed survives.
fn restart_immediately(cluster: &PgCluster) {
    use std::os::unix::fs::MetadataExt as _;
    let (pid, data) = postmaster(cluster.port());
    let bindir = std::fs::read_link(format!("/proc/{pid}/exe"))
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let root: &Path = data.parent().unwrap();
    let owner = std::fs::metadata(&data).unwrap();
    let output = Command::new(bindir.join("pg_ctl"))
        .args(["restart", "-w", "-t", "60", "-m", "immediate", "-D"])
        .arg(&data)
        .arg("-l")
        .arg(root.join("server.log"))
        .current_dir(root)
        .uid(owner.uid())
        .gid(owner.gid())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "pg_ctl restart -m immediate: {}{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        cluster.log()
    );
}

/// A private cluster with a database holding the demo, and one host serving it.
struct Setup {
    host: Served,
    db: TestDatabase,
    cluster: PgCluster,
}

fn setup(args: &[&str]) -> Setup {
    let cluster = PgCluster::for_test();
    let db = cluster.fresh_database();
    db.load_demo();
    let mut all = HOST_ARGS.to_vec();
    if !args.contains(&"--max-concurrent-renders") {
        all.extend_from_slice(&["--max-concurrent-renders", "8"]);
    }
    all.extend_from_slice(args);
    let host = Served::on_database(&db.url, &all);
    Setup { host, db, cluster }
}

/// `/healthz`: status and body.
async fn health(c: &reqwest::Client, base: &str) -> (StatusCode, bool, Value) {
    let response = c
        .get(format!("{base}/healthz"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry = response.headers().get("retry-after").is_some();
    (status, retry, response.json().await.unwrap())
}

/// Every acknowledged page has its learner's groups stored as shown, each with its one
/// assignment event; every learner's stored groups and assignment events agree.
fn check_acknowledged(db: &TestDatabase, answers: &[Answer]) {
    let events = assignment_events(db);
    let mut learners: BTreeMap<&str, Vec<&Answer>> = BTreeMap::new();
    for a in answers {
        learners.entry(&a.learner).or_default().push(a);
    }
    for (learner, seen) in learners {
        let stored = stored_groups(db, learner);
        for a in seen.iter().filter(|a| a.acknowledged()) {
            assert_eq!(a.groups.len(), 2, "{learner}: {:?}", a.groups);
            assert_eq!(stored, a.groups, "the groups acknowledged for {learner}");
        }
        let mut mine = events.get(learner).cloned().unwrap_or_default();
        mine.sort();
        let expected: Vec<(String, u64)> = stored.into_iter().collect();
        assert_eq!(mine, expected, "the assignment events of {learner}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_503_while_postgres_is_stopped_and_resume_by_themselves() {
    let mut s = setup(&[]);
    let c = client();
    let base = s.host.url.clone();
    warm_up(&c, &base).await;
    let before = visit(&c, &base, 0, "known-before").await;
    assert!(before.acknowledged(), "{}", before.body);
    let (status, _, body) = health(&c, &base).await;
    assert_eq!(status, 200, "{body}");

    s.cluster.stop().unwrap();
    let mut answers = vec![before.clone()];
    for round in 0..3 {
        for learner in ["known-before", "new-during"] {
            let a = visit(&c, &base, 0, learner).await;
            // Never a page: no group can be read or stored (the known learner's must not
            // be guessed), and nothing is acknowledged without its writes.
            assert_eq!(
                a.status,
                Some(StatusCode::SERVICE_UNAVAILABLE),
                "round {round}, {learner}: {}",
                a.body
            );
            assert!(a.retry_after, "503 without Retry-After: {}", a.body);
            answers.push(a);
        }
        let (status, retry, body) = health(&c, &base).await;
        assert_eq!(status, 503, "{body}");
        assert!(retry, "{body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("database") && error.contains("unavailable"),
            "/healthz should say the database is unavailable: {body}"
        );
    }

    s.cluster.start().unwrap();
    // Serving resumes by itself: no restart of the host.
    let started = Instant::now();
    loop {
        let (status, _, body) = health(&c, &base).await;
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/healthz still failing 30 s after PostgreSQL came back: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "/healthz answered 200 {} ms after PostgreSQL was back",
        started.elapsed().as_millis()
    );
    for learner in ["known-before", "new-during"] {
        let a = visit(&c, &base, 0, learner).await;
        assert!(a.acknowledged(), "{learner} after the restart: {}", a.body);
        answers.push(a);
    }
    let again = answers.last().unwrap().clone();
    let known_again = &answers[answers.len() - 2];
    assert_eq!(
        known_again.groups, before.groups,
        "the known learner's group"
    );
    assert_eq!(again.groups.len(), 2);
    check_acknowledged(&s.db, &answers);
}

/// Many learners' first visits while PostgreSQL is restarted with `-m immediate` (a crash
/// of the database): whatever answered 200 is stored, groups and assignment events; what
/// failed answered 503 with `Retry-After`; and pages answer 200 again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_acknowledged_write_is_lost_across_an_immediate_restart() {
    let s = setup(&[]);
    let c = client();
    let base = s.host.url.clone();
    warm_up(&c, &base).await;
    // Repeat visits well before the crash: their exposure events commit without waiting
    // for the disk (README, "One transaction per page"), so the WAL writer has them on disk
    // within 3 x wal_writer_delay (200 ms); a second later they must survive the crash.
    let mut repeat_exposures = BTreeMap::new();
    for i in 0..10 {
        let learner = format!("repeater-{i}");
        assert!(visit(&c, &base, 0, &learner).await.acknowledged());
        let first = exposures_of(&s.db, &learner);
        assert!(first > 0, "{learner}'s first visit stored no exposure");
        assert!(visit(&c, &base, 0, &learner).await.acknowledged());
        repeat_exposures.insert(learner, 2 * first);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let served = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(12));
    let visits: Vec<_> = (0..240)
        .map(|i| {
            let (c, base, served, in_flight) =
                (c.clone(), base.clone(), served.clone(), in_flight.clone());
            tokio::spawn(async move {
                let _permit = in_flight.acquire().await.unwrap();
                let a = visit(&c, &base, 0, &format!("learner-{i}")).await;
                if a.acknowledged() {
                    served.fetch_add(1, Ordering::SeqCst);
                }
                a
            })
        })
        .collect();
    // The crash comes once some pages were acknowledged, with others in flight.
    while served.load(Ordering::SeqCst) < 40 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_crash = served.load(Ordering::SeqCst);
    tokio::task::block_in_place(|| restart_immediately(&s.cluster));
    let mut answers = Vec::new();
    for v in visits {
        answers.push(v.await.unwrap());
    }
    for a in answers.iter().filter(|a| !a.acknowledged()) {
        assert!(
            a.status == Some(StatusCode::SERVICE_UNAVAILABLE) && a.retry_after,
            "{} answered {:?}: {}",
            a.learner,
            a.status,
            a.body
        );
    }
    let failed = answers.iter().filter(|a| !a.acknowledged()).count();
    println!(
        "{} visits: {at_crash} acknowledged before the crash, {failed} answered 503",
        answers.len()
    );
    // After the restart, new learners are served (each after at most one 503: a
    // connection the crash killed), and so is every learner who failed.
    let mut all = answers.clone();
    for i in 0..40 {
        let learner = format!("after-{i}");
        let mut a = visit(&c, &base, 0, &learner).await;
        if !a.acknowledged() {
            assert!(a.retry_after, "{learner}: {}", a.body);
            all.push(a);
            a = visit(&c, &base, 0, &learner).await;
        }
        assert!(a.acknowledged(), "{learner} after the restart: {}", a.body);
        all.push(a);
    }
    for a in answers.iter().filter(|a| !a.acknowledged()) {
        let again = visit(&c, &base, 0, &a.learner).await;
        assert!(again.acknowledged(), "{}: {}", a.learner, again.body);
        all.push(again);
    }
    check_acknowledged(&s.db, &all);
    // Every acknowledged first visit's exposure events are stored (they commit with its
    // assignments, synchronously), and so are the repeat visits' of a second before.
    for a in all.iter().filter(|a| a.acknowledged()) {
        assert!(
            exposures_of(&s.db, &a.learner) > 0,
            "{}'s acknowledged page lost its exposure events",
            a.learner
        );
    }
    for (learner, expected) in &repeat_exposures {
        assert_eq!(
            exposures_of(&s.db, learner),
            *expected,
            "{learner}'s exposures of a first and a repeat visit, a second before the crash"
        );
    }
}

/// How many exposure events (`xblock.split_test.child_render`) the database holds for a
/// learner of the demo course.
fn exposures_of(db: &TestDatabase, learner: &str) -> i64 {
    db.count(
        "SELECT count(*) FROM events WHERE course_id = $1 AND user_id = $2 AND name = $3",
        &[
            &xbhost_tests::DEMO_COURSE,
            &learner,
            &xbhost::events::CHILD_RENDER_EVENT,
        ],
    )
}

/// The pool's idle connections die with a restart of the database. A request handed one
/// fails with 503 at worst, never with another status or a wrong page, and the next request
/// is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_by_a_restart_cost_at_most_one_503() {
    let s = setup(&[]);
    let c = client();
    let base = s.host.url.clone();
    warm_up(&c, &base).await;
    // Several idle connections in the pool: concurrent visits each took one.
    let warm: Vec<_> = (0..8)
        .map(|i| {
            let (c, base) = (c.clone(), base.clone());
            tokio::spawn(async move { visit(&c, &base, 0, &format!("warm-{i}")).await })
        })
        .collect();
    let mut answers = Vec::new();
    for w in warm {
        let a = w.await.unwrap();
        assert!(a.acknowledged(), "{}", a.body);
        answers.push(a);
    }
    tokio::task::block_in_place(|| restart_immediately(&s.cluster));
    let mut failures_in_a_row = 0;
    let mut failures = 0;
    for i in 0..20 {
        let a = visit(&c, &base, 0, &format!("after-{i}")).await;
        if a.acknowledged() {
            failures_in_a_row = 0;
        } else {
            assert!(
                a.status == Some(StatusCode::SERVICE_UNAVAILABLE) && a.retry_after,
                "visit {i} after the restart answered {:?}: {}",
                a.status,
                a.body
            );
            failures += 1;
            failures_in_a_row += 1;
            assert!(
                failures_in_a_row < 2,
                "two requests in a row failed after the restart: {}",
                a.body
            );
        }
        answers.push(a);
    }
    println!("{failures} of 20 sequential visits after the restart answered 503");
    // The learners that failed are served on their next visit; nothing acknowledged lost.
    let retry: Vec<String> = answers
        .iter()
        .filter(|a| !a.acknowledged())
        .map(|a| a.learner.clone())
        .collect();
    for learner in retry {
        let again = visit(&c, &base, 0, &learner).await;
        assert!(again.acknowledged(), "{learner}: {}", again.body);
        answers.push(again);
    }
    check_acknowledged(&s.db, &answers);
}

/// More slow requests at once than the host runs renders: those that find no render slot
/// wait a bounded time and answer 503 with `Retry-After`, none hangs, and the host serves
/// again when the slow ones are done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_slow_requests_than_renders_wait_a_bounded_time_then_503() {
    let s = setup(&["--max-concurrent-renders", "2", "--queue-timeout-ms", "500"]);
    let c = client();
    let base = s.host.url.clone();
    warm_up(&c, &base).await;
    let key = "course-v1:xbhost+slow+1";
    let url = install_slow_experiment(&c, &base, key, 3000).await;
    let started = Instant::now();
    let requests: Vec<_> = (0..8)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            let token = xbhost_tests::served::token(
                &format!("slow-{i}"),
                &[(key, xbhost::server::auth::Role::Learner)],
            );
            tokio::spawn(async move {
                let response = c
                    .get(&url)
                    .bearer_auth(token)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .expect("an answer, not a hang");
                let retry = response.headers().get("retry-after").is_some();
                let status = response.status();
                (status, retry, response.text().await.unwrap())
            })
        })
        .collect();
    let mut served = 0;
    let mut refused = 0;
    for r in requests {
        let (status, retry, body) = r.await.unwrap();
        match status.as_u16() {
            200 => served += 1,
            503 => {
                assert!(retry, "503 without Retry-After: {body}");
                assert!(body.contains("busy"), "{body}");
                refused += 1;
            }
            other => panic!("a slow request answered {other}: {body}"),
        }
    }
    println!(
        "8 slow requests on 2 render slots: {served} served, {refused} refused, all answered within {} ms",
        started.elapsed().as_millis()
    );
    assert!(
        served >= 2 && refused >= 1,
        "{served} served, {refused} refused"
    );
    // Serving again once the slow ones are done.
    let token =
        xbhost_tests::served::token("slow-after", &[(key, xbhost::server::auth::Role::Learner)]);
    let response = c.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (status, _, body) = health(&c, &base).await;
    assert_eq!(status, 200, "{body}");
}

/// A pool whose every connection is held by a request transaction: another call waits
/// `wait` for one, then fails saying the database is unavailable (no connection came free),
/// never hangs; once a request ends, calls succeed again.
#[test]
fn a_call_on_an_exhausted_pool_fails_after_the_wait() {
    let cluster = PgCluster::for_test();
    let db = cluster.fresh_database();
    let wait = Duration::from_millis(400);
    let options = PgOptions {
        pool_size: 2,
        wait,
        ..PgOptions::default()
    };
    let store = PgStorage::connect(&db.url, &options).unwrap();
    let holders: Vec<_> = (0..2)
        .map(|i| {
            let request = store.for_request().unwrap();
            // A write: the request's transaction holds its connection until it ends.
            request
                .set_user_tag(&format!("holder-{i}"), "k", "v")
                .unwrap();
            request
        })
        .collect();
    let started = Instant::now();
    let error = store.course_keys().unwrap_err();
    let waited = started.elapsed();
    let unavailable = xbhost::errors::find::<xbhost::errors::StoreUnavailable>(&error)
        .unwrap_or_else(|| panic!("not an unavailability: {error:#}"));
    assert!(
        unavailable.why.contains("no database connection came free"),
        "{error:#}"
    );
    assert!(waited >= wait, "failed before the wait: {waited:?}");
    println!("an exhausted pool answered after {} ms", waited.as_millis());
    // A request that ends without flushing gives its connection back (rolled back).
    drop(holders);
    let started = Instant::now();
    loop {
        match store.course_keys() {
            Ok(_) => break,
            Err(e) => assert!(
                started.elapsed() < Duration::from_secs(10),
                "the pool did not recover: {e:#}"
            ),
        }
    }
    // Nothing of the unflushed requests was stored.
    assert_eq!(store.user_tag("holder-0", "k").unwrap(), None);
}

/// A read that fails mid-request (here: the learner's tags, behind a table lock until the
/// lock timeout) leaves the experiment without its group; when the database answers again
/// before the request ends, the page must still not be acknowledged: 503, not a 200 whose
/// experiment is a failed placeholder. (Before, only failures inside the request's
/// transaction were remembered, and such a page answered 200.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_failed_mid_request_is_never_acknowledged() {
    let db = TestDatabase::fresh();
    db.load_demo();
    let host = Served::on_database(
        &db.url,
        &[
            "--database-lock-timeout-ms",
            "300",
            "--database-wait-ms",
            "1000",
        ],
    );
    let c = client();
    warm_up(&c, &host.url).await;
    let key = "course-v1:xbhost+locked+1";
    let url = install_slow_experiment(&c, &host.url, key, 2000).await;
    // The learner's tags are locked away for a second: the page's first read of them times
    // out, the sleeper takes two seconds, and the page ends with the table free again.
    let (locker, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE user_course_tags IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let token =
        xbhost_tests::served::token("locked-out", &[(key, xbhost::server::auth::Role::Learner)]);
    let page = tokio::spawn({
        let (c, url) = (c.clone(), url.clone());
        async move {
            let response = c.get(&url).bearer_auth(token).send().await.unwrap();
            let retry = response.headers().get("retry-after").is_some();
            (response.status(), retry, response.text().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    locker.batch_execute("COMMIT").await.unwrap();
    let (status, retry, body) = page.await.unwrap();
    assert_eq!(status, 503, "a page whose tags could not be read: {body}");
    assert!(retry, "{body}");
    // Nothing of it was stored; the learner's next visit is served with a stored group.
    assert_eq!(stored_groups(&db, "locked-out").len(), 0);
    let token =
        xbhost_tests::served::token("locked-out", &[(key, xbhost::server::auth::Role::Learner)]);
    let response = c.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["failures"].as_array().unwrap().is_empty(), "{body}");
    assert_eq!(body["assignments"].as_object().unwrap().len(), 1, "{body}");
}

/// Every process of the cluster, stopped (`SIGSTOP`) or continued (`SIGCONT`): a database
/// that accepts connections but answers nothing, as a hung server or a path that drops
/// packets.
fn signal_cluster(cluster: &PgCluster, signal: libc::c_int) {
    let (postmaster, _) = postmaster(cluster.port());
    let mut pids = vec![postmaster];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the fields after the closing parenthesis.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid: Option<u32> = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(postmaster) {
            pids.push(pid);
        }
    }
    for pid in pids {
        // SAFETY: kill(2) on the processes of a cluster this test started.
        unsafe { libc::kill(pid as libc::pid_t, signal) };
    }
}

/// PostgreSQL stops answering (every process frozen): pages answer 503 with `Retry-After`
/// once a call has waited its bound (`--database-statement-timeout-ms` and
/// `--database-wait-ms`), never hang with a render slot held; when it answers again,
/// serving resumes with every slot. (Before, a call waited for an answer for ever.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_costs_a_503_not_a_hang() {
    let s = setup(&[
        "--database-statement-timeout-ms",
        "1000",
        "--max-concurrent-renders",
        "3",
        "--queue-timeout-ms",
        "30000",
    ]);
    let c = client();
    let base = s.host.url.clone();
    warm_up(&c, &base).await;
    signal_cluster(&s.cluster, libc::SIGSTOP);
    let started = Instant::now();
    // More pages than render slots: each must get its answer.
    let pages: Vec<_> = (0..5)
        .map(|i| {
            let (c, base) = (c.clone(), base.clone());
            tokio::spawn(async move { visit(&c, &base, 0, &format!("frozen-{i}")).await })
        })
        .collect();
    let mut answers = Vec::new();
    for p in pages {
        answers.push(p.await.unwrap());
    }
    let took = started.elapsed();
    signal_cluster(&s.cluster, libc::SIGCONT);
    for a in &answers {
        assert_eq!(
            a.status,
            Some(StatusCode::SERVICE_UNAVAILABLE),
            "{} with the database frozen: {}",
            a.learner,
            a.body
        );
        assert!(a.retry_after, "{}", a.body);
    }
    println!(
        "5 pages on 3 slots answered 503 within {} ms of the database freezing",
        took.as_millis()
    );
    // Serving resumes, on every slot.
    let again: Vec<_> = (0..6)
        .map(|i| {
            let (c, base) = (c.clone(), base.clone());
            tokio::spawn(async move { visit(&c, &base, 0, &format!("thawed-{i}")).await })
        })
        .collect();
    for p in again {
        let a = p.await.unwrap();
        assert!(a.acknowledged(), "{} after the thaw: {}", a.learner, a.body);
        answers.push(a);
    }
    check_acknowledged(&s.db, &answers);
}
