//! The [`Importer`]: walks the course tree from `<course>` down, following pointers to
//! block files (`pointers`), and turns each element into a [`BlockDef`] (the course with
//! its settings (`course_settings`), containers, split tests, html, problems, and
//! `unsupported` stand-ins), noting what it met in the [`ImportReport`]. An element that
//! declares no url_name is named by a hash of itself (`names`).

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{Context as _, Result, anyhow, bail};
use roxmltree::{Document, Node};
use serde_json::{Value, json};

use super::keys::url_name_of;
use super::names::{declared_name, inline_id, pointer_name};
use super::problems::problem_fields;
use super::report::{ImportReport, SplitTestSummary};
use super::source::Source;
use super::xml::{at, inner_source};
use crate::ids::check_id;
use crate::model::BlockDef;

/// OLX tags imported as blocks of the same type.
const CONTAINERS: &[&str] = &["chapter", "sequential", "vertical"];

/// The type that stands in for blocks we have no plugin for.
pub const UNSUPPORTED_TYPE: &str = "unsupported";

/// Deepest nesting of blocks an import accepts (rendering stops far earlier).
const MAX_NESTING: usize = 100;

pub(super) struct Importer<'s> {
    pub(super) src: &'s Source,
    pub(super) blocks: Vec<BlockDef>,
    /// usage id -> where it was defined.
    pub(super) seen: HashMap<String, String>,
    /// Files read as block definitions.
    pub(super) read: HashSet<String>,
    /// Per-block policy (`type/url_name` -> metadata).
    pub(super) policy: serde_json::Map<String, Value>,
    /// How deep in the outline the current element is.
    pub(super) depth: usize,
    pub(super) report: ImportReport,
    /// The usage ids of the blocks being defined, outermost first (the last is the parent
    /// of the element being imported).
    parents: Vec<String>,
    /// Hashed ids handed out so far, and how many elements hashed to each.
    unnamed: HashMap<String, usize>,
}

