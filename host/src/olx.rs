//! Import of Open edX course exports (OLX), as directories or `.tar.gz` archives.
//!
//! What a real export looks like is described in `shared/olx/INDEX.md`. The import builds
//! a whole course document in memory and hands it to `Host::load_course`, so a failed
//! import stores nothing. Malformed XML is an error naming the file, line and column;
//! everything that is not imported as such (block types we have no plugin for, problems of
//! other kinds, drafts, files the outline never reaches) is named in the report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use roxmltree::{Document, Node};
use serde::Serialize;
use serde_json::{Value, json};

use crate::ids::check_id;
use crate::model::{BlockDef, CourseDoc, Group, UserPartition};

/// OLX tags imported as blocks of the same type.
const CONTAINERS: &[&str] = &["course", "chapter", "sequential", "vertical"];

/// The type that stands in for blocks we have no plugin for.
pub const UNSUPPORTED_TYPE: &str = "unsupported";

/// Deepest nesting of blocks an import accepts (rendering stops far earlier).
const MAX_NESTING: usize = 100;

/// Largest archive we unpack (in bytes, uncompressed) and most entries.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
const MAX_ARCHIVE_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The course key to use instead of `course-v1:{org}+{course}+{run}`.
    pub course_key: Option<String>,
}

/// A split test as imported: its partition and group-to-child mapping.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SplitTestSummary {
    pub usage_id: String,
    pub partition_id: Option<u64>,
    /// Group id to child usage id.
    pub group_id_to_child: BTreeMap<String, String>,
}

/// What an import found and did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub course_key: String,
    pub source: String,
    /// Imported blocks by their OLX type (`unsupported` ones under their own type too).
    pub blocks_by_type: BTreeMap<String, usize>,
    /// Blocks imported as `unsupported`, by their OLX type.
    pub unsupported: BTreeMap<String, usize>,
    pub partitions: Vec<UserPartition>,
    pub split_tests: Vec<SplitTestSummary>,
    pub warnings: Vec<String>,
}

/// The files of an export, by path relative to the directory that holds `course.xml`.
enum Source {
    Dir(PathBuf),
    Archive(HashMap<String, Vec<u8>>),
}

impl Source {
    fn open(path: &Path) -> Result<Source> {
        if path.is_dir() {
            if !path.join("course.xml").is_file() {
                bail!(
                    "{} has no course.xml: it is not an OLX course directory",
                    path.display()
                );
            }
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut files = HashMap::new();
        let mut total = 0u64;
        let entries = archive
            .entries()
            .with_context(|| format!("{} is not a .tar.gz archive", path.display()))?;
        for entry in entries {
            let mut entry = entry
                .with_context(|| format!("{} is not a readable .tar.gz archive", path.display()))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            total += entry.size();
            if total > MAX_ARCHIVE_BYTES || files.len() >= MAX_ARCHIVE_ENTRIES {
                bail!(
                    "{} unpacks to more than {MAX_ARCHIVE_BYTES} bytes or {MAX_ARCHIVE_ENTRIES} files",
                    path.display()
                );
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes)?;
            files.insert(name, bytes);
        }
        // The course is rooted where the shallowest course.xml is.
        let root = files
            .keys()
            .filter(|k| *k == "course.xml" || k.ends_with("/course.xml"))
            .min_by_key(|k| k.matches('/').count())
            .ok_or_else(|| {
                anyhow!(
                    "{} has no course.xml: it is not an OLX course export",
                    path.display()
                )
            })?
            .trim_end_matches("course.xml")
            .to_string();
        let files = files
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&root)?.to_string(), v)))
            .collect();
        Ok(Source::Archive(files))
    }

    fn read(&self, rel: &str) -> Option<Result<String>> {
        let bytes = match self {
            Source::Dir(dir) => {
                // Names are checked before paths are built; this also refuses a symlink
                // that leads out of the export.
                let path = match dir.join(rel).canonicalize() {
                    Ok(p) => p,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                    Err(e) => return Some(Err(anyhow!("cannot read {rel}: {e}"))),
                };
                let root = match dir.canonicalize() {
                    Ok(r) => r,
                    Err(e) => return Some(Err(anyhow!("cannot read {}: {e}", dir.display()))),
                };
                if !path.starts_with(&root) {
                    return Some(Err(anyhow!("{rel} leads outside the export (a link?)")));
                }
                match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) => return Some(Err(anyhow!("cannot read {rel}: {e}"))),
                }
            }
            Source::Archive(files) => files.get(rel)?.clone(),
        };
        Some(String::from_utf8(bytes).map_err(|_| anyhow!("{rel} is not UTF-8 text")))
    }

    /// Files directly in folder `dir` (relative paths).
    fn list(&self, dir: &str) -> Vec<String> {
        let mut out: Vec<String> = match self {
            Source::Dir(root) => std::fs::read_dir(root.join(dir))
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .filter(|e| e.path().is_file())
                        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
                        .collect()
                })
                .unwrap_or_default(),
            Source::Archive(files) => files
                .keys()
                .filter(|k| {
                    k.strip_prefix(dir)
                        .and_then(|r| r.strip_prefix('/'))
                        .is_some_and(|r| !r.contains('/'))
                })
                .cloned()
                .collect(),
        };
        out.sort();
        out
    }

    /// Files anywhere under folder `dir`.
    fn count_under(&self, dir: &str) -> usize {
        match self {
            Source::Dir(root) => walk_count(&root.join(dir)),
            Source::Archive(files) => files
                .keys()
                .filter(|k| k.starts_with(&format!("{dir}/")))
                .count(),
        }
    }
}

