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
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// A file holding the HS256 key shared with the LMS (else XBHOST_TOKEN_SECRET).
    #[arg(long, env = "XBHOST_TOKEN_SECRET_FILE")]
    token_secret_file: Option<PathBuf>,
    /// Offer the development sign-in on the workbench: anyone may sign in as anyone.
    #[arg(long)]
    dev_login: bool,
    /// Largest handler call or form body, in bytes (larger: 413).
    #[arg(long, default_value_t = 64 * 1024)]
    max_body_bytes: usize,
    /// Largest plugin or course upload, in bytes (larger: 413).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_upload_bytes: usize,
    /// Renders and handler calls running at once (each holds a few sandbox instances).
    #[arg(long, default_value_t = 32)]
    pub max_concurrent_renders: usize,
    /// How long a request waits for a free render slot before it is answered 503.
    #[arg(long, default_value_t = 10_000)]
    queue_timeout_ms: u64,
    /// Mark cookies Secure: set it when browsers reach the server over HTTPS (a proxy).
    #[arg(long)]
    secure_cookies: bool,
    /// On SIGTERM or Ctrl-C, how long to wait for the requests in flight before exiting.
    #[arg(long, default_value_t = 10_000)]
    shutdown_grace_ms: u64,
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
    TokenKeys::load(args.token_secret_file.as_deref()).context("`xbhost serve` refuses to start")
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
    config.max_concurrent_renders = args.max_concurrent_renders;
    config.queue_timeout = std::time::Duration::from_millis(args.queue_timeout_ms);
    config.secure_cookies = args.secure_cookies;
    config.shutdown_grace = std::time::Duration::from_millis(args.shutdown_grace_ms);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("xbhost-http")
        // Renders run on the blocking pool: nested blocks recurse through host frames and
        // wasm stacks, so give them room (only touched pages are used).
        .thread_stack_size(xbhost::RENDER_STACK_BYTES)
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(async move {
        let dev_login = config.dev_login;
        let server = Server::bind(args.listen, AppState::new(host, keys, config)).await?;
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
    // Renders abandoned at the shutdown grace are bounded by their deadlines; do not wait
    // for them longer than that.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
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
pub struct TokenArgs {
    /// The user id (`sub`).
    #[arg(long)]
    user: String,
    /// The username shown on pages (default: the id).
    #[arg(long)]
    name: Option<String>,
    /// A role: `COURSE_KEY=ROLE` or `*=ROLE` (learner, staff, admin); repeatable.
    #[arg(long = "role", value_name = "COURSE=ROLE", required = true)]
    roles: Vec<String>,
    /// How long the token is valid.
    #[arg(long, default_value = "1h")]
    ttl: humantime::Duration,
    /// A file holding the HS256 key (else XBHOST_TOKEN_SECRET).
    #[arg(long, env = "XBHOST_TOKEN_SECRET_FILE")]
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
    let claims = Claims::new(
        &args.user,
        args.name.as_deref().unwrap_or(&args.user),
        roles,
        args.ttl.as_secs(),
    );
    println!("{}", keys.issue(&claims)?);
    Ok(())
}
