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

use crate::session::{Access, Session};

/// The block type whose blocks are graded (through their `grade` handler).
pub const GRADED_TYPE: &str = "problem";

/// One problem's result for one learner.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    pub earned: f64,
    pub possible: f64,
}

/// One learner's grade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnerGrade {
    pub user: String,
    /// Every problem the learner sees, in course order; problems they do not see are absent.
    pub problems: BTreeMap<String, Score>,
    pub earned: f64,
    pub possible: f64,
}

/// Grades for a course.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeReport {
    pub course_key: String,
    /// Every problem of the course, in course order.
    pub problems: Vec<String>,
    pub learners: Vec<LearnerGrade>,
}

/// The indexes of the problems the session's user sees, in course order.
pub(crate) fn visible_problems(session: &Arc<Session>) -> Result<Vec<usize>> {
    let course = session.course();
    let mut found = Vec::new();
    let mut stack: Vec<usize> = course.roots().collect();
    stack.reverse();
    while let Some(index) = stack.pop() {
        let block = course.block_at(index);
        let access = session
            .access(index)
            .map_err(|e| anyhow!("checking access to {:?}: {e:?}", block.def.usage_id))?;
        if access == Access::Denied {
            continue;
        }
        if block.def.block_type == GRADED_TYPE {
            found.push(index);
            continue;
        }
        if block.def.children.is_empty() {
            continue;
        }
        let children = session
            .call(
                index,
                0,
                |guest, store| guest.call_visible_children(store),
                |_| Ok(()),
            )
            .map_err(|f| {
                anyhow!(
                    "block {:?} ({}) could not list its visible children: {}",
                    f.usage_id,
                    f.block_type,
                    f.error
                )
            })?;
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
    Ok(found)
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
    /// learner does not see the problem, never 0), then `total` (points earned over what the
    /// learner sees) and `possible`.
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
                row.push(match learner.problems.get(problem) {
                    Some(score) => number(score.earned),
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
            }],
        };
        assert_eq!(
            report.to_csv(),
            "user,p1,\"p,2\",total,possible\r\n\"ann \"\"a\"\"\",1,n/a,1,1\r\n"
        );
    }
}
