//! The commands that act as one learner or on learners' data: `render` (also for anonymous
//! visitors, bots and staff masquerading), `handle`, `grades` and `tags`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{ArgGroup, Args, Subcommand};

use xbhost::assignment::PARTITION_SERVICE_PREFIX;
use xbhost::ids::{check_id, check_tag_key, check_tag_value};
use xbhost::{Host, Masquerade, RenderRequest, User, View};

#[derive(Args)]
#[command(
    group(ArgGroup::new("who").required(true).args(["user", "users_file", "session"])),
    after_help = "Examples:\n  \
    xbhost --data ./xbhost-data render --course course-v1:xbhost+demo+2026 --block unit_1 --user alice\n  \
    xbhost --data ./xbhost-data render --course course-v1:xbhost+demo+2026 --block unit_1 --users-file learners.txt --json\n  \
    xbhost --data ./xbhost-data render --course course-v1:xbhost+demo+2026 --block unit_1 --user staff-1 --as-group 0:1   # masquerade"
)]
pub struct RenderArgs {
    /// The course key (course-v1:ORG+COURSE+RUN).
    #[arg(long, value_name = "KEY")]
    course: String,
    /// The usage id of the block to render (a unit, or any block).
    #[arg(long, value_name = "USAGE")]
    block: String,
    /// The user to render for (one of --user, --users-file, --session).
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// Render for an anonymous visitor with this session id (stored as `anon:SID`).
    #[arg(long, value_name = "SID")]
    session: Option<String>,
    /// The request's User-Agent, matched against the bot patterns (bots see control groups
    /// and send no events).
    #[arg(long, value_name = "UA")]
    user_agent: Option<String>,
    /// Staff masquerade: render as --user (a staff member) viewing exactly as this learner
    /// (their groups and state); nothing is written, no event is sent.
    #[arg(long, value_name = "ID", conflicts_with = "as_group")]
    as_learner: Option<String>,
    /// Staff masquerade: render with these groups chosen, PARTITION:GROUP (as HTTP's
    /// `as_group`; PARTITION=GROUP also accepted), several comma-separated or repeated;
    /// nothing is written, no event is sent.
    #[arg(
        long,
        value_name = "PARTITION:GROUP",
        value_delimiter = ',',
        value_parser = parse_group_choice
    )]
    as_group: Vec<(u64, u64)>,
    /// A file with one user id per line (blank lines and `#` comments skipped).
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// Who the page is for: student, or staff and author (both render as a staff user).
    #[arg(
        long,
        default_value = "student",
        value_parser = PossibleValuesParser::new(["student", "staff", "author"])
            .map(|s| s.parse::<View>().expect("a listed value"))
    )]
    view: View,
    /// One JSON object per user per line instead of HTML.
    #[arg(long)]
    json: bool,
}

/// `PARTITION:GROUP` as HTTP's `as_group` writes it, or `PARTITION=GROUP`, as
/// `--as-group` takes it.
fn parse_group_choice(text: &str) -> Result<(u64, u64), String> {
    let (p, g) = text
        .split_once([':', '='])
        .ok_or_else(|| format!("{text:?} is not PARTITION:GROUP"))?;
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
        if let Some(m) = &masquerade {
            // Said on stderr too: the page itself looks like the learner's.
            let _ = writeln!(
                std::io::stderr(),
                "masquerade: staff {id:?} {}; nothing is written and no event is sent",
                describe_masquerade(m)
            );
        }
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
            let mut line = serde_json::to_value(output.summary(id, args.view, true))?;
            if let Some(m) = &masquerade {
                line["masquerade"] = match m {
                    Masquerade::Learner(learner) => serde_json::json!({"as_learner": learner}),
                    Masquerade::Groups(groups) => serde_json::json!({"as_groups": groups}),
                };
            }
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)?;
        } else {
            if users.len() > 1 {
                writeln!(out, "<!-- user: {} -->", xbhost::markup::escape(id))?;
            }
            if let Some(m) = &masquerade {
                let what = format!("staff {id:?} {}", describe_masquerade(m));
                let what = xbhost::markup::escape(&what);
                writeln!(out, "<!-- masquerade: {what}; nothing was written -->")?;
            }
            writeln!(out, "{}", output.html)?;
        }
    }
    Ok(())
}

/// Whom a masquerade views as, for the notes that say it is one.
fn describe_masquerade(m: &Masquerade) -> String {
    match m {
        Masquerade::Learner(learner) => format!("viewing as learner {learner:?}"),
        Masquerade::Groups(groups) => {
            let chosen: Vec<String> = groups
                .iter()
                .map(|(p, g)| format!("partition {p} group {g}"))
                .collect();
            format!("viewing as {}", chosen.join(", "))
        }
    }
}

