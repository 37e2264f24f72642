//! Courses as authors write them (the JSON course document) and as the host uses them
//! (validated and indexed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use crate::controls::{Bucketing, ExperimentState, Goal, course_family, parse_date};
use crate::ids::check_id;
use crate::traffic::{self, Holdout, LayerShare};

/// One group (experimental condition) of a user partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: u64,
    pub name: String,
    /// Relative share of new learners assigned to this group (default 1). A weight of 0
    /// stops new assignments to the group without moving anyone already in it.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// A user partition: a named way to split learners into groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPartition {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// `random` (experiments, the default) or another scheme such as `cohort`, whose
    /// learners are never randomly assigned.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "default_active")]
    pub active: bool,
    pub groups: Vec<Group>,
    /// Experiment state: `enabled` (the default), `paused` or `off` (the kill switch).
    #[serde(default, skip_serializing_if = "is_default")]
    pub state: ExperimentState,
    /// `course-aware` (the default) or `course-unaware`: the same group in every run.
    #[serde(default, skip_serializing_if = "is_default")]
    pub bucketing: Bucketing,
    /// Learners whose course enrollment is before this date see control, not enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_start: Option<String>,
    /// Learners whose course enrollment is at or after this date see control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_end: Option<String>,
    /// QA: user id to the group it is forced into (flagged in events, left out of reports).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub forced: BTreeMap<String, u64>,
    /// What the report measures per group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<Goal>,
    /// The share of a layer's traffic this experiment takes: experiments of one layer
    /// never share a learner. Learners outside the range see control, not enrolled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerShare>,
}

/// An empty, active, enabled random partition (what serde fills in for omitted fields).
impl Default for UserPartition {
    fn default() -> Self {
        UserPartition {
            id: 0,
            name: String::new(),
            description: String::new(),
            scheme: default_scheme(),
            active: true,
            groups: Vec::new(),
            state: ExperimentState::default(),
            bucketing: Bucketing::default(),
            enrollment_start: None,
            enrollment_end: None,
            forced: BTreeMap::new(),
            goals: Vec::new(),
            layer: None,
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn default_scheme() -> String {
    RANDOM_SCHEME.to_string()
}

fn default_active() -> bool {
    true
}

/// The scheme of experiment partitions, the only one the host assigns randomly.
pub const RANDOM_SCHEME: &str = "random";

impl UserPartition {
    pub fn group(&self, id: u64) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    pub fn is_random(&self) -> bool {
        self.scheme == RANDOM_SCHEME
    }
}

/// One block of a course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockDef {
    pub usage_id: String,
    /// The block type: the name of the plugin that renders it.
    #[serde(rename = "type")]
    pub block_type: String,
    #[serde(default = "empty_object")]
    pub fields: serde_json::Value,
    #[serde(default)]
    pub children: Vec<String>,
    /// Content-group restrictions, as Open edX writes them: user partition id (a string)
    /// to the groups whose learners may see the block. No entry (or an empty list) means
    /// no restriction.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group_access: BTreeMap<String, Vec<u64>>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// A course document: what `xbhost course load` reads and what storage keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseDoc {
    pub course_key: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub user_partitions: Vec<UserPartition>,
    /// Learners kept out of every experiment, to measure all of them against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<Holdout>,
    pub blocks: Vec<BlockDef>,
}

impl CourseDoc {
    /// Parses a course document, naming the JSON path, line and column at fault.
    pub fn from_json(text: &str) -> Result<CourseDoc> {
        let de = &mut serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            anyhow::anyhow!("at {path}: {}", e.into_inner())
        })
    }
}

/// The prefix of anonymous visitors' ids (`request::ANONYMOUS_PREFIX`, which this leaf
/// cannot import without a cycle; a unit test keeps the two equal): no usage id may
/// start with it.
const ANONYMOUS_PREFIX: &str = "anon:";

/// A validated course with its blocks indexed by usage id.
#[derive(Debug)]
pub struct Course {
    pub doc: CourseDoc,
    /// Fields serialized once, so each block call hands them over without re-encoding.
    fields_json: Vec<String>,
    /// The block types the course uses, each once (every request loads their plugins).
    block_types: Vec<String>,
    index: HashMap<String, usize>,
    parents: HashMap<String, String>,
    /// Children that are an experiment's conditions by the course's authored structure
    /// (a `split_test`'s children), by index: only these ever get condition marks.
    conditions: HashMap<usize, AuthoredCondition>,
}

