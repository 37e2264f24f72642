//! Child rendering: which child a block may render (its own, once per call, within the
//! nesting limit) and in which view, the condition marks the host writes where the
//! course's authored structure makes a child an experiment's condition (staff and author
//! views only, whatever a block claims), and the render tree that says what reached the
//! page (and what failed). Owns the render tree. May not call blocks (the session does) or
//! decide groups (the caller passes the decision in).

use std::collections::HashSet;
use std::sync::Mutex;

use anyhow::Result;

use super::frames::Frames;
use super::request::Request;
use crate::markup::ConditionMark;
use crate::model::{AuthoredCondition, UserPartition};
use crate::request::View;
use crate::runtime::SandboxLimits;
use crate::runtime::bindings::types::HostError;

/// A child a block may render, and the view it gets.
pub struct ChildCall {
    pub index: usize,
    pub depth: u32,
    pub view: View,
}

/// Checks a block's request to render a child: it must own the child, stay within the
/// nesting limit and its deadline, and not have rendered it already in this call; only
/// staff may ask for views other than the student's.
pub fn check_child(
    request: &Request,
    frames: &Frames,
    limits: &SandboxLimits,
    parent: usize,
    depth: u32,
    usage_id: &str,
    view: View,
) -> Result<ChildCall, HostError> {
    let parent = request.block(parent);
    if !parent.def.children.iter().any(|c| c == usage_id) {
        return Err(HostError::NotFound(format!(
            "{usage_id:?} is not a child of {:?}",
            parent.def.usage_id
        )));
    }
    let max_depth = limits.max_render_depth;
    if depth + 1 > max_depth {
        return Err(HostError::LimitExceeded(format!(
            "child rendering is nested deeper than {max_depth} blocks"
        )));
    }
    frames.check_deadline(request)?;
    let index = request
        .course
        .block(usage_id)
        .expect("children of a validated course exist")
        .index;
    frames.mark_rendered(index, usage_id)?;
    let view = if view != View::Student && request.user.is_staff {
        view
    } else {
        View::Student
    };
    Ok(ChildCall {
        index,
        depth: depth + 1,
        view,
    })
}

/// The mark the host writes on a child rendered in `view`: only in staff and author
/// views, and only on a child the course's authored structure makes a condition
/// (`model::Course::condition`). Partition and group with the group's name as the course
/// has it, and whether it is the viewer's own group (`own_group` answers what the viewer
/// would see in a partition).
pub fn condition_mark(
    request: &Request,
    view: View,
    child: usize,
    own_group: impl FnOnce(&UserPartition) -> Result<Option<u64>>,
) -> Result<Option<ConditionMark>> {
    if view == View::Student {
        return Ok(None);
    }
    let Some(AuthoredCondition {
        partition_id,
        group_id,
    }) = request.course.condition(child)
    else {
        return Ok(None);
    };
    let partition = request.course.partition(partition_id);
    let group_name = group_id.and_then(|g| partition?.group(g).map(|g| g.name.clone()));
    let own = match (group_id, partition) {
        (Some(g), Some(p)) if group_name.is_some() => own_group(p)? == Some(g),
        _ => false,
    };
    Ok(Some(ConditionMark {
        partition_id,
        group_id,
        group_name,
        own,
    }))
}

struct Node {
    usage_id: String,
    parent: Option<usize>,
    hidden: bool,
    /// The block failed: its placeholder replaced whatever its children rendered.
    failed: bool,
}

#[derive(Default)]
struct Nodes {
    nodes: Vec<Node>,
    open: Vec<usize>,
}

/// Every block the request rendered, with its parent.
#[derive(Default)]
pub struct RenderTree {
    inner: Mutex<Nodes>,
}

impl RenderTree {
    fn lock(&self) -> std::sync::MutexGuard<'_, Nodes> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block starts rendering, inside the one rendering now (if any).
    pub fn open(&self, usage_id: &str) -> usize {
        let mut t = self.lock();
        let parent = t.open.last().copied();
        t.nodes.push(Node {
            usage_id: usage_id.to_string(),
            parent,
            hidden: false,
            failed: false,
        });
        let node = t.nodes.len() - 1;
        t.open.push(node);
        node
    }

    /// It finished, hidden or failed or neither.
    pub fn close(&self, node: usize, hidden: bool, failed: bool) {
        let mut t = self.lock();
        t.nodes[node].hidden = hidden;
        t.nodes[node].failed = failed;
        t.open.pop();
    }

    /// A child of `parent` (a node) that its parent rendered but did not place on its
    /// page: it is not shown, like a hidden block.
    pub fn not_placed(&self, parent: usize, usage_id: &str) {
        let mut t = self.lock();
        if let Some(n) = t
            .nodes
            .iter_mut()
            .find(|n| n.parent == Some(parent) && n.usage_id == usage_id)
        {
            n.hidden = true;
        }
    }

    /// The usage ids of blocks that failed.
    pub fn failed(&self) -> HashSet<String> {
        self.lock()
            .nodes
            .iter()
            .filter(|n| n.failed)
            .map(|n| n.usage_id.clone())
            .collect()
    }

    /// Blocks on the page: neither it nor an ancestor is hidden, and no ancestor failed
    /// (a failed block's placeholder replaced its children's HTML).
    pub fn visible_blocks(&self) -> Vec<String> {
        let t = self.lock();
        (0..t.nodes.len())
            .filter(|&i| {
                if t.nodes[i].hidden {
                    return false;
                }
                let mut at = t.nodes[i].parent;
                while let Some(n) = at {
                    if t.nodes[n].hidden || t.nodes[n].failed {
                        return false;
                    }
                    at = t.nodes[n].parent;
                }
                true
            })
            .map(|i| t.nodes[i].usage_id.clone())
            .collect()
    }
}
