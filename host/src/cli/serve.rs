//! `xbhost serve` (the HTTP server: its flags, the checks before it starts, graceful
//! shutdown) and `xbhost token` (signing a token with the server's key). Neither opens
//! the store before its checks pass; `token` never opens it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;

use xbhost::Host;
use xbhost::ids::check_id;
use xbhost::server::auth::TokenKeys;

#[derive(Args)]
#[command(after_help = "Environment:\n  \
    XBHOST_TOKEN_SECRET  the HS256 key shared with the LMS (at least 32 bytes), used when \
    --token-secret-file is not given; without either, serve refuses to start\n\n\
    Tokens: accepted until exp + leeway (--token-leeway, 5s by default) and from \
    nbf - leeway; a token whose iat is later than now + leeway is refused.\n\n\
    Examples:\n  \
    export XBHOST_TOKEN_SECRET=$(openssl rand -hex 32)\n  \
    xbhost --data ./xbhost-data serve --listen 127.0.0.1:8080\n  \
    xbhost --data ./xbhost-data serve --listen 127.0.0.1:8080 --dev-login   # workbench sign-in for development\n  \
    xbhost --data ./xbhost-data serve --dev-login --watch target/wasm32-wasip2/plugin   # the live loop")]
pub struct ServeArgs {
    /// Address to listen on, IP:PORT (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "IP:PORT")]
    listen: std::net::SocketAddr,
    /// A file holding the HS256 key shared with the LMS (its first line break is dropped);
    /// without it the key is read from XBHOST_TOKEN_SECRET.
    #[arg(long, env = "XBHOST_TOKEN_SECRET_FILE", value_name = "FILE")]
    token_secret_file: Option<PathBuf>,
    /// Offer the development sign-in on the workbench: anyone may sign in as anyone (only
    /// on a loopback address).
    #[arg(long)]
    dev_login: bool,
    /// Development: re-add a plugin whenever a `.wasm` file directly in DIR is added or
    /// changes (under the plugin's own name, checked as `plugin add` checks: a broken
    /// build stores nothing and the last good version keeps serving), and let the
    /// workbench re-render by itself and show the blocks' stdout and stderr to staff.
    /// Repeatable; only on a loopback address.
    #[arg(long = "watch", value_name = "DIR")]
    watch: Vec<PathBuf>,
    /// Largest handler call or form body, in bytes (larger: 413).
    #[arg(long, default_value_t = 64 * 1024, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Largest plugin or course upload, in bytes (larger: 413).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    max_upload_bytes: usize,
    /// What an uploaded course may make the server read and spend.
    #[command(flatten)]
    import_limits: super::courses::ImportLimitArgs,
    /// Renders and handler calls running at once (each holds a few sandbox instances).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_concurrent_renders: usize,
    /// How long a request waits for a free render slot before it is answered 503, in ms.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    queue_timeout_ms: u64,
    /// Mark cookies Secure: set it when browsers reach the server over HTTPS (a proxy).
    /// The session cookie is then `__Host-xbhost_session`.
    #[arg(long)]
    secure_cookies: bool,
    /// Accept only tokens whose `iss` is this (the LMS's issuer).
    #[arg(long, env = "XBHOST_TOKEN_ISSUER", value_name = "ISSUER")]
    token_issuer: Option<String>,
    /// Accept only tokens whose `aud` is or includes this (xbhost's client id at the LMS).
    #[arg(long, env = "XBHOST_TOKEN_AUDIENCE", value_name = "AUDIENCE")]
    token_audience: Option<String>,
    /// The longest a token may live (`exp - iat`, and `exp - now`); longer ones get 401.
    /// A duration: 30m, 1h, 2h 30m.
    #[arg(
        long,
        env = "XBHOST_MAX_TOKEN_LIFETIME",
        default_value = "1h",
        value_name = "DURATION"
    )]
    max_token_lifetime: humantime::Duration,
    /// Clock skew tolerated on a token's times: a token is accepted until exp + leeway,
    /// from nbf - leeway, and refused when its iat is after now + leeway. A duration
    /// (0s: none).
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    token_leeway: humantime::Duration,
    /// The LMS's OIDC authorization endpoint: `GET /session/login` redirects there with
    /// the sign-in's state and nonce (without it, it answers them as JSON).
    #[arg(long, env = "XBHOST_LMS_AUTHORIZATION_URL", value_name = "URL")]
    lms_authorization_url: Option<String>,
    /// How long a browser has to finish a sign-in it started (its state cookie's life).
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    sign_in_state_ttl: humantime::Duration,
    /// Most ids held in each of the records of used sign-in tokens and of signed-out
    /// sessions (each kept until it expires); a sign-in or sign-out that does not fit
    /// gets 503.
    #[arg(long, default_value_t = xbhost::server::ledger::DEFAULT_MAX_RECORDS, value_name = "N")]
    max_token_records: usize,
    /// On SIGTERM or Ctrl-C, how long to wait for the requests in flight before exiting,
    /// in ms.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    shutdown_grace_ms: u64,
    /// Open connections at most; at the cap a new one takes the place of the longest idle
    /// (never more than the open-file limit allows).
    #[arg(long, default_value_t = 1024, value_name = "N")]
    max_connections: usize,
    /// Uploads and experiment reports running at once (each also takes a render slot, so
    /// pages keep the rest).
    #[arg(long, default_value_t = 2, value_name = "N")]
    max_concurrent_heavy: usize,
    /// How long a client may take to send a request's headers, from their first byte, in ms.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    header_read_timeout_ms: u64,
    /// How long a connection may stay open with no request (keep-alive), in ms.
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    idle_timeout_ms: u64,
    /// How long a client may take to send a request's body, from its headers (408 after),
    /// in ms.
    #[arg(long, default_value_t = 60_000, value_name = "MS")]
    body_read_timeout_ms: u64,
    /// A file holding the token `/metrics` requires (`Authorization: Bearer ...`, its first
    /// line, at least 16 bytes); without it `/metrics` is open to anyone who can reach the
    /// server.
    #[arg(long, env = "XBHOST_METRICS_TOKEN_FILE", value_name = "FILE")]
    metrics_token_file: Option<PathBuf>,
    /// Label metrics with course keys (off by default).
    #[arg(long)]
    metrics_course_labels: bool,
}

