//! The `xbhost` command line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use xbhost::assignment::PARTITION_TAG_PREFIX;
use xbhost::ids::{check_id, check_tag_key, check_tag_value};
use xbhost::model::CourseDoc;
use xbhost::{Host, HostConfig, RenderRequest, User, View};

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
    Load { file: PathBuf },
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
        conflicts_with = "users_file",
        required_unless_present = "users_file"
    )]
    user: Option<String>,
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
    #[arg(long)]
    user: String,
    #[arg(long)]
    json: bool,
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

/// One line of `render --json`.
#[derive(Serialize)]
struct RenderLine<'a> {
    user: &'a str,
    view: View,
    html: &'a str,
    hidden: bool,
    visible_blocks: &'a [String],
    assignments: &'a BTreeMap<u64, u64>,
    failures: &'a [xbhost::BlockFailure],
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
    let host = Host::open(&cli.data, HostConfig::from_env()?)?;
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
        Command::Course(CourseCommand::Load { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let doc = CourseDoc::from_json(&text)
                .with_context(|| format!("{} is not a valid course document", file.display()))?;
            let report = host
                .load_course(doc)
                .with_context(|| format!("{} was not loaded", file.display()))?;
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
            for m in &report.messages {
                writeln!(
                    out,
                    "  {} {} ({}): {}",
                    m.severity, m.usage_id, m.block_type, m.text
                )?;
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
        Command::Assign(args) => {
            let view = host.assignment(&args.course, args.partition, &args.user)?;
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
                        if view.stored {
                            "stored"
                        } else {
                            "not yet stored"
                        }
                    )?,
                    None => writeln!(out, "none\t(no group in partition {})", view.partition_id)?,
                }
            }
        }
        Command::Tags(cmd) => tags(&host, cmd, &mut out)?,
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
    let users = match (&args.user, &args.users_file) {
        (Some(user), _) => vec![user.clone()],
        (None, Some(file)) => read_users(file)?,
        (None, None) => bail!("give --user or --users-file"),
    };
    for id in &users {
        let user = match args.view {
            View::Student => User::learner(id),
            View::Staff | View::Author => User::staff(id),
        };
        let output = host.render_bounded(&RenderRequest {
            course_key: args.course.clone(),
            usage_id: args.block.clone(),
            user,
            view: args.view,
        })?;
        if args.json {
            serde_json::to_writer(
                &mut *out,
                &RenderLine {
                    user: id,
                    view: args.view,
                    html: &output.html,
                    hidden: output.hidden,
                    visible_blocks: &output.visible_blocks,
                    assignments: &output.assignments,
                    failures: &output.failures,
                },
            )?;
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
