//! The storage contract, one body of tests run against both backends: sled (the
//! `RecoveringStore` a host opens on a data directory) and PostgreSQL (`PgStorage` on a fresh
//! database of `XBHOST_TEST_DATABASE_URL`). Each check is a function over `&dyn Storage`;
//! `contract!` makes a sled test and a PostgreSQL test of each (#19 point 2).
//!
//! Then, through a real `Host` on each backend: every stored group has its assignment
//! event exactly once; and on PostgreSQL one request's writes and events are one
//! transaction (a page whose commit fails leaves neither its groups nor their events).

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use xbhost::model::CourseDoc;
use xbhost::storage::{
    BlockWrites, CourseWrite, FirstWrite, PgOptions, PgStorage, PluginRecord, RecoveringStore,
    Storage, StoredEvent,
};
use xbhost::{Host, HostConfig, RenderRequest, User, View};
use xbhost_tests::pg::TestDatabase;
use xbhost_tests::{DEMO_COURSE, demo_course, patient_config, plugin_wasm};

/// A store under test, and what must outlive it (its directory or its database).
struct Backend {
    store: Arc<dyn Storage>,
    _keep: Box<dyn std::any::Any>,
}

impl Backend {
    fn sled() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let store = RecoveringStore::open(&dir.path().join("db")).unwrap();
        Backend {
            store: Arc::new(store),
            _keep: Box::new(dir),
        }
    }

    fn pg() -> Backend {
        let db = TestDatabase::fresh();
        let store = PgStorage::connect(&db.url, &PgOptions::default())
            .unwrap_or_else(|e| panic!("connecting to {}: {e:#}", db.name));
        Backend {
            store: Arc::new(store),
            _keep: Box::new(db),
        }
    }
}

