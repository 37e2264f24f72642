//! Numerical answers (`numericalresponse`), graded as capa does: the learner's answer is
//! an expression of numbers ([`crate::calc`]); it is correct within the tolerance of the
//! answer (`responseparam type="tolerance"`, absolute or `N%`, default `0.001%`), or inside
//! a range answer (`[a, b)`: `[`/`]` include the bound). `partial_credit="close"` gives half
//! within `partial_range` (default 2) times the tolerance or range; `"list"` half for the
//! `partial_answers`; both, a quarter near a partial answer. An `additional_answer` equal
//! to the learner's value is correct.

use std::collections::BTreeMap;

use super::Mark;
use crate::calc::{self, DEFAULT_TOLERANCE, within_tolerance};
use crate::fields::Kind;

fn staff(answer: &str) -> Result<f64, String> {
    calc::evaluate(answer, &BTreeMap::new(), true)
        .map_err(|e| format!("the problem's answer {answer:?} is not a number: {e}"))
}

/// A bound of a range answer and whether it is included.
type Bound = (f64, bool);

/// A range answer's bounds and whether each is included.
fn range(answer: &str) -> Option<Result<(Bound, Bound), String>> {
    let a = answer.trim();
    let open = a.chars().next().filter(|c| *c == '[' || *c == '(')?;
    let close = a.chars().last().filter(|c| *c == ']' || *c == ')')?;
    let inner = &a[1..a.len() - 1];
    let Some((lo, hi)) = inner.split_once(',') else {
        return Some(Err(format!(
            "the problem's range answer {answer:?} is not [a, b]"
        )));
    };
    Some((|| {
        Ok(((staff(lo)?, open == '['), (staff(hi)?, close == ']')))
    })())
}

/// Scales a tolerance (`5` or `5%`) by `factor`.
fn scaled(tolerance: &str, factor: f64) -> Result<String, String> {
    Ok(match tolerance.trim().strip_suffix('%') {
        Some(p) => format!("{}%", staff(p)? * factor),
        None => format!("{}", staff(tolerance)? * factor),
    })
}

pub fn mark(kind: &Kind, given: Option<&str>) -> Result<Mark, String> {
    let Kind::Numerical {
        answer,
        tolerance,
        additional_answers,
        partial_credit,
        partial_answers,
        partial_range,
    } = kind
    else {
        return Err("not a numerical response".into());
    };
    let Some(given) = given else {
        return Ok(Mark::of(false));
    };
    let student = calc::evaluate(given, &BTreeMap::new(), true)
        .map_err(|e| format!("Could not interpret '{given}' as a number: {e}"))?;
    let close = partial_credit.iter().any(|c| c == "close");
    let list = partial_credit.iter().any(|c| c == "list");
    let factor = partial_range.unwrap_or(2.0);
    let tolerance = tolerance.as_deref().unwrap_or(DEFAULT_TOLERANCE);
    let mut mark = Mark::of(false);
    if let Some(bounds) = range(answer) {
        let ((lo, lo_in), (hi, hi_in)) = bounds?;
        let at = |b: f64| {
            within_tolerance(student, b, &format!("{}", f64::EPSILON)).unwrap_or(false)
                || student == b
        };
        if at(lo) {
            mark = Mark::of(lo_in);
        } else if at(hi) {
            mark = Mark::of(hi_in);
        } else if lo < student && student < hi {
            mark = Mark::of(true);
        } else if close {
            let width = hi - lo;
            if lo - factor * width < student && student < hi + factor * width {
                mark = Mark::partial(0.5);
            }
        }
    } else {
        let correct = staff(answer)?;
        let expanded = scaled(tolerance, factor)?;
        if within_tolerance(student, correct, tolerance)? {
            mark = Mark::of(true);
        } else if list {
            for value in partial_answers {
                let value = staff(value)?;
                if within_tolerance(student, value, tolerance)? {
                    mark = Mark::partial(0.5);
                    break;
                } else if close {
                    if within_tolerance(student, correct, &expanded)? {
                        mark = Mark::partial(0.5);
                        break;
                    } else if within_tolerance(student, value, &expanded)? {
                        mark = Mark::partial(0.25);
                        break;
                    }
                }
            }
        } else if close && within_tolerance(student, correct, &expanded)? {
            mark = Mark::partial(0.5);
        }
    }
    if mark.npoints == 0.0 {
        for extra in additional_answers {
            if staff(extra)? == student {
                return Ok(Mark::of(true));
            }
        }
    }
    Ok(mark)
}
