//! `xbhost course`: loading a course document (or previewing the change), importing an
//! Open edX export, adding missing split test groups, listing and showing courses; and
//! the load report and partition changes they print.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};

use xbhost::Host;
use xbhost::model::CourseDoc;
use xbhost::olx::{ImportLimits, ImportOptions, LearnerCoverage, LoadDeadline};

/// The limits of an import (`course import`, and uploads to `serve`): each bounds what an
/// export may make the host read or spend, and its error names the flag.
#[derive(Args, Clone, Debug)]
pub struct ImportLimitArgs {
    /// Most bytes an archive may unpack to (everything out of the gzip decoder, tar
    /// headers included), or a directory export's files may hold.
    #[arg(long, env = "XBHOST_MAX_IMPORT_BYTES", default_value_t = ImportLimits::default().max_bytes)]
    max_import_bytes: u64,
    /// Largest file an import reads (XML, HTML, policy JSON).
    #[arg(long, env = "XBHOST_MAX_IMPORT_FILE_BYTES", default_value_t = ImportLimits::default().max_file_bytes)]
    max_import_file_bytes: u64,
    /// Most entries of an archive (or files and directories of a directory export).
    #[arg(long, env = "XBHOST_MAX_IMPORT_ENTRIES", default_value_t = ImportLimits::default().max_entries)]
    max_import_entries: usize,
    /// Largest extension header of an archive (GNU long name or link, PAX header).
    #[arg(long, env = "XBHOST_MAX_IMPORT_HEADER_BYTES", default_value_t = ImportLimits::default().max_header_bytes)]
    max_import_header_bytes: u64,
    /// Most XML nodes an import parses, all its files together.
    #[arg(long, env = "XBHOST_MAX_IMPORT_XML_NODES", default_value_t = ImportLimits::default().max_xml_nodes)]
    max_import_xml_nodes: u64,
    /// Deepest nesting of XML elements in one file.
    #[arg(long, env = "XBHOST_MAX_IMPORT_XML_DEPTH", default_value_t = ImportLimits::default().max_xml_depth)]
    max_import_xml_depth: usize,
    /// Most attributes of one XML element, and namespace declarations of one file.
    #[arg(long, env = "XBHOST_MAX_IMPORT_XML_ATTRIBUTES", default_value_t = ImportLimits::default().max_xml_attributes)]
    max_import_xml_attributes: usize,
    #[command(flatten)]
    deadline: LoadDeadlineArg,
}

/// How long loading a course may take (`course load`, `course import`, uploads).
#[derive(Args, Clone, Debug)]
pub struct LoadDeadlineArg {
    /// The longest reading a course and checking every block may take, in milliseconds
    /// (each block's check still gets at most one page's time).
    #[arg(long, env = "XBHOST_LOAD_DEADLINE_MS", default_value_t = ImportLimits::default().deadline.as_millis() as u64)]
    load_deadline_ms: u64,
}

impl LoadDeadlineArg {
    fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.load_deadline_ms)
    }
}

impl ImportLimitArgs {
    /// The limits these flags give.
    pub fn limits(&self) -> ImportLimits {
        ImportLimits {
            max_bytes: self.max_import_bytes,
            max_file_bytes: self.max_import_file_bytes,
            max_entries: self.max_import_entries,
            max_header_bytes: self.max_import_header_bytes,
            max_xml_nodes: self.max_import_xml_nodes,
            max_xml_depth: self.max_import_xml_depth,
            max_xml_attributes: self.max_import_xml_attributes,
            deadline: self.deadline.duration(),
        }
    }
}

