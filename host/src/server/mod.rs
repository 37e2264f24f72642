//! `xbhost serve`: the host over HTTP (axum on tokio), for the LMS that embeds it and for
//! people in a browser (the workbench).
//!
//! - `auth`: tokens (HS256 JWT), roles, who is asking.
//! - `csrf`: cross-site request forgery protection for browser posts.
//! - `blocks`: render, handler calls, a learner's assignments and state.
//! - `admin`: plugin and course uploads.
//! - `workbench`: the page for authors and block developers.
//! - `sign_in`: signing in (the LMS's token, `--dev-login`) and out.
//! - `page`: the HTML around it all (maud: every interpolated string is escaped).
//! - `metrics`: Prometheus metrics and the per-request span.
//! - `error`: errors as statuses with messages that name what is at fault.
//!
//! Blocks run synchronously (wasmtime with epoch interruption), so every render, handler
//! call or upload runs on tokio's blocking pool, at most `max_concurrent_renders` at once
//! (each holds a few instances of the pooling allocator); a render or handler call is
//! answered 504 past the request deadline plus grace (uploads get minutes), while its slot
//! stays taken until the work really ends.
//!
//! Every answer carries `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`
//! and, unless it says otherwise, `Cache-Control: no-store` (pages are per user); HTML
//! pages carry a Content-Security-Policy that lets only xbhost's own script run, so the
//! HTML a course carries (placed as is) cannot act with the viewer's session.

pub mod admin;
pub mod auth;
pub mod blocks;
pub mod csrf;
pub mod error;
pub mod metrics;
pub mod page;
pub mod sign_in;
pub mod workbench;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Semaphore;

use self::auth::TokenKeys;
use self::error::ApiError;
use self::metrics::Metrics;
use crate::Host;

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
    /// Renders and handler calls running at once; more wait for a slot.
    pub max_concurrent_renders: usize,
    /// How long a request may wait for a render slot before it gets 503.
    pub queue_timeout: Duration,
    /// Mark cookies `Secure` (the server is reached over HTTPS, through a proxy).
    pub secure_cookies: bool,
    /// Lifetime of the sessions the dev sign-in issues.
    pub dev_session_ttl: Duration,
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
            max_concurrent_renders: 32,
            queue_timeout: Duration::from_secs(10),
            secure_cookies: false,
            dev_session_ttl: Duration::from_secs(8 * 3600),
        }
    }
}

struct Inner {
    host: Host,
    keys: TokenKeys,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(host: Host, keys: TokenKeys, config: ServerConfig) -> AppState {
        let slots = Arc::new(Semaphore::new(config.max_concurrent_renders.max(1)));
        AppState(Arc::new(Inner {
            host,
            keys,
            config,
            metrics: Arc::new(Metrics::default()),
            slots,
        }))
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

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
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

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/workbench") }),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/assets/xbhost.js", get(page::script))
        .route("/assets/xbhost.css", get(page::style))
        .route(
            "/courses/{course_key}/blocks/{usage_id}",
            get(blocks::render),
        )
        .route(
            "/courses/{course_key}/blocks/{usage_id}/handler/{handler}",
            post(blocks::handle),
        )
        .route(
            "/courses/{course_key}/users/{user_id}/assignments",
            get(blocks::assignments),
        )
        .route("/courses/{course_key}/report", get(blocks::report))
        .route(
            "/courses/{course_key}/users/{user_id}/state/{usage_id}",
            get(blocks::user_state),
        )
        .route("/admin/plugins", post(admin::upload_plugin))
        .route("/admin/courses", post(admin::upload_course))
        .route("/workbench", get(workbench::page))
        .route("/session", post(sign_in::lms_session))
        .route("/dev-login", post(sign_in::dev_login))
        .route("/sign-out", post(sign_in::sign_out))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes))
        .with_state(state)
}

/// The Content-Security-Policy of HTML pages: scripts only from xbhost itself (no inline
/// script, so none from course content), no plugins, forms and base URLs kept home.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; media-src 'self' https:; \
    object-src 'none'; base-uri 'none'; form-action 'self'";

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    headers.insert(
        header::VARY,
        header::HeaderValue::from_static("Accept, Authorization, Cookie"),
    );
    response
}

/// A request refused before its body was read (401, 403, 413, ...) leaves the unread body
/// on the connection; `Connection: close` tells the client not to send its next request
/// on it.
async fn close_after_refused_body(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let has_body = request.headers().contains_key(header::TRANSFER_ENCODING)
        || request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    let mut response = next.run(request).await;
    if has_body && (response.status().is_client_error() || response.status().is_server_error()) {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    response
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {:?}", uri.path()))
}

/// Liveness and readiness: the store answers.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.host().course_keys() {
        Ok(courses) => axum::Json(serde_json::json!({
            "status": "ok",
            "courses": courses.len(),
            "pooling": state.host().pooling(),
        }))
        .into_response(),
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store does not answer: {e:#}"),
        )
        .into_response(),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().encode(),
    )
        .into_response()
}

/// Reads a body up to `limit` bytes; over it, 413 naming the limit and its flag.
pub async fn read_body(body: Body, limit: usize, flag: &str) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let inner = e.into_inner();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
        while let Some(c) = cause {
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

/// A server bound to its address, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Server {
    /// Binds the address (port 0 picks a free port).
    pub async fn bind(listen: SocketAddr, state: AppState) -> Result<Server> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        axum::serve(self.listener, router(self.state.clone()))
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        self.state.host().storage().flush()?;
        Ok(())
    }
}
