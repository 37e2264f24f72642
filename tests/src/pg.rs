//! PostgreSQL for the tests: a fresh, uniquely named database per test on the server named by
//! `XBHOST_TEST_DATABASE_URL` (dropped at the end), and private clusters for the fault tests
//! that must stop PostgreSQL under a running host.
//!
//! Tests that need PostgreSQL fail with a message saying how to get one when the variable is
//! absent; they are never skipped. `cargo xtask test` (and so `.ci/run`) starts a throwaway
//! server and sets the variable.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

pub use crate::pg_cluster::{ClusterSetup, PgCluster};

/// The variable naming the server the tests create their databases on: a superuser's (or a
/// role with CREATEDB's) URL, for example `postgres://postgres@127.0.0.1:5432/postgres`.
pub const TEST_DATABASE_URL: &str = "XBHOST_TEST_DATABASE_URL";

/// The admin URL from `XBHOST_TEST_DATABASE_URL`; panics saying how to get one.
pub fn admin_url() -> String {
    match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{TEST_DATABASE_URL} is not set: this test needs a PostgreSQL server it may create \
             databases on. Run the tests with `cargo xtask test` (or `.ci/run`), which start a \
             throwaway server and set it, or set it yourself to a superuser's URL, e.g. \
             {TEST_DATABASE_URL}=postgres://postgres@127.0.0.1:5432/postgres"
        ),
    }
}

/// A database made for one test, dropped (`WITH (FORCE)`: a host's pool may still hold
/// connections) when this is dropped.
pub struct TestDatabase {
    /// The database's name (`xbhost_test_...`).
    pub name: String,
    /// The URL of this database, for `--database` and `PgStorage::connect`.
    pub url: String,
    admin: String,
}

impl TestDatabase {
    /// A new empty database on the `XBHOST_TEST_DATABASE_URL` server.
    pub fn fresh() -> TestDatabase {
        TestDatabase::fresh_on(&admin_url())
    }

    /// A new empty database on the `XBHOST_TEST_DATABASE_URL` server, made with these
    /// `CREATE DATABASE` options (a collation other than the server's default, say).
    pub fn fresh_with(options: &str) -> TestDatabase {
        TestDatabase::create(&admin_url(), options)
    }

    /// A new empty database on the server of this admin URL (a [`PgCluster`]'s, say).
    pub fn fresh_on(admin: &str) -> TestDatabase {
        TestDatabase::create(admin, "")
    }

    fn create(admin: &str, options: &str) -> TestDatabase {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let name = format!(
            "xbhost_test_{}_{}_{:x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos & 0xffff_ffff
        );
        execute_on(admin, &format!("CREATE DATABASE \"{name}\" {options}"))
            .unwrap_or_else(|e| panic!("creating database {name} on {admin}: {e}"));
        TestDatabase {
            url: with_database(admin, &name),
            name,
            admin: admin.to_string(),
        }
    }

    /// Runs a query on this database (to look at what a host stored: the `events` table,
    /// a tag row) and returns its rows.
    pub fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<Row> {
        block_on(async {
            let client = connect(&self.url).await?;
            client.query(sql, params).await
        })
        .unwrap_or_else(|e| panic!("{sql} on database {}: {e}", self.name))
    }

    /// The one `bigint` a query returns (`SELECT count(*) ...`).
    pub fn count(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
        let rows = self.query(sql, params);
        assert_eq!(rows.len(), 1, "{sql} returned {} rows", rows.len());
        rows[0].get(0)
    }

    /// Runs statements on this database (a fault test breaking a table, say).
    pub fn execute(&self, sql: &str) {
        execute_on(&self.url, sql).unwrap_or_else(|e| panic!("{sql} on {}: {e}", self.name));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(e) = execute_on(&self.admin, &sql) {
            // Not a panic in drop (it would abort a failing test's unwinding): the server
            // may be a private cluster that is already stopped.
            eprintln!("dropping test database {}: {e}", self.name);
        }
    }
}

/// `url` with its database replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

fn execute_on(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    block_on(async {
        let client = connect(url).await?;
        client.batch_execute(sql).await
    })
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs a future on a runtime of its own, so these helpers work from plain `#[test]`s and
/// from inside tests that have a runtime of their own (on another thread).
fn block_on<T: Send>(future: impl std::future::Future<Output = T> + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for PostgreSQL")
                    .block_on(future)
            })
            .join()
            .expect("the PostgreSQL helper thread panicked")
    })
}

impl PgCluster {
    /// A private cluster, or a panic naming what is missing (the tests' form of
    /// [`PgCluster::start_new`]).
    pub fn for_test() -> PgCluster {
        PgCluster::start_new()
            .unwrap_or_else(|e| panic!("starting a private PostgreSQL cluster: {e}"))
    }