impl<'s> Importer<'s> {
    /// An importer of `src`'s blocks with the per-block `policy`, reporting into `report`.
    pub(super) fn new(
        src: &'s Source,
        policy: serde_json::Map<String, Value>,
        report: ImportReport,
    ) -> Importer<'s> {
        Importer {
            src,
            blocks: Vec::new(),
            seen: HashMap::new(),
            read: HashSet::new(),
            policy,
            depth: 0,
            report,
            parents: Vec::new(),
            unnamed: HashMap::new(),
        }
    }

    pub(super) fn warn(&mut self, message: String) {
        self.report.warnings.push(message);
    }

    /// Notes `path` as read (and the file it is, if it is a link followed to one).
    pub(super) fn mark_read(&mut self, path: &str) {
        let real = self.src.real_path(path).to_string();
        self.read.insert(path.to_string());
        self.read.insert(real);
    }

    /// Imports one element (a pointer or an inline definition); returns its usage id.
    pub(super) fn import(&mut self, doc: &Document, file: &str, node: Node) -> Result<String> {
        self.src
            .budget()
            .check_deadline(&format!("importing {}", at(doc, file, node)))?;
        if self.depth >= MAX_NESTING {
            bail!(
                "{}: blocks are nested more than {MAX_NESTING} deep",
                at(doc, file, node)
            );
        }
        self.depth += 1;
        let result = self.import_element(doc, file, node);
        self.depth -= 1;
        result
    }

    fn import_element(&mut self, doc: &Document, file: &str, node: Node) -> Result<String> {
        if let Some(url) = pointer_name(node)
            && let Some(usage) = self.follow_pointer(doc, file, node, url)?
        {
            return Ok(usage);
        }
        let usage = match declared_name(node) {
            Some(name) => name,
            None => self.unnamed_id(doc, node),
        };
        self.define(doc, file, node, &usage, None)
    }

    /// The id of an element without a url_name: its hash ([`inline_id`]); the second
    /// identical sibling gets `_2` after it, the third `_3`, in document order (and so
    /// does any hash that is already some block's url_name), so ids stay distinct.
    fn unnamed_id(&mut self, doc: &Document, node: Node) -> String {
        let parent = self.parents.last().map_or("", String::as_str);
        let base = inline_id(doc, node, parent);
        let count = self.unnamed.entry(base.clone()).or_insert(0);
        loop {
            *count += 1;
            let id = match *count {
                1 => base.clone(),
                n => format!("{base}_{n}"),
            };
            if !self.seen.contains_key(&id) {
                return id;
            }
        }
    }

    /// Imports a block definition under `usage`. `pointer` is the element that pointed to it.
    pub(super) fn define(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        usage: &str,
        pointer: Option<Node>,
    ) -> Result<String> {
        let here = at(doc, file, node);
        // A pointer's type is the pointer's, whatever its file's root says.
        let tag = pointer.unwrap_or(node).tag_name().name().to_string();
        check_id("url_name", usage).with_context(|| here.clone())?;
        if let Some(first) = self.seen.insert(usage.to_string(), here.clone()) {
            bail!(
                "{here}: url_name {usage:?} is used again (first at {first}): every block needs its own url_name"
            );
        }
        *self.report.blocks_by_type.entry(tag.clone()).or_default() += 1;
        let attr = |name: &str| {
            node.attribute(name)
                .or_else(|| pointer.and_then(|p| p.attribute(name)))
                .map(str::to_string)
        };
        let policy = self
            .policy
            .get(&format!("{tag}/{usage}"))
            .cloned()
            .unwrap_or(Value::Null);
        let display_name =
            attr("display_name").or_else(|| policy["display_name"].as_str().map(str::to_string));
        let mut group_access = BTreeMap::new();
        let access = attr("group_access").or_else(|| {
            policy
                .get("group_access")
                .filter(|v| !v.is_null())
                .map(|v| v.to_string())
        });
        if let Some(text) = access {
            // Fail closed: importing restricted content without its restriction would show
            // it to everyone.
            group_access = serde_json::from_str::<BTreeMap<String, Vec<u64>>>(&text)
                .map_err(|e| anyhow!("{here}: group_access {text:?} does not parse: {e}"))?;
        }
        // Reserve the block's place so parents come before children, in document order.
        let slot = self.blocks.len();
        self.blocks.push(BlockDef {
            usage_id: usage.to_string(),
            block_type: String::new(),
            fields: json!({}),
            children: vec![],
            group_access,
        });
        self.parents.push(usage.to_string());
        let (block_type, fields, children) = match tag.as_str() {
            "course" => self.course(doc, file, node, display_name)?,
            // An old name for a sequence (of videos, at first): a sequence like any other.
            "videosequence" => (
                "sequential".to_string(),
                json!({ "display_name": display_name }),
                self.children(doc, file, node)?,
            ),
            t if CONTAINERS.contains(&t) => {
                let children = self.children(doc, file, node)?;
                (
                    t.to_string(),
                    json!({ "display_name": display_name }),
                    children,
                )
            }
            "split_test" => self.split_test(doc, file, node, usage, display_name, &attr)?,
            "library_content" | "itembank" => {
                self.library_content(doc, file, node, usage, display_name)?
            }
            "library_sourced" => self.library_sourced(doc, file, node, usage, display_name)?,
            "poll" | "survey" => self.poll_or_survey(doc, file, node, &tag, usage, display_name)?,
            "conditional" => self.conditional(doc, file, node, usage, display_name)?,
            t @ ("done" | "google-calendar" | "google-document" | "rate" | "annotatable"
            | "lti" | "lti_consumer") => {
                self.xblock(doc, file, node, t, usage, display_name, &attr)?
            }
            "video" => {
                let (fields, warnings) =
                    super::video::video_fields(self.src, doc, file, node, display_name, &attr)?;
                self.report.warnings.extend(warnings);
                ("video".to_string(), fields, vec![])
            }
            "html" => (
                "html".to_string(),
                json!({ "display_name": display_name, "data": self.html_body(doc, file, node)? }),
                vec![],
            ),
            "problem" => match problem_fields(doc, file, node)? {
                Ok(mut fields) => {
                    fields["display_name"] = json!(display_name);
                    // As written: the course document's validation refuses what is out of
                    // range (a negative weight, max_attempts below 0), naming the block.
                    for name in ["weight", "max_attempts"] {
                        if let Some(v) = scoring_number(&here, usage, name, attr(name))? {
                            fields[name] = v;
                        }
                    }
                    ("problem".to_string(), fields, vec![])
                }
                Err(reason) => {
                    self.warn(format!(
                        "{here}: problem {usage:?} imported as unsupported: {reason}"
                    ));
                    self.unsupported("problem", display_name, Some(reason))
                }
            },
            other => {
                let nested = node.children().filter(|c| c.is_element()).count();
                if nested > 0 {
                    self.warn(format!(
                        "{here}: {other} {usage:?} is not supported; its {nested} child elements were not imported"
                    ));
                }
                self.unsupported(other, display_name, None)
            }
        };
        self.parents.pop();
        let block = &mut self.blocks[slot];
        block.block_type = block_type;
        block.fields = strip_nulls(fields);
        block.children = children;
        Ok(usage.to_string())
    }

    fn unsupported(
        &mut self,
        original: &str,
        display_name: Option<String>,
        reason: Option<String>,
    ) -> (String, Value, Vec<String>) {
        *self
            .report
            .unsupported
            .entry(original.to_string())
            .or_default() += 1;
        (
            UNSUPPORTED_TYPE.to_string(),
            json!({ "original_type": original, "display_name": display_name, "reason": reason }),
            vec![],
        )
    }

    pub(super) fn children(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for child in node.children().filter(|c| c.is_element()) {
            out.push(self.import(doc, file, child)?);
        }
        Ok(out)
    }

    fn split_test(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        usage: &str,
        display_name: Option<String>,
        attr: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(String, Value, Vec<String>)> {
        let here = at(doc, file, node);
        let children = self.children(doc, file, node)?;
        let partition: i64 = match attr("user_partition_id") {
            None => -1,
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| anyhow!("{here}: split_test {usage:?} has user_partition_id {v:?}, which is not a number"))?,
        };
        let mut mapping = BTreeMap::new();
        if let Some(text) = attr("group_id_to_child") {
            let raw: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
                anyhow!(
                    "{here}: split_test {usage:?} has a group_id_to_child that does not parse: {e}"
                )
            })?;
            for (group, location) in raw {
                let child = url_name_of(&location).to_string();
                if children.contains(&child) {
                    mapping.insert(group, child);
                } else {
                    self.warn(format!(
                        "{here}: split_test {usage:?} maps group {group} to {location:?}, which is not one of its children; mapping dropped"
                    ));
                }
            }
        }
        self.report.split_tests.push(SplitTestSummary {
            usage_id: usage.to_string(),
            partition_id: u64::try_from(partition).ok(),
            group_id_to_child: mapping.clone(),
        });
        Ok((
            "split_test".to_string(),
            json!({ "display_name": display_name, "user_partition_id": partition, "group_id_to_child": mapping }),
            children,
        ))
    }

    /// An html block's HTML: from `html/{filename}.html`, or the element's own content.
    fn html_body(&mut self, doc: &Document, file: &str, node: Node) -> Result<String> {
        if let Some(name) = node.attribute("filename") {
            check_id("html filename", name).with_context(|| at(doc, file, node))?;
            let path = format!("html/{name}.html");
            return match self.src.read(&path) {
                Some(text) => {
                    self.mark_read(&path);
                    text.map(|t| t.into_owned())
                }
                None => {
                    self.warn(format!(
                        "{}: html file {path} does not exist: imported empty",
                        at(doc, file, node)
                    ));
                    Ok(String::new())
                }
            };
        }
        Ok(inner_source(doc, node, &[]))
    }
}

/// A problem's `weight` or `max_attempts` attribute as a JSON number, exactly as written
/// (whole numbers stay whole); absent, empty or `null` (Open edX's "no limit") is none.
fn scoring_number(
    here: &str,
    usage: &str,
    name: &str,
    text: Option<String>,
) -> Result<Option<Value>> {
    let Some(text) = text else { return Ok(None) };
    let text = text.trim();
    if text.is_empty() || text == "null" {
        return Ok(None);
    }
    if let Ok(whole) = text.parse::<i64>() {
        return Ok(Some(json!(whole)));
    }
    match text.parse::<f64>() {
        // `2.0` is the whole number 2 (max_attempts must be one).
        Ok(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 => Ok(Some(json!(v as i64))),
        Ok(v) if v.is_finite() => Ok(Some(json!(v))),
        _ => bail!("{here}: problem {usage:?} has {name} {text:?}, which is not a number"),
    }
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    v
}
