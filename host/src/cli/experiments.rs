//! The experiment commands: `experiment state|force|unforce|window|show` (an experiment's
//! controls), `enrollment set|import` (learners' enrollment dates, for enrollment windows)
//! and `report` (per experiment: groups, sample ratio test, goals).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{ArgGroup, Args, Subcommand};

use xbhost::Host;
use xbhost::experiment::{ExperimentState, parse_date};

#[derive(Subcommand)]
pub enum ExperimentCommand {
    /// Set an experiment's state: enabled, paused or off (the kill switch).
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data experiment state --course course-v1:xbhost+demo+2026 --partition 0 paused")]
    State {
        #[command(flatten)]
        at: PartitionArg,
        /// enabled (new learners are drawn), paused (new learners see the control group)
        /// or off (everyone sees the control group, nothing is recorded).
        #[arg(value_parser = PossibleValuesParser::new(["enabled", "paused", "off"])
            .map(|s| s.parse::<ExperimentState>().expect("a listed value")))]
        state: ExperimentState,
    },
    /// Force a user into a group for QA (flagged in events, left out of the report).
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data experiment force --course course-v1:xbhost+demo+2026 --partition 0 --user qa-alice --group 1")]
    Force {
        #[command(flatten)]
        at: PartitionArg,
        /// The user id to force.
        #[arg(long, value_name = "ID")]
        user: String,
        /// The group id (one of the partition's groups) to show them.
        #[arg(long, value_name = "GROUP")]
        group: u64,
    },
    /// Stop forcing a user.
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data experiment unforce --course course-v1:xbhost+demo+2026 --partition 0 --user qa-alice")]
    Unforce {
        #[command(flatten)]
        at: PartitionArg,
        /// The forced user id.
        #[arg(long, value_name = "ID")]
        user: String,
    },
    /// Set or clear the enrollment window: learners who enrolled outside it see the
    /// control group and are not enrolled in the experiment.
    #[command(
        group(ArgGroup::new("bounds").required(true).multiple(true).args(["start", "end", "clear"])),
        after_help = "Examples:\n  \
        xbhost --data ./xbhost-data experiment window --course course-v1:xbhost+demo+2026 --partition 0 --start 2026-09-01 --end 2026-10-01T00:00:00Z\n  \
        xbhost --data ./xbhost-data experiment window --course course-v1:xbhost+demo+2026 --partition 0 --clear"
    )]
    Window {
        #[command(flatten)]
        at: PartitionArg,
        /// The first enrollment date that counts: RFC 3339 in UTC (2026-09-01T12:00:00Z) or
        /// a date (2026-09-01, midnight UTC).
        #[arg(long, value_name = "DATE")]
        start: Option<String>,
        /// The first enrollment date that no longer counts (same forms as --start).
        #[arg(long, value_name = "DATE")]
        end: Option<String>,
        /// Remove both bounds.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        clear: bool,
    },
    /// Show every experiment of a course with its controls.
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data experiment show --course course-v1:xbhost+demo+2026")]
    Show {
        /// The course key (course-v1:ORG+COURSE+RUN).
        #[arg(long, value_name = "KEY")]
        course: String,
    },
}

#[derive(Args)]
pub struct PartitionArg {
    /// The course key (course-v1:ORG+COURSE+RUN).
    #[arg(long, value_name = "KEY")]
    course: String,
    /// The experiment's user partition id (as in the course document).
    #[arg(long, value_name = "ID")]
    partition: u64,
}

#[derive(Subcommand)]
pub enum EnrollmentCommand {
    /// Record one learner's course enrollment date.
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data enrollment set --course course-v1:xbhost+demo+2026 --user alice --date 2026-09-03")]
    Set {
        /// The course key (course-v1:ORG+COURSE+RUN).
        #[arg(long, value_name = "KEY")]
        course: String,
        /// The learner's user id.
        #[arg(long, value_name = "ID")]
        user: String,
        /// When they enrolled: RFC 3339 in UTC (2026-09-01T12:00:00Z) or a date (2026-09-01).
        #[arg(long, value_name = "DATE")]
        date: String,
    },
    /// Record enrollment dates from a CSV file of `user_id,date` lines (a header line
    /// `user_id,date` is allowed). Every line is checked first: nothing is stored if one
    /// is bad.
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data enrollment import --course course-v1:xbhost+demo+2026 enrollments.csv")]
    Import {
        /// The course key (course-v1:ORG+COURSE+RUN).
        #[arg(long, value_name = "KEY")]
        course: String,
        /// The CSV file: `user_id,date` lines, dates as for `enrollment set --date`.
        #[arg(value_name = "FILE.csv")]
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

/// A control's value as the course document spells it (`course-aware`, `paused`).
fn as_written(value: impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// One line per experiment: its id, name, state and controls, values as the course
/// document writes them.
fn describe(p: &xbhost::model::UserPartition) -> String {
    let mut parts = vec![format!("{} {:?}: {}", p.id, p.name, as_written(p.state))];
    if !p.active {
        parts.push("inactive".into());
    }
    if !p.is_random() {
        parts.push(format!("scheme {}", p.scheme));
    }
    parts.push(format!("bucketing {}", as_written(p.bucketing)));
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
#[command(after_help = "Examples:\n  \
    xbhost --data ./xbhost-data report --course course-v1:xbhost+demo+2026\n  \
    xbhost --data ./xbhost-data report --course course-v1:xbhost+demo+2026 --html report.html")]
pub struct ReportArgs {
    /// The course key (course-v1:ORG+COURSE+RUN).
    #[arg(long, value_name = "KEY")]
    course: String,
    /// Also write the report as a self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
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