fn walk_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    if e.path().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Where a node is, for messages: `file:line`.
fn at(doc: &Document, file: &str, node: Node) -> String {
    let pos = doc.text_pos_at(node.range().start);
    format!("{file}:{}", pos.row)
}

fn parse_xml<'a>(file: &str, text: &'a str) -> Result<Document<'a>> {
    Document::parse(text).map_err(|e| {
        let pos = e.pos();
        anyhow!("{file}:{}:{}: malformed XML: {e}", pos.row, pos.col)
    })
}

/// A usage key as exports write them (`i4x://Org/Course/vertical/NAME`,
/// `block-v1:Org+Course+Run+type@vertical+block@NAME`, or a bare url_name) to its url_name.
pub fn url_name_of(location: &str) -> &str {
    if let Some(at) = location.rfind("block@") {
        return &location[at + "block@".len()..];
    }
    if location.starts_with("i4x://") {
        return location.rsplit('/').next().unwrap_or(location);
    }
    location
}

struct Importer<'s> {
    src: &'s Source,
    blocks: Vec<BlockDef>,
    /// usage id -> where it was defined.
    seen: HashMap<String, String>,
    /// Files read as block definitions.
    read: HashSet<String>,
    /// Per-block policy (`type/url_name` -> metadata).
    policy: serde_json::Map<String, Value>,
    /// How deep in the outline the current element is.
    depth: usize,
    report: ImportReport,
}

impl<'s> Importer<'s> {
    fn warn(&mut self, message: String) {
        self.report.warnings.push(message);
    }