#[derive(Subcommand)]
pub enum CourseCommand {
    /// Load a JSON course document, replacing the course's structure and partitions if it
    /// exists. Every block's type must be an installed plugin, and its fields must match
    /// what that plugin reads (else the course is refused, naming the block and field).
    #[command(after_help = "Examples:\n  \
        xbhost --data ./xbhost-data course load examples/demo-course/course.json\n  \
        xbhost --data ./xbhost-data course load course.json --dry-run\n  \
        xbhost --data ./xbhost-data course load course.json --expect-version 3")]
    Load {
        /// The course document (JSON; see README, "Course documents").
        #[arg(value_name = "FILE.json")]
        file: PathBuf,
        /// Show what the change would do to each partition (and how many learners would be
        /// reassigned) without loading anything.
        #[arg(long)]
        dry_run: bool,
        /// Load only if the stored course is still this version (`course show` and
        /// `course list` print it; 0: only if the course is new). Without it, the load
        /// replaces the version stored when it began. Either way, a change stored meanwhile
        /// makes the load fail naming both versions, and nothing is stored.
        #[arg(long, value_name = "VERSION")]
        expect_version: Option<u64>,
        #[command(flatten)]
        deadline: LoadDeadlineArg,
    },
    /// Import an Open edX course export (OLX directory or .tar.gz) and load it.
    #[command(after_help = "Examples:\n  \
        xbhost --data ./xbhost-data course import course.tar.gz\n  \
        xbhost --data ./xbhost-data course import ./exported-course --course-key course-v1:Org+Course+Run")]
    Import {
        /// The export: a directory holding `course.xml`, or a `.tar.gz` of one.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Course key to use instead of course-v1:{org}+{course}+{run}.
        #[arg(long, value_name = "KEY")]
        course_key: Option<String>,
        #[command(flatten)]
        limits: ImportLimitArgs,
    },
    /// Add an empty unit for every group of a split test that has no child.
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data course add-missing-groups --course course-v1:xbhost+demo+2026 --block exp")]
    AddMissingGroups {
        /// The course key (course-v1:ORG+COURSE+RUN).
        #[arg(long, value_name = "KEY")]
        course: String,
        /// The split test's usage id.
        #[arg(long, value_name = "USAGE")]
        block: String,
    },
    /// List course keys, each with its stored version.
    #[command(after_help = "Example:\n  xbhost --data ./xbhost-data course list")]
    List,
    /// Print a course document as stored (its version goes to stderr).
    #[command(after_help = "Example:\n  \
        xbhost --data ./xbhost-data course show course-v1:xbhost+demo+2026 > course.json")]
    Show {
        /// The course key (course-v1:ORG+COURSE+RUN).
        #[arg(value_name = "KEY")]
        course_key: String,
    },
}

impl CourseCommand {
    /// Whether the command may start a new store: a load (not a dry run) or an import.
    pub fn creates_store(&self) -> bool {
        matches!(
            self,
            CourseCommand::Load { dry_run: false, .. } | CourseCommand::Import { .. }
        )
    }
}

pub fn run(host: &Host, cmd: CourseCommand, out: &mut impl Write) -> Result<()> {
    match cmd {
        CourseCommand::Load {
            file,
            dry_run,
            expect_version,
            deadline,
        } => {
            let base = expect_version.map(|v| (v > 0).then_some(v));
            load(host, &file, dry_run, base, deadline.duration(), out)
        }
        CourseCommand::Import {
            path,
            course_key,
            limits,
        } => {
            let options = ImportOptions {
                course_key,
                limits: limits.limits(),
            };
            import(host, &path, &options, out)
        }
        CourseCommand::AddMissingGroups { course, block } => {
            add_missing_groups(host, &course, &block, out)
        }
        CourseCommand::List => list(host, out),
        CourseCommand::Show { course_key } => show(host, &course_key, out),
    }
}

/// `course load`: loads a course document, or with `--dry-run` shows what it would change.
fn load(
    host: &Host,
    file: &Path,
    dry_run: bool,
    base: Option<Option<u64>>,
    deadline: std::time::Duration,
    out: &mut impl Write,
) -> Result<()> {
    // Reading and parsing the document count against the deadline too.
    let deadline = LoadDeadline::after(deadline);
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc = CourseDoc::from_json(&text)
        .with_context(|| format!("{} is not a valid course document", file.display()))?;
    if dry_run {
        print_changes(out, &host.preview_course_change(&doc)?)?;
        writeln!(out, "dry run: nothing was changed")?;
        return Ok(());
    }
    let loaded = match base {
        Some(base) => host.load_course_from(doc, base, deadline),
        None => host.load_course_by(doc, deadline),
    };
    let report = loaded.with_context(|| format!("{} was not loaded", file.display()))?;
    print_load(out, &report)
}