    /// A fresh database on this cluster (dropped at the end, if the cluster still runs).
    pub fn fresh_database(&self) -> TestDatabase {
        TestDatabase::fresh_on(&self.admin_url())
    }

    /// Runs statements as the cluster's superuser (making roles, say).
    pub fn execute(&self, sql: &str) {
        execute_on(&self.admin_url(), sql)
            .unwrap_or_else(|e| panic!("{sql} on the private cluster: {e}"));
    }
}

impl TestDatabase {
    /// Runs the `xbhost` binary on this database (`--database URL`, and an empty data
    /// directory of its own for the compiled-component cache); returns (success, stdout,
    /// stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let data = tempfile::tempdir().unwrap();
        copy_compiled_for(&self.url, data.path());
        let mut all = vec!["--database", self.url.as_str()];
        all.extend_from_slice(args);
        crate::xbhost(data.path(), &all)
    }

    /// Like [`TestDatabase::cli`], failing the test unless the command succeeds.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.cli(args);
        assert!(ok, "xbhost --database {} {args:?} failed: {err}", self.name);
        out
    }

    /// Adds the shipped plugins and loads the demo course, as an operator would before
    /// starting servers on the database: this database becomes a copy of a template that
    /// the CLI made so once per test process (`CREATE DATABASE ... TEMPLATE`), and its
    /// hosts start with the components the template's CLI compiled (the template's copies
    /// share its compiled-cache key), instead of every test compiling every plugin again.
    pub fn load_demo(&self) {
        if self.admin != admin_url() {
            // A private cluster of one test (stopped and started by it): loaded directly.
            let data = tempfile::tempdir().unwrap();
            load_demo_with_cli(&self.url, data.path(), &self.name);
            return;
        }
        let template = demo_template(&self.admin);
        {
            // PostgreSQL copies a template only while nobody else is connected to it: one
            // copy at a time.
            let _one = TEMPLATE_COPIES.lock().unwrap_or_else(|e| e.into_inner());
            // Each its own statement: CREATE DATABASE cannot run in a transaction block.
            for sql in [
                format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
                format!(
                    "CREATE DATABASE \"{}\" TEMPLATE \"{}\"",
                    self.name, template.name
                ),
            ] {
                execute_on(&self.admin, &sql).unwrap_or_else(|e| {
                    panic!("copying the demo template to {}: {sql}: {e}", self.name)
                });
            }
        }
        DEMO_COPIES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashSet::new)
            .insert(self.url.clone());
    }
}

/// The demo template of this test process: a database holding the shipped plugins and the
/// demo course, and the compiled components of the data directory that loaded them.
struct DemoTemplate {
    name: String,
    compiled: PathBuf,
}

static DEMO_TEMPLATE: OnceLock<DemoTemplate> = OnceLock::new();
static TEMPLATE_COPIES: Mutex<()> = Mutex::new(());
/// The URLs of databases copied from the demo template (their hosts may use its cache).
static DEMO_COPIES: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn demo_template(admin: &str) -> &'static DemoTemplate {
    DEMO_TEMPLATE.get_or_init(|| {
        let db = TestDatabase::create(admin, "");
        let data = tempfile::Builder::new()
            .prefix("xbhost-pg-demo")
            .tempdir()
            .unwrap()
            .keep();
        load_demo_with_cli(&db.url, &data, &db.name);
        // Kept for the whole process (dropped with the server's other databases).
        let db = std::mem::ManuallyDrop::new(db);
        DemoTemplate {
            name: db.name.clone(),
            compiled: data.join("cache"),
        }
    })
}

/// The shipped plugins (one `plugin add`) and the demo course, through the CLI with this
/// data directory (its compiled-component cache).
fn load_demo_with_cli(url: &str, data: &Path, name: &str) {
    let files: Vec<String> = crate::PRODUCT_PLUGINS
        .iter()
        .map(|p| crate::plugin_path(p).to_string_lossy().into_owned())
        .collect();
    let mut add = vec!["--database", url, "plugin", "add"];
    add.extend(files.iter().map(String::as_str));
    let demo = crate::demo_course_path();
    for args in [
        add,
        vec!["--database", url, "course", "load", demo.to_str().unwrap()],
    ] {
        let (ok, _, err) = crate::xbhost(data, &args);
        assert!(ok, "loading the demo into database {name}: {args:?}: {err}");
    }
}

/// Gives a host's new data directory the demo template's compiled components when its
/// database is a copy of the template (others would only refuse them and recompile).
pub fn copy_compiled_for(database_url: &str, data: &Path) {
    let is_copy = DEMO_COPIES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|copies| copies.contains(database_url));
    if let (true, Some(template)) = (is_copy, DEMO_TEMPLATE.get()) {
        crate::copy_dir(&template.compiled, &data.join("cache"));
    }
}
