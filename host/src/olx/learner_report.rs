//! What learners will miss ([`LearnerCoverage`], made by [`learner_coverage`]): for each
//! OLX block type, how many blocks a plugin renders for learners and how many were
//! imported as `unsupported` (which learners never see), each reason with its count and a
//! few usage ids; and the share of leaf blocks (content, not containers) learners can see.
//! Made from the imported course document, so it counts exactly what was stored. A leaf:
//! imports nothing but `crate::model`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::BlockDef;

/// Types that structure a course rather than hold content: never leaves.
const STRUCTURE: &[&str] = &["course", "chapter", "sequential", "vertical", "split_test"];

/// Usage ids named per reason.
const EXAMPLES: usize = 3;

/// How many blocks of each type learners can see, and why the others stay hidden.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LearnerCoverage {
    /// By OLX block type (`unsupported` blocks under the type they were written as).
    pub by_type: BTreeMap<String, TypeCoverage>,
    /// Blocks that hold content (no children, not a course/chapter/sequence/unit/split).
    pub leaf_blocks: usize,
    /// Of those, the ones a plugin renders for learners.
    pub visible_leaf_blocks: usize,
    /// `visible_leaf_blocks` as a share of `leaf_blocks`, in percent (100 for none).
    pub visible_leaf_percent: f64,
}

/// One block type's blocks: visible to learners, or not, and why.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TypeCoverage {
    /// Rendered by a plugin (for learners allowed to see them).
    pub visible: usize,
    /// Imported as `unsupported`: learners never see them.
    pub unsupported: usize,
    /// Why they are unsupported, most blocks first.
    pub reasons: Vec<ReasonCount>,
}

/// One reason blocks stay unsupported, how many it holds, and the first few usage ids.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReasonCount {
    pub reason: String,
    pub blocks: usize,
    pub examples: Vec<String>,
}

/// Counts `blocks` (a whole course document's, in document order); `unsupported_type` is
/// the type that stands in for blocks no plugin renders.
pub fn learner_coverage(blocks: &[BlockDef], unsupported_type: &str) -> LearnerCoverage {
    let mut out = LearnerCoverage::default();
    let mut reasons: BTreeMap<String, BTreeMap<String, ReasonCount>> = BTreeMap::new();
    for block in blocks {
        let hidden = block.block_type == unsupported_type;
        let olx_type = match block.fields.get("original_type").and_then(|v| v.as_str()) {
            Some(original) if hidden => original,
            _ => block.block_type.as_str(),
        };
        let entry = out.by_type.entry(olx_type.to_string()).or_default();
        let is_leaf = block.children.is_empty() && !STRUCTURE.contains(&olx_type);
        if is_leaf {
            out.leaf_blocks += 1;
        }
        if !hidden {
            entry.visible += 1;
            if is_leaf {
                out.visible_leaf_blocks += 1;
            }
            continue;
        }
        entry.unsupported += 1;
        let reason = match block.fields.get("reason").and_then(|v| v.as_str()) {
            Some(r) if !r.trim().is_empty() => r.to_string(),
            _ => format!("no plugin renders {olx_type} blocks"),
        };
        let counted = reasons
            .entry(olx_type.to_string())
            .or_default()
            .entry(reason.clone())
            .or_insert_with(|| ReasonCount {
                reason,
                blocks: 0,
                examples: Vec::new(),
            });
        counted.blocks += 1;
        if counted.examples.len() < EXAMPLES {
            counted.examples.push(block.usage_id.clone());
        }
    }
    for (olx_type, by_reason) in reasons {
        let mut list: Vec<ReasonCount> = by_reason.into_values().collect();
        list.sort_by(|a, b| b.blocks.cmp(&a.blocks).then(a.reason.cmp(&b.reason)));
        out.by_type.entry(olx_type).or_default().reasons = list;
    }
    out.visible_leaf_percent = if out.leaf_blocks == 0 {
        100.0
    } else {
        // One decimal: a figure for people, not for arithmetic.
        (1000.0 * out.visible_leaf_blocks as f64 / out.leaf_blocks as f64).round() / 10.0
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn block(id: &str, block_type: &str, fields: serde_json::Value, children: &[&str]) -> BlockDef {
        BlockDef {
            usage_id: id.into(),
            block_type: block_type.into(),
            fields,
            children: children.iter().map(|c| c.to_string()).collect(),
            group_access: Default::default(),
        }
    }

    #[test]
    fn counts_what_learners_see_and_why_not_by_type() {
        let unsupported = |id: &str, t: &str, reason: Option<&str>| {
            block(
                id,
                "unsupported",
                json!({ "original_type": t, "reason": reason }),
                &[],
            )
        };
        let blocks = vec![
            block("c", "course", json!({}), &["u"]),
            block("u", "vertical", json!({}), &["h", "p1"]),
            block("empty", "vertical", json!({}), &[]),
            block("h", "html", json!({}), &[]),
            block("p1", "problem", json!({}), &[]),
            unsupported(
                "p2",
                "problem",
                Some("customresponse is graded by a script"),
            ),
            unsupported(
                "p3",
                "problem",
                Some("customresponse is graded by a script"),
            ),
            unsupported("p4", "problem", Some("<jsinput> is not supported")),
            unsupported("l1", "lti", None),
        ];
        let c = learner_coverage(&blocks, "unsupported");
        assert_eq!(c.by_type["vertical"].visible, 2);
        assert_eq!(
            (
                c.by_type["problem"].visible,
                c.by_type["problem"].unsupported
            ),
            (1, 3)
        );
        assert_eq!(
            c.by_type["problem"].reasons,
            [
                ReasonCount {
                    reason: "customresponse is graded by a script".into(),
                    blocks: 2,
                    examples: vec!["p2".into(), "p3".into()],
                },
                ReasonCount {
                    reason: "<jsinput> is not supported".into(),
                    blocks: 1,
                    examples: vec!["p4".into()],
                },
            ]
        );
        assert_eq!(
            c.by_type["lti"].reasons[0].reason,
            "no plugin renders lti blocks"
        );
        assert!(!c.by_type.contains_key("unsupported"));
        // Leaves: h, p1..p4, l1 (an empty unit is structure, not content).
        assert_eq!((c.leaf_blocks, c.visible_leaf_blocks), (6, 2));
        assert_eq!(c.visible_leaf_percent, 33.3);
    }
}