/// The checks `serve` makes before the store is opened; the token signing key.
pub fn keys(args: &ServeArgs) -> Result<TokenKeys> {
    if args.dev_login && !args.listen.ip().is_loopback() {
        bail!(
            "`xbhost serve` refuses to start: --dev-login lets anyone sign in as anyone, \
             so it listens only on a loopback address, not {}",
            args.listen
        );
    }
    if !args.watch.is_empty() && !args.listen.ip().is_loopback() {
        bail!(
            "`xbhost serve` refuses to start: --watch installs whatever lands in the watched \
             directories, a development feature, so it listens only on a loopback address, not {} \
             (a shared server takes plugins through `plugin add` or POST /admin/plugins)",
            args.listen
        );
    }
    for dir in &args.watch {
        if !dir.is_dir() {
            bail!(
                "`xbhost serve` refuses to start: --watch {}: not a directory (build the \
                 plugin once, or create it)",
                dir.display()
            );
        }
    }
    check_sign_in_flags(args).context("`xbhost serve` refuses to start")?;
    TokenKeys::load(args.token_secret_file.as_deref()).context("`xbhost serve` refuses to start")
}

/// The sign-in flags make sense: positive lifetimes, a usable authorization URL.
fn check_sign_in_flags(args: &ServeArgs) -> Result<()> {
    if args.max_token_lifetime.as_secs() == 0 {
        bail!("--max-token-lifetime must be at least 1s");
    }
    if args.sign_in_state_ttl.as_secs() == 0 {
        bail!("--sign-in-state-ttl must be at least 1s");
    }
    if args.max_token_records == 0 {
        bail!("--max-token-records must be at least 1");
    }
    for (flag, value) in [
        ("--token-issuer", &args.token_issuer),
        ("--token-audience", &args.token_audience),
    ] {
        if value.as_deref().is_some_and(str::is_empty) {
            bail!("{flag} is empty: give a value, or leave the flag out");
        }
    }
    if let Some(url) = &args.lms_authorization_url {
        xbhost::server::launch::check_authorization_url(url)
            .map_err(|e| anyhow::anyhow!("--lms-authorization-url {url:?}: {e}"))?;
    }
    Ok(())
}

