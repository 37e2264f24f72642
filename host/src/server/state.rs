//! What every handler shares: the host, the token keys, the server's settings, the
//! metrics and the render slots (`AppState`), running blocking host work in a slot with a
//! time bound, and reading request bodies and `Accept` within limits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use tokio::sync::Semaphore;

use super::connections::ConnectionTimeouts;
use super::error::ApiError;
use super::ledger::TokenLedger;
use super::listener::{BodyTimeout, ConnectionLimits};
use super::metrics::Metrics;
use super::token_policy::TokenPolicy;
use super::tokens::TokenKeys;
use crate::host::Host;

/// Settings of `xbhost serve`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The data directory (uploads of course archives are staged in it).
    pub data_dir: PathBuf,
    /// The event log the host appends to (the experiment report reads it).
    pub events_file: PathBuf,
    /// Offer the development sign-in (anyone may sign in as anyone).
    pub dev_login: bool,
    /// Largest body of a handler call or form, in bytes.
    pub max_body_bytes: usize,
    /// Largest plugin or course upload, in bytes.
    pub max_upload_bytes: usize,
    /// What an uploaded course may make the server read and spend (bytes unpacked,
    /// entries, headers, file size, XML nodes and depth, and the load's deadline).
    pub import_limits: crate::olx::ImportLimits,
    /// Renders and handler calls running at once; more wait for a slot.
    pub max_concurrent_renders: usize,
    /// How long a request may wait for a render slot before it gets 503.
    pub queue_timeout: Duration,
    /// Mark cookies `Secure` (the server is reached over HTTPS, through a proxy).
    pub secure_cookies: bool,
    /// Lifetime of the sessions the dev sign-in issues (at most the token lifetime).
    pub dev_session_ttl: Duration,
    /// What every token must say: issuer, audience, leeway, maximum lifetime.
    pub token_policy: TokenPolicy,
    /// Where `GET /session/login` sends the browser (the LMS's OIDC authorization
    /// endpoint); without it, it answers the state and nonce itself.
    pub lms_authorization_url: Option<String>,
    /// How long a sign-in state (the cookie that binds a sign-in to its browser) lasts.
    pub sign_in_state_ttl: Duration,
    /// Most ids in each record of used sign-ins and revoked sessions.
    pub max_token_records: usize,
    /// How long a stopping server waits for the requests in flight.
    pub shutdown_grace: Duration,
    /// Uploads and reports running at once (each also takes a render slot).
    pub max_concurrent_heavy: usize,
    /// Connection cap, header-read and idle timeouts, request body deadline.
    pub connections: ConnectionLimits,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
    /// Put course keys in metric labels (off: they can say more than an operator wants
    /// a scraper to know, and multiply the series).
    pub metrics_course_labels: bool,
    /// `--watch`: what the plugin watcher did, for the workbench (`plugin_watch`).
    pub live: Option<Arc<super::live_reload::LiveReload>>,
}

impl ServerConfig {
    /// Defaults for a data directory whose event log is `events_file`.
    pub fn new(data_dir: PathBuf, events_file: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            events_file,
            dev_login: false,
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 64 * 1024 * 1024,
            import_limits: crate::olx::ImportLimits::default(),
            max_concurrent_renders: 32,
            queue_timeout: Duration::from_secs(10),
            secure_cookies: false,
            dev_session_ttl: Duration::from_secs(8 * 3600),
            token_policy: TokenPolicy::default(),
            lms_authorization_url: None,
            sign_in_state_ttl: super::sign_in_state::DEFAULT_TTL,
            max_token_records: super::ledger::DEFAULT_MAX_RECORDS,
            shutdown_grace: Duration::from_secs(10),
            max_concurrent_heavy: 2,
            connections: ConnectionLimits {
                max_connections: 1024,
                timeouts: ConnectionTimeouts {
                    header_read: Duration::from_secs(10),
                    idle: Duration::from_secs(60),
                },
                body_read: Duration::from_secs(60),
            },
            metrics_token: None,
            metrics_course_labels: false,
            live: None,
        }
    }
}