    /// Imports one element (a pointer or an inline definition); returns its usage id.
    fn import(&mut self, doc: &Document, file: &str, node: Node) -> Result<String> {
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
        let tag = node.tag_name().name().to_string();
        let here = at(doc, file, node);
        let url_name = node.attribute("url_name");
        let is_pointer = url_name.is_some()
            && node.attributes().len() == 1
            && !node.children().any(|c| c.is_element());
        if let (true, Some(url)) = (is_pointer, url_name) {
            check_id("url_name", url).with_context(|| here.clone())?;
            check_id("element name", &tag).with_context(|| here.clone())?;
            let path = format!("{tag}/{url}.xml");
            if let Some(text) = self.src.read(&path) {
                let text = text?;
                self.read.insert(path.clone());
                let pointed = parse_xml(&path, &text)?;
                let root = pointed.root_element();
                if root.tag_name().name() != tag {
                    bail!(
                        "{path}: the root element is <{}>, but {here} points to it as <{tag}>",
                        root.tag_name().name()
                    );
                }
                return self.define(&pointed, &path, root, url, Some(node));
            }
            self.warn(format!(
                "{here}: <{tag} url_name=\"{url}\"/> points to {path}, which does not exist: imported as an empty {tag}"
            ));
        }
        let usage = match url_name {
            Some(u) => u.to_string(),
            None => {
                let pos = doc.text_pos_at(node.range().start);
                let digest =
                    blake3::hash(format!("{file}:{}:{}", pos.row, pos.col).as_bytes()).to_hex();
                format!("{tag}_{}", &digest[..12])
            }
        };
        self.define(doc, file, node, &usage, None)
    }

