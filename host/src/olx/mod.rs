//! Import of Open edX course exports (OLX), as directories or `.tar.gz` archives.
//!
//! What a real export looks like is described in `shared/olx/INDEX.md`. The import builds
//! a whole course document in memory and hands it to `Host::load_course`, so a failed
//! import stores nothing. Malformed XML is an error naming the file, line and column;
//! everything that is not imported as such (block types we have no plugin for, problems of
//! other kinds, drafts, files the outline never reaches) is named in the report.
//!
//! Every export is written by an adversary: what an import may read and spend is bounded
//! by [`ImportLimits`] (bytes, entries, extension headers, file size, XML nodes, depth and
//! attributes, and a deadline), each limit named with its flag in its error; no link is
//! followed and nothing but regular files is opened.
//!
//! The work is split by job: `source` holds the export's files (`archive` reads a
//! `.tar.gz`, `links` follows its links to files inside it, `tree` reads a directory,
//! `entries` says what each path is), `xml` parses them (`xml_scan` checks their shape
//! first), `importer` walks the course tree (`pointers` follows pointers to block files,
//! `names` says what each block's url_name is, `course_settings` keeps the course's
//! wiki, textbooks and grading policy, `problems` reads problem blocks), `policy` reads
//! the policy files and partitions, `keys` maps usage keys to url_names, `orphans` finds
//! block files the outline never reaches, `limits` holds the limits and what an import
//! has left, `learner_report` counts what learners will see and miss, and `report` holds
//! the option and report types. This file is the entry point, [`read_course`] (and
//! [`read_course_archive`] for an upload held in memory).
//!
//! Older and odd exports import as Open edX's own XML import reads them: the rules, each
//! in its module, are listed in ARCHITECTURE.md ("OLX import").

mod archive;
mod course_settings;
mod entries;
mod importer;
mod interactive;
mod keys;
mod learner_report;
mod limits;
mod links;
mod names;
mod orphans;
mod pointers;
mod policy;
mod problem_responses;
mod problems;
mod report;
mod source;
mod tree;
mod video;
mod xblocks;
mod xml;
mod xml_scan;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

use crate::ids::check_id;
use crate::model::CourseDoc;

pub use importer::UNSUPPORTED_TYPE;
pub use keys::url_name_of;
pub use learner_report::{LearnerCoverage, ReasonCount, TypeCoverage};
pub use limits::{DEFAULT_LOAD_DEADLINE, ImportLimits, LoadDeadline};
pub use report::{ImportOptions, ImportReport, SplitTestSummary};

use importer::Importer;
use learner_report::learner_coverage;
use limits::Budget;
use names::{declared_name, pointer_path};
use orphans::unreached_files;
use policy::{partition_from_json, read_course_policy, read_grading_policy};
use source::Source;
use xml::parse_xml;

/// Reads an OLX export (a directory or a `.tar.gz` file) into a course document and a
/// report, within `options.limits` and by `deadline`. Stores nothing.
pub fn read_course(
    path: &Path,
    options: &ImportOptions,
    deadline: LoadDeadline,
) -> Result<(CourseDoc, ImportReport)> {
    let src = Source::open(path, Budget::new(options.limits.clone(), deadline))?;
    import(src, path.display().to_string(), options)
}

/// Reads an OLX export held as a `.tar.gz` (an upload), as [`read_course`] does; `label`
/// names it in the report.
pub fn read_course_archive(
    archive: impl Read,
    label: &str,
    options: &ImportOptions,
    deadline: LoadDeadline,
) -> Result<(CourseDoc, ImportReport)> {
    let src = Source::from_archive(archive, Budget::new(options.limits.clone(), deadline))?;
    import(src, label.to_string(), options)
}

