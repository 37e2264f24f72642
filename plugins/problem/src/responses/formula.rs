//! Formula answers (`formularesponse`), graded as capa does: the learner's expression and
//! the author's are evaluated at sampled values of the variables and must agree within the
//! tolerance at every sample. `samples="x,y@1,1:5,5#10"` draws 10 points with x and y each
//! uniform between its low (before `:`) and high bound. The draw is deterministic from the
//! learner's problem seed (see `rerandomize`), so a regrade sees the same points.

use std::collections::BTreeMap;

use super::Mark;
use crate::calc::{self, DEFAULT_TOLERANCE, within_tolerance};

/// Most samples and variables a problem may ask for.
pub const MAX_SAMPLES: usize = 100;
pub const MAX_VARIABLES: usize = 20;

/// The sampled variables: name, low, high; and the number of samples.
pub struct Samples {
    pub vars: Vec<(String, f64, f64)>,
    pub count: usize,
}

pub fn parse_samples(samples: &str) -> Result<Samples, String> {
    let bad = |why: &str| {
        format!("the problem's samples {samples:?} {why} (expected like x,y@1,1:5,5#10)")
    };
    let (names, rest) = samples.split_once('@').ok_or_else(|| bad("have no '@'"))?;
    let (ranges, count) = rest.split_once('#').ok_or_else(|| bad("have no '#'"))?;
    let count: usize = count
        .trim()
        .parse()
        .map_err(|_| bad("have no number of samples"))?;
    if count == 0 || count > MAX_SAMPLES {
        return Err(bad(&format!(
            "ask for {count} samples (1 to {MAX_SAMPLES})"
        )));
    }
    let names: Vec<String> = names
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names.len() > MAX_VARIABLES {
        return Err(bad(&format!("have more than {MAX_VARIABLES} variables")));
    }
    let (lows, highs) = ranges
        .split_once(':')
        .ok_or_else(|| bad("have no ':' between low and high values"))?;
    let nums = |s: &str| -> Result<Vec<f64>, String> {
        s.split(',')
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| bad("have a bound that is not a number"))
            })
            .collect()
    };
    let (lows, highs) = (nums(lows)?, nums(highs)?);
    if lows.len() != names.len() || highs.len() != names.len() {
        return Err(bad("do not give one low and one high value per variable"));
    }
    Ok(Samples {
        vars: names
            .into_iter()
            .zip(lows)
            .zip(highs)
            .map(|((n, l), h)| (n, l, h))
            .collect(),
        count,
    })
}

/// splitmix64: a small, well-known generator; enough for spreading sample points.
fn next(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The sample points for `seed`.
pub fn points(samples: &Samples, seed: u64) -> Vec<BTreeMap<String, f64>> {
    let mut state = seed;
    (0..samples.count)
        .map(|_| {
            samples
                .vars
                .iter()
                .map(|(name, lo, hi)| (name.clone(), lo + (hi - lo) * next(&mut state)))
                .collect()
        })
        .collect()
}

pub fn mark(
    answer: &str,
    samples: &str,
    tolerance: Option<&str>,
    case_sensitive: bool,
    given: Option<&str>,
    seed: u64,
) -> Result<Mark, String> {
    let Some(given) = given else {
        return Ok(Mark::of(false));
    };
    let samples = parse_samples(samples)?;
    let tolerance = tolerance.unwrap_or(DEFAULT_TOLERANCE);
    for point in points(&samples, seed) {
        let instructor = calc::evaluate(answer, &point, case_sensitive)
            .map_err(|e| format!("the problem's formula {answer:?} cannot be evaluated: {e}"))?;
        let student = calc::evaluate(given, &point, case_sensitive)
            .map_err(|e| format!("Invalid input: {e}"))?;
        if !within_tolerance(student, instructor, tolerance)? {
            return Ok(Mark::of(false));
        }
    }
    Ok(Mark::of(true))
}
