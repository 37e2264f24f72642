//! Three `xbhost serve --database URL` processes on one fresh PostgreSQL database, as behind
//! a load balancer: racing first visits of one learner spread over the three store one group
//! and one assignment event per partition, and every page shows that group; a host killed
//! with SIGKILL under load loses nothing it acknowledged while the other two keep serving.
//!
//! What is stored is read straight from the database (`user_course_tags`, `events`), not
//! through a host.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use xbhost_tests::DEMO_COURSE;
use xbhost_tests::db_pages::{Answer, assignment_events, stored_groups, visit, warm_up};
use xbhost_tests::http::client;
use xbhost_tests::pg::TestDatabase;
use xbhost_tests::served::Served;

/// Each host runs few renders at once: three hosts' pools must fit the shared test
/// server's connections beside other tests'.
const HOST_ARGS: &[&str] = &["--max-concurrent-renders", "6"];

fn three_hosts(db: &TestDatabase) -> Vec<Served> {
    db.load_demo();
    (0..3)
        .map(|_| Served::on_database(&db.url, HOST_ARGS))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_first_visits_over_three_hosts_store_one_group_and_one_event() {
    let db = TestDatabase::fresh();
    let hosts = three_hosts(&db);
    let c = client();
    for h in &hosts {
        warm_up(&c, &h.url).await;
    }
    let learner = "racer-3hosts";
    let urls: Vec<String> = hosts.iter().map(|h| h.url.clone()).collect();
    let visits: Vec<_> = (0..200)
        .map(|i| {
            let (c, base) = (c.clone(), urls[i % 3].clone());
            tokio::spawn(async move { visit(&c, &base, i % 3, learner).await })
        })
        .collect();
    let mut answers = Vec::new();
    for v in visits {
        answers.push(v.await.unwrap());
    }
    let shown: BTreeSet<_> = answers
        .iter()
        .filter(|a| a.acknowledged())
        .map(|a| a.groups.clone())
        .collect();
    let ok = answers.iter().filter(|a| a.acknowledged()).count();
    for a in answers.iter().filter(|a| !a.acknowledged()) {
        // A host may refuse under load, saying when to come back; nothing else.
        assert!(
            a.status == Some(StatusCode::SERVICE_UNAVAILABLE) && a.retry_after,
            "host {} answered {:?}: {}",
            a.host,
            a.status,
            a.body
        );
    }
    println!("{ok} of 200 racing first visits answered 200 over three hosts");
    assert!(ok > 0, "no page was served: {:?}", answers[0]);
    for host in 0..3 {
        assert!(
            answers.iter().any(|a| a.host == host && a.acknowledged()),
            "host {host} served no page"
        );
    }
    assert_eq!(
        shown.len(),
        1,
        "the pages disagree on the groups: {shown:?}"
    );
    let shown = shown.into_iter().next().unwrap();
    assert_eq!(shown.len(), 2, "both experiments of the unit: {shown:?}");
    // Exactly one stored group per partition (the table's key allows no more), the one
    // every page showed.
    assert_eq!(stored_groups(&db, learner), shown);
    assert_eq!(
        db.count(
            "SELECT count(*) FROM user_course_tags WHERE course_id = $1 AND user_id = $2",
            &[&DEMO_COURSE, &learner]
        ),
        2
    );
    // And exactly one assignment event per partition, naming that group.
    let events = assignment_events(&db);
    let mut mine = events.get(learner).cloned().unwrap_or_default();
    mine.sort();
    let expected: Vec<(String, u64)> = shown.iter().map(|(p, g)| (p.clone(), *g)).collect();
    assert_eq!(mine, expected, "one assignment event per partition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_killed_under_load_loses_nothing_it_acknowledged() {
    let db = TestDatabase::fresh();
    let hosts = three_hosts(&db);
    let urls: Vec<String> = hosts.iter().map(|h| h.url.clone()).collect();
    let victim = 2;
    let victim_pid = hosts[victim].pid() as libc::pid_t;
    let c = client();
    for h in &hosts {
        warm_up(&c, &h.url).await;
    }
    // Acknowledged pages of the victim so far: the kill comes once it has served some.
    let victim_served = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let learners = 300;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(24));
    let visits: Vec<_> = (0..learners)
        .map(|i| {
            let (c, base) = (c.clone(), urls[i % 3].clone());
            let (victim_served, killed, in_flight) =
                (victim_served.clone(), killed.clone(), in_flight.clone());
            tokio::spawn(async move {
                let _permit = in_flight.acquire().await.unwrap();
                let learner = format!("load-{i}");
                let host = i % 3;
                let was_killed = killed.load(Ordering::SeqCst);
                let answer = visit(&c, &base, host, &learner).await;
                if host == victim && answer.acknowledged() {
                    let served = victim_served.fetch_add(1, Ordering::SeqCst) + 1;
                    if served == 30 && !killed.swap(true, Ordering::SeqCst) {
                        // SAFETY: kill(2) on the pid of a child this test started.
                        unsafe { libc::kill(victim_pid, libc::SIGKILL) };
                    }
                }
                (answer, was_killed)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for v in visits {
        answers.push(v.await.unwrap());
    }
    assert!(killed.load(Ordering::SeqCst), "the victim was never killed");
    let after_kill = answers.iter().filter(|(_, k)| *k).count();
    assert!(after_kill > 0, "no visit started after the kill");
    // The two others kept serving, during the kill and after it.
    for (a, _) in answers.iter().filter(|(a, _)| a.host != victim) {
        assert!(
            a.acknowledged(),
            "surviving host {} answered {:?} for {}: {}",
            a.host,
            a.status,
            a.learner,
            a.body
        );
    }
    let lost_on_victim = answers
        .iter()
        .filter(|(a, _)| a.host == victim && !a.acknowledged())
        .count();
    assert!(lost_on_victim > 0, "the victim never stopped answering");
    println!(
        "{} visits, {after_kill} started after the kill, {lost_on_victim} unanswered by the killed host",
        answers.len()
    );
    // Nothing acknowledged is lost: each page that answered 200 has its learner's groups
    // stored as it showed them, and one assignment event for each.
    let events = assignment_events(&db);
    for (a, _) in answers.iter().filter(|(a, _)| a.acknowledged()) {
        assert_eq!(a.groups.len(), 2, "{}: {:?}", a.learner, a.groups);
        assert_eq!(
            stored_groups(&db, &a.learner),
            a.groups,
            "the groups host {} acknowledged for {}",
            a.host,
            a.learner
        );
        let mut mine = events.get(&a.learner).cloned().unwrap_or_default();
        mine.sort();
        let expected: Vec<(String, u64)> = a.groups.iter().map(|(p, g)| (p.clone(), *g)).collect();
        assert_eq!(mine, expected, "the assignment events of {}", a.learner);
    }
    // What the killed host did not acknowledge is all or nothing: a stored group always has
    // its event, and no event describes a group that is not stored.
    for (a, _) in answers.iter().filter(|(a, _)| !a.acknowledged()) {
        let mut mine = events.get(&a.learner).cloned().unwrap_or_default();
        mine.sort();
        let stored: Vec<(String, u64)> = stored_groups(&db, &a.learner).into_iter().collect();
        assert_eq!(mine, stored, "{} (unacknowledged)", a.learner);
    }
    // The survivors show the victim's acknowledged learners the groups it acknowledged.
    let acknowledged_by_victim: Vec<&Answer> = answers
        .iter()
        .map(|(a, _)| a)
        .filter(|a| a.host == victim && a.acknowledged())
        .collect();
    for (n, a) in acknowledged_by_victim.iter().enumerate() {
        let host = n % 2;
        let again = visit(&c, &urls[host], host, &a.learner).await;
        assert!(again.acknowledged(), "{}: {}", a.learner, again.body);
        assert_eq!(again.groups, a.groups, "{} on host {host}", a.learner);
    }
}