/// Runs the HTTP server until Ctrl-C or SIGTERM, then finishes the requests in flight.
pub fn serve(
    data: &Path,
    events: &Path,
    host: Host,
    keys: TokenKeys,
    args: ServeArgs,
) -> Result<()> {
    use xbhost::server::{AppState, Server, ServerConfig};
    let mut config = ServerConfig::new(data.to_path_buf(), events.to_path_buf());
    config.dev_login = args.dev_login;
    config.max_body_bytes = args.max_body_bytes;
    config.max_upload_bytes = args.max_upload_bytes;
    config.import_limits = args.import_limits.limits();
    config.max_concurrent_renders = args.max_concurrent_renders;
    config.queue_timeout = std::time::Duration::from_millis(args.queue_timeout_ms);
    config.secure_cookies = args.secure_cookies;
    config.token_policy = xbhost::server::auth::TokenPolicy {
        issuer: args.token_issuer.clone(),
        audience: args.token_audience.clone(),
        leeway: *args.token_leeway,
        max_lifetime: *args.max_token_lifetime,
    };
    config.lms_authorization_url = args.lms_authorization_url.clone();
    config.sign_in_state_ttl = *args.sign_in_state_ttl;
    config.max_token_records = args.max_token_records;
    config.shutdown_grace = std::time::Duration::from_millis(args.shutdown_grace_ms);
    config.connections = xbhost::server::listener::ConnectionLimits {
        max_connections: xbhost::server::listener::connections_that_fit(args.max_connections),
        timeouts: xbhost::server::connections::ConnectionTimeouts {
            header_read: std::time::Duration::from_millis(args.header_read_timeout_ms),
            idle: std::time::Duration::from_millis(args.idle_timeout_ms),
        },
        body_read: std::time::Duration::from_millis(args.body_read_timeout_ms),
    };
    config.metrics_token = args
        .metrics_token_file
        .as_deref()
        .map(read_metrics_token)
        .transpose()?;
    config.metrics_course_labels = args.metrics_course_labels;
    config.max_concurrent_heavy = args.max_concurrent_heavy;
    let live = match args.watch.is_empty() {
        true => None,
        false => Some(std::sync::Arc::new(
            xbhost::server::live_reload::LiveReload::new(args.watch.clone())
                .context("`xbhost serve` refuses to start")?,
        )),
    };
    config.live = live.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("xbhost-http")
        // Renders run on the blocking pool: nested blocks recurse through host frames and
        // wasm stacks, so give them room (only touched pages are used).
        .thread_stack_size(xbhost::RENDER_STACK_BYTES)
        .build()
        .context("starting the async runtime")?;
    let mut watcher = None;
    let served = runtime.block_on(async {
        // Before the address is printed: from then on, a SIGHUP reopens the log.
        reopen_event_log_on_hangup(events)?;
        let dev_login = config.dev_login;
        let state = AppState::new(host, keys, config)?;
        if let Some(live) = live {
            watcher = Some(xbhost::server::plugin_watch::Watcher::start(
                state.clone(),
                live,
            )?);
        }
        let server = Server::bind(args.listen, state).await?;
        let addr = server.local_addr()?;
        // The first line of stdout is the address (scripts and tests read it).
        let mut out = std::io::stdout().lock();
        writeln!(out, "xbhost serving on http://{addr}/ (workbench: http://{addr}/workbench)")?;
        if dev_login {
            writeln!(
                out,
                "development sign-in is ON (--dev-login): anyone who can connect can sign in as anyone"
            )?;
        }
        out.flush()?;
        drop(out);
        tracing::info!(%addr, dev_login, "serving");
        server.run(shutdown_signal()).await
    });
    // The watcher holds the host too: stopped, so the store closes cleanly.
    if let Some(watcher) = watcher {
        watcher.stop();
    }
    // Renders abandoned at the shutdown grace are bounded by their deadlines; do not wait
    // for them longer than that.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// The metrics token: the file's first line, at least 16 bytes.
fn read_metrics_token(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the metrics token file {}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < 16 {
        bail!(
            "the metrics token in {} is {} bytes: use at least 16 (--metrics-token-file)",
            path.display(),
            token.len()
        );
    }
    Ok(token)
}

/// On SIGHUP, the event log is opened again at its path before the next event is written:
/// after a rotation by move (`mv events.jsonl events.jsonl.1`, then `kill -HUP`), new events
/// go to a new file, and each event is in exactly one of the two.
fn reopen_event_log_on_hangup(events: &Path) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    let file = events.display().to_string();
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            xbhost::events::request_reopen();
            tracing::info!(%file, "SIGHUP: the event log is reopened before the next event");
        }
    });
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