struct Inner {
    host: Host,
    keys: TokenKeys,
    ledger: Arc<TokenLedger>,
    /// The last health check and its number (`/healthz`, see [`AppState::health`]).
    health: tokio::sync::Mutex<Option<(u64, HealthCheck)>>,
    /// How many health checks have finished.
    health_checks: std::sync::atomic::AtomicU64,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    /// Uploads and reports at once (`--max-concurrent-heavy`): each may take minutes and
    /// hundreds of MiB, so they may hold only a few of the render slots.
    heavy: Arc<Semaphore>,
}

/// An upload's or a report's place (see [`AppState::heavy_slot`]), freed when dropped.
pub struct HeavySlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// A health check's outcome: the number of courses and whether the pooling allocator is in
/// use, or why the store fails (one line, no path).
pub type HealthCheck = std::result::Result<(usize, bool), String>;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// The server's shared state. Fails when the store shares token records (several
    /// hosts on one database) and its revocations cannot be read: a host that served
    /// without them would let signed-out sessions back in.
    pub fn new(host: Host, keys: TokenKeys, config: ServerConfig) -> anyhow::Result<AppState> {
        let slots = Arc::new(Semaphore::new(config.max_concurrent_renders.max(1)));
        let heavy = Arc::new(Semaphore::new(config.max_concurrent_heavy.max(1)));
        let metrics = Arc::new(Metrics::new(config.metrics_course_labels));
        // The keys check tokens under the configured policy and cookie name.
        let keys = keys.with_policy(config.token_policy.clone(), config.secure_cookies);
        let storage = host.storage_arc();
        let ledger = Arc::new(TokenLedger::on_store(
            config.max_token_records,
            storage.clone(),
        )?);
        if storage.shares_token_records() {
            // Sign-outs on other hosts come as change notices. The callback runs on the
            // store's own runtime and must not wait on the store: a reload after missed
            // notices runs on a thread of its own.
            let heard = Arc::downgrade(&ledger);
            storage.watch(Arc::new(move |change: &crate::storage::Change| {
                let Some(ledger) = heard.upgrade() else {
                    return;
                };
                match change {
                    crate::storage::Change::Revoked { id, until } => {
                        ledger.heard_revoked(id, *until)
                    }
                    crate::storage::Change::Everything => {
                        std::thread::spawn(move || {
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_secs());
                            if let Err(e) = ledger.reload_revocations(now) {
                                tracing::error!("cannot reload the revoked sessions: {e:#}");
                            }
                        });
                    }
                    _ => {}
                }
            }))?;
        }
        Ok(AppState(Arc::new(Inner {
            host,
            keys,
            ledger,
            health: tokio::sync::Mutex::new(None),
            health_checks: std::sync::atomic::AtomicU64::new(0),
            config,
            metrics,
            slots,
            heavy,
        })))
    }

    pub fn host(&self) -> &Host {
        &self.0.host
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.0.keys
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    /// Used sign-ins and revoked sessions.
    pub fn ledger(&self) -> &TokenLedger {
        &self.0.ledger
    }

    /// The store's health (`/healthz`): one check at a time, and a probe that arrives
    /// while one runs takes that check's answer (waiting without a thread or a
    /// connection), so a flood of probes holds one of the store's connections, never its
    /// pool; a probe after the last check finished gets a check of its own.
    pub async fn health(&self) -> HealthCheck {
        use std::sync::atomic::Ordering;
        const PATIENCE: Duration = Duration::from_secs(5);
        let arrived_after = self.0.health_checks.load(Ordering::Acquire);
        let mut last = self.0.health.lock().await;
        if let Some((number, check)) = last.as_ref()
            && *number > arrived_after
        {
            return check.clone();
        }
        let host = self.0.host.clone();
        let checked = tokio::time::timeout(
            PATIENCE,
            tokio::task::spawn_blocking(move || -> Result<(usize, bool), String> {
                let why = |e: anyhow::Error| match crate::errors::find::<
                    crate::errors::StoreUnavailable,
                >(&e)
                {
                    Some(store) => store.why.clone(),
                    None => e.root_cause().to_string(),
                };
                host.storage().check_writable().map_err(why)?;
                let courses = host.course_keys().map_err(why)?;
                Ok((courses.len(), host.pooling()))
            }),
        )
        .await;
        let check = match checked {
            Ok(Ok(outcome)) => outcome.map_err(|why| format!("the store fails: {why}")),
            Ok(Err(e)) => Err(format!("the health check did not finish: {e}")),
            Err(_) => Err(format!(
                "the store did not answer the health check within {} s",
                PATIENCE.as_secs()
            )),
        };
        let number = self.0.health_checks.fetch_add(1, Ordering::AcqRel) + 1;
        *last = Some((number, check.clone()));
        check
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// A place for an upload or a report, taken before its body is read: at most
    /// `--max-concurrent-heavy` at once, so they cannot take every render slot. 503
    /// naming the flag when none frees within the queue timeout. Move it into the work
    /// (see [`HeavySlot`]) so that it is held until the work ends.
    pub async fn heavy_slot(&self, what: &str) -> Result<HeavySlot, ApiError> {
        let config = self.config();
        let permit =
            tokio::time::timeout(config.queue_timeout, self.0.heavy.clone().acquire_owned())
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "{what}: {} uploads or reports are running already \
                         (--max-concurrent-heavy), none finished within {} ms; try again",
                            config.max_concurrent_heavy,
                            config.queue_timeout.as_millis()
                        ),
                    )
                })?
                .expect("the semaphore is never closed");
        Ok(HeavySlot { _permit: permit })
    }

    /// Runs blocking host work (a render, a handler call) on the blocking pool in one of
    /// the render slots, bounded by `limit`; host errors become statuses by their kind.
    pub async fn run_blocking<T, F>(
        &self,
        what: &str,
        limit: Duration,
        work: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(Host) -> Result<T> + Send + 'static,
    {
        self.run_blocking_as(what, limit, work, ApiError::from_host)
            .await
    }

    /// [`AppState::run_blocking`], with `classify` turning the work's errors into answers.
    pub async fn run_blocking_as<T, F>(
        &self,
        what: &str,
        limit: Duration,
        work: F,
        classify: fn(anyhow::Error) -> ApiError,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(Host) -> Result<T> + Send + 'static,
    {
        let permit = tokio::time::timeout(
            self.config().queue_timeout,
            self.0.slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{what}: the server is busy ({} renders running, none free within \
                     {} ms); try again",
                    self.config().max_concurrent_renders,
                    self.config().queue_timeout.as_millis()
                ),
            )
        })?
        .expect("the semaphore is never closed");
        let in_flight = self.metrics().in_flight();
        let host = self.host().clone();
        let span = tracing::Span::current();
        // The slot and the in-flight mark go with the work, not with the request: a client
        // that disconnects, or a request answered 504, does not free a slot while its
        // render still runs.
        let task = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _slot = (permit, in_flight);
            work(host)
        });
        let result = tokio::time::timeout(limit, task).await;
        match result {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(e))) => Err(classify(e)),
            Ok(Err(join)) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{what} failed: {join}"),
            )),
            Err(_) => {
                tracing::error!(
                    "{what} did not finish within {} ms; abandoned",
                    limit.as_millis()
                );
                Err(ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("{what} did not finish within {} ms", limit.as_millis()),
                ))
            }
        }
    }

    /// The longest a render or handler call may take before the client gets 504.
    pub fn render_limit(&self) -> Duration {
        let limits = self.host().limits();
        limits.request_deadline + limits.outer_grace
    }
}

/// Reads a body up to `limit` bytes; over it, 413 naming the limit and its flag.
pub async fn read_body(body: Body, limit: usize, flag: &str) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
        while let Some(c) = cause {
            if let Some(timeout) = c.downcast_ref::<BodyTimeout>() {
                return ApiError::new(StatusCode::REQUEST_TIMEOUT, timeout.to_string());
            }
            if c.is::<http_body_util::LengthLimitError>() {
                return ApiError::too_large(format!(
                    "the request body is over the limit of {limit} bytes ({flag})"
                ));
            }
            cause = c.source();
        }
        ApiError::bad_request(format!("cannot read the request body: {inner}"))
    })
}

/// Whether the caller asked for JSON (`Accept: application/json` or `?format=json`).
pub fn wants_json(headers: &HeaderMap, format: Option<&str>) -> bool {
    if let Some(format) = format {
        return format == "json";
    }
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}
