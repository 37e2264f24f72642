//! The benchmark's PostgreSQL: a fresh database of its own on the cluster named by
//! `XBHOST_BENCH_DATABASE_URL` (`cargo xtask bench` starts a throwaway cluster and sets
//! it), dropped at the end. Without the variable the PostgreSQL rows say they were not
//! measured.

use std::str::FromStr as _;

use anyhow::{Context as _, Result, anyhow};

/// Where the benchmark finds its cluster.
pub const URL_VAR: &str = "XBHOST_BENCH_DATABASE_URL";

/// A database made for this run.
pub struct BenchDatabase {
    admin: String,
    pub name: String,
    /// `host:port` of the server.
    pub address: String,
    user: String,
    password: Option<String>,
    runtime: tokio::runtime::Runtime,
}

impl BenchDatabase {
    /// The cluster from the environment, if any, with a new empty database on it.
    pub fn create() -> Result<Option<BenchDatabase>> {
        let Ok(admin) = std::env::var(URL_VAR) else {
            return Ok(None);
        };
        let config = tokio_postgres::Config::from_str(&admin)
            .map_err(|e| anyhow!("{URL_VAR} is not a database URL: {e}"))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_string();
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let name = format!(
            "xbhost_bench_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs()
        );
        let db = BenchDatabase {
            admin,
            name,
            address: format!("{host}:{port}"),
            user,
            password,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        };
        db.admin_execute(&format!("CREATE DATABASE {}", db.name))?;
        Ok(Some(db))
    }

    /// The URL of this run's database at `address` (the server, or a proxy in front of it).
    pub fn url_at(&self, address: &str) -> String {
        let auth = match &self.password {
            Some(p) => format!("{}:{p}", self.user),
            None => self.user.clone(),
        };
        format!("postgres://{auth}@{address}/{}", self.name)
    }

    pub fn url(&self) -> String {
        self.url_at(&self.address)
    }

    fn admin_execute(&self, sql: &str) -> Result<()> {
        self.runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&self.admin, tokio_postgres::NoTls)
                .await
                .with_context(|| format!("connecting to {URL_VAR}"))?;
            let task = tokio::spawn(connection);
            client
                .batch_execute(sql)
                .await
                .with_context(|| format!("{sql} on {URL_VAR}"))?;
            drop(client);
            let _ = task.await;
            Ok(())
        })
    }

    /// The server as the table names it: version and the settings that decide a commit's
    /// cost.
    pub fn describe_server(&self) -> Result<String> {
        self.runtime.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await?;
            let task = tokio::spawn(connection);
            let row = client
                .query_one(
                    "SELECT current_setting('server_version'), current_setting('fsync'),
                            current_setting('synchronous_commit'), current_setting('shared_buffers')",
                    &[],
                )
                .await?;
            let text = format!(
                "PostgreSQL {} at {} (fsync={}, synchronous_commit={}, shared_buffers={})",
                row.get::<_, String>(0),
                self.address,
                row.get::<_, String>(1),
                row.get::<_, String>(2),
                row.get::<_, String>(3),
            );
            drop(client);
            let _ = task.await;
            Ok(text)
        })
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        if let Err(e) = self.admin_execute(&sql) {
            eprintln!("bench: could not drop database {}: {e:#}", self.name);
        }
    }
}