/// The block type whose children are experiment conditions (Open edX's `split_test`,
/// with its `user_partition_id` and `group_id_to_child` fields).
pub const SPLIT_TEST_TYPE: &str = "split_test";

/// A child that is a condition of an experiment, as the course document authors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthoredCondition {
    pub partition_id: u64,
    /// The group whose condition it is (a current group of the partition when one maps
    /// to the child, else a deleted one it was mapped to); `None` when mapped to none.
    pub group_id: Option<u64>,
}

/// The conditions of a split test's children, from its fields. A split test without a
/// (non-negative) partition id is not configured and has none.
fn split_test_conditions(
    block: &BlockDef,
    partition_groups: &HashMap<u64, HashSet<u64>>,
) -> Vec<(String, AuthoredCondition)> {
    let Some(partition_id) = block.fields["user_partition_id"]
        .as_i64()
        .and_then(|id| u64::try_from(id).ok())
    else {
        return Vec::new();
    };
    let no_groups = HashSet::new();
    let groups = partition_groups.get(&partition_id).unwrap_or(&no_groups);
    // Child to the groups mapped to it, in the mapping's order.
    let mut mapped: HashMap<&str, Vec<u64>> = HashMap::new();
    if let Some(m) = block.fields["group_id_to_child"].as_object() {
        for (g, c) in m {
            if let (Ok(g), Some(c)) = (g.parse::<u64>(), c.as_str()) {
                mapped.entry(c).or_default().push(g);
            }
        }
    }
    block
        .children
        .iter()
        .map(|child| {
            // A current group mapped to the child; else a group it was mapped to that the
            // partition no longer has (shown as such); else none.
            let mapped = mapped.get(child.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let group_id = mapped
                .iter()
                .copied()
                .find(|g| groups.contains(g))
                .or_else(|| mapped.first().copied());
            (
                child.clone(),
                AuthoredCondition {
                    partition_id,
                    group_id,
                },
            )
        })
        .collect()
}

/// One block of a validated course.
#[derive(Debug, Clone, Copy)]
pub struct CourseBlock<'c> {
    pub index: usize,
    pub def: &'c BlockDef,
    pub fields_json: &'c str,
}

