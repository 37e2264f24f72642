//! Running PostgreSQL statements for the host's synchronous store calls: the pool, the I/O
//! runtime its connections live on, and the two ways a statement runs ([`Exec`]): on a
//! pooled connection for one call ([`PoolExec`]), or on the connection one request holds,
//! inside the request's transaction ([`RequestExec`]). Also which database errors mean "the
//! database cannot be used now" (a 503 and a retry) rather than a bug.
//!
//! Store calls come from render threads, CLI commands and async handlers alike, so a call
//! enters this module's own tokio runtime (where the connections' tasks and the pool's
//! timers run) and waits with a plain executor: it never needs, nor disturbs, the caller's
//! runtime.
//!
//! A call waits a bounded time for its answer ([`PgShared::call_limit`]): a database that
//! stops answering (hung, or cut off without a reset) costs a 503, never a render thread for
//! ever. A connection whose call ran out of time, or whose transaction failed, is closed
//! rather than handed back to the pool, so no later request gets it mid-statement or inside
//! an aborted transaction.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Result, anyhow};
use deadpool_postgres::{ClientWrapper, Object, Pool};

use crate::errors::StoreUnavailable;

/// The pool and the runtime its connections run on, shared by every store of one host.
pub struct PgShared {
    /// Always `Some` until dropped (see the `Drop` impl).
    runtime: Option<tokio::runtime::Runtime>,
    pub(super) pool: Pool,
    /// The database as errors name it: host, port and name, never the password.
    pub(super) name: String,
    /// How long a call waits for a free connection before the database counts as busy.
    pub(super) wait: Duration,
    /// How to connect (the change listener opens a connection of its own).
    pub(super) config: tokio_postgres::Config,
    /// The TLS every connection is made with, the listener's too.
    pub(super) tls: super::pg_tls::MakeRustlsConnect,
    /// Who hears of changes other hosts make (`pg_notify::watch`): one listening
    /// connection serves them all.
    pub(super) watchers: std::sync::Arc<std::sync::RwLock<Vec<super::contract::OnChange>>>,
    /// The listener has been started.
    pub(super) listening: std::sync::atomic::AtomicBool,
    /// The longest a call's statements may take, answers included, before the call fails
    /// and its connection is closed. Beyond the server's own `statement_timeout`: it bounds
    /// a server that does not answer at all.
    pub(super) call_limit: Duration,
}

impl PgShared {
    pub(super) fn new(
        runtime: tokio::runtime::Runtime,
        pool: Pool,
        name: String,
        config: tokio_postgres::Config,
        tls: super::pg_tls::MakeRustlsConnect,
        call_limit: Duration,
    ) -> PgShared {
        let wait = pool.timeouts().wait.unwrap_or(Duration::from_secs(5));
        PgShared {
            runtime: Some(runtime),
            pool,
            name,
            wait,
            config,
            tls,
            call_limit,
            watchers: Default::default(),
            listening: Default::default(),
        }
    }

    /// Runs `f` on `client` within [`PgShared::call_limit`]; `None` when it ran out.
    async fn bounded<R>(
        &self,
        f: impl Future<Output = Result<R, tokio_postgres::Error>>,
    ) -> Option<Result<R, tokio_postgres::Error>> {
        tokio::time::timeout(self.call_limit, f).await.ok()
    }

    /// The error of a call that got no answer within [`PgShared::call_limit`].
    fn no_answer(&self) -> anyhow::Error {
        self.unavailable(format!(
            "the database is unavailable: no answer within {} ms",
            self.call_limit.as_millis()
        ))
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
    }

    /// Runs a future to completion on this thread, inside the store's runtime.
    pub(super) fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _entered = self.runtime().enter();
        futures_executor::block_on(future)
    }

    /// Spawns a future on the store's runtime (work that must finish after its caller
    /// has gone, such as rolling back an abandoned transaction).
    pub(super) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        self.runtime().spawn(future);
    }

    /// A connection from the pool, or the database's unavailability.
    pub(super) async fn connection(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| {
            let why = match &e {
                deadpool_postgres::PoolError::Timeout(_) => format!(
                    "no database connection came free within {} ms (pool of {})",
                    self.wait.as_millis(),
                    self.pool.status().max_size
                ),
                deadpool_postgres::PoolError::Backend(b) => {
                    format!("the database is unavailable: {}", describe(b))
                }
                other => format!("the database is unavailable: {other}"),
            };
            self.unavailable(why)
        })
    }

    pub(super) fn unavailable(&self, why: String) -> anyhow::Error {
        anyhow::Error::new(StoreUnavailable {
            dir: self.name.clone(),
            why,
        })
    }

    /// A failed statement as the host reports it: unavailability when the database (or
    /// the way to it) is at fault, else the error with what was being done.
    pub(super) fn error(
        &self,
        e: tokio_postgres::Error,
        what: &dyn Fn() -> String,
    ) -> anyhow::Error {
        if is_unavailable(&e) {
            self.unavailable(format!("the database is unavailable: {}", describe(&e)))
        } else {
            anyhow!("{}: {}", what(), describe(&e))
        }
    }
}

