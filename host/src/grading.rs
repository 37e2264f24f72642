//! Grading: each learner is graded only over the problems they can see, found by walking
//! the course through each block's `visible-children` (split tests answer with the
//! learner's condition only) and the host's content-group restrictions.
//!
//! Grading writes nothing: it runs read-only, so a learner who never visited is graded
//! on the groups they would get, and no assignment is stored for them.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use serde::Serialize;

use crate::model::Course;
use crate::session::{Access, Session};

/// The block type whose blocks are graded (through their `grade` handler).
pub const GRADED_TYPE: &str = "problem";

/// One problem's result for one learner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    pub earned: f64,
    pub possible: f64,
}

/// A block that could not be graded for a learner (it failed, or listing its visible
/// children failed), and the problems whose scores are therefore unknown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ungradable {
    pub usage_id: String,
    pub block_type: String,
    pub error: String,
    /// The problems at or under the block (usage ids): not counted, shown as `error`.
    pub problems: Vec<String>,
}

/// One learner's grade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnerGrade {
    pub user: String,
    /// Every problem the learner sees, in course order; problems they do not see are absent.
    pub problems: BTreeMap<String, Score>,
    pub earned: f64,
    pub possible: f64,
    /// Blocks that failed for this learner; the rest of the course is still graded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ungradable: Vec<Ungradable>,
}

/// Grades for a course.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeReport {
    pub course_key: String,
    /// Every problem of the course, in course order.
    pub problems: Vec<String>,
    pub learners: Vec<LearnerGrade>,
}

/// Every problem at or under `index`, in course order.
pub(crate) fn problems_under(course: &Course, index: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![index];
    while let Some(i) = stack.pop() {
        let block = course.block_at(i);
        if block.def.block_type == GRADED_TYPE {
            out.push(block.def.usage_id.clone());
        }
        stack.extend(
            block
                .def
                .children
                .iter()
                .rev()
                .filter_map(|c| course.block(c).map(|b| b.index)),
        );
    }
    out
}

fn ungradable(course: &Course, index: usize, error: String) -> Ungradable {
    let block = course.block_at(index);
    Ungradable {
        usage_id: block.def.usage_id.clone(),
        block_type: block.def.block_type.clone(),
        error,
        problems: problems_under(course, index),
    }
}

/// Grades the session's user: every problem they see, found by walking the course, each
/// scored by its `grade` handler. A block that fails (each call is bounded by one page's
/// time) makes only itself and what is under it ungradable.
pub(crate) fn grade_learner(session: &Arc<Session>) -> LearnerGrade {
    let course = session.course();
    let mut grade = LearnerGrade {
        user: session.user().id.clone(),
        problems: BTreeMap::new(),
        earned: 0.0,
        possible: 0.0,
        ungradable: Vec::new(),
    };
    let mut stack: Vec<usize> = course.roots().collect();
    stack.reverse();
    while let Some(index) = stack.pop() {
        let block = course.block_at(index);
        let access = match session.access(index) {
            Ok(access) => access,
            Err(e) => {
                let why = format!("checking access failed: {e:?}");
                grade.ungradable.push(ungradable(course, index, why));
                continue;
            }
        };
        if access == Access::Denied {
            continue;
        }
        if block.def.block_type == GRADED_TYPE {
            match score(session, index) {
                Ok(score) => {
                    grade.earned += score.earned;
                    grade.possible += score.possible;
                    grade.problems.insert(block.def.usage_id.clone(), score);
                }
                Err(e) => grade
                    .ungradable
                    .push(ungradable(course, index, format!("{e:#}"))),
            }
            continue;
        }
        if block.def.children.is_empty() {
            continue;
        }
        let children = match session.call(
            index,
            0,
            |guest, store| guest.call_visible_children(store),
            |_| Ok(()),
        ) {
            Ok(children) => session.picked_only(index, children),
            Err(f) => {
                let why = format!("it could not list its visible children: {}", f.error);
                grade.ungradable.push(ungradable(course, index, why));
                continue;
            }
        };
        // Only real children count, in the block's own order.
        let own = &block.def.children;
        let mut next: Vec<usize> = own
            .iter()
            .filter(|c| children.contains(c))
            .filter_map(|c| course.block(c).map(|b| b.index))
            .collect();
        next.reverse();
        stack.extend(next);
    }
    grade
}

/// A problem's score for the session's user, from its `grade` handler.
pub(crate) fn score(session: &Arc<Session>, index: usize) -> Result<Score> {
    let answer = session
        .call(
            index,
            0,
            |guest, store| guest.call_handle(store, "grade", "null"),
            |_| Ok(()),
        )
        .map_err(|f| anyhow!("grading {:?} failed: {}", f.usage_id, f.error))?;
    let v: serde_json::Value = serde_json::from_str(&answer)?;
    let number = |k: &str| {
        v[k].as_f64().ok_or_else(|| {
            anyhow!(
                "the grade handler of {:?} answered without {k:?}: {v}",
                session.block(index).def.usage_id
            )
        })
    };
    Ok(Score {
        earned: number("earned")?,
        possible: number("possible")?,
    })
}

impl GradeReport {
    /// CSV: a `user` column, one column per problem headed by its usage id (`n/a` where the
    /// learner does not see the problem, never 0; `error` where it could not be graded),
    /// then `total` (points earned over what the learner sees and could be graded) and
    /// `possible`.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = std::iter::once("user".to_string())
            .chain(self.problems.iter().cloned())
            .chain(["total".to_string(), "possible".to_string()])
            .collect();
        push_row(&mut out, &header);
        for learner in &self.learners {
            let mut row = vec![learner.user.clone()];
            for problem in &self.problems {
                let unknown = learner
                    .ungradable
                    .iter()
                    .any(|u| u.problems.contains(problem));
                row.push(match learner.problems.get(problem) {
                    Some(score) => number(score.earned),
                    None if unknown => "error".to_string(),
                    None => "n/a".to_string(),
                });
            }
            row.push(number(learner.earned));
            row.push(number(learner.possible));
            push_row(&mut out, &row);
        }
        out
    }
}

fn number(x: f64) -> String {
    format!("{x}")
}

/// Appends a CSV row (RFC 4180 quoting).
fn push_row(out: &mut String, cells: &[String]) {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    out.push_str(&quoted.join(","));
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_marks_unseen_problems_n_a_and_quotes_cells() {
        let report = GradeReport {
            course_key: "c".into(),
            problems: vec!["p1".into(), "p,2".into()],
            learners: vec![LearnerGrade {
                user: "ann \"a\"".into(),
                problems: BTreeMap::from([(
                    "p1".to_string(),
                    Score {
                        earned: 1.0,
                        possible: 1.0,
                    },
                )]),
                earned: 1.0,
                possible: 1.0,
                ungradable: Vec::new(),
            }],
        };
        assert_eq!(
            report.to_csv(),
            "user,p1,\"p,2\",total,possible\r\n\"ann \"\"a\"\"\",1,n/a,1,1\r\n"
        );
    }
}
