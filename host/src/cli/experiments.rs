//! The experiment commands: `experiment state|force|unforce|window|show` (an experiment's
//! controls), `enrollment set|import` (learners' enrollment dates, for enrollment windows)
//! and `report` (per experiment: groups, sample ratio test, goals).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};

use xbhost::Host;
use xbhost::experiment::{ExperimentState, parse_date};

#[derive(Subcommand)]
pub enum ExperimentCommand {
    /// Set an experiment's state: enabled, paused or off (the kill switch).
    State {
        #[command(flatten)]
        at: PartitionArg,
        state: ExperimentState,
    },
    /// Force a user into a group for QA (flagged in events, left out of the report).
    Force {
        #[command(flatten)]
        at: PartitionArg,
        #[arg(long)]
        user: String,
        #[arg(long)]
        group: u64,
    },
    /// Stop forcing a user.
    Unforce {
        #[command(flatten)]
        at: PartitionArg,
        #[arg(long)]
        user: String,
    },
    /// Set or clear the enrollment window (dates like 2026-09-01 or 2026-09-01T12:00:00Z).
    Window {
        #[command(flatten)]
        at: PartitionArg,
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
        /// Remove both bounds.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        clear: bool,
    },
    /// Show every experiment of a course with its controls.
    Show {
        #[arg(long)]
        course: String,
    },
}

#[derive(Args)]
pub struct PartitionArg {
    #[arg(long)]
    course: String,
    #[arg(long)]
    partition: u64,
}

#[derive(Subcommand)]
pub enum EnrollmentCommand {
    /// Record one learner's course enrollment date.
    Set {
        #[arg(long)]
        course: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        date: String,
    },
    /// Record enrollment dates from a CSV file of `user_id,date` lines (a header line
    /// `user_id,date` is allowed). Every line is checked first: nothing is stored if one
    /// is bad.
    Import {
        #[arg(long)]
        course: String,
        file: PathBuf,
    },
}

/// A change to one partition's controls, applied by `Host::update_experiment`.
type Change = Box<dyn FnOnce(&mut xbhost::model::UserPartition) -> Result<()>>;

pub fn experiment(host: &Host, cmd: ExperimentCommand, out: &mut impl Write) -> Result<()> {
    let (at, change): (PartitionArg, Change) = match cmd {
        ExperimentCommand::Show { course } => {
            let course = host.course(&course)?;
            for p in course.partitions() {
                writeln!(out, "{}", describe(p))?;
            }
            return Ok(());
        }
        ExperimentCommand::State { at, state } => (
            at,
            Box::new(move |p| {
                p.state = state;
                Ok(())
            }),
        ),
        ExperimentCommand::Force { at, user, group } => (
            at,
            Box::new(move |p| {
                p.forced.insert(user, group);
                Ok(())
            }),
        ),
        ExperimentCommand::Unforce { at, user } => (
            at,
            Box::new(move |p| {
                if p.forced.remove(&user).is_none() {
                    bail!("user {user:?} is not forced in user partition {}", p.id);
                }
                Ok(())
            }),
        ),
        ExperimentCommand::Window {
            at,
            start,
            end,
            clear,
        } => (
            at,
            Box::new(move |p| {
                if clear {
                    p.enrollment_start = None;
                    p.enrollment_end = None;
                }
                if start.is_none() && end.is_none() && !clear {
                    bail!("give --start, --end or --clear");
                }
                if let Some(s) = start {
                    parse_date(&s).context("--start")?;
                    p.enrollment_start = Some(s);
                }
                if let Some(e) = end {
                    parse_date(&e).context("--end")?;
                    p.enrollment_end = Some(e);
                }
                Ok(())
            }),
        ),
    };
    let updated = host.update_experiment(&at.course, at.partition, change)?;
    writeln!(out, "{}", describe(&updated))?;
    Ok(())
}

/// One line per experiment: its id, name, state and controls.
fn describe(p: &xbhost::model::UserPartition) -> String {
    let mut parts = vec![format!(
        "{} {:?}: {}",
        p.id,
        p.name,
        format!("{:?}", p.state).to_lowercase()
    )];
    if !p.active {
        parts.push("inactive".into());
    }
    if !p.is_random() {
        parts.push(format!("scheme {}", p.scheme));
    }
    parts.push(format!("bucketing {:?}", p.bucketing).to_lowercase());
    if p.enrollment_start.is_some() || p.enrollment_end.is_some() {
        parts.push(format!(
            "enrollment window {} .. {}",
            p.enrollment_start.as_deref().unwrap_or("(open)"),
            p.enrollment_end.as_deref().unwrap_or("(open)")
        ));
    }
    for (user, group) in &p.forced {
        parts.push(format!("{user} forced into {group}"));
    }
    parts.join("; ")
}

pub fn enrollment(host: &Host, cmd: EnrollmentCommand, out: &mut impl Write) -> Result<()> {
    let (course, dates) = match cmd {
        EnrollmentCommand::Set { course, user, date } => (course, vec![(user, date)]),
        EnrollmentCommand::Import { course, file } => (course, read_enrollment_csv(&file)?),
    };
    let n = host.set_enrollments(&course, &dates)?;
    writeln!(out, "recorded {n} enrollment dates in {course}")?;
    Ok(())
}

/// `user_id,date` lines; every line is checked, naming the file and line at fault.
fn read_enrollment_csv(path: &Path) -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut dates = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.eq_ignore_ascii_case("user_id,date")) {
            continue;
        }
        let at = || format!("{} line {}", path.display(), i + 1);
        let Some((user, date)) = line.split_once(',') else {
            bail!("{}: expected user_id,date, found {line:?}", at());
        };
        let (user, date) = (user.trim(), date.trim());
        xbhost::ids::check_id("user id", user).with_context(at)?;
        parse_date(date).with_context(at)?;
        dates.push((user.to_string(), date.to_string()));
    }
    Ok(dates)
}

#[derive(Args)]
pub struct ReportArgs {
    #[arg(long)]
    course: String,
    /// Also write the report as a self-contained HTML page.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `report`: the experiment report over the event log, as text or JSON (and HTML).
pub fn report(host: &Host, events: &Path, args: ReportArgs, out: &mut impl Write) -> Result<()> {
    let ReportArgs { course, html, json } = args;
    let report = host.report(&course, events)?;
    if let Some(file) = &html {
        std::fs::write(file, report.to_html())
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    if json {
        serde_json::to_writer(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", report.to_text())?;
        if let Some(file) = &html {
            writeln!(out, "\nwrote {}", file.display())?;
        }
    }
    Ok(())
}