    /// Imports a block definition under `usage`. `pointer` is the element that pointed to it.
    fn define(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        usage: &str,
        pointer: Option<Node>,
    ) -> Result<String> {
        let here = at(doc, file, node);
        let tag = node.tag_name().name().to_string();
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
        let (block_type, fields, children) = match tag.as_str() {
            t if CONTAINERS.contains(&t) => {
                let children = self.children(doc, file, node)?;
                (
                    t.to_string(),
                    json!({ "display_name": display_name }),
                    children,
                )
            }
            "split_test" => self.split_test(doc, file, node, usage, display_name, &attr)?,
            "html" => (
                "html".to_string(),
                json!({ "display_name": display_name, "data": self.html_body(doc, file, node)? }),
                vec![],
            ),
            "problem" => match problem_fields(doc, file, node)? {
                Ok(mut fields) => {
                    fields["display_name"] = json!(display_name);
                    for (name, key) in [("weight", "weight"), ("max_attempts", "max_attempts")] {
                        if let Some(v) = attr(name).and_then(|v| v.parse::<f64>().ok()) {
                            fields[key] = json!(v);
                        }
                    }
                    if let Some(v) = fields.get("max_attempts").and_then(Value::as_f64) {
                        fields["max_attempts"] = json!(v as u32);
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

    fn children(&mut self, doc: &Document, file: &str, node: Node) -> Result<Vec<String>> {
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
                    self.read.insert(path);
                    text
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

/// The source text of an element's content, skipping child elements named in `skip`.
fn inner_source(doc: &Document, node: Node, skip: &[&str]) -> String {
    let text = doc.input_text();
    node.children()
        .filter(|c| !(c.is_element() && skip.contains(&c.tag_name().name())))
        .filter(|c| c.is_element() || c.is_text())
        .map(|c| &text[c.range()])
        .collect::<String>()
        .trim()
        .to_string()
}

/// Problem fields for a multiple-choice or checkbox problem, or why it is not one.
fn problem_fields(
    doc: &Document,
    file: &str,
    node: Node,
) -> Result<std::result::Result<Value, String>> {
    let responses: Vec<Node> = node
        .descendants()
        .filter(|d| d.is_element() && d.tag_name().name().ends_with("response"))
        .collect();
    let Some(response) = responses.first().copied() else {
        return Ok(Err("it has no response element".into()));
    };
    let (kind, group_tag) = match response.tag_name().name() {
        "multiplechoiceresponse" => ("multiple_choice", "choicegroup"),
        "choiceresponse" => ("checkbox", "checkboxgroup"),
        other => {
            return Ok(Err(format!(
                "only multiple-choice and checkbox problems are supported, this one is <{other}>"
            )));
        }
    };
    if responses.len() > 1 {
        return Ok(Err(format!(
            "it has {} responses; only single-response problems are supported",
            responses.len()
        )));
    }
    // The question is what surrounds the response; a response nested in other markup
    // cannot be cut out safely (the choices and solutions would leak into the question).
    if response.parent() != Some(node) {
        return Ok(Err(format!(
            "its <{}> is nested inside <{}>; only responses directly inside <problem> are supported",
            response.tag_name().name(),
            response.parent().map_or("?", |p| p.tag_name().name())
        )));
    }
    let Some(group) = response
        .descendants()
        .find(|d| d.is_element() && d.tag_name().name() == group_tag)
    else {
        bail!(
            "{}: <{}> has no <{group_tag}>",
            at(doc, file, response),
            response.tag_name().name()
        );
    };
    let choices: Vec<Value> = group
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "choice")
        .map(|c| {
            json!({
                "text": inner_source(doc, c, &["choicehint"]),
                "correct": c.attribute("correct").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            })
        })
        .collect();
    // The question: the problem's content with the response's own content in its place,
    // without the choices, solutions and hints.
    const HIDDEN: &[&str] = &[
        "choicegroup",
        "checkboxgroup",
        "solution",
        "demandhint",
        "script",
        "choicehint",
        "compoundhint",
    ];
    let text = doc.input_text();
    let question: String = node
        .children()
        .filter(|c| c.is_element() || c.is_text())
        .filter(|c| !(c.is_element() && HIDDEN.contains(&c.tag_name().name())))
        .map(|c| {
            // The response's own content, without its choices and solutions; the rest as is.
            if c == response {
                inner_source(doc, c, HIDDEN)
            } else {
                text[c.range()].to_string()
            }
        })
        .collect::<String>()
        .trim()
        .to_string();
    Ok(Ok(
        json!({ "question": question, "kind": kind, "choices": choices }),
    ))
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    v
}

/// A partition as exports write it (extra keys such as `version` and `parameters` ignored).
fn partition_from_json(v: &Value) -> Result<UserPartition> {
    let id = v["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("a user partition has no numeric id: {v}"))?;
    let groups = v["groups"]
        .as_array()
        .ok_or_else(|| anyhow!("user partition {id} has no groups list"))?
        .iter()
        .map(|g| {
            Ok(Group {
                id: g["id"].as_u64().ok_or_else(|| {
                    anyhow!("user partition {id} has a group without a numeric id: {g}")
                })?,
                name: g["name"].as_str().unwrap_or_default().to_string(),
                weight: 1,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(UserPartition {
        id,
        name: v["name"].as_str().unwrap_or_default().to_string(),
        description: v["description"].as_str().unwrap_or_default().to_string(),
        scheme: v["scheme"].as_str().unwrap_or("random").to_string(),
        active: v["active"].as_bool().unwrap_or(true),
        groups,
        ..UserPartition::default()
    })
}

/// Reads an OLX export into a course document and a report. Stores nothing.
pub fn read_course(path: &Path, options: &ImportOptions) -> Result<(CourseDoc, ImportReport)> {
    let src = Source::open(path)?;
    let course_xml = src
        .read("course.xml")
        .ok_or_else(|| anyhow!("course.xml is missing"))??;
    let doc = parse_xml("course.xml", &course_xml)?;
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
    let mut policy = serde_json::Map::new();
    if let Some(text) = src.read(&policy_path) {
        let value: Value = serde_json::from_str(&text?)
            .map_err(|e| anyhow!("{policy_path}:{}:{}: {e}", e.line(), e.column()))?;
        policy = value.as_object().cloned().unwrap_or_default();
    }
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
            source: path.display().to_string(),
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
            Some(t) => (body_path.as_str(), t.as_str()),
            None => ("course.xml", course_xml.as_str()),
        };
        let body = parse_xml(file, text)?;
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

#[cfg(test)]
mod tests {
    use super::url_name_of;

    #[test]
    fn usage_keys_map_to_url_names() {
        assert_eq!(url_name_of("i4x://TestX/Course/vertical/9ddf"), "9ddf");
        assert_eq!(
            url_name_of("block-v1:TestX+Course+1+type@vertical+block@9ddf"),
            "9ddf"
        );
        assert_eq!(url_name_of("9ddf"), "9ddf");
    }
}
