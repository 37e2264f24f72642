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
