//! `xbhost course`: loading a course document (or previewing the change), importing an
//! Open edX export, adding missing split test groups, listing and showing courses; and
//! the load report and partition changes they print.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;

use xbhost::Host;
use xbhost::model::CourseDoc;

#[derive(Subcommand)]
pub enum CourseCommand {
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

pub fn run(host: &Host, cmd: CourseCommand, out: &mut impl Write) -> Result<()> {
    match cmd {
        CourseCommand::Load { file, dry_run } => load(host, &file, dry_run, out),
        CourseCommand::Import { path, course_key } => import(host, &path, course_key, out),
        CourseCommand::AddMissingGroups { course, block } => {
            add_missing_groups(host, &course, &block, out)
        }
        CourseCommand::List => list(host, out),
        CourseCommand::Show { course_key } => show(host, &course_key, out),
    }
}

/// `course load`: loads a course document, or with `--dry-run` shows what it would change.
fn load(host: &Host, file: &Path, dry_run: bool, out: &mut impl Write) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc = CourseDoc::from_json(&text)
        .with_context(|| format!("{} is not a valid course document", file.display()))?;
    if dry_run {
        print_changes(out, &host.preview_course_change(&doc)?)?;
        writeln!(out, "dry run: nothing was changed")?;
        return Ok(());
    }
    let report = host
        .load_course(doc)
        .with_context(|| format!("{} was not loaded", file.display()))?;
    print_load(out, &report)
}

/// `course import`: imports an OLX export and prints what it found, then the load report.
fn import(
    host: &Host,
    path: &Path,
    course_key: Option<String>,
    out: &mut impl Write,
) -> Result<()> {
    let (import, report) = host
        .import_course(path, &xbhost::olx::ImportOptions { course_key })
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
    print_load(out, &report)
}

/// `course add-missing-groups`: an empty unit for each childless group of a split test.
fn add_missing_groups(host: &Host, course: &str, block: &str, out: &mut impl Write) -> Result<()> {
    let added = host.add_missing_group_children(course, block)?;
    if added.is_empty() {
        writeln!(out, "every group of {block} already has a child")?;
    }
    for id in added {
        writeln!(out, "added {id}")?;
    }
    Ok(())
}

/// `course list`: the course keys, one a line.
fn list(host: &Host, out: &mut impl Write) -> Result<()> {
    for key in host.course_keys()? {
        writeln!(out, "{key}")?;
    }
    Ok(())
}

/// `course show`: the course document as stored, pretty-printed JSON.
fn show(host: &Host, course_key: &str, out: &mut impl Write) -> Result<()> {
    let course = host.course(course_key)?;
    serde_json::to_writer_pretty(&mut *out, &course.doc)?;
    writeln!(out)?;
    Ok(())
}

/// The result of loading a course: counts, reassignments and the blocks' messages.
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

/// What a course change does to each partition (`course load --dry-run`).
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
