//! What a page may cost on PostgreSQL (#19 point 3), asserted for a real host on the real
//! database, not only printed by the benchmark:
//!
//! - a repeat visit reads the learner's course and global tags in ONE statement, and a
//!   first visit writes all its assignments, state and events in ONE transaction (one
//!   COMMIT, no ROLLBACK), counted on the wire by the benchmark's loopback proxy
//!   (`bench/src/wire_count.rs`, compiled here from the same file) between the host and
//!   PostgreSQL;
//! - a serving host's connections (`pg_stat_activity` for its `application_name`) never
//!   exceed the pool the host derives from `--max-concurrent-renders` (renders + 4, and one
//!   change listener), under more slow requests than it has render slots, and that bound
//!   moves with the setting.

#[path = "../bench/src/wire_count.rs"]
#[allow(dead_code)]
mod wire_count;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use xbhost::{Host, HostConfig, RenderRequest, User, View};
use xbhost_tests::db_pages::install_slow_experiment;
use xbhost_tests::http::client;
use xbhost_tests::patient_config;
use xbhost_tests::pg::TestDatabase;
use xbhost_tests::served::Served;

use wire_count::WireCount;

/// `host:port` of a `postgres://user@host:port/db` URL.
fn address_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split(['/', '?']).next().unwrap();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, a)| a)
        .to_string()
}

/// The demo course without its problem (as the benchmark's page): a unit whose blocks
/// read no state of their own, so its only read is the learner's tags.
const COURSE: &str = "course-v1:xbhost+costs+1";

fn render(host: &Host, learner: &str) {
    let out = host
        .render(&RenderRequest {
            course_key: COURSE.into(),
            usage_id: "unit_1".into(),
            user: User::learner(learner),
            view: View::Student,
            user_agent: None,
            masquerade: None,
        })
        .unwrap();
    assert!(
        out.failures.is_empty(),
        "{learner}: blocks failed: {:?}",
        out.failures
    );
    assert_eq!(out.assignments.len(), 2, "{learner}: {:?}", out.assignments);
}

