//! Grading, one module per response type: each turns a learner's raw answer into capa's
//! stored form (`normalize`, which refuses what cannot be an answer) and marks it
//! (`mark`). [`normalize`] and [`mark`] dispatch on the response's kind.

pub mod choice;
pub mod formula;
pub mod image;
pub mod numerical;
pub mod string;

use serde_json::Value;
use xbhost_sdk::html::escape;

use crate::fields::{Kind, Response};

/// Longest text answer a learner may send (characters).
pub const MAX_ANSWER_CHARS: usize = 1000;

/// capa's correctness of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Correctness {
    Correct,
    PartiallyCorrect,
    Incorrect,
}

impl Correctness {
    pub fn as_str(self) -> &'static str {
        match self {
            Correctness::Correct => "correct",
            Correctness::PartiallyCorrect => "partially-correct",
            Correctness::Incorrect => "incorrect",
        }
    }
}

/// One input's mark: its correctness, its points (of 1) and feedback HTML.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub correctness: Correctness,
    pub npoints: f64,
    pub msg: String,
}

impl Mark {
    pub fn of(correct: bool) -> Mark {
        Mark {
            correctness: if correct {
                Correctness::Correct
            } else {
                Correctness::Incorrect
            },
            npoints: if correct { 1.0 } else { 0.0 },
            msg: String::new(),
        }
    }

    pub fn partial(npoints: f64) -> Mark {
        Mark {
            correctness: Correctness::PartiallyCorrect,
            npoints,
            msg: String::new(),
        }
    }

    pub fn with_msg(mut self, msg: String) -> Mark {
        self.msg = msg;
        self
    }
}

/// A learner's text answer: a string, or a number the page script sent as one; bounded.
pub fn text_of(raw: &Value, what: &str) -> Result<Option<String>, String> {
    let text = match raw {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) if a.len() == 1 => return text_of(&a[0], what),
        other => return Err(format!("{what} expects text, not {other}")),
    };
    if text.chars().count() > MAX_ANSWER_CHARS {
        return Err(format!(
            "the answer to {what} is longer than {MAX_ANSWER_CHARS} characters"
        ));
    }
    Ok((!text.is_empty()).then_some(text))
}

/// The learner's answer to input `input` of `response` in capa's stored form, or `None`
/// when it is empty. An answer that cannot be one is an error naming the input.
pub fn normalize(
    response: &Response,
    input: usize,
    raw: &Value,
    id: &str,
) -> Result<Option<Value>, String> {
    match &response.kind {
        Kind::MultipleChoice { choices } => choice::normalize_one(choices, raw, id),
        Kind::Checkbox { choices } => choice::normalize_many(choices, raw, id),
        Kind::Option { options } => choice::normalize_option(options, raw, id),
        Kind::Numerical { .. } | Kind::String { .. } | Kind::Formula { .. } => {
            Ok(text_of(raw, id)?.map(Value::String))
        }
        Kind::Image { images } => {
            let _ = images
                .get(input)
                .ok_or_else(|| format!("{id} is not an image input"))?;
            image::normalize(raw, id)
        }
    }
}

/// Marks the answers to every input of `response` (`None`: not answered, incorrect).
/// `seed` is the learner's problem seed; `index` the response's place (formula samples).
/// An error is the learner's input that cannot be graded (capa's StudentInputError) or an
/// author's answer that cannot be read: the submission is then refused.
pub fn mark(
    response: &Response,
    answers: &[Option<Value>],
    seed: u64,
    index: usize,
) -> Result<Vec<Mark>, String> {
    let first = answers.first().cloned().flatten();
    let text = first.as_ref().and_then(Value::as_str).map(str::to_string);
    Ok(match &response.kind {
        Kind::MultipleChoice { choices } => vec![choice::mark_one(choices, first.as_ref())],
        Kind::Checkbox { choices } => vec![choice::mark_many(choices, first.as_ref())],
        Kind::Option { options } => vec![choice::mark_option(options, text.as_deref())],
        Kind::Numerical { .. } => vec![numerical::mark(&response.kind, text.as_deref())?],
        Kind::String {
            answers: expected,
            case_insensitive,
            regexp,
        } => vec![string::mark(
            expected,
            *case_insensitive,
            *regexp,
            text.as_deref(),
        )?],
        Kind::Formula {
            answer,
            samples,
            tolerance,
            case_sensitive,
        } => vec![formula::mark(
            answer,
            samples,
            tolerance.as_deref(),
            *case_sensitive,
            text.as_deref(),
            seed.wrapping_add(index as u64),
        )?],
        Kind::Image { images } => images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                let given = answers.get(i).cloned().flatten();
                image::mark(img, given.as_ref().and_then(Value::as_str))
            })
            .collect::<Result<_, _>>()?,
    })
}

/// The correct answer of each input of `response`, as HTML for the learner.
pub fn correct_answers(response: &Response) -> Vec<String> {
    let texts = match &response.kind {
        // Choices are authored HTML.
        Kind::MultipleChoice { choices } | Kind::Checkbox { choices } => {
            return vec![choice::correct_text(choices)];
        }
        Kind::Option { options } => vec![choice::correct_text(options)],
        Kind::Numerical {
            answer,
            additional_answers,
            ..
        } => vec![
            std::iter::once(answer)
                .chain(additional_answers)
                .cloned()
                .collect::<Vec<_>>()
                .join(" or "),
        ],
        Kind::String { answers, .. } => vec![answers.join(" or ")],
        Kind::Formula { answer, .. } => vec![answer.clone()],
        Kind::Image { images } => images
            .iter()
            .map(|i| {
                [i.rectangle.as_deref(), i.regions.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .collect(),
    };
    texts.iter().map(|t| escape(t)).collect()
}

/// What is wrong with a response as authored (for `validate`), if anything.
pub fn authoring_problem(response: &Response) -> Option<String> {
    match &response.kind {
        Kind::MultipleChoice { choices }
        | Kind::Checkbox { choices }
        | Kind::Option { options: choices } => {
            if choices.is_empty() {
                Some("a response has no choices".into())
            } else if !choices.iter().any(|c| c.correct) {
                Some("a response has no choice marked correct".into())
            } else {
                None
            }
        }
        Kind::String {
            answers,
            case_insensitive,
            regexp: true,
        } => string::compile(answers, *case_insensitive).err(),
        Kind::Formula { samples, .. } => formula::parse_samples(samples).err(),
        Kind::Image { images } if images.is_empty() => {
            Some("an image response has no image".into())
        }
        _ => None,
    }
}
