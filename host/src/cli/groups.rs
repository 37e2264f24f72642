//! Learners' groups in partitions: `assign` (one learner, or `--batch` from standard
//! input), `cohort set|list`, and `refresh-identifier` (carrying an anonymous session's
//! groups over to the user on sign-in).

use std::io::{BufRead, Write};

use anyhow::{Context as _, Result, bail};
use clap::{ArgGroup, Args, Subcommand};

use xbhost::Host;

#[derive(Args)]
#[command(
    group(ArgGroup::new("who").required(true).args(["user", "batch"])),
    after_help = "Examples:\n  \
    xbhost --data ./xbhost-data assign --course course-v1:xbhost+demo+2026 --partition 0 --user alice\n  \
    printf 'alice\\nbob\\n' | xbhost --data ./xbhost-data assign --course course-v1:xbhost+demo+2026 --partition 0 --batch"
)]
pub struct AssignArgs {
    /// The course key (course-v1:ORG+COURSE+RUN).
    #[arg(long, value_name = "KEY")]
    course: String,
    /// The user partition id (as in the course document).
    #[arg(long, value_name = "ID")]
    partition: u64,
    /// The learner's user id (or --batch).
    #[arg(long, value_name = "ID")]
    user: Option<String>,
    /// Print the answer as one JSON object (the object --batch writes per line).
    #[arg(long)]
    json: bool,
    /// Read identifiers from standard input, one per line; write one JSON line each.
    #[arg(long)]
    batch: bool,
}

/// `assign`: a learner's group in a partition, stored or what they would get.
pub fn assign(host: &Host, args: AssignArgs, out: &mut impl Write) -> Result<()> {
    if args.batch {
        return assign_batch(
            host,
            &args.course,
            args.partition,
            std::io::stdin().lock(),
            out,
        );
    }
    let user = args.user.context("give --user ID or --batch")?;
    let view = host.assignment(&args.course, args.partition, &user)?;
    if args.json {
        serde_json::to_writer(&mut *out, &view)?;
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
                    Some(xbhost::ExperimentStatus::WouldBeAssigned) => "not yet stored".to_string(),
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
    Ok(())
}

/// `assign --batch`: identifiers from stdin, one JSON line each. A bad identifier gets an
/// error line and the batch goes on; the command fails at the end if any line failed.
fn assign_batch(
    host: &Host,
    course: &str,
    partition: u64,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<()> {
    host.course(course)?;
    let mut failed = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading standard input, line {}", i + 1))?;
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        match host.assignment(course, partition, id) {
            Ok(view) => serde_json::to_writer(&mut *out, &view)?,
            Err(e) => {
                failed += 1;
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({"user": id, "line": i + 1, "error": format!("{e:#}")}),
                )?;
            }
        }
        writeln!(out)?;
    }
    if failed > 0 {
        bail!("{failed} identifiers could not be assigned (see their error lines)");
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum CohortCommand {
    /// Put a learner in a group of a cohort partition.
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data cohort set --course course-v1:xbhost+demo+2026 --partition 50 --user alice --group 1")]
    Set {
        /// The course key (course-v1:ORG+COURSE+RUN).
        #[arg(long, value_name = "KEY")]
        course: String,
        /// The cohort partition's id (its scheme must be `cohort`).
        #[arg(long, value_name = "ID")]
        partition: u64,
        /// The learner's user id.
        #[arg(long, value_name = "ID")]
        user: String,
        /// The group id (one of the partition's groups).
        #[arg(long, value_name = "GROUP")]
        group: u64,
    },
    /// Learners and their groups in a partition, one `user<TAB>group` a line.
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data cohort list --course course-v1:xbhost+demo+2026 --partition 50")]
    List {
        /// The course key (course-v1:ORG+COURSE+RUN).
        #[arg(long, value_name = "KEY")]
        course: String,
        /// The partition's id.
        #[arg(long, value_name = "ID")]
        partition: u64,
    },
}

/// `cohort set`: puts a learner in a cohort group; `cohort list`: who is in which group.
pub fn cohort(host: &Host, cmd: CohortCommand, out: &mut impl Write) -> Result<()> {
    match cmd {
        CohortCommand::Set {
            course,
            partition,
            user,
            group,
        } => {
            let g = host.set_cohort(&course, partition, &user, group)?;
            writeln!(
                out,
                "{user} is in group {} {:?} of partition {partition}",
                g.id, g.name
            )?;
        }
        CohortCommand::List { course, partition } => {
            host.course(&course)?;
            let tag = xbhost::assignment::partition_tag_key(partition);
            for (user, group) in host.storage().users_with_course_tag(&course, &tag)? {
                writeln!(out, "{user}\t{group}")?;
            }
        }
    }
    Ok(())
}

#[derive(Args)]
#[command(after_help = "Example:\n  \
    xbhost --data ./xbhost-data refresh-identifier --session 3f2a9c --user alice")]
pub struct RefreshArgs {
    /// The anonymous visitor's session id (as `render --session` took it).
    #[arg(long, value_name = "SID")]
    session: String,
    /// The user id they signed in as.
    #[arg(long, value_name = "ID")]
    user: String,
}

/// `refresh-identifier`: one line per partition the session had a group in.
pub fn refresh_identifier(host: &Host, args: RefreshArgs, out: &mut impl Write) -> Result<()> {
    let RefreshArgs { session, user } = args;
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
    Ok(())
}
