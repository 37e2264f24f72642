//! A submission: reading the payload into one answer per input, marking every response,
//! and the `problem_check` event with the fields Open edX emits.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::fields::{Fields, Kind, input_id};
use crate::responses::{self, Correctness, Mark, choice};
use crate::state::{InputMark, State};

/// The payload's answers by input id: `{"answers": {id: answer}}`, or for a problem with
/// one input `{"answer": answer}` (what the page script of a plain form posts).
pub fn answers_of(
    fields: &Fields,
    usage: &str,
    payload: &Value,
) -> Result<BTreeMap<String, Value>, String> {
    let ids: Vec<String> = fields
        .inputs()
        .iter()
        .map(|&(r, i)| input_id(usage, r, i))
        .collect();
    let example = ids.first().map_or("id".to_string(), String::clone);
    let shape = format!("submit expects {{\"answers\": {{\"{example}\": answer, ...}}}}");
    let Some(obj) = payload.as_object() else {
        return Err(format!("{shape}, not {}", kind_of(payload)));
    };
    if let Some(map) = obj.get("answers") {
        let map = map
            .as_object()
            .ok_or_else(|| format!("{shape}: \"answers\" is not an object"))?;
        let mut out = BTreeMap::new();
        for (id, v) in map {
            if !ids.contains(id) {
                return Err(format!(
                    "input {id:?} does not exist: the problem's inputs are {}",
                    ids.join(", ")
                ));
            }
            out.insert(id.clone(), v.clone());
        }
        return Ok(out);
    }
    if let Some(v) = obj.get("answer") {
        if ids.len() != 1 {
            return Err(format!("{shape}: the problem has {} inputs", ids.len()));
        }
        return Ok(BTreeMap::from([(ids[0].clone(), v.clone())]));
    }
    Err(format!(
        "{shape} (or {{\"answer\": ...}} for a problem with one input)"
    ))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The outcome of marking a submission.
pub struct Outcome {
    pub answers: BTreeMap<String, Value>,
    pub marks: BTreeMap<String, Mark>,
    pub raw_earned: f64,
}

/// Normalizes and marks every input. Errors (an answer that is no answer, an input that
/// cannot be graded) refuse the whole submission.
pub fn mark_all(
    fields: &Fields,
    usage: &str,
    raw: &BTreeMap<String, Value>,
    seed: u64,
) -> Result<Outcome, String> {
    let mut answers = BTreeMap::new();
    let mut marks = BTreeMap::new();
    for (r, response) in fields.responses.iter().enumerate() {
        let mut given = Vec::with_capacity(response.input_count());
        for i in 0..response.input_count() {
            let id = input_id(usage, r, i);
            let value = match raw.get(&id) {
                Some(v) => responses::normalize(response, i, v, &id)?,
                None => None,
            };
            if let Some(v) = &value {
                answers.insert(id, v.clone());
            }
            given.push(value);
        }
        for (i, mark) in responses::mark(response, &given, seed, r)?
            .into_iter()
            .enumerate()
        {
            marks.insert(input_id(usage, r, i), mark);
        }
    }
    if answers.is_empty() {
        return Err("the submission answers nothing (it selects no choice and has no text)".into());
    }
    let raw_earned = marks.values().map(|m| m.npoints).sum();
    Ok(Outcome {
        answers,
        marks,
        raw_earned,
    })
}

/// What the learner answered, as they saw it (a choice's text, not its name).
fn visible_answer(kind: &Kind, answer: &Value) -> Value {
    let text = |choices: &[crate::fields::Choice], v: &Value| {
        choice::stored_index(v)
            .and_then(|i| choices.get(i))
            .map_or(v.clone(), |c| json!(c.text))
    };
    match kind {
        Kind::MultipleChoice { choices } => text(choices, answer),
        Kind::Checkbox { choices } => match answer.as_array() {
            Some(a) => Value::Array(a.iter().map(|v| text(choices, v)).collect()),
            None => answer.clone(),
        },
        _ => answer.clone(),
    }
}

/// capa's `problem_check` event (answers, attempts, correct_map, grade, max_grade,
/// problem_id, state before the check, submission, success) plus this host's `correct`,
/// `score` and `max_score` that experiment goals read.
pub fn problem_check(
    fields: &Fields,
    usage: &str,
    before: &State,
    after: &State,
    seed: u64,
) -> Value {
    let mut submission = Map::new();
    for (r, response) in fields.responses.iter().enumerate() {
        for i in 0..response.input_count() {
            let id = input_id(usage, r, i);
            let Some(answer) = after.student_answers.get(&id) else {
                continue;
            };
            let correct = after
                .correct_map
                .get(&id)
                .is_some_and(|m| m.correctness == Correctness::Correct.as_str());
            submission.insert(
                id,
                json!({
                    "question": response.label,
                    "answer": visible_answer(&response.kind, answer),
                    "response_type": response.response_type(),
                    "input_type": response.input_type(),
                    "correct": correct,
                    "variant": if fields.rerandomize() == crate::fields::Rerandomize::Never { json!("") } else { json!(seed) },
                    "group_label": "",
                }),
            );
        }
    }
    json!({
        "problem_id": usage,
        "answers": after.student_answers,
        "attempts": after.attempts,
        "correct_map": after.correct_map,
        "grade": after.raw_earned,
        "max_grade": fields.raw_total(),
        "success": if after.correct { "correct" } else { "incorrect" },
        "submission": submission,
        "state": before.capa_view(seed),
        "correct": after.correct,
        "score": after.score,
        "max_score": after.max_score,
    })
}

/// The state after a marked submission.
pub fn next_state(fields: &Fields, before: &State, outcome: Outcome, seed: u64) -> State {
    let correct_map: BTreeMap<String, InputMark> = outcome
        .marks
        .iter()
        .map(|(k, m)| (k.clone(), InputMark::from(m)))
        .collect();
    let all_correct = outcome
        .marks
        .values()
        .all(|m| m.correctness == Correctness::Correct);
    let total = fields.raw_total();
    let fraction = if total > 0.0 {
        (outcome.raw_earned / total).clamp(0.0, 1.0)
    } else {
        0.0
    };
    // The older `answer` field: the picked indices of a problem that is one choice input.
    let answer = match (fields.responses.as_slice(), outcome.answers.values().next()) {
        ([only], Some(v))
            if matches!(
                only.kind,
                Kind::MultipleChoice { .. } | Kind::Checkbox { .. }
            ) =>
        {
            match v {
                Value::Array(a) => a.iter().filter_map(choice::stored_index).collect(),
                other => choice::stored_index(other).into_iter().collect(),
            }
        }
        _ => Vec::new(),
    };
    State {
        student_answers: outcome.answers,
        correct_map,
        raw_earned: outcome.raw_earned,
        attempts: before.attempts + 1,
        done: true,
        seed: Some(seed),
        resets: before.resets,
        hints_shown: before.hints_shown,
        answer_shown: before.answer_shown,
        answer,
        correct: all_correct,
        score: fraction * fields.possible(),
        max_score: fields.possible(),
    }
}
