//! `xbhost serve`: the host over HTTP (axum on tokio), for the LMS that embeds it and for
//! people in a browser (the workbench).
//!
//! - `auth`: tokens (HS256 JWT), roles, who is asking.
//! - `csrf`: cross-site request forgery protection for browser posts.
//! - `blocks`: render, handler calls, a learner's assignments and state.
//! - `admin`: plugin and course uploads.
//! - `workbench`: the page for authors and block developers; `workbench_scenarios` its
//!   "Scenarios" section (the scenarios plugins ship); `workbench_live` and
//!   `plugin_watch` its live loop (`serve --watch DIR`).
//! - `sign_in`: the sign-in page, `--dev-login`, signing out (revoking the session).
//! - `launch`: the LMS's two-step sign-in (`GET /session/login`, `POST /session`), bound
//!   to the browser by `sign_in_state`; `token_policy` (what every token must say) and
//!   `ledger` (used sign-ins, revoked sessions) back both.
//! - `page`: the HTML around it all (maud: every interpolated string is escaped).
//! - `metrics`: Prometheus metrics and the per-request span.
//! - `listener`, `connections`: accepting connections within the connection cap, with
//!   header-read, idle and body-read timeouts.
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
//! HTML a course carries (contained by `markup`, then placed as is) cannot act with the
//! viewer's session.

pub mod admin;
pub mod auth;
pub mod blocks;
pub mod bot_check;
pub mod client_files;
pub mod connections;
pub mod cookies;
pub mod csp;
pub mod csrf;
pub mod error;
pub mod launch;
pub mod ledger;
pub mod listener;
pub mod live_reload;
pub mod metrics;
pub mod page;
pub mod plugin_watch;
pub mod sign_in;
pub mod sign_in_state;
pub mod state;
pub mod token_policy;
pub mod tokens;
pub mod workbench;
pub mod workbench_live;
pub mod workbench_scenarios;

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use self::csp::{CONTENT_SECURITY_POLICY, content_security_policy};
use self::error::ApiError;
pub use self::state::{AppState, ServerConfig, read_body, wants_json};

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
        .route("/assets/xbhost-frame.js", get(client_files::frame_script))
        .route(
            "/plugins/{name}/{hash}/static/{*file}",
            get(client_files::plugin_file),
        )
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
        .route("/workbench/live", get(workbench_live::generation))
        .route("/session/login", get(launch::login))
        .route("/session", post(launch::lms_session))
        .route("/dev-login", post(sign_in::dev_login))
        .route("/sign-out", post(sign_in::sign_out))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(close_after_refused_body))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics().clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(state.config().max_body_bytes))
        .with_state(state)
}

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
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

/// Liveness and readiness: the store reads and takes writes (checked at most once a second
/// however many ask, see [`AppState::health`]). A failing store is 503 with its cause
/// (never a path: this route is open to anyone who can reach the server).
async fn healthz(State(state): State<AppState>) -> Response {
    match state.health().await {
        Ok((courses, pooling)) => axum::Json(serde_json::json!({
            "status": "ok",
            "store": "writable",
            "courses": courses,
            "pooling": pooling,
        }))
        .into_response(),
        Err(why) => {
            let mut answer = axum::Json(serde_json::json!({
                "status": "failing",
                "store": "failing",
                "error": why,
            }))
            .into_response();
            *answer.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            answer
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            answer
        }
    }
}

/// `/metrics`: with `--metrics-token-file`, only for `Authorization: Bearer <token>`.
async fn metrics_text(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &state.config().metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // blake3 hashes compare in constant time.
        if blake3::hash(given.as_bytes()) != blake3::hash(expected.as_bytes()) {
            let mut refused = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "/metrics needs the metrics token (--metrics-token-file) as a bearer token"
                    .to_string(),
            )
            .into_response();
            refused.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"xbhost metrics\""),
            );
            return refused;
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().encode(),
    )
        .into_response()
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

    /// Serves until `shutdown` completes, then finishes the requests in flight, waiting
    /// for them at most the configured shutdown grace: whatever clients or blocks do, the
    /// server stops in bounded time. Storage is flushed either way.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = signalled.send(());
        };
        let config = self.state.config();
        let grace = config.shutdown_grace;
        let serve = listener::serve(
            self.listener,
            router(self.state.clone()),
            config.connections,
            self.state.metrics().clone(),
            signal,
            grace,
        );
        // The listener waits at most the grace for connections; this bounds the rest.
        let deadline = async move {
            if on_signal.await.is_ok() {
                tokio::time::sleep(grace + std::time::Duration::from_secs(1)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = serve => {}
            () = deadline => tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "requests still in flight after the shutdown grace; stopping anyway"
            ),
        }
        self.state.host().storage().flush()?;
        Ok(())
    }
}