fn import(
    src: Source,
    source: String,
    options: &ImportOptions,
) -> Result<(CourseDoc, ImportReport)> {
    let budget = src.budget();
    let course_xml = src
        .read("course.xml")
        .ok_or_else(|| anyhow!("course.xml is missing"))??;
    let doc = parse_xml("course.xml", &course_xml, budget)?;
    let root = doc.root_element();
    if root.tag_name().name() != "course" {
        bail!(
            "course.xml: the root element is <{}>, not <course>",
            root.tag_name().name()
        );
    }
    let need = |name: &str| {
        root.attribute(name)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("course.xml: <course> has no {name} attribute"))
    };
    // The run: url_name, or in older exports slug or name (as for every block).
    let run = declared_name(root)
        .ok_or_else(|| anyhow!("course.xml: <course> has no url_name attribute"))?;
    let (org, number) = (need("org")?, need("course")?);
    check_id("course url_name (run)", &run).context("course.xml")?;
    let course_key = options
        .course_key
        .clone()
        .unwrap_or_else(|| format!("course-v1:{org}+{number}+{run}"));

    let (policy_path, policy) = read_course_policy(&src, &run)?;
    let course_policy = policy
        .get(&format!("course/{run}"))
        .cloned()
        .unwrap_or(Value::Null);

    let report = ImportReport {
        course_key: course_key.clone(),
        source,
        blocks_by_type: BTreeMap::new(),
        unsupported: BTreeMap::new(),
        partitions: Vec::new(),
        split_tests: Vec::new(),
        learners: Default::default(),
        course_settings: Vec::new(),
        warnings: Vec::new(),
    };
    let mut importer = Importer::new(&src, policy.clone(), report);
    importer.mark_read("course.xml");

    // The course body: course/{run}.xml, or course.xml itself in the old inline format.
    let body_path = pointer_path("course", &run).context("course.xml")?;
    let body_text =
        if root.children().any(|c| c.is_element()) {
            None
        } else {
            Some(src.read(&body_path).ok_or_else(|| {
                anyhow!("{body_path} is missing (course.xml names run {run:?})")
            })??)
        };
    let (display_name, attr_partitions) = {
        let (file, text) = match &body_text {
            Some(t) => (body_path.as_str(), t.as_ref()),
            None => ("course.xml", course_xml.as_ref()),
        };
        let body = parse_xml(file, text, budget)?;
        let course = body.root_element();
        if course.tag_name().name() != "course" {
            bail!(
                "{file}: the root element is <{}>, not <course>",
                course.tag_name().name()
            );
        }
        importer.mark_read(file);
        importer.define(&body, file, course, &run, None)?;
        (
            course.attribute("display_name").map(str::to_string),
            course.attribute("user_partitions").map(str::to_string),
        )
    };

    // Partitions: the policy's, else the course element's (both hold the same in exports).
    let from_policy = course_policy
        .get("user_partitions")
        .and_then(Value::as_array)
        .cloned();
    let from_attr = match &attr_partitions {
        Some(text) => Some(serde_json::from_str::<Vec<Value>>(text).map_err(|e| {
            anyhow!("{body_path}: user_partitions on <course> does not parse: {e}")
        })?),
        None => None,
    };
    let raw = from_policy
        .clone()
        .or(from_attr.clone())
        .unwrap_or_default();
    if let (Some(p), Some(a)) = (&from_policy, &from_attr)
        && p != a
    {
        importer.warn(format!(
            "{policy_path} and {body_path} disagree on user_partitions; the policy's were used"
        ));
    }
    let partitions = raw
        .iter()
        .map(partition_from_json)
        .collect::<Result<Vec<_>>>()?;
    for split in &importer.report.split_tests {
        if let Some(id) = split.partition_id
            && !partitions.iter().any(|p| p.id == id)
        {
            importer.report.warnings.push(format!(
                "split_test {:?} uses user partition {id}, which the course does not define",
                split.usage_id
            ));
        }
    }
    importer.report.partitions = partitions.clone();

    // What was left out: drafts, and block files the outline never reaches.
    let drafts = src.count_under("drafts");
    if drafts > 0 {
        importer.warn(format!(
            "drafts/ holds {drafts} unpublished files; only published content was imported"
        ));
    }
    let orphans = unreached_files(&src, &importer.read);
    let refused = src.refused();
    if !refused.is_empty() {
        let shown: Vec<String> = refused
            .iter()
            .take(10)
            .map(|(path, what)| format!("{path} ({what})"))
            .collect();
        importer.warn(format!(
            "{} paths of the export are not regular files and were neither followed nor read: {}{}",
            refused.len(),
            shown.join(", "),
            if refused.len() > 10 { ", ..." } else { "" }
        ));
    }
    if !orphans.is_empty() {
        let shown: Vec<&str> = orphans.iter().take(10).map(String::as_str).collect();
        importer.warn(format!(
            "{} files are not reachable from the course outline and were not imported: {}{}",
            orphans.len(),
            shown.join(", "),
            if orphans.len() > 10 { ", ..." } else { "" }
        ));
    }

    // The grading policy is a course setting, kept with the others on the course block.
    if let Some((path, grading)) = read_grading_policy(&src, &run)?
        && let Some(course) = importer
            .blocks
            .iter_mut()
            .find(|b| b.block_type == "course" && b.usage_id == run)
    {
        course.fields["grading_policy"] = grading;
        importer
            .report
            .course_settings
            .push(format!("grading_policy ({path})"));
    }
    importer.report.learners = learner_coverage(&importer.blocks, UNSUPPORTED_TYPE);

    let doc = CourseDoc {
        course_key,
        display_name: display_name
            .or_else(|| course_policy["display_name"].as_str().map(str::to_string)),
        user_partitions: partitions,
        holdout: None,
        blocks: importer.blocks,
    };
    Ok((doc, importer.report))
}