impl Course {
    /// Validates a course document: ids, unique partitions, groups and blocks, children
    /// that exist, a block tree without cycles or shared children, and scoring fields in
    /// range. Linear in the size of the document, so a huge course loads in time linear
    /// in its blocks.
    pub fn new(doc: CourseDoc) -> Result<Arc<Course>> {
        check_id("course key", &doc.course_key)?;
        let mut partition_ids = HashSet::new();
        let mut partition_names: HashMap<&str, u64> = HashMap::new();
        for p in &doc.user_partitions {
            if !partition_ids.insert(p.id) {
                bail!("user partition id {} is used twice", p.id);
            }
            if p.name.trim().is_empty() {
                bail!("user partition {} has an empty name", p.id);
            }
            if let Some(other) = partition_names.insert(&p.name, p.id) {
                // Events and reports name partitions: two of one name would merge.
                bail!(
                    "user partitions {} and {} are both named {:?}: partition names must differ",
                    other.min(p.id),
                    other.max(p.id),
                    p.name
                );
            }
            let mut group_ids = HashSet::new();
            for g in &p.groups {
                if !group_ids.insert(g.id) {
                    bail!(
                        "user partition {} ({:?}) has group id {} twice",
                        p.id,
                        p.name,
                        g.id
                    );
                }
            }
            validate_controls(&doc.course_key, p)?;
            if !p.groups.is_empty() && p.groups.iter().all(|g| g.weight == 0) {
                bail!(
                    "user partition {} ({:?}): every group has weight 0",
                    p.id,
                    p.name
                );
            }
        }
        let layered = doc.user_partitions.iter().filter_map(|p| {
            Some(traffic::Member {
                partition_id: p.id,
                partition_name: &p.name,
                scheme: &p.scheme,
                bucketing: p.bucketing.as_str(),
                share: p.layer.as_ref()?,
            })
        });
        traffic::check(doc.holdout.as_ref(), &layered.collect::<Vec<_>>())?;
        let mut blocks = HashMap::with_capacity(doc.blocks.len());
        for (i, b) in doc.blocks.iter().enumerate() {
            check_id("usage id", &b.usage_id).with_context(|| format!("block #{i}"))?;
            if b.usage_id.starts_with(ANONYMOUS_PREFIX) {
                bail!(
                    "block {:?}: usage ids may not start with {ANONYMOUS_PREFIX:?}, which the \
                     host reserves for anonymous visitors",
                    b.usage_id
                );
            }
            check_id("block type", &b.block_type)
                .with_context(|| format!("block {:?}", b.usage_id))?;
            if !b.fields.is_object() {
                bail!("block {:?}: fields must be a JSON object", b.usage_id);
            }
            check_scoring(b)?;
            for partition in b.group_access.keys() {
                if partition.parse::<u64>().is_err() {
                    bail!(
                        "block {:?}: group_access names {partition:?}, which is not a user partition id",
                        b.usage_id
                    );
                }
            }
            if blocks.insert(b.usage_id.clone(), i).is_some() {
                bail!("usage id {:?} is used by two blocks", b.usage_id);
            }
        }
        let mut parents = HashMap::with_capacity(doc.blocks.len());
        let mut parent_of: Vec<Option<usize>> = vec![None; doc.blocks.len()];
        for (i, b) in doc.blocks.iter().enumerate() {
            for child in &b.children {
                let Some(&c) = blocks.get(child) else {
                    bail!(
                        "block {:?} has child {child:?}, which is not a block of this course",
                        b.usage_id
                    );
                };
                if let Some(other) = parents.insert(child.clone(), b.usage_id.clone()) {
                    bail!(
                        "block {child:?} is a child of both {other:?} and {:?}",
                        b.usage_id
                    );
                }
                parent_of[c] = Some(i);
            }
        }
        if let Some(block) = block_in_cycle(&doc, &blocks, &parent_of) {
            bail!("blocks form a cycle through {block:?}");
        }
        // Each partition's current groups, so each split test looks its up once.
        let partition_groups: HashMap<u64, HashSet<u64>> = doc
            .user_partitions
            .iter()
            .map(|p| (p.id, p.groups.iter().map(|g| g.id).collect()))
            .collect();
        let mut conditions = HashMap::new();
        for b in doc
            .blocks
            .iter()
            .filter(|b| b.block_type == SPLIT_TEST_TYPE)
        {
            for (child, condition) in split_test_conditions(b, &partition_groups) {
                conditions.insert(blocks[&child], condition);
            }
        }
        let fields_json = doc.blocks.iter().map(|b| b.fields.to_string()).collect();
        let mut block_types: Vec<String> =
            doc.blocks.iter().map(|b| b.block_type.clone()).collect();
        block_types.sort_unstable();
        block_types.dedup();
        Ok(Arc::new(Course {
            doc,
            fields_json,
            block_types,
            index: blocks,
            parents,
            conditions,
        }))
    }

    pub fn key(&self) -> &str {
        &self.doc.course_key
    }

    pub fn block(&self, usage_id: &str) -> Option<CourseBlock<'_>> {
        self.index.get(usage_id).map(|&i| self.block_at(i))
    }

    /// The block at `index` (as given by [`Course::block`]). Panics on a foreign index.
    pub fn block_at(&self, index: usize) -> CourseBlock<'_> {
        CourseBlock {
            index,
            def: &self.doc.blocks[index],
            fields_json: &self.fields_json[index],
        }
    }

    /// The experiment condition the block is by the authored structure, if any.
    pub fn condition(&self, index: usize) -> Option<AuthoredCondition> {
        self.conditions.get(&index).copied()
    }

    pub fn parent(&self, usage_id: &str) -> Option<&str> {
        self.parents.get(usage_id).map(String::as_str)
    }

    /// The block's content-group restrictions: (partition id, groups allowed), non-empty.
    pub fn restrictions(&self, index: usize) -> impl Iterator<Item = (u64, &[u64])> {
        self.doc.blocks[index]
            .group_access
            .iter()
            .filter(|(_, groups)| !groups.is_empty())
            .filter_map(|(p, groups)| Some((p.parse().ok()?, groups.as_slice())))
    }

    /// Blocks without a parent, in document order: where the course's outline starts.
    pub fn roots(&self) -> impl Iterator<Item = usize> {
        (0..self.doc.blocks.len())
            .filter(|&i| !self.parents.contains_key(&self.doc.blocks[i].usage_id))
    }

    pub fn partition(&self, id: u64) -> Option<&UserPartition> {
        self.doc.user_partitions.iter().find(|p| p.id == id)
    }

    pub fn partitions(&self) -> &[UserPartition] {
        &self.doc.user_partitions
    }

    /// The block types the course uses, each once.
    pub fn block_types(&self) -> &[String] {
        &self.block_types
    }
}

