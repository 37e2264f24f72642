//! The commands that act as one learner or on learners' data: `render` (also for anonymous
//! visitors, bots and staff masquerading), `handle`, `grades` and `tags`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};

use xbhost::assignment::PARTITION_TAG_PREFIX;
use xbhost::ids::{check_id, check_tag_key, check_tag_value};
use xbhost::{Host, Masquerade, RenderRequest, User, View};

#[derive(Args)]
pub struct RenderArgs {
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

/// `--users-file`: the user ids it lists, each checked.
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

/// `render`: renders a block for each user (or the session) as HTML or JSON lines.
pub fn render(host: &Host, args: RenderArgs, out: &mut impl Write) -> Result<()> {
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
            serde_json::to_writer(&mut *out, &output.summary(id, args.view, true))?;
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

#[derive(Args)]
pub struct HandleArgs {
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

/// `handle`: calls a block's handler for a learner and prints its JSON answer.
pub fn handle(host: &Host, args: HandleArgs, out: &mut impl Write) -> Result<()> {
    let payload: serde_json::Value = serde_json::from_str(&args.payload)
        .with_context(|| format!("--payload is not JSON: {:?}", args.payload))?;
    let answer = host.handle(
        &args.course,
        &args.block,
        &User::learner(&args.user),
        &args.handler,
        &payload,
    )?;
    serde_json::to_writer(&mut *out, &answer)?;
    writeln!(out)?;
    Ok(())
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GradesArgs {
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
pub enum GradesCommand {
    /// One row per learner, one column per problem (`n/a` where the learner does not see it).
    Export {
        #[arg(long)]
        course: String,
        #[arg(long)]
        csv: PathBuf,
    },
}

/// `grades`: a line (or JSON) per learner; `grades export`: the CSV file.
pub fn grades(host: &Host, args: GradesArgs, out: &mut impl Write) -> Result<()> {
    let GradesArgs {
        command,
        course,
        user,
        json,
    } = args;
    match command {
        Some(GradesCommand::Export { course, csv }) => {
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
        None => {
            let course = course.context("give --course KEY")?;
            let report = host.grades(&course, user.as_deref())?;
            if json {
                serde_json::to_writer(&mut *out, &report)?;
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
    }
    Ok(())
}

#[derive(Args)]
pub struct TagTarget {
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
pub enum TagsCommand {
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

/// `tags get|set|list`: a learner's course or global tags.
pub fn tags(host: &Host, cmd: TagsCommand, out: &mut impl Write) -> Result<()> {
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