/// Refuses a NUL, which PostgreSQL's text cannot hold (sled refuses it in keys too): the
/// error names what holds it and where, not the value (it may be megabytes).
pub(super) fn check_text(what: &str, value: &str) -> Result<()> {
    if let Some(at) = value.find('\0') {
        anyhow::bail!(
            "the {what} holds a NUL character at byte {at}, which the database cannot store"
        );
    }
    Ok(())
}

impl Drop for PgShared {
    fn drop(&mut self) {
        // The last reference may go on the runtime's own thread (a change listener's
        // callback holding the host last, at shutdown), where dropping a runtime panics:
        // it is shut down without waiting instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A database error on one line: the server's message when it sent one.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        }
    }
}

/// Whether an error means the database cannot be used now (retry later) rather than that
/// the statement was wrong: a lost or refused connection, a server shutting down or
/// starting, too many connections, a read-only standby.
pub(super) fn is_unavailable(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // No server error: the way to the server failed (a connection lost, refused,
        // timed out, or not authenticated), or the client did (a value it could not
        // encode or decode, a row count it did not expect): only the first is the
        // database being unavailable; the second is a bug to report, not to retry.
        // tokio-postgres keeps its error kinds private, so they are told by their text.
        None => {
            let text = e.to_string();
            e.is_closed()
                || [
                    "error communicating with the server",
                    "error connecting to server",
                    "timeout waiting for server",
                    "error performing TLS handshake",
                    "authentication error",
                ]
                .iter()
                .any(|kind| text.starts_with(kind))
        }
        Some(code) => {
            let code = code.code();
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code == "25006"
                // A lock or statement timeout: the row is held by a request that is slow
                // to commit; retrying is the answer.
                || code == "55P03"
                || code == "57014"
                // A deadlock or serialization failure: the transaction was chosen to end so
                // another could go on; retrying is the answer, not a 500.
                || code == "40P01"
                || code == "40001"
        }
    }
}

/// What a call does, which decides how it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads only.
    Read,
    /// One statement that writes: atomic by itself.
    Write,
    /// Several statements that must apply together.
    Atomic,
    /// Appending events (one statement). A request whose transaction holds nothing else
    /// (a repeat visit's exposures) commits without waiting for the disk, as the file log
    /// appends without a sync: a crash of the database may lose such a page's exposure
    /// events, never a group or a write, nor the event of an assignment.
    Events,
}

/// A way to run a call's statements. `f` gets the connection and returns what the call
/// answers; `what` names the call for errors.
pub trait Exec: Send + Sync {
    fn shared(&self) -> &std::sync::Arc<PgShared>;

    fn run<R>(
        &self,
        kind: Kind,
        what: &dyn Fn() -> String,
        f: impl AsyncFnOnce(&ClientWrapper) -> Result<R, tokio_postgres::Error>,
    ) -> Result<R>;

    /// Makes every write so far durable (a request's transaction commits).
    fn flush(&self) -> Result<()>;
}

/// Each call on a pooled connection of its own; atomic calls in a transaction of their
/// own. Everything is durable when the call returns.
pub struct PoolExec {
    pub(super) shared: std::sync::Arc<PgShared>,
}

impl Exec for PoolExec {
    fn shared(&self) -> &std::sync::Arc<PgShared> {
        &self.shared
    }