/// A sled test and a PostgreSQL test of each check, from the same body.
macro_rules! contract {
    ($($check:ident),* $(,)?) => {
        mod sled {
            $( #[test] fn $check() { let b = super::Backend::sled(); super::$check(&*b.store); } )*
        }
        mod pg {
            $( #[test] fn $check() { let b = super::Backend::pg(); super::$check(&*b.store); } )*
        }
    };
}

contract!(
    first_writer_wins,
    racing_first_writes_have_one_winner,
    compare_and_swap_replaces_only_the_expected_value,
    commit_stores_all_or_nothing,
    learner_tags_are_the_course_and_global_tags,
    carry_over_keeps_the_new_identifiers_own_values,
    enrollment_batches_are_atomic,
    plugins_and_their_wasm,
    courses_and_their_versions,
    meta_or_insert_keeps_the_first_value,
    data_is_scoped_by_course_and_user,
    listings_are_in_bytewise_order,
    an_enrollment_batch_naming_a_user_twice_keeps_the_last_date,
    carrying_tags_over_to_the_same_identifier_keeps_them,
    tallies_are_stored_with_the_state_and_added_up,
    a_tally_overflow_stores_nothing_of_its_commit,
    tallies_are_scoped_by_course_and_block,
    tally_keys_no_store_can_hold_are_refused,
    concurrent_tally_additions_sum_exactly,
    an_overflow_fails_only_its_own_call_in_a_request,
);

/// The listings' order on PostgreSQL must not depend on the database's collation: a
/// database made with a linguistic (ICU) collation, as institutions' servers often default
/// to, lists in the same (bytewise) order as sled.
#[test]
fn pg_listings_are_in_bytewise_order_whatever_the_collation() {
    let db = TestDatabase::fresh_with("TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en'");
    let store = PgStorage::connect(&db.url, &PgOptions::default()).unwrap();
    listings_are_in_bytewise_order(&store);
}

const C: &str = "course-v1:org+contract+2026";
const GROUP: &str = "xblock.partition_service.partition_0";

fn first_writer_wins(s: &dyn Storage) {
    assert_eq!(
        s.set_course_tag_if_absent(C, "ann", GROUP, "1").unwrap(),
        FirstWrite::Written
    );
    assert_eq!(
        s.set_course_tag_if_absent(C, "ann", GROUP, "2").unwrap(),
        FirstWrite::Existing("1".into())
    );
    assert_eq!(s.course_tag(C, "ann", GROUP).unwrap().as_deref(), Some("1"));
    // Another learner's first write is their own.
    assert_eq!(
        s.set_course_tag_if_absent(C, "bob", GROUP, "2").unwrap(),
        FirstWrite::Written
    );
    // A plain set overwrites; a first write after it sees the new value.
    s.set_course_tag(C, "ann", GROUP, "3").unwrap();
    assert_eq!(
        s.set_course_tag_if_absent(C, "ann", GROUP, "4").unwrap(),
        FirstWrite::Existing("3".into())
    );
}

fn racing_first_writes_have_one_winner(s: &dyn Storage) {
    const WRITERS: usize = 12;
    for round in 0..10 {
        let user = format!("racer-{round}");
        let barrier = Barrier::new(WRITERS);
        let outcomes: Vec<(String, FirstWrite)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|i| {
                    let (user, barrier) = (&user, &barrier);
                    scope.spawn(move || {
                        let value = format!("group-{i}");
                        barrier.wait();
                        let outcome = s.set_course_tag_if_absent(C, user, GROUP, &value).unwrap();
                        (value, outcome)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<&String> = outcomes
            .iter()
            .filter(|(_, o)| *o == FirstWrite::Written)
            .map(|(v, _)| v)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let winner = winners[0].clone();
        for (value, outcome) in &outcomes {
            if value != &winner {
                assert_eq!(
                    outcome,
                    &FirstWrite::Existing(winner.clone()),
                    "round {round}: a loser must get the winner's value"
                );
            }
        }
        assert_eq!(s.course_tag(C, &user, GROUP).unwrap(), Some(winner));
    }
}

fn compare_and_swap_replaces_only_the_expected_value(s: &dyn Storage) {
    s.set_course_tag(C, "ann", GROUP, "old").unwrap();
    assert_eq!(
        s.replace_course_tag(C, "ann", GROUP, "stale", "new")
            .unwrap(),
        FirstWrite::Existing("old".into())
    );
    assert_eq!(
        s.course_tag(C, "ann", GROUP).unwrap().as_deref(),
        Some("old")
    );
    assert_eq!(
        s.replace_course_tag(C, "ann", GROUP, "old", "new").unwrap(),
        FirstWrite::Written
    );
    assert_eq!(
        s.course_tag(C, "ann", GROUP).unwrap().as_deref(),
        Some("new")
    );
    // Many replacing the same value at once: one wins, the others see its value.
    let barrier = Barrier::new(8);
    let outcomes: Vec<FirstWrite> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    s.replace_course_tag(C, "ann", GROUP, "new", &format!("r{i}"))
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored = s.course_tag(C, "ann", GROUP).unwrap().unwrap();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == FirstWrite::Written)
            .count(),
        1,
        "{outcomes:?}"
    );
    for o in &outcomes {
        assert!(
            *o == FirstWrite::Written || *o == FirstWrite::Existing(stored.clone()),
            "{o:?} (stored {stored})"
        );
    }
    // Replacing a tag nobody stored is an error naming it on both backends.
    let err = s
        .replace_course_tag(C, "nobody", GROUP, "x", "y")
        .unwrap_err();
    assert!(format!("{err:#}").contains("nobody"), "{err:#}");
}

fn writes(course_tags: &[(&str, &str)], user_tags: &[(&str, &str)]) -> BlockWrites {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    BlockWrites {
        course_tags: map(course_tags),
        user_tags: map(user_tags),
        state: Some(("problem_1".into(), r#"{"attempts":1}"#.into())),
        ..BlockWrites::default()
    }
}

fn commit_stores_all_or_nothing(s: &dyn Storage) {
    s.commit(
        C,
        "ann",
        &writes(&[("a", "1"), ("b", "2")], &[("lang", "fr")]),
    )
    .unwrap();
    assert_eq!(
        s.course_tags(C, "ann").unwrap(),
        BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
    );
    assert_eq!(s.user_tag("ann", "lang").unwrap().as_deref(), Some("fr"));
    assert_eq!(
        s.user_state(C, "ann", "problem_1").unwrap().as_deref(),
        Some(r#"{"attempts":1}"#)
    );
    // One bad write (a key holding NUL, which neither backend can store) and none is kept:
    // not the good course tag before it, the user tag or the state.
    let bad = writes(&[("c", "3"), ("d\0bad", "4")], &[("lang", "de")]);
    let mut bad = bad;
    bad.state = Some(("problem_2".into(), "{}".into()));
    assert!(s.commit(C, "bob", &bad).is_err());
    assert!(s.commit(C, "ann", &bad).is_err());
    assert!(s.course_tags(C, "bob").unwrap().is_empty());
    assert_eq!(s.user_tag("ann", "lang").unwrap().as_deref(), Some("fr"));
    assert_eq!(s.course_tag(C, "ann", "c").unwrap(), None);
    assert_eq!(s.user_state(C, "ann", "problem_2").unwrap(), None);
    assert_eq!(s.user_state(C, "bob", "problem_2").unwrap(), None);
    // An empty commit is a no-op.
    s.commit(C, "carl", &BlockWrites::default()).unwrap();
    assert!(s.course_users(C).unwrap().iter().all(|u| u != "carl"));
}

fn learner_tags_are_the_course_and_global_tags(s: &dyn Storage) {
    s.set_course_tag(C, "ann", "a", "1").unwrap();
    s.set_course_tag(C, "ann", "b", "2").unwrap();
    s.set_course_tag("other-course", "ann", "a", "other")
        .unwrap();
    s.set_course_tag(C, "bob", "a", "bob's").unwrap();
    s.set_user_tag("ann", "lang", "fr").unwrap();
    s.set_user_tag("bob", "lang", "de").unwrap();
    let (course, global) = s.learner_tags(C, "ann").unwrap();
    assert_eq!(course, s.course_tags(C, "ann").unwrap());
    assert_eq!(
        course,
        BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
    );
    assert_eq!(global, BTreeMap::from([("lang".into(), "fr".into())]));
    let (course, global) = s.learner_tags(C, "nobody").unwrap();
    assert!(course.is_empty() && global.is_empty());
}

fn carry_over_keeps_the_new_identifiers_own_values(s: &dyn Storage) {
    let anon = "anon:3f2a";
    s.set_course_tag(C, anon, "k1", "from-1").unwrap();
    s.set_course_tag(C, anon, "k2", "from-2").unwrap();
    s.set_course_tag(C, anon, "kept", "not moved").unwrap();
    s.set_course_tag(C, "ann", "k2", "own").unwrap();
    let keys: Vec<String> = ["k1", "k2", "k3"].iter().map(|k| k.to_string()).collect();
    let mut carried = s.carry_over_course_tags(C, anon, "ann", &keys).unwrap();
    carried.sort_by(|a, b| a.key.cmp(&b.key));
    let summary: Vec<(&str, &str, &str, bool)> = carried
        .iter()
        .map(|c| {
            (
                c.key.as_str(),
                c.from_value.as_str(),
                c.to_value.as_str(),
                c.carried,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("k1", "from-1", "from-1", true),
            ("k2", "from-2", "own", false)
        ]
    );
    assert_eq!(
        s.course_tags(C, "ann").unwrap(),
        BTreeMap::from([("k1".into(), "from-1".into()), ("k2".into(), "own".into())])
    );
    // `from` is emptied of the keys, and keeps the others.
    assert_eq!(
        s.course_tags(C, anon).unwrap(),
        BTreeMap::from([("kept".into(), "not moved".into())])
    );
    // Again: nothing left to carry.
    assert!(
        s.carry_over_course_tags(C, anon, "ann", &keys)
            .unwrap()
            .is_empty()
    );
}

fn enrollment_batches_are_atomic(s: &dyn Storage) {
    let dates = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(u, d)| (u.to_string(), d.to_string()))
            .collect()
    };
    s.set_enrollments(C, &dates(&[("ann", "2026-01-05T00:00:00Z")]))
        .unwrap();
    // A batch with one user id no store can hold (NUL) stores none of it: not the new
    // user before it, not the change to ann.
    let bad = dates(&[
        ("bob", "2026-02-01T00:00:00Z"),
        ("ann", "2026-03-01T00:00:00Z"),
        ("bad\0user", "2026-02-01T00:00:00Z"),
        ("carl", "2026-02-01T00:00:00Z"),
    ]);
    assert!(s.set_enrollments(C, &bad).is_err());
    assert_eq!(s.enrollment(C, "bob").unwrap(), None);
    assert_eq!(s.enrollment(C, "carl").unwrap(), None);
    assert_eq!(
        s.enrollment(C, "ann").unwrap().as_deref(),
        Some("2026-01-05T00:00:00Z")
    );
    // A good batch stores all of it, replacing earlier dates.
    s.set_enrollments(
        C,
        &bad.into_iter()
            .filter(|(u, _)| !u.contains('\0'))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(
        s.enrollment(C, "ann").unwrap().as_deref(),
        Some("2026-03-01T00:00:00Z")
    );
    assert_eq!(
        s.enrollment(C, "carl").unwrap().as_deref(),
        Some("2026-02-01T00:00:00Z")
    );
    assert_eq!(s.enrollment("other-course", "ann").unwrap(), None);
}

fn record(name: &str, version: &str, wasm: &[u8]) -> PluginRecord {
    PluginRecord {
        name: name.into(),
        version: version.into(),
        contract: "xblock:host@0.1.0".into(),
        hash: blake3::hash(wasm).to_hex().to_string(),
        size: wasm.len() as u64,
    }
}

fn plugins_and_their_wasm(s: &dyn Storage) {
    let html = plugin_wasm("html");
    let v1 = record("html", "1.0.0", &html);
    s.put_plugin(&v1, &html).unwrap();
    assert_eq!(s.plugin("html").unwrap(), Some(v1.clone()));
    assert_eq!(s.plugin_wasm(&v1.hash).unwrap(), Some(html.clone()));
    assert_eq!(s.plugin("vertical").unwrap(), None);
    assert_eq!(s.plugin_wasm(&"0".repeat(64)).unwrap(), None);
    // A new version replaces the record; the old wasm stays addressable by its hash.
    let other = plugin_wasm("vertical");
    let v2 = record("html", "2.0.0", &other);
    s.put_plugin(&v2, &other).unwrap();
    s.put_plugin(&record("vertical", "1.0.0", &other), &other)
        .unwrap();
    assert_eq!(s.plugin("html").unwrap(), Some(v2.clone()));
    assert_eq!(s.plugin_wasm(&v2.hash).unwrap(), Some(other));
    assert_eq!(s.plugin_wasm(&v1.hash).unwrap(), Some(html));
    let mut names: Vec<String> = s.plugins().unwrap().into_iter().map(|p| p.name).collect();
    names.sort();
    assert_eq!(names, ["html", "vertical"]);
}

fn course(key: &str, name: &str) -> CourseDoc {
    let mut doc = demo_course();
    doc.course_key = key.into();
    doc.display_name = Some(name.into());
    doc
}

fn courses_and_their_versions(s: &dyn Storage) {
    assert_eq!(s.course(C).unwrap(), None);
    assert_eq!(s.course_with_version(C).unwrap(), None);
    assert_eq!(
        s.put_course_if_version(&course(C, "first"), None).unwrap(),
        CourseWrite::Stored(1)
    );
    // Two changes that both started from version 1: the second is refused, naming 2.
    assert_eq!(
        s.put_course_if_version(&course(C, "second"), Some(1))
            .unwrap(),
        CourseWrite::Stored(2)
    );
    assert_eq!(
        s.put_course_if_version(&course(C, "lost"), Some(1))
            .unwrap(),
        CourseWrite::Conflict(Some(2))
    );
    assert_eq!(
        s.put_course_if_version(&course(C, "new?"), None).unwrap(),
        CourseWrite::Conflict(Some(2))
    );
    assert_eq!(
        s.put_course_if_version(&course("course-v1:org+none+1", "x"), Some(1))
            .unwrap(),
        CourseWrite::Conflict(None)
    );
    let (doc, version) = s.course_with_version(C).unwrap().unwrap();
    assert_eq!((doc.display_name.as_deref(), version), (Some("second"), 2));
    assert_eq!(s.course(C).unwrap(), Some(course(C, "second")));
    // An unconditional store is the next version.
    s.put_course(&course(C, "third")).unwrap();
    assert_eq!(s.course_with_version(C).unwrap().unwrap().1, 3);
    s.put_course(&course(DEMO_COURSE, "demo")).unwrap();
    let mut keys = s.course_keys().unwrap();
    keys.sort();
    assert_eq!(keys, [C.to_string(), DEMO_COURSE.to_string()]);
}

fn meta_or_insert_keeps_the_first_value(s: &dyn Storage) {
    assert_eq!(s.meta_or_insert("key", b"first").unwrap(), b"first");
    assert_eq!(s.meta_or_insert("key", b"second").unwrap(), b"first");
    assert_eq!(
        s.meta_or_insert("other", b"\0bytes\xff").unwrap(),
        b"\0bytes\xff"
    );
    let barrier = Barrier::new(8);
    let seen: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    s.meta_or_insert("raced", &[i]).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(seen.iter().all(|v| v == &seen[0]), "{seen:?}");
}

fn data_is_scoped_by_course_and_user(s: &dyn Storage) {
    // Ids that are prefixes of one another never see each other's data.
    for (course, user, value) in [
        ("c", "u", "c/u"),
        ("c", "u1", "c/u1"),
        ("c1", "u", "c1/u"),
        ("c1", "u1", "c1/u1"),
    ] {
        s.set_course_tag(course, user, "k", value).unwrap();
        s.set_user_state(course, user, "b", value).unwrap();
        s.set_user_tag(user, "g", value).unwrap();
    }
    assert_eq!(
        s.course_tags("c", "u").unwrap(),
        BTreeMap::from([("k".into(), "c/u".into())])
    );
    assert_eq!(
        s.course_tag("c1", "u", "k").unwrap().as_deref(),
        Some("c1/u")
    );
    assert_eq!(
        s.user_state("c", "u1", "b").unwrap().as_deref(),
        Some("c/u1")
    );
    assert_eq!(s.user_state("c", "u", "b1").unwrap(), None);
    assert_eq!(s.user_tag("u", "g").unwrap().as_deref(), Some("c1/u"));
    assert_eq!(s.user_tags("u1").unwrap().len(), 1);
    let mut users = s.course_users("c").unwrap();
    users.sort();
    assert_eq!(users, ["u", "u1"]);
    let mut with = s.users_with_course_tag("c1", "k").unwrap();
    with.sort();
    assert_eq!(
        with,
        [
            ("u".to_string(), "c1/u".to_string()),
            ("u1".to_string(), "c1/u1".to_string())
        ]
    );
    assert!(s.users_with_course_tag("c1", "k1").unwrap().is_empty());
    assert!(s.course_users("c2").unwrap().is_empty());
}

fn event(id: &str, course: &str, time: &str) -> StoredEvent {
    StoredEvent {
        id: id.into(),
        course_key: course.into(),
        user_id: "ann".into(),
        name: "xbhost.test".into(),
        time: time.into(),
        line: format!(r#"{{"id":"{id}","time":"{time}"}}"#),
    }
}

/// PostgreSQL keeps the event log; sled leaves it to the file log (and says so).
#[test]
fn pg_events_are_kept_in_order_and_read_since_a_time() {
    let b = Backend::pg();
    let s = &*b.store;
    assert!(s.keeps_events());
    let events = vec![
        event("e1", C, "2026-01-01T10:00:00.000Z"),
        event("e2", "other", "2026-01-01T11:00:00.000Z"),
        event("e3", C, "2026-01-02T10:00:00.000Z"),
        event("e4", C, "2026-01-01T12:00:00.000Z"),
    ];
    s.append_events(&events).unwrap();
    // An event stored twice (a retried flush) is kept once.
    s.append_events(&events[..1]).unwrap();
    let read = |since: Option<&str>| {
        let mut out = Vec::new();
        s.course_events(C, since, &mut |e| {
            out.push(e);
            Ok(())
        })
        .unwrap();
        out
    };
    assert_eq!(
        read(None),
        vec![events[0].clone(), events[2].clone(), events[3].clone()]
    );
    let since: Vec<String> = read(Some("2026-01-01T11:30:00Z"))
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(since, ["e3", "e4"]);
    let ids: Vec<String> = ["e1", "e2", "nope"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        s.stored_event_ids(&ids)
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        ["e1", "e2"]
    );
    // A line PostgreSQL cannot hold is refused, naming it, and nothing of its batch is kept.
    let mut bad = event("e5", C, "2026-01-03T00:00:00.000Z");
    bad.line = "nul\0line".into();
    let err = s
        .append_events(&[event("e6", C, "2026-01-03T00:00:00.000Z"), bad])
        .unwrap_err();
    assert!(format!("{err:#}").contains("NUL"), "{err:#}");
    assert_eq!(read(None).len(), 3);
}

#[test]
fn sled_keeps_no_event_log() {
    let b = Backend::sled();
    assert!(!b.store.keeps_events());
    assert!(
        b.store
            .append_events(&[event("e1", C, "2026-01-01T00:00:00.000Z")])
            .is_err()
    );
}

fn demo_host(db: &TestDatabase, data: &std::path::Path) -> Host {
    let config = HostConfig {
        database: Some(db.url.clone()),
        ..patient_config()
    };
    let host = Host::open(data, config).unwrap();
    for p in ["html", "vertical", "split_test", "problem"] {
        host.add_plugin(&plugin_wasm(p), None).unwrap();
    }
    host.load_course(demo_course()).unwrap();
    host
}

fn first_visit(host: &Host, learner: &str) -> anyhow::Result<xbhost::RenderOutput> {
    host.render(&RenderRequest {
        course_key: DEMO_COURSE.into(),
        usage_id: "unit_1".into(),
        user: User::learner(learner),
        view: View::Student,
        user_agent: None,
        masquerade: None,
    })
}

/// A request's groups and their assignment events are one transaction on PostgreSQL: when
/// its commit fails (a deferred trigger refuses the events at COMMIT), neither is stored;
/// when it succeeds, every stored group has its event.
#[test]
fn pg_a_request_that_fails_at_commit_leaves_nothing() {
    let db = TestDatabase::fresh();
    let data = tempfile::tempdir().unwrap();
    let host = demo_host(&db, data.path());
    db.execute(
        "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'the test refuses events at commit'; END $$;
         CREATE CONSTRAINT TRIGGER refuse_events AFTER INSERT ON events
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_events();",
    );
    let outcome = first_visit(&host, "ann");
    let shown_groups = outcome.is_ok();
    let tags = |user: &str| {
        db.count(
            "SELECT count(*) FROM user_course_tags WHERE user_id = $1",
            &[&user],
        )
    };
    let events = |user: &str| db.count("SELECT count(*) FROM events WHERE user_id = $1", &[&user]);
    assert_eq!(
        (tags("ann"), events("ann")),
        (0, 0),
        "a request whose commit failed kept writes (page answered: {shown_groups})"
    );
    assert!(
        outcome.is_err(),
        "a page whose writes were not committed must not be shown"
    );

    db.execute("DROP TRIGGER refuse_events ON events");
    let out = first_visit(&host, "ann").unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let groups = db.count(
        "SELECT count(*) FROM user_course_tags WHERE user_id = 'ann'
         AND key LIKE 'xblock.partition_service.partition_%'",
        &[],
    );
    assert!(groups > 0, "the demo's first visit stores a group");
    let assigned = db.count(
        "SELECT count(*) FROM events WHERE user_id = 'ann' AND name = $1",
        &[&"xmodule.partitions.assigned_user_to_partition"],
    );
    assert_eq!(assigned, groups, "one assignment event per stored group");
}

/// The private clusters fault tests stop and start: what a store committed before a stop is
/// there after the start, calls while it is stopped fail (naming the database), and the same
/// store works again without being reopened.
#[test]
fn pg_private_cluster_keeps_committed_data_across_a_restart() {
    let mut cluster = xbhost_tests::pg::PgCluster::for_test();
    let db = cluster.fresh_database();
    let options = PgOptions {
        wait: std::time::Duration::from_secs(2),
        ..PgOptions::default()
    };
    let s = PgStorage::connect(&db.url, &options).unwrap();
    assert_eq!(
        s.set_course_tag_if_absent(C, "ann", GROUP, "1").unwrap(),
        FirstWrite::Written
    );
    cluster.stop().unwrap();
    let err = s.course_tag(C, "ann", GROUP).unwrap_err();
    assert!(format!("{err:#}").contains(&db.name), "{err:#}");
    cluster.start().unwrap();
    let mut value = None;
    for _ in 0..50 {
        match s.course_tag(C, "ann", GROUP) {
            Ok(v) => {
                value = v;
                break;
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    assert_eq!(value.as_deref(), Some("1"));
    assert_eq!(
        s.set_course_tag_if_absent(C, "ann", GROUP, "2").unwrap(),
        FirstWrite::Existing("1".into())
    );
}

fn listings_are_in_bytewise_order(s: &dyn Storage) {
    // A linguistic order would put "a" before "B" and ignore the punctuation of "a-2".
    let ids = ["a1", "B", "a-2", "Z", "a", "_x"];
    let mut bytewise: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    bytewise.sort();
    for id in ids {
        s.set_course_tag(C, id, GROUP, id).unwrap();
        s.put_course(&course(&format!("course-v1:{id}+x+1"), id))
            .unwrap();
    }
    let users: Vec<String> = s
        .users_with_course_tag(C, GROUP)
        .unwrap()
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(users, bytewise, "users_with_course_tag");
    assert_eq!(s.course_users(C).unwrap(), bytewise, "course_users");
    let keys: Vec<String> = bytewise
        .iter()
        .map(|id| format!("course-v1:{id}+x+1"))
        .collect();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort();
    assert_eq!(s.course_keys().unwrap(), sorted_keys, "course_keys");
    let wasm = plugin_wasm("html");
    for id in ids {
        s.put_plugin(&record(id, "1.0.0", &wasm), &wasm).unwrap();
    }
    let names: Vec<String> = s.plugins().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, bytewise, "plugins");
}

/// A CSV that names a learner twice (a corrected line appended, say): the later date is the
/// one kept, on both backends, and the rest of the batch is stored.
fn an_enrollment_batch_naming_a_user_twice_keeps_the_last_date(s: &dyn Storage) {
    let batch: Vec<(String, String)> = [
        ("ann", "2026-01-01T00:00:00Z"),
        ("bob", "2026-01-02T00:00:00Z"),
        ("ann", "2026-01-03T00:00:00Z"),
    ]
    .iter()
    .map(|(u, d)| (u.to_string(), d.to_string()))
    .collect();
    s.set_enrollments(C, &batch).unwrap();
    assert_eq!(
        s.enrollment(C, "ann").unwrap().as_deref(),
        Some("2026-01-03T00:00:00Z")
    );
    assert_eq!(
        s.enrollment(C, "bob").unwrap().as_deref(),
        Some("2026-01-02T00:00:00Z")
    );
}

/// A carry-over from an identifier to itself (a user id that is its own session's id) moves
/// nothing and loses nothing.
fn carrying_tags_over_to_the_same_identifier_keeps_them(s: &dyn Storage) {
    let anon = "anon:same";
    s.set_course_tag(C, anon, "k1", "v1").unwrap();
    let keys = vec!["k1".to_string(), "k2".to_string()];
    let carried = s.carry_over_course_tags(C, anon, anon, &keys).unwrap();
    assert!(carried.iter().all(|c| c.to_value == "v1"), "{carried:?}");
    assert_eq!(s.course_tag(C, anon, "k1").unwrap().as_deref(), Some("v1"));
}

/// Through a real `Host` on each backend: after first visits, every stored group has its
/// assignment event exactly once (sled: in `events.jsonl`; PostgreSQL: in the `events`
/// table, committed with the group), and no event names a group that is not stored.
fn first_visits_store_each_group_with_its_event(db: Option<&TestDatabase>) {
    let data = tempfile::tempdir().unwrap();
    let config = HostConfig {
        database: db.map(|d| d.url.clone()),
        ..patient_config()
    };
    let host = Host::open(data.path(), config).unwrap();
    for p in ["html", "vertical", "split_test", "problem"] {
        host.add_plugin(&plugin_wasm(p), None).unwrap();
    }
    host.load_course(demo_course()).unwrap();
    for i in 0..20 {
        let out = first_visit(&host, &format!("learner-{i}")).unwrap();
        assert!(out.failures.is_empty(), "{:?}", out.failures);
    }
    drop(host);
    let store: Box<dyn Storage> = match db {
        Some(db) => Box::new(PgStorage::connect(&db.url, &PgOptions::default()).unwrap()),
        None => Box::new(RecoveringStore::open(&data.path().join("db")).unwrap()),
    };
    let mut stored = Vec::new();
    for partition in [0, 1] {
        let key = xbhost::assignment::partition_tag_key(partition);
        for (user, group) in store.users_with_course_tag(DEMO_COURSE, &key).unwrap() {
            stored.push((user, partition, group));
        }
    }
    let lines: Vec<String> = match db {
        Some(_) => {
            let mut lines = Vec::new();
            store
                .course_events(DEMO_COURSE, None, &mut |e| {
                    lines.push(e.line);
                    Ok(())
                })
                .unwrap();
            lines
        }
        None => std::fs::read_to_string(data.path().join("events.jsonl"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect(),
    };
    let mut logged: Vec<(String, u64, String)> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["name"] == xbhost::events::ASSIGNED_EVENT)
        .map(|e| {
            (
                e["user_id"].as_str().unwrap().to_string(),
                e["data"]["partition_id"].as_u64().unwrap(),
                e["data"]["group_id"].to_string(),
            )
        })
        .collect();
    stored.sort();
    logged.sort();
    assert_eq!(stored.len(), 40, "two groups for each of 20 learners");
    assert_eq!(logged, stored, "assignment events against stored groups");
}

#[test]
fn sled_first_visits_store_each_group_with_its_event() {
    first_visits_store_each_group_with_its_event(None);
}

#[test]
fn pg_first_visits_store_each_group_with_its_event() {
    first_visits_store_each_group_with_its_event(Some(&TestDatabase::fresh()));
}

/// One block call's writes: a state for `usage` and these tally additions.
fn tally_writes(usage: &str, state: &str, adds: &[(&str, &str, i64)]) -> BlockWrites {
    BlockWrites {
        state: Some((usage.into(), state.into())),
        tallies: adds
            .iter()
            .map(|(u, k, n)| ((u.to_string(), k.to_string()), *n))
            .collect(),
        ..BlockWrites::default()
    }
}

fn counts(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// A learner's vote and the counts it adds to are stored by one commit; later commits add
/// to the counts (negative amounts take away), never replace them; a count that reaches 0
/// is kept, as 0.
fn tallies_are_stored_with_the_state_and_added_up(s: &dyn Storage) {
    assert!(s.block_tallies(C, "poll_1").unwrap().is_empty());
    let vote = tally_writes("poll_1", r#"{"vote":"red"}"#, &[("poll_1", "red", 1)]);
    s.commit(C, "ann", &vote).unwrap();
    assert_eq!(
        s.user_state(C, "ann", "poll_1").unwrap().as_deref(),
        Some(r#"{"vote":"red"}"#)
    );
    assert_eq!(s.block_tallies(C, "poll_1").unwrap(), counts(&[("red", 1)]));
    // Another learner's vote adds up; a tally of another block in the same commit too.
    let both = [
        ("poll_1", "red", 1),
        ("poll_1", "blue", 4),
        ("poll_2", "x", 7),
    ];
    s.commit(C, "bob", &tally_writes("poll_1", "{}", &both))
        .unwrap();
    assert_eq!(
        s.block_tallies(C, "poll_1").unwrap(),
        counts(&[("blue", 4), ("red", 2)])
    );
    // Ann changes her vote: one taken from red, one added to blue; red taken below zero.
    let change = [("poll_1", "red", -3), ("poll_1", "blue", 1)];
    s.commit(
        C,
        "ann",
        &tally_writes("poll_1", r#"{"vote":"blue"}"#, &change),
    )
    .unwrap();
    assert_eq!(
        s.block_tallies(C, "poll_1").unwrap(),
        counts(&[("blue", 5), ("red", -1)])
    );
    // Back to zero: kept, and read as 0.
    let zero = [("poll_1", "red", 1), ("poll_2", "x", -7)];
    s.commit(C, "carl", &tally_writes("poll_1", "{}", &zero))
        .unwrap();
    assert_eq!(
        s.block_tallies(C, "poll_1").unwrap(),
        counts(&[("blue", 5), ("red", 0)])
    );
    assert_eq!(s.block_tallies(C, "poll_2").unwrap(), counts(&[("x", 0)]));
    // Tallies alone are a commit too (no state, no tags).
    let alone = BlockWrites {
        tallies: BTreeMap::from([(("poll_2".to_string(), "x".to_string()), -2)]),
        ..BlockWrites::default()
    };
    assert!(!alone.is_empty());
    s.commit(C, "dora", &alone).unwrap();
    assert_eq!(s.block_tallies(C, "poll_2").unwrap(), counts(&[("x", -2)]));
    assert_eq!(s.user_state(C, "dora", "poll_2").unwrap(), None);
}

/// An addition that would take a count beyond i64 (either way) is an error naming the
/// block and the tally, and nothing of that commit is stored: not its state, not its tags,
/// not the tally added before it in the same commit.
fn a_tally_overflow_stores_nothing_of_its_commit(s: &dyn Storage) {
    let full = [("poll_1", "votes", i64::MAX), ("poll_1", "low", i64::MIN)];
    s.commit(C, "ann", &tally_writes("poll_1", "first", &full))
        .unwrap();
    for (key, amount) in [("votes", 1), ("low", -1), ("votes", i64::MAX)] {
        let mut over = tally_writes("poll_1", "second", &[("poll_1", "also", 5)]);
        over.tallies.insert(("poll_1".into(), key.into()), amount);
        over.tallies.insert(("poll_0".into(), "before".into()), 1);
        over.course_tags.insert("answered".into(), "yes".into());
        over.user_tags.insert("lang".into(), "fr".into());
        let err = s.commit(C, "ann", &over).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("poll_1") && text.contains(key) && text.contains("64-bit"),
            "{text}"
        );
        assert_eq!(
            s.user_state(C, "ann", "poll_1").unwrap().as_deref(),
            Some("first")
        );
        assert_eq!(
            s.block_tallies(C, "poll_1").unwrap(),
            counts(&[("low", i64::MIN), ("votes", i64::MAX)])
        );
        assert!(s.block_tallies(C, "poll_0").unwrap().is_empty());
        assert_eq!(s.course_tag(C, "ann", "answered").unwrap(), None);
        assert_eq!(s.user_tag("ann", "lang").unwrap(), None);
    }
    // Going back into the range is an addition like any other.
    let back = [("poll_1", "votes", -1), ("poll_1", "low", i64::MAX)];
    s.commit(C, "ann", &tally_writes("poll_1", "third", &back))
        .unwrap();
    assert_eq!(
        s.block_tallies(C, "poll_1").unwrap(),
        counts(&[("low", -1), ("votes", i64::MAX - 1)])
    );
}

/// Ids that are prefixes of one another never see each other's tallies.
fn tallies_are_scoped_by_course_and_block(s: &dyn Storage) {
    for (course, usage, key, n) in [
        ("c", "b", "k", 1),
        ("c", "b", "k1", 2),
        ("c", "b1", "k", 3),
        ("c1", "b", "k", 4),
        ("c1", "b1", "k1", 5),
    ] {
        s.commit(
            course,
            "ann",
            &tally_writes(usage, "{}", &[(usage, key, n)]),
        )
        .unwrap();
    }
    assert_eq!(
        s.block_tallies("c", "b").unwrap(),
        counts(&[("k", 1), ("k1", 2)])
    );
    assert_eq!(s.block_tallies("c", "b1").unwrap(), counts(&[("k", 3)]));
    assert_eq!(s.block_tallies("c1", "b").unwrap(), counts(&[("k", 4)]));
    assert_eq!(s.block_tallies("c1", "b1").unwrap(), counts(&[("k1", 5)]));
    assert!(s.block_tallies("c2", "b").unwrap().is_empty());
    assert!(s.block_tallies("c", "b2").unwrap().is_empty());
    // Shared by the block's learners: another learner's commit adds to the same counts.
    s.commit("c", "bob", &tally_writes("b", "{}", &[("b", "k", 10)]))
        .unwrap();
    assert_eq!(
        s.block_tallies("c", "b").unwrap(),
        counts(&[("k", 11), ("k1", 2)])
    );
}

/// Empty keys and keys holding NUL are refused on both backends, and nothing of the commit
/// is stored.
fn tally_keys_no_store_can_hold_are_refused(s: &dyn Storage) {
    for (usage, key) in [
        ("poll_1", ""),
        ("", "k"),
        ("poll_1", "a\0b"),
        ("poll\0x", "k"),
    ] {
        let mut bad = tally_writes("poll_1", "bad", &[("poll_1", "fine", 1)]);
        bad.tallies.insert((usage.into(), key.into()), 1);
        assert!(
            s.commit(C, "ann", &bad).is_err(),
            "usage {usage:?}, key {key:?} was stored"
        );
        assert_eq!(s.user_state(C, "ann", "poll_1").unwrap(), None);
        assert!(s.block_tallies(C, "poll_1").unwrap().is_empty());
    }
    assert!(s.block_tallies(C, "poll\0").is_err());
}

fn concurrent_tally_additions_sum_exactly(s: &dyn Storage) {
    add_concurrently(&[s]);
}

/// 8 threads of 200 commits each, spread over `stores` (hosts on one database), add to the
/// same counts: none is lost.
fn add_concurrently(stores: &[&dyn Storage]) {
    const THREADS: usize = 8;
    const COMMITS: i64 = 200;
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (s, barrier) = (stores[t % stores.len()], &barrier);
            scope.spawn(move || {
                let user = format!("voter-{t}");
                barrier.wait();
                for i in 0..COMMITS {
                    let adds = [
                        ("poll_1", "votes", 1),
                        ("poll_1", "points", 3),
                        ("poll_1", "debt", -2),
                    ];
                    let writes = tally_writes("poll_1", &format!("{{\"i\":{i}}}"), &adds);
                    s.commit(C, &user, &writes)
                        .unwrap_or_else(|e| panic!("{user}'s commit {i}: {e:#}"));
                }
            });
        }
    });
    let n = THREADS as i64 * COMMITS;
    for s in stores {
        assert_eq!(
            s.block_tallies(C, "poll_1").unwrap(),
            counts(&[("debt", -2 * n), ("points", 3 * n), ("votes", n)])
        );
    }
}

/// Two PostgreSQL hosts (two stores, two pools) adding to the same counts lose nothing.
#[test]
fn pg_two_hosts_add_to_one_tally_without_losing_any() {
    let db = TestDatabase::fresh();
    let connect = || PgStorage::connect(&db.url, &PgOptions::default()).unwrap();
    let (a, b) = (connect(), connect());
    add_concurrently(&[&a, &b]);
}

/// In a request (PostgreSQL: one transaction for all of its calls), a call whose tally
/// would overflow fails and stores nothing, and the request's other calls are stored when
/// it ends: a block cannot end the request's transaction.
fn an_overflow_fails_only_its_own_call_in_a_request(s: &dyn Storage) {
    s.commit(
        C,
        "ann",
        &tally_writes("poll_1", "{}", &[("poll_1", "full", i64::MAX)]),
    )
    .unwrap();
    let request = s.for_request();
    let r: &dyn Storage = request.as_deref().unwrap_or(s);
    r.commit(
        C,
        "bob",
        &tally_writes("poll_1", "before", &[("poll_1", "a", 2)]),
    )
    .unwrap();
    let over = [("poll_1", "a", 5), ("poll_1", "full", 1)];
    assert!(
        r.commit(C, "bob", &tally_writes("poll_2", "lost", &over))
            .is_err()
    );
    r.commit(
        C,
        "bob",
        &tally_writes("poll_3", "after", &[("poll_1", "a", 3)]),
    )
    .unwrap();
    assert_eq!(
        r.block_tallies(C, "poll_1").unwrap(),
        counts(&[("a", 5), ("full", i64::MAX)])
    );
    r.flush().unwrap();
    drop(request);
    assert_eq!(
        s.block_tallies(C, "poll_1").unwrap(),
        counts(&[("a", 5), ("full", i64::MAX)])
    );
    assert_eq!(
        s.user_state(C, "bob", "poll_1").unwrap().as_deref(),
        Some("before")
    );
    assert_eq!(s.user_state(C, "bob", "poll_2").unwrap(), None);
    assert_eq!(
        s.user_state(C, "bob", "poll_3").unwrap().as_deref(),
        Some("after")
    );
}

/// On PostgreSQL a request's tallies are in its transaction: other hosts see them only once
/// the request commits, and a request that ends without committing adds nothing.
#[test]
fn pg_tallies_are_in_the_requests_transaction() {
    let b = Backend::pg();
    let s = &*b.store;
    let request = s
        .for_request()
        .expect("PostgreSQL gives each request its store");
    let vote = tally_writes("poll_1", "voted", &[("poll_1", "red", 1)]);
    request.commit(C, "ann", &vote).unwrap();
    assert!(s.block_tallies(C, "poll_1").unwrap().is_empty());
    assert_eq!(s.user_state(C, "ann", "poll_1").unwrap(), None);
    request.flush().unwrap();
    assert_eq!(s.block_tallies(C, "poll_1").unwrap(), counts(&[("red", 1)]));
    let abandoned = s.for_request().unwrap();
    abandoned.commit(C, "bob", &vote).unwrap();
    drop(abandoned);
    // The rollback runs on the store's runtime: the next read may race it, but can never
    // see the abandoned vote (it was never committed).
    assert_eq!(s.block_tallies(C, "poll_1").unwrap(), counts(&[("red", 1)]));
    assert_eq!(s.user_state(C, "bob", "poll_1").unwrap(), None);
}