/// A block on a cycle of parents, if the blocks have one. With at most one parent each,
/// the blocks reachable from the roots form a forest; any other block's chain of parents
/// never reaches a root, so it comes back on itself. One pass down from the roots, then
/// one walk up from the first block left over: linear in the blocks.
fn block_in_cycle<'d>(
    doc: &'d CourseDoc,
    index: &HashMap<String, usize>,
    parent_of: &[Option<usize>],
) -> Option<&'d str> {
    let mut reached = vec![false; doc.blocks.len()];
    let mut stack: Vec<usize> = (0..doc.blocks.len())
        .filter(|&i| parent_of[i].is_none())
        .collect();
    while let Some(i) = stack.pop() {
        reached[i] = true;
        stack.extend(doc.blocks[i].children.iter().map(|c| index[c.as_str()]));
    }
    let mut at = reached.iter().position(|r| !r)?;
    let mut on_path = vec![false; doc.blocks.len()];
    while !on_path[at] {
        on_path[at] = true;
        at = parent_of[at].expect("a block left over has a parent");
    }
    Some(&doc.blocks[at].usage_id)
}

/// Open edX's scoring fields, whatever the block's type (grades read them): `weight` a
/// number not below 0, `max_attempts` a whole number not below 0 (`null`: no limit).
fn check_scoring(b: &BlockDef) -> Result<()> {
    let weight = &b.fields["weight"];
    if !weight.is_null() && weight.as_f64().is_none_or(|w| w < 0.0) {
        bail!(
            "block {:?}: weight {weight} is not a number of at least 0",
            b.usage_id
        );
    }
    let attempts = &b.fields["max_attempts"];
    if !attempts.is_null() && attempts.as_u64().is_none_or(|n| n > u64::from(u32::MAX)) {
        bail!(
            "block {:?}: max_attempts {attempts} is not a whole number of at least 0",
            b.usage_id
        );
    }
    Ok(())
}

