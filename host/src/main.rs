//! The `xbhost` command line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};

use xbhost::assignment::PARTITION_TAG_PREFIX;
use xbhost::ids::{check_id, check_tag_key, check_tag_value};
use xbhost::model::CourseDoc;
use xbhost::{Host, HostConfig, Masquerade, RenderRequest, User, View};

mod experiment_cli;

/// A host for XBlock-style course content; every block a sandboxed WebAssembly component.
#[derive(Parser)]
#[command(name = "xbhost", version)]
struct Cli {
    /// Data directory (store and event log); created if missing.
    #[arg(
        long,
        global = true,
        env = "XBHOST_DATA",
        default_value = "xbhost-data"
    )]
    data: PathBuf,
    /// The event log (newline-delimited JSON); default `events.jsonl` in the data directory.
    #[arg(long, global = true, env = "XBHOST_EVENTS")]
    events: Option<PathBuf>,
    /// A file of bot user-agent patterns, one regular expression per line (default: a
    /// built-in list of crawlers).
    #[arg(long, global = true, env = "XBHOST_BOTS")]
    bots: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install and list block plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Load and inspect courses.
    #[command(subcommand)]
    Course(CourseCommand),
    /// Render a block for one or more users.
    Render(RenderArgs),
    /// A learner's group in a partition (stored, or what they would get). Writes nothing.
    Assign(AssignArgs),
    /// Read and write user tags.
    #[command(subcommand)]
    Tags(TagsCommand),
    /// Call a block's handler for a user (for example a problem's `submit`).
    Handle(HandleArgs),
    /// Grade learners over the problems each of them sees; `grades export` writes CSV.
    Grades(GradesArgs),
    /// Put learners in cohort (content) groups.
    #[command(subcommand)]
    Cohort(CohortCommand),
    /// Experiment controls: state, forced users, enrollment window.
    #[command(subcommand)]
    Experiment(experiment_cli::ExperimentCommand),
    /// Record learners' course enrollment dates (for enrollment windows).
    #[command(subcommand)]
    Enrollment(experiment_cli::EnrollmentCommand),
    /// On sign-in: carry an anonymous session's groups over to the user (the user's own
    /// groups win).
    RefreshIdentifier {
        #[arg(long)]
        session: String,
        #[arg(long)]
        user: String,
    },
    /// Serve over HTTP: block pages and JSON for the LMS, handler calls, admin uploads,
    /// /healthz, /metrics, and the workbench. Needs the token signing key.
    Serve(ServeArgs),
    /// Sign a token (as the LMS would) with the serve key: for scripts and trying things.
    Token(TokenArgs),
    /// Per experiment: learners per group, sample ratio test, goals per group with tests.
    Report {
        #[arg(long)]
        course: String,
        /// Also write the report as a self-contained HTML page.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct ServeArgs {
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
    max_concurrent_renders: usize,
    /// How long a request waits for a free render slot before it is answered 503.
    #[arg(long, default_value_t = 10_000)]
    queue_timeout_ms: u64,
    /// Mark cookies Secure: set it when browsers reach the server over HTTPS (a proxy).
    #[arg(long)]
    secure_cookies: bool,
}

