//! Text answers (`stringresponse`): equal to the answer or one of its `additional_answer`s
//! (`type="ci"`: ignoring case), or matching one as a regular expression (`type="regexp"`),
//! anchored at both ends as capa does. The author's pattern is compiled with a size limit
//! and the learner's answer is bounded ([`super::MAX_ANSWER_CHARS`]); the regex crate's
//! matching is linear in the answer.

use regex::{Regex, RegexBuilder};

use super::Mark;

/// Longest pattern (all answers joined) compiled.
pub const MAX_PATTERN_CHARS: usize = 2000;
/// Compiled program and lazy DFA bounds (bytes).
const SIZE_LIMIT: usize = 1 << 20;

/// The answers as one anchored regex.
pub fn compile(answers: &[String], case_insensitive: bool) -> Result<Regex, String> {
    let alternatives: Vec<String> = answers
        .iter()
        .map(|a| format!("(?:{})", a.trim()))
        .collect();
    let pattern = format!("^(?:{})$", alternatives.join("|"));
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!(
            "the problem's regular expression is longer than {MAX_PATTERN_CHARS} characters"
        ));
    }
    RegexBuilder::new(&pattern)
        .case_insensitive(case_insensitive)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .nest_limit(64)
        .build()
        .map_err(|e| format!("the problem's regular expression does not compile: {e}"))
}

pub fn mark(
    answers: &[String],
    case_insensitive: bool,
    regexp: bool,
    given: Option<&str>,
) -> Result<Mark, String> {
    let Some(given) = given.map(str::trim).filter(|g| !g.is_empty()) else {
        return Ok(Mark::of(false));
    };
    let correct = if regexp {
        compile(answers, case_insensitive)?.is_match(given)
    } else if case_insensitive {
        let given = given.to_lowercase();
        answers.iter().any(|a| a.trim().to_lowercase() == given)
    } else {
        answers.iter().any(|a| a.trim() == given)
    };
    Ok(Mark::of(correct))
}