#[derive(Args)]
#[command(after_help = "Environment:\n  \
    XBHOST_TOKEN_SECRET  the HS256 key (the server's), used when --token-secret-file is \
    not given\n\n\
    Examples:\n  \
    xbhost token --user alice --role '*=learner'\n  \
    xbhost token --user bob --role 'course-v1:xbhost+demo+2026=staff' --ttl 30m\n  \
    curl -H \"Authorization: Bearer $(xbhost token --user alice --role '*=learner')\" \
    http://127.0.0.1:8080/courses/course-v1:xbhost+demo+2026/blocks/unit_1")]
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long, value_name = "ID")]
    user: String,
    /// The username shown on pages (default: the id).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// A role: `COURSE_KEY=ROLE` or `*=ROLE` (every course), ROLE one of learner, staff,
    /// admin (each includes the ones before); repeatable.
    #[arg(long = "role", value_name = "COURSE=ROLE", required = true)]
    roles: Vec<String>,
    /// How long the token is valid: a duration (30m, 1h). The server refuses more than its
    /// --max-token-lifetime (1h by default) and accepts the token until exp plus its
    /// --token-leeway (5s by default).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    ttl: humantime::Duration,
    /// The token's `iss` (what the server's --token-issuer demands).
    #[arg(long, value_name = "ISSUER")]
    issuer: Option<String>,
    /// The token's `aud` (what the server's --token-audience demands).
    #[arg(long, value_name = "AUDIENCE")]
    audience: Option<String>,
    /// The token's `nonce`: the one `GET /session/login` gave, for a sign-in by hand.
    #[arg(long, value_name = "NONCE")]
    nonce: Option<String>,
    /// Judge bearer requests with this token by their User-Agent, as a browser's (for an
    /// LMS that relays its learners' browsers' User-Agent): bots get control groups and
    /// send no events. Without it an LMS back end's own client (curl, python-requests)
    /// is not taken for a bot.
    #[arg(long)]
    check_user_agent: bool,
    /// A file holding the HS256 key; without it the key is read from XBHOST_TOKEN_SECRET.
    #[arg(long, env = "XBHOST_TOKEN_SECRET_FILE", value_name = "FILE")]
    token_secret_file: Option<PathBuf>,
}

/// `xbhost token`: signs a token with the server's key.
pub fn sign_token(args: &TokenArgs) -> Result<()> {
    use xbhost::server::auth::{Claims, Role};
    let keys = TokenKeys::load(args.token_secret_file.as_deref())?;
    check_id("user id", &args.user)?;
    let mut roles = BTreeMap::new();
    for spec in &args.roles {
        let (course, role) = spec
            .split_once('=')
            .with_context(|| format!("--role {spec:?} is not COURSE=ROLE"))?;
        if course != xbhost::server::auth::ALL_COURSES {
            check_id("course key", course)?;
        }
        let role: Role = role
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--role {spec:?}: {e}"))?;
        roles.insert(course.to_string(), role);
    }
    let mut claims = Claims::new(
        &args.user,
        args.name.as_deref().unwrap_or(&args.user),
        roles,
        args.ttl.as_secs(),
    );
    claims.iss = args.issuer.clone();
    claims.aud = args
        .audience
        .clone()
        .map(xbhost::server::auth::Audience::One);
    claims.nonce = args.nonce.clone();
    claims.check_user_agent = args.check_user_agent;
    println!("{}", keys.issue(&claims)?);
    Ok(())
}
