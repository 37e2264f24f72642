//! The `xbhost` command line: the clap `Cli` with its global options, the `Command` enum,
//! and `run`, which opens the host and hands each command to its group's file. The
//! children import nothing from here and, but for `serve` taking the import limit flags
//! of `courses` (`ImportLimitArgs`), nothing from each other: what they need, they are given.
//! `help` adjusts the help clap derives (global options hidden where they are ignored) and
//! checks it in the tests below.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use xbhost::server::auth::TokenKeys;
use xbhost::{Host, HostConfig};

mod block_build;
mod block_names;
mod courses;
mod event_log;
mod events_export;
mod experiments;
mod groups;
mod help;
mod learners;
mod new_block;
mod plugins;
mod serve;
mod store;

/// A host for XBlock-style course content; every block a sandboxed WebAssembly component.
///
/// Global options may come before or after the command; each command's help lists the
/// ones it uses. Logs go to stderr, filtered by XBHOST_LOG (for example
/// XBHOST_LOG=xbhost=debug), in colour only on a terminal and without NO_COLOR.
#[derive(Parser)]
#[command(
    name = "xbhost",
    version,
    after_help = "Examples:\n  \
        xbhost --data ./xbhost-data plugin add target/plugins/html.wasm\n  \
        xbhost --data ./xbhost-data course load examples/demo-course/course.json\n  \
        xbhost --data ./xbhost-data render --course course-v1:xbhost+demo+2026 --block unit_1 --user alice\n\n\
        Get `xbhost` on your PATH with `cargo install --path host` (from the repository), or \
        run target/release/xbhost after `cargo xtask build`."
)]
struct Cli {
    /// Data directory: the embedded store (DIR/db) and the event log. Only commands that
    /// install or load something (`plugin add`, `course load`, `course import`, `serve`,
    /// `tags set --global`) create it; the others refuse a directory without a store.
    #[arg(
        long,
        global = true,
        env = "XBHOST_DATA",
        default_value = "xbhost-data",
        value_name = "DIR",
        help_heading = GLOBAL
    )]
    data: PathBuf,
    /// A PostgreSQL database (`postgres://USER@HOST:PORT/NAME`) to keep the data in,
    /// shared by every host and command given the same URL; events go to its `events`
    /// table. `?sslmode=verify-full` (with --database-ca) checks the server's certificate
    /// and name, as libpq does. Without it, the data directory's embedded store.
    #[arg(
        long,
        global = true,
        env = "XBHOST_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    database: Option<String>,
    #[command(flatten)]
    database_limits: DatabaseArgs,
    /// The event log (newline-delimited JSON); default `events.jsonl` in the data directory.
    #[arg(
        long,
        global = true,
        env = "XBHOST_EVENTS",
        value_name = "FILE",
        help_heading = GLOBAL
    )]
    events: Option<PathBuf>,
    /// A file of bot user-agent patterns, one case-insensitive regular expression per line,
    /// `#` comments (default: a built-in list of crawlers). Used by `render` and `serve`.
    #[arg(
        long,
        global = true,
        env = "XBHOST_BOTS",
        value_name = "FILE",
        help_heading = GLOBAL
    )]
    bots: Option<PathBuf>,
    #[command(flatten)]
    event_log: event_log::EventLogArgs,
    #[command(subcommand)]
    command: Command,
}

/// The heading of the global options in every command's help.
const GLOBAL: &str = "Global options";

/// Bounds on what the database may make a host wait for.
#[derive(clap::Args)]
#[command(next_help_heading = GLOBAL)]
struct DatabaseArgs {
    /// With --database: the longest a call waits for a free database connection (or a new
    /// one) before answering that the store is unavailable (503 over HTTP), in ms.
    #[arg(
        long,
        global = true,
        env = "XBHOST_DATABASE_WAIT_MS",
        default_value_t = 5000,
        value_name = "MS"
    )]
    database_wait_ms: u64,
    /// With --database: the longest a statement waits for a row another host's request
    /// holds, in ms.
    #[arg(
        long,
        global = true,
        env = "XBHOST_DATABASE_LOCK_TIMEOUT_MS",
        default_value_t = 5000,
        value_name = "MS"
    )]
    database_lock_timeout_ms: u64,
    /// With --database: the longest any one statement may run, in ms.
    #[arg(
        long,
        global = true,
        env = "XBHOST_DATABASE_STATEMENT_TIMEOUT_MS",
        default_value_t = 30000,
        value_name = "MS"
    )]
    database_statement_timeout_ms: u64,
    /// With --database: the CA certificate (PEM) the database server's certificate must
    /// be signed by, for URLs that name no `sslrootcert` (with `sslmode=verify-full` its
    /// host name is checked too; `require` checks it against this CA).
    #[arg(
        long,
        global = true,
        env = "XBHOST_DATABASE_CA_FILE",
        value_name = "FILE"
    )]
    database_ca: Option<PathBuf>,
}

