//! Opening the PostgreSQL store from a URL: the connection settings every host connection
//! gets (timeouts that bound what a slow or stuck peer can hold), the bounded pool, the
//! runtime the connections live on, and the schema brought up to date before any call.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};

use super::pg_exec::{PgShared, PoolExec, describe};
use super::pg_schema::{self, MigrateError};
use super::pg_store::{PgStorage, PgStore};
use super::pg_tls;

/// How a host connects: the pool's size and the bounds on every connection.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections at most (size it from the renders a host runs at once).
    pub pool_size: usize,
    /// How long a call waits for a free connection, or for a new one to open.
    pub wait: Duration,
    /// The longest any statement may run (`statement_timeout`).
    pub statement_timeout: Duration,
    /// The longest a statement waits for a row another transaction holds (`lock_timeout`):
    /// a request never waits longer than this for another to commit.
    pub lock_timeout: Duration,
    /// A transaction idle this long is ended by the server, so a host that stops mid-
    /// request (stuck, or cut off) cannot hold rows for ever.
    pub idle_in_transaction_timeout: Duration,
    /// The CA certificate (PEM) that the server's must be signed by, for URLs that name
    /// no `sslrootcert` of their own (see [`super::pg_tls`]).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            wait: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(5),
            idle_in_transaction_timeout: Duration::from_secs(30),
            ca_file: None,
        }
    }
}

/// The database as errors and logs name it: host, port and name, never the password.
fn display_name(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("PostgreSQL at {host}:{port}/{db}")
}

impl PgStorage {
    /// Connects to the database at `url`, brings its schema up to date (refusing one newer
    /// than this binary), and returns the store. Fails clearly, naming the database, when
    /// it cannot be reached.
    pub fn connect(url: &str, options: &PgOptions) -> Result<PgStorage> {
        let target = pg_tls::parse(url, options.ca_file.as_deref())?;
        let mut config = target.config;
        tracing::debug!(tls = target.mode.name(), "database connection settings");
        let name = display_name(&config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.wait);
        }
        if config.get_application_name().is_none() {
            config.application_name("xbhost");
        }
        let mut settings = format!(
            "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
            options.statement_timeout.as_millis(),
            options.lock_timeout.as_millis(),
            options.idle_in_transaction_timeout.as_millis(),
        );
        if let Some(own) = config.get_options() {
            settings = format!("{own} {settings}");
        }
        config.options(&settings);
        config.keepalives_idle(Duration::from_secs(30));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("xbhost-postgres")
            .enable_all()
            .build()
            .context("cannot start the database runtime")?;
        let manager = Manager::from_config(
            config.clone(),
            target.connector.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _entered = runtime.enter();
            Pool::builder(manager)
                .max_size(options.pool_size.max(1))
                .runtime(Runtime::Tokio1)
                .timeouts(Timeouts {
                    wait: Some(options.wait),
                    create: Some(options.wait),
                    recycle: Some(options.wait),
                })
                .build()
                .context("cannot make the database connection pool")?
        };
        // A call may run a few statements, each within the server's statement timeout, after
        // waiting for its connection: past that, the server is not answering.
        let call_limit = options.wait + options.statement_timeout * 2;
        let shared = Arc::new(PgShared::new(
            runtime,
            pool,
            name.clone(),
            config,
            target.connector,
            call_limit,
        ));
        shared.block_on(async {
            let client = shared.connection().await?;
            pg_schema::migrate(&client, &name)
                .await
                .map_err(|e| match e {
                    MigrateError::Newer {
                        database,
                        found,
                        known,
                    } => anyhow!(
                        "the database {database} has schema version {found}, newer than this \
                         xbhost knows ({known}): upgrade xbhost before using it"
                    ),
                    MigrateError::Database(e) => {
                        shared.error(e, &|| format!("bringing the schema of {name} up to date"))
                    }
                })
        })?;
        Ok(PgStore {
            x: PoolExec { shared },
        })
    }

    /// Runs `f` on one pooled connection (for `store copy` and checks that are no
    /// [`crate::storage::Storage`] call).
    pub fn with_connection<R>(
        &self,
        f: impl AsyncFnOnce(&deadpool_postgres::ClientWrapper) -> Result<R>,
    ) -> Result<R> {
        let shared = &self.x.shared;
        shared.block_on(async {
            let client = shared.connection().await?;
            f(&client).await
        })
    }

    /// The database as errors name it.
    pub fn name(&self) -> &str {
        &self.x.shared.name
    }
}

/// A database error for `store copy` and checks: the server's message.
pub fn db_error(e: tokio_postgres::Error) -> anyhow::Error {
    anyhow!("{}", describe(&e))
}
