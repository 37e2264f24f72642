//! The PostgreSQL schema (#19): hosts starting together on an empty database migrate it
//! once, and a database migrated by a newer xbhost is refused, naming both versions.

use xbhost_tests::pg::TestDatabase;

#[test]
fn hosts_starting_together_on_an_empty_database_migrate_it_once() {
    let db = TestDatabase::fresh();
    let outcomes: Vec<(bool, String, String)> = std::thread::scope(|scope| {
        let started: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| db.cli(&["course", "list"])))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (ok, _, err) in &outcomes {
        assert!(ok, "a host starting beside five others failed: {err}");
    }
    let applied = db.query(
        "SELECT version FROM xbhost_migrations ORDER BY version",
        &[],
    );
    let versions: Vec<i32> = applied.iter().map(|r| r.get(0)).collect();
    let latest = xbhost::storage::pg_schema_version();
    assert_eq!(
        versions,
        (1..=latest).collect::<Vec<_>>(),
        "each migration once"
    );
    // And the schema works for the next start.
    db.cli_ok(&["course", "list"]);
}

#[test]
fn a_database_migrated_by_a_newer_xbhost_is_refused() {
    let db = TestDatabase::fresh();
    db.cli_ok(&["course", "list"]);
    let future = xbhost::storage::pg_schema_version() + 7;
    db.execute(&format!(
        "INSERT INTO xbhost_migrations (version, what) VALUES ({future}, 'from a newer xbhost')"
    ));
    let (ok, _, err) = db.cli(&["course", "list"]);
    assert!(!ok, "a newer schema was used");
    assert!(err.contains(&format!("schema version {future}")), "{err}");
    assert!(err.contains("newer than this xbhost knows"), "{err}");
    assert!(!err.contains("password"), "{err}");
    // Nothing was changed by the refused start.
    assert_eq!(
        db.count("SELECT count(*) FROM xbhost_migrations", &[]),
        i64::from(xbhost::storage::pg_schema_version()) + 1
    );
}

/// A database a host of the previous schema (version 2, before block tallies) migrated and
/// filled is brought up to date by the next start: migration 3 alone is applied, what was
/// stored stays, and tallies work on it.
#[test]
fn a_database_of_the_previous_schema_gets_block_tallies_and_keeps_its_data() {
    use xbhost::storage::{BlockWrites, PgOptions, PgStorage, Storage};
    let db = TestDatabase::fresh();
    db.cli_ok(&["course", "list"]);
    // What the previous binary left: no tallies table, migrations 1 and 2 recorded.
    db.execute(
        "DROP TABLE block_tallies; DELETE FROM xbhost_migrations WHERE version = 3;
         INSERT INTO user_course_tags (user_id, course_id, key, value)
             VALUES ('ann', 'course-v1:o+c+r', 'xblock.partition_service.partition_0', '1');",
    );
    let before: Vec<i32> = db
        .query(
            "SELECT version FROM xbhost_migrations ORDER BY version",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(before, [1, 2]);
    let store = PgStorage::connect(&db.url, &PgOptions::default()).unwrap();
    let applied: Vec<i32> = db
        .query(
            "SELECT version FROM xbhost_migrations ORDER BY version",
            &[],
        )
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        applied,
        (1..=xbhost::storage::pg_schema_version()).collect::<Vec<_>>()
    );
    assert_eq!(
        store
            .course_tag(
                "course-v1:o+c+r",
                "ann",
                "xblock.partition_service.partition_0"
            )
            .unwrap()
            .as_deref(),
        Some("1")
    );
    let vote = BlockWrites {
        tallies: [(("poll_1".to_string(), "red".to_string()), 1)].into(),
        ..BlockWrites::default()
    };
    store.commit("course-v1:o+c+r", "ann", &vote).unwrap();
    assert_eq!(
        store.block_tallies("course-v1:o+c+r", "poll_1").unwrap(),
        [("red".to_string(), 1)].into()
    );
}