#[test]
fn a_repeat_visit_reads_once_and_a_first_visit_commits_once() {
    let db = TestDatabase::fresh();
    db.load_demo();
    let proxy = WireCount::start(address_of(&db.url)).unwrap();
    let through_proxy = db.url.replacen(
        &address_of(&db.url),
        &format!("127.0.0.1:{}", proxy.port),
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let config = HostConfig {
        database: Some(through_proxy),
        ..patient_config()
    };
    let host = Host::open(dir.path(), config).unwrap();
    let mut doc = xbhost_tests::demo_course();
    doc.course_key = COURSE.into();
    doc.blocks.retain(|b| b.usage_id != "check_sum");
    for b in &mut doc.blocks {
        b.children.retain(|c| c != "check_sum");
    }
    host.load_course(doc).unwrap();
    // Course and plugins loaded, statements prepared: what is counted next is what every
    // visit costs.
    render(&host, "warm");
    render(&host, "warm");
    const N: u64 = 40;
    let learners: Vec<String> = (0..N).map(|i| format!("counted-{i:02}")).collect();
    let before = proxy.counts();
    for l in &learners {
        render(&host, l);
    }
    let after_first = proxy.counts();
    for l in &learners {
        render(&host, l);
    }
    let after_repeat = proxy.counts();
    let first = after_first.since(&before);
    let repeat = after_repeat.since(&after_first);
    println!(
        "first visit, per visit: {} ({:.2} round trips); repeat visit: {} ({:.2} round trips)",
        first.describe(N),
        first.round_trips as f64 / N as f64,
        repeat.describe(N),
        repeat.round_trips as f64 / N as f64
    );
    // A repeat visit: one read (course and global tags at once), its exposure events
    // inserted, one commit.
    assert_eq!(
        repeat.tag("SELECT"),
        N,
        "reads of repeat visits: {repeat:?}"
    );
    assert_eq!(repeat.tag("COMMIT"), N, "{repeat:?}");
    assert_eq!(repeat.tag("ROLLBACK"), 0, "{repeat:?}");
    // The read and the commit are counted above; how the client's writes fall into
    // packets varies a little, so round trips get a ceiling with room (about 3 a visit).
    assert!(
        repeat.round_trips <= 4 * N,
        "a repeat visit makes at most 4 round trips: {repeat:?}"
    );
    // A first visit: one transaction for everything it writes.
    assert_eq!(first.tag("BEGIN"), N, "{first:?}");
    assert_eq!(
        first.tag("COMMIT"),
        N,
        "one commit a first visit: {first:?}"
    );
    assert_eq!(first.tag("ROLLBACK"), 0, "{first:?}");
    assert!(
        first.round_trips <= 6 * N,
        "a first visit makes at most 6 round trips: {first:?}"
    );
    // Nothing is prepared during visits: every statement was prepared by the warm-up.
    assert_eq!(first.parses + repeat.parses, 0, "{first:?} {repeat:?}");
    // What they stored is all there: two groups and their two assignment events each.
    let assigned = db.count(
        "SELECT count(*) FROM events WHERE course_id = $1 AND name = $2 AND user_id LIKE 'counted-%'",
        &[&COURSE, &xbhost::events::ASSIGNED_EVENT],
    );
    assert_eq!(assigned, 2 * N as i64);
}

/// The most connections `application_name` held at once while `load` ran, sampled every
/// 10 ms.
async fn peak_connections(
    db: &TestDatabase,
    application: &str,
    load: impl Future<Output = ()>,
) -> i64 {
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (url, application, done, peak) = (
            db.url.clone(),
            application.to_string(),
            done.clone(),
            peak.clone(),
        );
        tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            while !done.load(Ordering::SeqCst) {
                let row = client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity
                         WHERE datname = current_database() AND application_name = $1",
                        &[&application],
                    )
                    .await
                    .unwrap();
                peak.fetch_max(row.get::<_, i64>(0), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    load.await;
    done.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    peak.load(Ordering::SeqCst)
}

/// Twice as many slow pages at once as the host has render slots (each holds its
/// connection for its whole render), with new learners' first visits beside them.
async fn overload(url: &str, key: &str, renders: usize, round: &str) {
    let c = client();
    let requests: Vec<_> = (0..2 * renders + 4)
        .map(|i| {
            let (c, url) = (c.clone(), url.to_string());
            let token = xbhost_tests::served::token(
                &format!("{round}-{i}"),
                &[(key, xbhost::server::auth::Role::Learner)],
            );
            tokio::spawn(async move {
                let response = c
                    .get(&url)
                    .bearer_auth(token)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status().as_u16();
                assert!(
                    status == 200 || status == 503,
                    "{status}: {}",
                    response.text().await.unwrap_or_default()
                );
                status
            })
        })
        .collect();
    let mut served = 0;
    for r in requests {
        if r.await.unwrap() == 200 {
            served += 1;
        }
    }
    assert!(served >= renders, "{served} of the slow pages served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hosts_connections_stay_within_the_pool_its_render_concurrency_sets() {
    let db = TestDatabase::fresh();
    db.load_demo();
    let mut peaks = Vec::new();
    for renders in [1usize, 6] {
        let application = format!("xbhost-pool-{renders}");
        let url = format!("{}?application_name={application}", db.url);
        let host = Served::on_database(
            &url,
            &[
                "--max-concurrent-renders",
                &renders.to_string(),
                "--queue-timeout-ms",
                "20000",
            ],
        );
        let key = format!("course-v1:xbhost+pool{renders}+1");
        let page = install_slow_experiment(&client(), &host.url, &key, 1500).await;
        let peak = peak_connections(
            &db,
            &application,
            overload(&page, &key, renders, &application),
        )
        .await;
        // The pool (renders + 4) and the change listener.
        let bound = renders as i64 + 4 + 1;
        println!(
            "--max-concurrent-renders {renders}: at most {peak} connections at once (bound {bound})"
        );
        assert!(peak <= bound, "{peak} connections, over the bound {bound}");
        // Every render slot held a connection at once, and the listener its own.
        assert!(
            peak > renders as i64,
            "{peak} connections for {renders} renders"
        );
        peaks.push(peak);
        drop(host);
    }
    // The bound moves with the setting: six renders at once hold more connections than
    // the pool one render allows.
    assert!(peaks[1] > 1 + 4 + 1, "peaks {peaks:?}");
}