#[derive(Args)]
#[command(after_help = "Example:\n  \
    xbhost --data ./xbhost-data handle --course course-v1:xbhost+demo+2026 --block check_sum --user alice --handler submit --payload '{\"answer\": [1]}'")]
pub struct HandleArgs {
    /// The course key (course-v1:ORG+COURSE+RUN).
    #[arg(long, value_name = "KEY")]
    course: String,
    /// The usage id of the block whose handler to call.
    #[arg(long, value_name = "USAGE")]
    block: String,
    /// The learner the call is for.
    #[arg(long, value_name = "ID")]
    user: String,
    /// The handler's name (a problem's: submit, grade, hint, show_answer, reset).
    #[arg(long, value_name = "NAME")]
    handler: String,
    /// The handler's JSON payload.
    #[arg(long, default_value = "{}", value_name = "JSON")]
    payload: String,
    /// The request's User-Agent, judged as a render's: a bot's call runs with its control
    /// groups, stores nothing and sends no event.
    #[arg(long, value_name = "UA")]
    user_agent: Option<String>,
}

/// `handle`: calls a block's handler for a learner and prints its JSON answer.
pub fn handle(host: &Host, args: HandleArgs, out: &mut impl Write) -> Result<()> {
    let payload: serde_json::Value = serde_json::from_str(&args.payload)
        .with_context(|| format!("--payload is not JSON: {:?}", args.payload))?;
    let answer = host.handle_from(
        &args.course,
        &args.block,
        &User::learner(&args.user),
        args.user_agent.as_deref(),
        &args.handler,
        &payload,
    )?;
    serde_json::to_writer(&mut *out, &answer)?;
    writeln!(out)?;
    Ok(())
}

#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  \
    xbhost --data ./xbhost-data grades --course course-v1:xbhost+demo+2026\n  \
    xbhost --data ./xbhost-data grades --course course-v1:xbhost+demo+2026 --user alice --json\n  \
    xbhost --data ./xbhost-data grades export --course course-v1:xbhost+demo+2026 --csv grades.csv"
)]
pub struct GradesArgs {
    #[command(subcommand)]
    command: Option<GradesCommand>,
    /// The course key (course-v1:ORG+COURSE+RUN).
    #[arg(long, value_name = "KEY", required = true)]
    course: Option<String>,
    /// Grade one learner (default: every learner with data in the course).
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum GradesCommand {
    /// One row per learner, one column per problem (`n/a` where the learner does not see it).
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data grades export --course course-v1:xbhost+demo+2026 --csv grades.csv")]
    Export {
        /// The course key (course-v1:ORG+COURSE+RUN).
        #[arg(long, value_name = "KEY")]
        course: String,
        /// The CSV file to write.
        #[arg(long, value_name = "FILE")]
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
#[command(group(ArgGroup::new("scope").required(true).args(["course", "global"])))]
pub struct TagTarget {
    /// The user whose tags these are.
    #[arg(long, value_name = "ID")]
    user: String,
    /// The course whose tags these are (course-scoped tags; or --global).
    #[arg(long, value_name = "KEY")]
    course: Option<String>,
    /// Global (user-scoped) tags instead of a course's.
    #[arg(long)]
    global: bool,
}

#[derive(Subcommand)]
pub enum TagsCommand {
    /// Print one tag's value.
    #[command(after_help = "Examples:\n  \
        xbhost --data ./xbhost-data tags get --user alice --course course-v1:xbhost+demo+2026 cohort_hint\n  \
        xbhost --data ./xbhost-data tags get --user alice --global language")]
    Get {
        #[command(flatten)]
        target: TagTarget,
        /// The tag's key (1 to 255 bytes).
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// Set a tag (the partition tags `xblock.partition_service.partition_*` are the host's).
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data tags set --user alice --global language fr")]
    Set {
        #[command(flatten)]
        target: TagTarget,
        /// The tag's key (1 to 255 bytes).
        #[arg(value_name = "KEY")]
        key: String,
        /// The value (at most XBHOST_MAX_TAG_VALUE_BYTES, 1024 bytes by default).
        #[arg(value_name = "VALUE")]
        value: String,
    },
    /// List a user's tags, one `key<TAB>value` a line.
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data tags list --user alice --course course-v1:xbhost+demo+2026")]
    List {
        #[command(flatten)]
        target: TagTarget,
    },
}

impl TagsCommand {
    /// Whether the command may start a new store: setting a global tag needs no course.
    pub fn creates_store(&self) -> bool {
        matches!(self, TagsCommand::Set { target, .. } if target.global)
    }
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
                    if key.starts_with(PARTITION_SERVICE_PREFIX) {
                        bail!(
                            "tag {key:?} is kept by the host's partition service (assignments and the holdout), which only the host writes"
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
