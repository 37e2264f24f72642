//! Access and reachability: content-group restrictions (`group_access`) on a block for the
//! request's user, and whether a block named directly (render, handlers) can be reached
//! from the top of the course. Owns no state; it asks its caller for groups and for
//! visible children, so it never calls a block itself.

use anyhow::Result;

use super::request::Request;
use crate::model::Group;
use crate::runtime::bindings::types::HostError;

/// What content-group restrictions say about a block for the current user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No restriction.
    Open,
    /// Restricted, and the user is in an allowed group; the label says to whom.
    Restricted(String),
    /// Restricted to groups a staff member is not in: shown to staff, marked.
    DeniedStaff(String),
    /// Restricted to groups the learner is not in.
    Denied,
}

/// Whether the user may see a block: every content-group restriction on it names a
/// group the user is in (for random partitions the group is assigned as usual; for
/// cohorts it is the one staff put them in). Restrictions on a partition the course no
/// longer has, or an inactive one, are ignored, as Open edX does. Staff see everything,
/// with the restriction described.
pub fn access(
    request: &Request,
    index: usize,
    mut group_for: impl FnMut(u64) -> Result<Option<Group>, HostError>,
) -> Result<Access, HostError> {
    let course = &request.course;
    let mut labels = Vec::new();
    let mut denied = false;
    for (partition_id, groups) in course.restrictions(index) {
        let Some(partition) = course.partition(partition_id) else {
            continue;
        };
        if !partition.active {
            continue;
        }
        let names: Vec<&str> = groups
            .iter()
            .map(|g| {
                partition
                    .group(*g)
                    .map_or("(deleted group)", |g| g.name.as_str())
            })
            .collect();
        labels.push(format!("{}: {}", partition.name, names.join(", ")));
        if !denied {
            let mine = group_for(partition_id)?;
            denied = !mine.is_some_and(|g| groups.contains(&g.id));
        }
    }
    Ok(match (labels.is_empty(), denied, request.user.is_staff) {
        (true, _, _) => Access::Open,
        (false, false, _) => Access::Restricted(labels.join("; ")),
        (false, true, true) => Access::DeniedStaff(labels.join("; ")),
        (false, true, false) => Access::Denied,
    })
}

/// Whether the user can reach the block from the top of the course: it and each of its
/// ancestors pass their content-group restrictions, and each ancestor lists the child on
/// the way down among its `visible-children` (so a split test lets a learner reach only
/// their own condition). Staff reach everything. Used where a caller names a block
/// directly (render, handlers), so a learner cannot open another group's content.
pub fn reachable(
    request: &Request,
    index: usize,
    mut access: impl FnMut(usize) -> Result<Access, HostError>,
    mut visible_children: impl FnMut(usize) -> Result<Vec<String>>,
) -> Result<bool> {
    if request.user.is_staff {
        return Ok(true);
    }
    let course = &request.course;
    let mut child = index;
    loop {
        if access(child).map_err(|e| anyhow::anyhow!("{e:?}"))? == Access::Denied {
            return Ok(false);
        }
        let usage_id = &request.block(child).def.usage_id;
        let Some(parent) = course.parent(usage_id) else {
            return Ok(true);
        };
        let parent = course.block(parent).expect("parents are blocks").index;
        if !visible_children(parent)?.contains(usage_id) {
            return Ok(false);
        }
        child = parent;
    }
}