impl DatabaseArgs {
    fn options(&self) -> xbhost::storage::PgOptions {
        let ms = std::time::Duration::from_millis;
        xbhost::storage::PgOptions {
            wait: ms(self.database_wait_ms),
            lock_timeout: ms(self.database_lock_timeout_ms),
            statement_timeout: ms(self.database_statement_timeout_ms),
            ca_file: self.database_ca.clone(),
            ..Default::default()
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Install and list block plugins.
    #[command(subcommand)]
    Plugin(plugins::PluginCommand),
    /// Load and inspect courses.
    #[command(subcommand)]
    Course(courses::CourseCommand),
    /// Render a block for one or more users.
    Render(learners::RenderArgs),
    /// A learner's group in a partition (stored, or what they would get). Writes nothing.
    Assign(groups::AssignArgs),
    /// Read and write user tags.
    #[command(subcommand)]
    Tags(learners::TagsCommand),
    /// Call a block's handler for a user (for example a problem's `submit`).
    Handle(learners::HandleArgs),
    /// Grade learners over the problems each of them sees; `grades export` writes CSV.
    Grades(learners::GradesArgs),
    /// Put learners in cohort (content) groups.
    #[command(subcommand)]
    Cohort(groups::CohortCommand),
    /// Experiment controls: state, forced users, enrollment window.
    #[command(subcommand)]
    Experiment(experiments::ExperimentCommand),
    /// Record learners' course enrollment dates (for enrollment windows).
    #[command(subcommand)]
    Enrollment(experiments::EnrollmentCommand),
    /// On sign-in: carry an anonymous session's groups over to the user (the user's own
    /// groups win).
    RefreshIdentifier(groups::RefreshArgs),
    /// Serve over HTTP: block pages and JSON for the LMS, handler calls, admin uploads,
    /// /healthz, /metrics, and the workbench. Needs the token signing key.
    Serve(serve::ServeArgs),
    /// Sign a token (as the LMS would) with the serve key: for scripts and trying things.
    Token(serve::TokenArgs),
    /// Per experiment: learners per group, sample ratio test, goals per group with tests.
    Report(experiments::ReportArgs),
    /// Move the data directory's store to PostgreSQL (`store copy --to URL`), or check a
    /// copy (`store verify --against URL`). Needs the store to itself.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// A course's events as JSON lines (`events export`), from the database's events
    /// table with --database, else from the event log.
    #[command(subcommand)]
    Events(events_export::EventsCommand),
    /// Write a new block project (Rust) that builds, passes its own tests and renders in
    /// the workbench as it is, with a sample course. Opens no store.
    NewBlock(new_block::NewBlockArgs),
    /// Build a Python block project into a plugin (`block build DIR`). Opens no store.
    #[command(subcommand)]
    Block(block_build::BlockCommand),
}

/// The command line as clap parses it, with the help adjusted (`help`).
fn command() -> clap::Command {
    help::hide_ignored_globals(Cli::command())
}

/// Whether log lines on stderr may carry colours: only on a terminal, and never with
/// `NO_COLOR` set to anything (no-color.org), so logs redirected to a file stay text.
fn log_colours() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A mistyped `--data` must not quietly open a new, empty store: only the commands that
/// install or load something may start one; the others refuse a data directory without a
/// store (and create nothing). `events export` on the log needs the store or the log.
fn check_store_exists(
    data: &std::path::Path,
    events: &std::path::Path,
    command: &Command,
) -> Result<()> {
    let store = data.join("db");
    if store.is_dir() {
        return Ok(());
    }
    let creates = match command {
        Command::Plugin(cmd) => cmd.creates_store(),
        Command::Course(cmd) => cmd.creates_store(),
        Command::Tags(cmd) => cmd.creates_store(),
        Command::Serve(_) => true,
        // They check for the store themselves (`store`), or never open it (`token`).
        Command::Store(_) | Command::Token(_) => true,
        Command::Events(_) => events.exists(),
        _ => false,
    };
    if !creates {
        bail!(
            "there is no xbhost store in {} (no {} directory): check --data (or XBHOST_DATA). \
             Only `plugin add`, `course load`, `course import`, `serve` and `tags set --global` \
             start a new store",
            data.display(),
            store.display()
        );
    }
    Ok(())
}

pub fn main() -> ExitCode {
    // html5ever logs about the block HTML it parses (markup::contain), as often as a block's
    // HTML makes it: never in the host's log.
    let quiet_parser = "html5ever=off".parse().expect("a valid directive");
    tracing_subscriber::fmt()
        .with_ansi(log_colours())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("XBHOST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
                .add_directive(quiet_parser),
        )
        .with_writer(std::io::stderr)
        // A log that cannot be written (its disk is full) must not take the server down:
        // tracing-subscriber would report it with eprintln!, which panics when stderr
        // fails too.
        .log_internal_errors(false)
        .init();
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> Result<()> {
    // Commands that must not open the store (a running server holds its lock), and the
    // server's key, checked before anything is opened.
    let keys = match &cli.command {
        Command::Token(args) => return serve::sign_token(args),
        Command::NewBlock(args) => return new_block::run(args, &mut std::io::stdout().lock()),
        Command::Block(cmd) => return block_build::run(cmd, &mut std::io::stdout().lock()),
        Command::Serve(args) => Some(serve::keys(args)?),
        _ => None,
    };
    let mut config = HostConfig::from_env()?;
    if let Command::Serve(args) = &cli.command {
        // The instance pool is sized for the renders the server runs at once.
        config.limits.concurrent_requests = args.max_concurrent_renders;
    }
    config.events_file = cli.events.clone();
    config.database = cli.database.clone();
    config.database_options = cli.database_limits.options();
    config.event_log = cli.event_log.options()?;
    if let Some(bots) = &cli.bots {
        config.bots = xbhost::bots::BotFilter::from_file(bots)?;
    }
    let events_path = Host::events_path(&cli.data, &config);
    if config.database.is_none() {
        check_store_exists(&cli.data, &events_path, &cli.command)?;
    }
    // `store` opens the sled store itself; `events export` on sled reads only the log.
    match cli.command {
        Command::Store(cmd) => {
            let (database, options) = (config.database.as_deref(), &config.database_options);
            let out = &mut std::io::stdout().lock();
            return store::run(&cli.data, database, &events_path, options, cmd, out);
        }
        Command::Events(cmd) if config.database.is_none() => {
            return events_export::from_log(&events_path, cmd, &mut std::io::stdout().lock());
        }
        command => cli.command = command,
    }
    // A command that starts a new store and then fails (a bad plugin file, a course that
    // does not load) leaves no empty store behind to be taken for a real one.
    let new_store = match (&config.database, &cli.command) {
        (None, Command::Serve(_)) | (Some(_), _) => None,
        (None, _) => NewStore::before_open(&cli.data, &events_path),
    };
    let host = Host::open(&cli.data, config)?;
    let result = run_on(&cli.data, &events_path, host, keys, cli.command);
    if let (Err(_), Some(new_store)) = (&result, new_store) {
        new_store.remove();
    }
    result
}

/// What a data directory held before a command started a store in it, so that a failed
/// command can take back what it created, and only that: the store's own entries that
/// were not there before (never another program's files, never a directory it could not
/// read).
struct NewStore {
    data: std::path::PathBuf,
    /// Whether the data directory itself was missing (then it goes too, if left empty).
    dir_was_missing: bool,
    /// The store's entries (`db`, `cache`, the event log) the command will have created.
    created: Vec<std::path::PathBuf>,
}

impl NewStore {
    /// `None` when a store is already there, or the directory cannot be read: nothing is
    /// new, or nothing can be told to be, and nothing will be removed.
    fn before_open(data: &std::path::Path, events: &std::path::Path) -> Option<NewStore> {
        let store_entries = [
            data.join("db"),
            data.join("db.generation"),
            data.join("cache"),
            events.to_path_buf(),
        ];
        if store_entries[0].exists() {
            return None;
        }
        let dir_was_missing = match std::fs::symlink_metadata(data) {
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(_) => return None,
        };
        let created = store_entries
            .into_iter()
            .filter(|p| p.starts_with(data))
            .filter(|p| matches!(std::fs::symlink_metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound))
            .collect();
        Some(NewStore {
            data: data.to_path_buf(),
            dir_was_missing,
            created,
        })
    }

    /// Removes what the failed command created (the host is closed by then).
    fn remove(self) {
        for path in &self.created {
            let outcome = match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
                Ok(_) => std::fs::remove_file(path),
                Err(_) => Ok(()),
            };
            if let Err(e) = outcome {
                tracing::warn!(path = %path.display(), error = %e, "could not remove what the failed command started");
            }
        }
        if self.dir_was_missing {
            // Only if empty: anything else in it is not this command's.
            let _ = std::fs::remove_dir(&self.data);
        }
    }
}

/// Runs a command on an open host (which it consumes, so the store is closed on return).
fn run_on(
    data: &std::path::Path,
    events_path: &std::path::Path,
    host: Host,
    keys: Option<TokenKeys>,
    command: Command,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Plugin(cmd) => plugins::run(&host, cmd, &mut out),
        Command::Course(cmd) => courses::run(&host, cmd, &mut out),
        Command::Render(args) => learners::render(&host, args, &mut out),
        Command::Assign(args) => groups::assign(&host, args, &mut out),
        Command::Tags(cmd) => learners::tags(&host, cmd, &mut out),
        Command::Handle(args) => learners::handle(&host, args, &mut out),
        Command::Grades(args) => learners::grades(&host, args, &mut out),
        Command::Cohort(cmd) => groups::cohort(&host, cmd, &mut out),
        Command::Experiment(cmd) => experiments::experiment(&host, cmd, &mut out),
        Command::Enrollment(cmd) => experiments::enrollment(&host, cmd, &mut out),
        Command::RefreshIdentifier(args) => groups::refresh_identifier(&host, args, &mut out),
        Command::Report(args) => experiments::report(&host, events_path, args, &mut out),
        Command::Serve(args) => {
            drop(out);
            let keys = keys.expect("loaded above");
            serve::serve(data, events_path, host, keys, args)
        }
        Command::Events(cmd) => events_export::from_store(&host, cmd, &mut out),
        Command::Token(_) | Command::Store(_) | Command::NewBlock(_) | Command::Block(_) => {
            unreachable!("handled before the store is opened")
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks (conflicts, groups, ids) over every command.
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }

    /// Every option and argument of every command says what it is, and every command shows
    /// an example (`help::problems` walks the whole tree).
    #[test]
    fn every_argument_has_help_and_every_command_an_example() {
        let problems = super::help::problems(&mut super::command());
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// Global options show only on the commands that use them, and `serve` names the
    /// environment variable of its signing key.
    #[test]
    fn help_shows_what_each_command_uses() {
        let help = |path: &[&str]| super::help::long_help(&mut super::command(), path);
        let token = help(&["token"]);
        assert!(
            !token.contains("--data") && !token.contains("--bots"),
            "{token}"
        );
        assert!(
            token.contains("XBHOST_TOKEN_SECRET  the HS256 key"),
            "{token}"
        );
        let render = help(&["render"]);
        assert!(
            render.contains("--data <DIR>") && render.contains("--bots"),
            "{render}"
        );
        assert!(render.contains("Global options"), "{render}");
        let list = help(&["course", "list"]);
        assert!(
            list.contains("--data <DIR>") && !list.contains("--bots"),
            "{list}"
        );
        let copy = help(&["store", "copy"]);
        assert!(
            !copy.contains("--database <URL>") && copy.contains("--data <DIR>"),
            "{copy}"
        );
        let serve = help(&["serve"]);
        assert!(
            serve.contains("XBHOST_TOKEN_SECRET  the HS256 key"),
            "{serve}"
        );
        assert!(
            serve.contains("--token-leeway") && serve.contains("exp + leeway"),
            "{serve}"
        );
        assert!(
            help(&["render"]).contains("[possible values: student, staff, author]"),
            "{render}"
        );
    }
}
