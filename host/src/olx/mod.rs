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
//! `.tar.gz`, `tree` a directory, `entries` says what each path is), `xml` parses them
//! (`xml_scan` checks their shape first), `importer` walks the course tree (with
//! `problems` for problem blocks), `policy` reads the policy file and partitions, `keys`
//! maps usage keys to url_names, `limits` holds the limits and what an import has left,
//! and `report` holds the option and report types. This file is the entry point,
//! [`read_course`] (and [`read_course_archive`] for an upload held in memory).

mod archive;
mod entries;
mod importer;
mod keys;
mod limits;
mod policy;
mod problems;
mod report;
mod source;
mod tree;
mod xml;
mod xml_scan;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use serde_json::Value;

use crate::ids::check_id;
use crate::model::CourseDoc;

pub use importer::UNSUPPORTED_TYPE;
pub use keys::url_name_of;
pub use limits::{DEFAULT_LOAD_DEADLINE, ImportLimits, LoadDeadline};
pub use report::{ImportOptions, ImportReport, SplitTestSummary};

use importer::Importer;
use limits::Budget;
use policy::{partition_from_json, read_policy};
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
    let (org, number, run) = (need("org")?, need("course")?, need("url_name")?);
    check_id("course url_name (run)", &run).context("course.xml")?;
    let course_key = options
        .course_key
        .clone()
        .unwrap_or_else(|| format!("course-v1:{org}+{number}+{run}"));

    let policy_path = format!("policies/{run}/policy.json");
    let policy = read_policy(&src, &policy_path)?;
    let course_policy = policy
        .get(&format!("course/{run}"))
        .cloned()
        .unwrap_or(Value::Null);

    let mut importer = Importer {
        src: &src,
        blocks: Vec::new(),
        seen: HashMap::new(),
        read: HashSet::new(),
        policy: policy.clone(),
        depth: 0,
        report: ImportReport {
            course_key: course_key.clone(),
            source,
            blocks_by_type: BTreeMap::new(),
            unsupported: BTreeMap::new(),
            partitions: Vec::new(),
            split_tests: Vec::new(),
            warnings: Vec::new(),
        },
    };

    // The course body: course/{run}.xml, or course.xml itself in the old inline format.
    let body_path = format!("course/{run}.xml");
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
        importer.read.insert(file.to_string());
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
    let mut orphans = Vec::new();
    for dir in [
        "chapter",
        "sequential",
        "vertical",
        "split_test",
        "html",
        "problem",
    ] {
        for f in src.list(dir) {
            let is_block_file = f.ends_with(".xml");
            let is_html_body = dir == "html" && f.ends_with(".html");
            if (is_block_file || is_html_body) && !importer.read.contains(&f) {
                orphans.push(f);
            }
        }
    }
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

    let doc = CourseDoc {
        course_key,
        display_name: display_name
            .or_else(|| course_policy["display_name"].as_str().map(str::to_string)),
        user_partitions: partitions,
        blocks: importer.blocks,
    };
    Ok((doc, importer.report))
}