/// `course import`: imports an OLX export and prints what it found, then the load report.
fn import(host: &Host, path: &Path, options: &ImportOptions, out: &mut impl Write) -> Result<()> {
    let (import, report) = host
        .import_course(path, options)
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
    print_learner_coverage(out, &import.learners)?;
    for setting in &import.course_settings {
        writeln!(out, "course setting kept on the course block: {setting}")?;
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
        let partition = split
            .partition_id
            .map_or("(none selected)".to_string(), |id| id.to_string());
        let groups: Vec<String> = split
            .group_id_to_child
            .iter()
            // From the export: control characters escaped.
            .map(|(group, child)| {
                format!("group {} -> {}", group.escape_debug(), child.escape_debug())
            })
            .collect();
        writeln!(
            out,
            "split_test {} on partition {partition}: {}",
            split.usage_id,
            groups.join(", ")
        )?;
    }
    for w in &import.warnings {
        writeln!(out, "warning: {w}")?;
    }
    print_load(out, &report)
}

/// Reasons printed per block type, most blocks first (the report holds them all).
const SHOWN_REASONS: usize = 10;

/// What learners will see of an imported course, by type, and why they miss the rest.
fn print_learner_coverage(out: &mut impl Write, c: &LearnerCoverage) -> Result<()> {
    writeln!(out, "what learners will see:")?;
    for (t, n) in &c.by_type {
        let all = n.visible + n.unsupported;
        if n.unsupported == 0 {
            writeln!(out, "  {t}: all {all} visible")?;
            continue;
        }
        writeln!(
            out,
            "  {t}: {} of {all} visible, {} unsupported (learners never see them):",
            n.visible, n.unsupported
        )?;
        for r in n.reasons.iter().take(SHOWN_REASONS) {
            let more = if r.blocks > r.examples.len() {
                ", ..."
            } else {
                ""
            };
            writeln!(
                out,
                "    {} {}: {} ({}{more})",
                r.blocks,
                if r.blocks == 1 { "block" } else { "blocks" },
                r.reason,
                r.examples.join(", ")
            )?;
        }
        if n.reasons.len() > SHOWN_REASONS {
            let rest = &n.reasons[SHOWN_REASONS..];
            let blocks: usize = rest.iter().map(|r| r.blocks).sum();
            writeln!(
                out,
                "    {blocks} more blocks for {} other reasons",
                rest.len()
            )?;
        }
    }
    writeln!(
        out,
        "learners can see {}% of the leaf blocks ({} of {})",
        c.visible_leaf_percent, c.visible_leaf_blocks, c.leaf_blocks
    )?;
    Ok(())
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

/// `course list`: the course keys with their stored versions, one a line.
fn list(host: &Host, out: &mut impl Write) -> Result<()> {
    for key in host.course_keys()? {
        match host.course_version(&key)? {
            Some(version) => writeln!(out, "{key} version {version}")?,
            // Gone between the two reads: no store removes courses today.
            None => writeln!(out, "{key}")?,
        }
    }
    Ok(())
}

/// `course show`: the course document as stored, pretty-printed JSON (so it can be edited
/// and loaded again); its version on stderr, for `course load --expect-version`.
fn show(host: &Host, course_key: &str, out: &mut impl Write) -> Result<()> {
    let (doc, version) = host.course_for_change(course_key)?;
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    let mut err = std::io::stderr();
    writeln!(err, "course {course_key} version {version}")?;
    Ok(())
}

/// The result of loading a course: counts, reassignments and the blocks' messages.
fn print_load(out: &mut impl Write, report: &xbhost::LoadReport) -> Result<()> {
    writeln!(
        out,
        "{} course {}: {} blocks, {} user partitions, version {}",
        if report.replaced {
            "replaced"
        } else {
            "loaded"
        },
        report.course_key,
        report.blocks,
        report.partitions,
        report.version
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
        if c.learners_leaving > 0 {
            writeln!(
                out,
                "  {} learners would leave the experiment (outside its new layer range or held out): they would see control, their group kept",
                c.learners_leaving
            )?;
        }
        if c.learners_returning > 0 {
            writeln!(
                out,
                "  {} learners left out now would count again in their stored group",
                c.learners_returning
            )?;
        }
    }
    Ok(())
}