    fn run<R>(
        &self,
        kind: Kind,
        what: &dyn Fn() -> String,
        f: impl AsyncFnOnce(&ClientWrapper) -> Result<R, tokio_postgres::Error>,
    ) -> Result<R> {
        let shared = &self.shared;
        shared.block_on(async {
            let client = shared.connection().await?;
            let outcome = shared
                .bounded(async {
                    if kind != Kind::Atomic {
                        return f(&client).await;
                    }
                    let (begun, result) =
                        futures_util::future::join(client.batch_execute("BEGIN"), f(&client)).await;
                    match begun.and(result) {
                        Ok(value) => client.batch_execute("COMMIT").await.map(|()| value),
                        Err(e) => Err(e),
                    }
                })
                .await;
            match outcome {
                Some(Ok(value)) => Ok(value),
                Some(Err(e)) => {
                    if kind == Kind::Atomic {
                        // The transaction may still be open (aborted): never back to the pool.
                        discard(client);
                    }
                    Err(shared.error(e, what))
                }
                None => {
                    discard(client);
                    Err(shared.no_answer())
                }
            }
        })
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// The connection one request holds from its first call to its end, with the request's
/// writes in one transaction, begun by the first write and committed by
/// [`Exec::flush`]. A request that ends without flushing is rolled back.
pub struct RequestExec {
    pub(super) shared: std::sync::Arc<PgShared>,
    state: Mutex<RequestState>,
}

#[derive(Default)]
struct RequestState {
    client: Option<Object>,
    in_transaction: bool,
    /// The transaction holds writes other than events (see [`Kind::Events`]).
    holds_writes: bool,
    /// The request's first failed call, read or write, in its transaction or before it:
    /// the transaction is lost (PostgreSQL aborts it), and a read that failed may have left
    /// the page without a group it should show, so committing fails too (the page is not
    /// acknowledged), never silently rolls back.
    failed: Option<String>,
}

impl RequestExec {
    pub(super) fn new(shared: std::sync::Arc<PgShared>) -> RequestExec {
        RequestExec {
            shared,
            state: Mutex::new(RequestState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RequestState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Exec for RequestExec {
    fn shared(&self) -> &std::sync::Arc<PgShared> {
        &self.shared
    }

    fn run<R>(
        &self,
        kind: Kind,
        what: &dyn Fn() -> String,
        f: impl AsyncFnOnce(&ClientWrapper) -> Result<R, tokio_postgres::Error>,
    ) -> Result<R> {
        let shared = &self.shared;
        let mut state = self.lock();
        if let Some(why) = &state.failed {
            return Err(shared.unavailable(format!("this request's transaction failed: {why}")));
        }
        shared.block_on(async {
            if state.client.is_none() {
                match shared.connection().await {
                    Ok(client) => state.client = Some(client),
                    Err(e) => {
                        state.failed = Some(format!("{e:#}"));
                        return Err(e);
                    }
                }
            }
            let begin = kind != Kind::Read && !state.in_transaction;
            let client = state.client.as_ref().expect("just taken");
            let result = shared
                .bounded(async {
                    if begin {
                        // BEGIN goes out in the same round trip as the first write.
                        let (begun, result) =
                            futures_util::future::join(client.batch_execute("BEGIN"), f(client))
                                .await;
                        begun.and(result)
                    } else {
                        f(client).await
                    }
                })
                .await;
            if begin {
                state.in_transaction = true;
            }
            if !matches!(kind, Kind::Read | Kind::Events) {
                state.holds_writes = true;
            }
            match result {
                Some(Ok(value)) => Ok(value),
                Some(Err(e)) => {
                    state.failed = Some(describe(&e));
                    Err(shared.error(e, what))
                }
                None => {
                    // Mid-statement: the connection cannot serve anyone again.
                    if let Some(client) = state.client.take() {
                        discard(client);
                    }
                    let e = shared.no_answer();
                    state.failed = Some(format!("{e:#}"));
                    Err(e)
                }
            }
        })
    }

    fn flush(&self) -> Result<()> {
        let shared = &self.shared;
        let mut state = self.lock();
        if let Some(why) = state.failed.take() {
            state.in_transaction = false;
            state.holds_writes = false;
            // Closed, not rolled back: the server ends the aborted transaction, and a
            // database that does not answer costs no further wait.
            if let Some(client) = state.client.take() {
                discard(client);
            }
            return Err(shared.unavailable(format!(
                "this request's transaction failed and was rolled back: {why}"
            )));
        }
        if !state.in_transaction {
            return Ok(());
        }
        state.in_transaction = false;
        // Only events (see [`Kind::Events`]): committed without waiting for the disk, in
        // the same round trip as the COMMIT.
        let commit = if std::mem::take(&mut state.holds_writes) {
            "COMMIT"
        } else {
            "SET LOCAL synchronous_commit = off; COMMIT"
        };
        let client = state
            .client
            .as_ref()
            .expect("a transaction has a connection");
        let committed = shared.block_on(shared.bounded(client.batch_execute(commit)));
        match committed {
            Some(Ok(())) => Ok(()),
            failed => {
                // The transaction may still be open (a statement before COMMIT failed), or
                // the COMMIT's answer never came: the connection is not reused.
                if let Some(client) = state.client.take() {
                    discard(client);
                }
                Err(match failed {
                    Some(Err(e)) => {
                        shared.error(e, &|| "committing the request's writes".to_string())
                    }
                    _ => shared.no_answer(),
                })
            }
        }
    }
}

impl Drop for RequestExec {
    fn drop(&mut self) {
        let state = std::mem::take(&mut *self.lock());
        if let (Some(client), true) = (state.client, state.in_transaction) {
            // Never committed: the writes are abandoned. The connection returns to the
            // pool only after the rollback (dropping `client` at the end of the task), and
            // only if the rollback was answered in time.
            let limit = self.shared.call_limit;
            self.shared.spawn(async move {
                match tokio::time::timeout(limit, client.batch_execute("ROLLBACK")).await {
                    Ok(Ok(())) => drop(client),
                    _ => discard(client),
                }
            });
        }
    }
}

/// Closes a connection instead of returning it to the pool (the server ends whatever
/// transaction it held).
fn discard(client: Object) {
    drop(Object::take(client));
}