#[derive(Args)]
struct TokenArgs {
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

#[derive(Args)]
struct HandleArgs {
    #[arg(long)]
    course: String,
    #[arg(long)]
    block: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    handler: String,
    /// The handler's JSON payload.
    #[arg(long, default_value = "{}")]
    payload: String,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct GradesArgs {
    #[command(subcommand)]
    command: Option<GradesCommand>,
    #[arg(long)]
    course: Option<String>,
    /// Grade one learner (default: every learner with data in the course).
    #[arg(long)]
    user: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum GradesCommand {
    /// One row per learner, one column per problem (`n/a` where the learner does not see it).
    Export {
        #[arg(long)]
        course: String,
        #[arg(long)]
        csv: PathBuf,
    },
}

#[derive(Subcommand)]
enum CohortCommand {
    /// Put a learner in a group of a cohort partition.
    Set {
        #[arg(long)]
        course: String,
        #[arg(long)]
        partition: u64,
        #[arg(long)]
        user: String,
        #[arg(long)]
        group: u64,
    },
    /// Learners and their groups in a partition.
    List {
        #[arg(long)]
        course: String,
        #[arg(long)]
        partition: u64,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Check and store a plugin (`.wasm` component built with xbhost-sdk).
    Add {
        file: PathBuf,
        /// Install under this name instead of the one the plugin declares.
        #[arg(long)]
        name: Option<String>,
    },
    /// List installed plugins.
    List,
}

#[derive(Subcommand)]
enum CourseCommand {
    /// Load a JSON course document, replacing the course's structure and partitions if it exists.
    Load {
        file: PathBuf,
        /// Show what the change would do to each partition (and how many learners would be
        /// reassigned) without loading anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Import an Open edX course export (OLX directory or .tar.gz).
    Import {
        path: PathBuf,
        /// Course key to use instead of course-v1:{org}+{course}+{run}.
        #[arg(long)]
        course_key: Option<String>,
    },
    /// Add an empty unit for every group of a split test that has no child.
    AddMissingGroups {
        #[arg(long)]
        course: String,
        /// The split test's usage id.
        #[arg(long)]
        block: String,
    },
    /// List course keys.
    List,
    /// Print a course document as stored.
    Show { course_key: String },
}

#[derive(Args)]
struct RenderArgs {
    #[arg(long)]
    course: String,
    #[arg(long)]
    block: String,
    /// The user to render for.
    #[arg(
        long,
        conflicts_with_all = ["users_file", "session"],
        required_unless_present_any = ["users_file", "session"]
    )]
    user: Option<String>,
    /// Render for an anonymous visitor with this session id.
    #[arg(long, conflicts_with = "users_file")]
    session: Option<String>,
    /// The request's User-Agent (bots see control groups and send no events).
    #[arg(long)]
    user_agent: Option<String>,
    /// Staff only: view exactly as this learner (nothing is written, no event is sent).
    #[arg(long, conflicts_with = "as_group")]
    as_learner: Option<String>,
    /// Staff only: view as a group, PARTITION=GROUP (repeatable); nothing is written.
    #[arg(long, value_parser = parse_group_choice)]
    as_group: Vec<(u64, u64)>,
    /// A file with one user id per line (blank lines and `#` comments skipped).
    #[arg(long)]
    users_file: Option<PathBuf>,
    /// student, staff or author (staff and author render as a staff user).
    #[arg(long, default_value = "student")]
    view: View,
    /// One JSON object per user per line instead of HTML.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AssignArgs {
    #[arg(long)]
    course: String,
    #[arg(long)]
    partition: u64,
    #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
    user: Option<String>,
    #[arg(long)]
    json: bool,
    /// Read identifiers from standard input, one per line; write one JSON line each.
    #[arg(long)]
    batch: bool,
}

/// `PARTITION=GROUP`, as `--as-group` takes it.
fn parse_group_choice(text: &str) -> Result<(u64, u64), String> {
    let (p, g) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not PARTITION=GROUP"))?;
    let num = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|_| format!("{text:?}: {v:?} is not a number"))
    };
    Ok((num(p)?, num(g)?))
}

#[derive(Args)]
struct TagTarget {
    /// The user whose tags these are.
    #[arg(long)]
    user: String,
    /// The course (course-scoped tags).
    #[arg(long, required_unless_present = "global")]
    course: Option<String>,
    /// Global (user-scoped) tags instead of course tags.
    #[arg(long, conflicts_with = "course")]
    global: bool,
}

#[derive(Subcommand)]
enum TagsCommand {
    Get {
        #[command(flatten)]
        target: TagTarget,
        key: String,
    },
    Set {
        #[command(flatten)]
        target: TagTarget,
        key: String,
        value: String,
    },
    List {
        #[command(flatten)]
        target: TagTarget,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("XBHOST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    // Commands that must not open the store (a running server holds its lock), and the
    // server's key, checked before anything is opened.
    let keys = match &cli.command {
        Command::Token(args) => return sign_token(args),
        Command::Serve(args) => {
            if args.dev_login && !args.listen.ip().is_loopback() {
                bail!(
                    "`xbhost serve` refuses to start: --dev-login lets anyone sign in as anyone, \
                     so it listens only on a loopback address, not {}",
                    args.listen
                );
            }
            Some(
                xbhost::server::auth::TokenKeys::load(args.token_secret_file.as_deref())
                    .context("`xbhost serve` refuses to start")?,
            )
        }
        _ => None,
    };
    let mut config = HostConfig::from_env()?;
    config.events_file = cli.events.clone();
    if let Some(bots) = &cli.bots {
        config.bots = xbhost::bots::BotFilter::from_file(bots)?;
    }
    let events_path = Host::events_path(&cli.data, &config);
    let host = Host::open(&cli.data, config)?;
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Plugin(PluginCommand::Add { file, name }) => {
            let wasm =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let record = host
                .add_plugin(&wasm, name.as_deref())
                .with_context(|| format!("{} was not added", file.display()))?;
            writeln!(
                out,
                "added plugin {} {} (contract {}, {} bytes, blake3 {})",
                record.name, record.version, record.contract, record.size, record.hash
            )?;
        }
        Command::Plugin(PluginCommand::List) => {
            for p in host.plugins()? {
                writeln!(
                    out,
                    "{}\t{}\tcontract {}\t{}",
                    p.name, p.version, p.contract, p.hash
                )?;
            }
        }
        Command::Course(CourseCommand::Load { file, dry_run }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let doc = CourseDoc::from_json(&text)
                .with_context(|| format!("{} is not a valid course document", file.display()))?;
            if dry_run {
                print_changes(&mut out, &host.preview_course_change(&doc)?)?;
                writeln!(out, "dry run: nothing was changed")?;
                return Ok(());
            }
            let report = host
                .load_course(doc)
                .with_context(|| format!("{} was not loaded", file.display()))?;
            print_load(&mut out, &report)?;
        }
        Command::Course(CourseCommand::Import { path, course_key }) => {
            let (import, report) = host
                .import_course(&path, &xbhost::olx::ImportOptions { course_key })
                .with_context(|| format!("{} was not imported", path.display()))?;
            writeln!(out, "imported {} from {}", import.course_key, import.source)?;
            writeln!(out, "blocks by type:")?;
            for (t, n) in &import.blocks_by_type {
                let unsupported = import
                    .unsupported
                    .get(t)
                    .map(|u| format!(" ({u} unsupported)"))
                    .unwrap_or_default();
                writeln!(out, "  {t}: {n}{unsupported}")?;
            }
            writeln!(out, "user partitions:")?;
            for p in &import.partitions {
                let groups: Vec<String> = p
                    .groups
                    .iter()
                    .map(|g| format!("{} {}", g.id, g.name))
                    .collect();
                writeln!(
                    out,
                    "  {} {:?} ({}{}): {}",
                    p.id,
                    p.name,
                    p.scheme,
                    if p.active { "" } else { ", inactive" },
                    groups.join("; ")
                )?;
            }
            for split in &import.split_tests {
                writeln!(
                    out,
                    "split_test {} on partition {:?}: {:?}",
                    split.usage_id, split.partition_id, split.group_id_to_child
                )?;
            }
            for w in &import.warnings {
                writeln!(out, "warning: {w}")?;
            }
            print_load(&mut out, &report)?;
        }
        Command::Course(CourseCommand::AddMissingGroups { course, block }) => {
            let added = host.add_missing_group_children(&course, &block)?;
            if added.is_empty() {
                writeln!(out, "every group of {block} already has a child")?;
            }
            for id in added {
                writeln!(out, "added {id}")?;
            }
        }
        Command::Course(CourseCommand::List) => {
            for key in host.course_keys()? {
                writeln!(out, "{key}")?;
            }
        }
        Command::Course(CourseCommand::Show { course_key }) => {
            let course = host.course(&course_key)?;
            serde_json::to_writer_pretty(&mut out, &course.doc)?;
            writeln!(out)?;
        }
        Command::Render(args) => render(&host, args, &mut out)?,
        Command::Assign(args) if args.batch => experiment_cli::assign_batch(
            &host,
            &args.course,
            args.partition,
            std::io::stdin().lock(),
            &mut out,
        )?,
        Command::Assign(args) => {
            let user = args.user.context("give --user ID or --batch")?;
            let view = host.assignment(&args.course, args.partition, &user)?;
            if args.json {
                serde_json::to_writer(&mut out, &view)?;
                writeln!(out)?;
            } else {
                match &view.group {
                    Some(g) => writeln!(
                        out,
                        "{}\t{}\t{}",
                        g.id,
                        g.name,
                        match view.status {
                            Some(xbhost::ExperimentStatus::Enrolled) => "stored".to_string(),
                            Some(xbhost::ExperimentStatus::WouldBeAssigned) =>
                                "not yet stored".to_string(),
                            Some(status) => serde_json::to_value(status)?
                                .as_str()
                                .unwrap_or_default()
                                .replace('_', " "),
                            None => String::new(),
                        }
                    )?,
                    None => writeln!(out, "none\t(no group in partition {})", view.partition_id)?,
                }
            }
        }
        Command::Tags(cmd) => tags(&host, cmd, &mut out)?,
        Command::Handle(args) => {
            let payload: serde_json::Value = serde_json::from_str(&args.payload)
                .with_context(|| format!("--payload is not JSON: {:?}", args.payload))?;
            let answer = host.handle(
                &args.course,
                &args.block,
                &User::learner(&args.user),
                &args.handler,
                &payload,
            )?;
            serde_json::to_writer(&mut out, &answer)?;
            writeln!(out)?;
        }
        Command::Grades(GradesArgs {
            command: Some(GradesCommand::Export { course, csv }),
            ..
        }) => {
            let report = host.grades(&course, None)?;
            std::fs::write(&csv, report.to_csv())
                .with_context(|| format!("cannot write {}", csv.display()))?;
            writeln!(
                out,
                "wrote {} learners, {} problems to {}",
                report.learners.len(),
                report.problems.len(),
                csv.display()
            )?;
        }
        Command::Grades(GradesArgs {
            command: None,
            course,
            user,
            json,
        }) => {
            let course = course.context("give --course KEY")?;
            let report = host.grades(&course, user.as_deref())?;
            if json {
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            } else {
                for learner in &report.learners {
                    writeln!(
                        out,
                        "{}\t{} / {}\t({} of {} problems visible)",
                        learner.user,
                        learner.earned,
                        learner.possible,
                        learner.problems.len(),
                        report.problems.len()
                    )?;
                }
            }
        }
        Command::Cohort(CohortCommand::Set {
            course,
            partition,
            user,
            group,
        }) => {
            let g = host.set_cohort(&course, partition, &user, group)?;
            writeln!(
                out,
                "{user} is in group {} {:?} of partition {partition}",
                g.id, g.name
            )?;
        }
        Command::Experiment(cmd) => experiment_cli::experiment(&host, cmd, &mut out)?,
        Command::Enrollment(cmd) => experiment_cli::enrollment(&host, cmd, &mut out)?,
        Command::RefreshIdentifier { session, user } => {
            let carried = host.refresh_identifier(&session, &user)?;
            if carried.is_empty() {
                writeln!(out, "session {session:?} had no groups to carry over")?;
            }
            for c in carried {
                writeln!(
                    out,
                    "{}\tpartition {}\t{}",
                    c.course_key,
                    c.partition_id,
                    if c.carried {
                        format!("carried group {} over to {user}", c.user_group)
                    } else {
                        format!(
                            "kept {user}'s group {} (the session had {})",
                            c.user_group, c.session_group
                        )
                    }
                )?;
            }
        }
        Command::Report { course, html, json } => {
            let report = host.report(&course, &events_path)?;
            if let Some(file) = &html {
                std::fs::write(file, report.to_html())
                    .with_context(|| format!("cannot write {}", file.display()))?;
            }
            if json {
                serde_json::to_writer(&mut out, &report)?;
                writeln!(out)?;
            } else {
                write!(out, "{}", report.to_text())?;
                if let Some(file) = &html {
                    writeln!(out, "\nwrote {}", file.display())?;
                }
            }
        }
        Command::Serve(args) => {
            drop(out);
            serve(
                &cli.data,
                &events_path,
                host,
                keys.expect("loaded above"),
                args,
            )?;
            return Ok(());
        }
        Command::Token(_) => unreachable!("handled before the store is opened"),
        Command::Cohort(CohortCommand::List { course, partition }) => {
            host.course(&course)?;
            let tag = xbhost::assignment::partition_tag_key(partition);
            for (user, group) in host.storage().users_with_course_tag(&course, &tag)? {
                writeln!(out, "{user}\t{group}")?;
            }
        }
    }
    Ok(())
}

/// Runs the HTTP server until Ctrl-C or SIGTERM, then finishes the requests in flight.
fn serve(
    data: &Path,
    events: &Path,
    host: Host,
    keys: xbhost::server::auth::TokenKeys,
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("xbhost-http")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
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
    })
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

/// `xbhost token`: signs a token with the server's key.
fn sign_token(args: &TokenArgs) -> Result<()> {
    use xbhost::server::auth::{Claims, Role, TokenKeys};
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

fn print_load(out: &mut impl Write, report: &xbhost::LoadReport) -> Result<()> {
    writeln!(
        out,
        "{} course {}: {} blocks, {} user partitions",
        if report.replaced {
            "replaced"
        } else {
            "loaded"
        },
        report.course_key,
        report.blocks,
        report.partitions
    )?;
    if report.reassigned > 0 {
        writeln!(
            out,
            "reassigned {} learners whose group was deleted",
            report.reassigned
        )?;
    }
    for m in &report.messages {
        writeln!(
            out,
            "  {} {} ({}): {}",
            m.severity, m.usage_id, m.block_type, m.text
        )?;
    }
    Ok(())
}

fn print_changes(out: &mut impl Write, changes: &[xbhost::PartitionChange]) -> Result<()> {
    for c in changes {
        writeln!(
            out,
            "partition {} {:?}: {}; {} learners assigned, {} would be reassigned",
            c.partition_id, c.name, c.status, c.learners_assigned, c.learners_to_reassign
        )?;
        if !c.groups_added.is_empty() {
            writeln!(out, "  groups added: {:?}", c.groups_added)?;
        }
        if !c.groups_removed.is_empty() {
            writeln!(out, "  groups removed: {:?}", c.groups_removed)?;
        }
        for (id, old, new) in &c.groups_renamed {
            writeln!(out, "  group {id} renamed: {old:?} -> {new:?}")?;
        }
    }
    Ok(())
}

fn read_users(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        check_id("user id", line).with_context(|| format!("{} line {}", path.display(), i + 1))?;
        users.push(line.to_string());
    }
    if users.is_empty() {
        bail!("{} lists no users", path.display());
    }
    Ok(users)
}

fn render(host: &Host, args: RenderArgs, out: &mut impl Write) -> Result<()> {
    let users = match (&args.user, &args.users_file, &args.session) {
        (Some(user), _, _) => vec![user.clone()],
        (None, Some(file), _) => read_users(file)?,
        (None, None, Some(session)) => vec![session.clone()],
        (None, None, None) => bail!("give --user, --users-file or --session"),
    };
    let masquerade = match (&args.as_learner, args.as_group.is_empty()) {
        (Some(learner), _) => Some(Masquerade::Learner(learner.clone())),
        (None, false) => Some(Masquerade::Groups(args.as_group.iter().copied().collect())),
        (None, true) => None,
    };
    for id in &users {
        // Masquerading is for staff: the staff member is the one asking.
        let user = if args.session.is_some() {
            User::anonymous(id)
        } else if args.view != View::Student || masquerade.is_some() {
            User::staff(id)
        } else {
            User::learner(id)
        };
        let output = host.render_bounded(&RenderRequest {
            course_key: args.course.clone(),
            usage_id: args.block.clone(),
            user,
            view: args.view,
            user_agent: args.user_agent.clone(),
            masquerade: masquerade.clone(),
        })?;
        if args.json {
            serde_json::to_writer(&mut *out, &output.summary(id, args.view))?;
            writeln!(out)?;
        } else {
            if users.len() > 1 {
                writeln!(out, "<!-- user: {} -->", xbhost::markup::escape(id))?;
            }
            writeln!(out, "{}", output.html)?;
        }
    }
    Ok(())
}

fn tags(host: &Host, cmd: TagsCommand, out: &mut impl Write) -> Result<()> {
    let target = match &cmd {
        TagsCommand::Get { target, .. }
        | TagsCommand::Set { target, .. }
        | TagsCommand::List { target } => target,
    };
    check_id("user id", &target.user)?;
    let storage = host.storage();
    if let Some(course) = &target.course {
        host.course(course)?;
    }
    match (&cmd, &target.course) {
        (TagsCommand::Get { key, .. }, course) => {
            check_tag_key(key).map_err(anyhow::Error::msg)?;
            let value = match course {
                Some(c) => storage.course_tag(c, &target.user, key)?,
                None => storage.user_tag(&target.user, key)?,
            };
            match value {
                Some(v) => writeln!(out, "{v}")?,
                None => bail!("user {:?} has no tag {key:?}", target.user),
            }
        }
        (TagsCommand::Set { key, value, .. }, course) => {
            check_tag_key(key).map_err(anyhow::Error::msg)?;
            check_tag_value(key, value).map_err(anyhow::Error::msg)?;
            match course {
                Some(c) => {
                    if key.starts_with(PARTITION_TAG_PREFIX) {
                        bail!(
                            "tag {key:?} holds a partition assignment, which only the host writes"
                        );
                    }
                    storage.set_course_tag(c, &target.user, key, value)?
                }
                None => storage.set_user_tag(&target.user, key, value)?,
            }
            storage.flush()?;
        }
        (TagsCommand::List { .. }, course) => {
            let tags = match course {
                Some(c) => storage.course_tags(c, &target.user)?,
                None => storage.user_tags(&target.user)?,
            };
            for (k, v) in tags {
                writeln!(out, "{k}\t{v}")?;
            }
        }
    }
    Ok(())
}