/// Checks a partition's experiment controls when its course is loaded, so that nothing
/// is found wrong (and silently ignored) at render time.
pub(crate) fn validate_controls(course_key: &str, p: &UserPartition) -> Result<()> {
    let name = || format!("user partition {} ({:?})", p.id, p.name);
    let start = match &p.enrollment_start {
        Some(d) => Some(parse_date(d).with_context(|| format!("{}: enrollment_start", name()))?),
        None => None,
    };
    let end = match &p.enrollment_end {
        Some(d) => Some(parse_date(d).with_context(|| format!("{}: enrollment_end", name()))?),
        None => None,
    };
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        bail!("{}: enrollment_start is not before enrollment_end", name());
    }
    let groups: HashSet<u64> = p.groups.iter().map(|g| g.id).collect();
    for (user, group) in &p.forced {
        crate::ids::check_id("user id", user).with_context(|| format!("{}: forced", name()))?;
        if !groups.contains(group) {
            bail!(
                "{}: user {user:?} is forced into group {group}, which the partition does not have",
                name()
            );
        }
    }
    if p.bucketing == Bucketing::CourseUnaware && course_family(course_key).is_none() {
        bail!(
            "{}: course-unaware bucketing needs a course key of the form course-v1:ORG+COURSE+RUN, not {course_key:?}",
            name()
        );
    }
    let mut goal_names = std::collections::HashSet::new();
    for goal in &p.goals {
        if goal.name.trim().is_empty() || goal.event.trim().is_empty() {
            bail!("{}: a goal needs a name and an event", name());
        }
        if !goal_names.insert(goal.name.as_str()) {
            bail!("{}: goal {:?} is defined twice", name(), goal.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(blocks: serde_json::Value) -> CourseDoc {
        serde_json::from_value(serde_json::json!({
            "course_key": "course-v1:a+b+c",
            "user_partitions": [{"id": 0, "name": "P", "groups": [{"id": 0, "name": "A"}]}],
            "blocks": blocks,
        }))
        .unwrap()
    }

    #[test]
    fn the_reserved_prefix_is_the_anonymous_one() {
        assert_eq!(ANONYMOUS_PREFIX, crate::request::ANONYMOUS_PREFIX);
    }

    #[test]
    fn a_cycle_is_found_in_one_pass_however_deep_the_chain() {
        // A chain of 200,000 blocks whose top is its bottom's child: the old check walked
        // every block's whole chain of parents (quadratic); this one passes once.
        let n = 200_000;
        let blocks: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({"usage_id": format!("b{i}"), "type": "vertical",
                "children": [format!("b{}", (i + 1) % n)]})
            })
            .collect();
        let err = Course::new(doc(serde_json::Value::Array(blocks))).unwrap_err();
        assert!(err.to_string().contains("cycle through"), "{err}");
        // Without the closing edge it is a tree, and loads.
        let blocks: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let children: Vec<String> =
                    if i + 1 < n { vec![format!("b{}", i + 1)] } else { vec![] };
                serde_json::json!({"usage_id": format!("b{i}"), "type": "vertical", "children": children})
            })
            .collect();
        assert_eq!(
            Course::new(doc(serde_json::Value::Array(blocks)))
                .unwrap()
                .roots()
                .count(),
            1
        );
    }

    #[test]
    fn defaults_scheme_active_and_weight() {
        let d = doc(serde_json::json!([]));
        let p = &d.user_partitions[0];
        assert_eq!(p.scheme, "random");
        assert!(p.active);
        assert_eq!(p.groups[0].weight, 1);
    }

    #[test]
    fn rejects_unknown_children_shared_children_and_cycles() {
        let err = Course::new(doc(serde_json::json!([
            {"usage_id": "a", "type": "vertical", "children": ["zz"]}
        ])))
        .unwrap_err();
        assert!(err.to_string().contains("\"zz\""), "{err}");
        let err = Course::new(doc(serde_json::json!([
            {"usage_id": "a", "type": "vertical", "children": ["c"]},
            {"usage_id": "b", "type": "vertical", "children": ["c"]},
            {"usage_id": "c", "type": "html"}
        ])))
        .unwrap_err();
        assert!(err.to_string().contains("child of both"), "{err}");
        let err = Course::new(doc(serde_json::json!([
            {"usage_id": "a", "type": "vertical", "children": ["b"]},
            {"usage_id": "b", "type": "vertical", "children": ["a"]}
        ])))
        .unwrap_err();
        assert!(err.to_string().contains("cycle"), "{err}");
    }

    #[test]
    fn rejects_duplicate_usage_ids_and_groups() {
        let err = Course::new(doc(serde_json::json!([
            {"usage_id": "a", "type": "html"}, {"usage_id": "a", "type": "html"}
        ])))
        .unwrap_err();
        assert!(err.to_string().contains("used by two blocks"), "{err}");
        let mut d = doc(serde_json::json!([]));
        d.user_partitions[0].groups.push(Group {
            id: 0,
            name: "B".into(),
            weight: 1,
        });
        assert!(
            Course::new(d)
                .unwrap_err()
                .to_string()
                .contains("group id 0 twice")
        );
    }

    #[test]
    fn parse_errors_name_the_path_and_line() {
        let err =
            CourseDoc::from_json("{\"course_key\": \"k\",\n \"blocks\": [{\"usage_id\": 3}]}")
                .unwrap_err()
                .to_string();
        assert!(err.contains("blocks[0].usage_id"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = CourseDoc::from_json("{\"course_key\": \"k\", \"blokcs\": []}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("blokcs"), "{err}");
    }
}
