//! `problem`: multiple-choice (one answer) and checkbox (several answers) problems.
//!
//! - render: the question and its choices; once answered, the learner's answer and result.
//! - handler `submit` with `{"answer": [choice indices]}` (or a single index): checks the
//!   answer, stores answer, correctness, score and attempts in the learner's state, and
//!   publishes `problem_check` with the outcome. Answers `{correct, score, max_score,
//!   attempts}`.
//! - handler `grade`: `{earned, possible, answered}`, what grading adds up.
//!
//! Scoring is all or nothing, as Open edX does by default: the problem's `weight` (default
//! 1) when the selected choices are exactly the correct ones, else 0.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xbhost_sdk::html::escape;
use xbhost_sdk::{
    Block, BlockError, BlockResult, Context, Fragment, Severity, ValidationMessage, View,
};

pub struct Problem;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    MultipleChoice,
    Checkbox,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Choice {
    /// The choice's text, as authored HTML.
    pub text: String,
    pub correct: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    /// The question, as authored HTML.
    pub question: String,
    pub kind: Kind,
    pub choices: Vec<Choice>,
    /// Points for a correct answer (default 1).
    pub weight: Option<f64>,
    /// Submissions allowed (default: unlimited).
    pub max_attempts: Option<u32>,
}

impl Fields {
    fn max_score(&self) -> f64 {
        self.weight.unwrap_or(1.0)
    }

    fn correct(&self) -> BTreeSet<usize> {
        self.choices
            .iter()
            .enumerate()
            .filter(|(_, c)| c.correct)
            .map(|(i, _)| i)
            .collect()
    }
}

/// What the problem keeps per learner.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct State {
    pub answer: Vec<usize>,
    pub correct: bool,
    pub score: f64,
    pub max_score: f64,
    pub attempts: u32,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Answer {
    One(usize),
    Many(Vec<usize>),
}

#[derive(Debug, Deserialize)]
struct Submission {
    answer: Answer,
}

impl Block for Problem {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, _view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let state: Option<State> = cx.state()?;
        let usage = escape(&cx.usage_id());
        let input = match f.kind {
            Kind::MultipleChoice => "radio",
            Kind::Checkbox => "checkbox",
        };
        let mut html = String::from("<div class=\"problem\">");
        if let Some(name) = &f.display_name {
            html.push_str(&format!(
                "<h3 class=\"problem-header\">{}</h3>",
                escape(name)
            ));
        }
        html.push_str(&format!("<div class=\"question\">{}</div>", f.question));
        // The page script posts to the block whose wrapper holds the form.
        html.push_str("<form class=\"choices\" data-handler=\"submit\">");
        for (i, choice) in f.choices.iter().enumerate() {
            let checked = state.as_ref().is_some_and(|s| s.answer.contains(&i));
            html.push_str(&format!(
                "<label class=\"choice\"><input type=\"{input}\" name=\"{usage}\" value=\"{i}\"{}> {}</label>",
                if checked { " checked" } else { "" },
                choice.text
            ));
        }
        html.push_str("<button type=\"submit\">Submit</button></form>");
        if let Some(s) = &state {
            html.push_str(&format!(
                "<p class=\"result {}\">{} ({} / {} points, attempt {})</p>",
                if s.correct { "correct" } else { "incorrect" },
                if s.correct { "Correct" } else { "Incorrect" },
                s.score,
                s.max_score,
                s.attempts
            ));
        }
        html.push_str("</div>");
        Ok(Fragment {
            html,
            title: f.display_name.clone(),
            icon: Some("problem".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = cx.fields();
        let mut messages = Vec::new();
        let correct = f.correct().len();
        if f.choices.is_empty() {
            messages.push(ValidationMessage::error("The problem has no choices."));
        } else if correct == 0 {
            messages.push(ValidationMessage::error("No choice is marked correct."));
        } else if f.kind == Kind::MultipleChoice && correct > 1 {
            messages.push(ValidationMessage {
                severity: Severity::Warning,
                text: format!("A multiple-choice problem has {correct} correct choices; learners can pick only one."),
            });
        }
        messages
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        let f = cx.fields();
        match name {
            "submit" => {
                let submission: Submission = serde_json::from_value(payload).map_err(|e| {
                    BlockError::new(format!(
                        "submit expects {{\"answer\": [choice indices]}}: {e}"
                    ))
                })?;
                let answer: BTreeSet<usize> = match submission.answer {
                    Answer::One(i) => BTreeSet::from([i]),
                    Answer::Many(v) => v.into_iter().collect(),
                };
                if let Some(bad) = answer.iter().find(|&&i| i >= f.choices.len()) {
                    return Err(BlockError::new(format!(
                        "choice {bad} does not exist: the problem has {} choices",
                        f.choices.len()
                    )));
                }
                if answer.is_empty() {
                    return Err(BlockError::new("the answer selects no choice"));
                }
                if f.kind == Kind::MultipleChoice && answer.len() > 1 {
                    return Err(BlockError::new(
                        "a multiple-choice problem takes exactly one choice",
                    ));
                }
                let before: State = cx.state()?.unwrap_or_default();
                if let Some(max) = f.max_attempts
                    && before.attempts >= max
                {
                    return Err(BlockError::new(format!("no attempts left (of {max})")));
                }
                let correct = answer == f.correct();
                let state = State {
                    answer: answer.into_iter().collect(),
                    correct,
                    score: if correct { f.max_score() } else { 0.0 },
                    max_score: f.max_score(),
                    attempts: before.attempts + 1,
                };
                cx.set_state(&state)?;
                let outcome = json!({
                    "answers": state.answer,
                    "correct": state.correct,
                    "score": state.score,
                    "max_score": state.max_score,
                    "attempts": state.attempts,
                });
                cx.publish("problem_check", &outcome)?;
                Ok(json!({
                    "correct": state.correct,
                    "score": state.score,
                    "max_score": state.max_score,
                    "attempts": state.attempts,
                }))
            }
            "grade" => {
                // Earned from correctness and the current weight, so a weight changed after
                // learners answered never gives more than is possible.
                let state: Option<State> = cx.state()?;
                let correct = state.as_ref().is_some_and(|s| s.correct);
                Ok(json!({
                    "earned": if correct { f.max_score() } else { 0.0 },
                    "possible": f.max_score(),
                    "answered": state.is_some(),
                }))
            }
            other => Err(BlockError::new(format!(
                "problem has no handler {other:?} (submit, grade)"
            ))),
        }
    }
}

xbhost_sdk::export_block!(Problem);

#[cfg(test)]
mod tests {
    use super::Problem;
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    fn checkbox() -> TestHost {
        TestHost::new("problem", "p1").fields(json!({
            "display_name": "Checks",
            "question": "<p>Pick the even numbers</p>",
            "kind": "checkbox",
            "choices": [{"text": "1"}, {"text": "2", "correct": true}, {"text": "4", "correct": true}],
            "weight": 2.0
        }))
    }

    #[test]
    fn submit_scores_all_or_nothing_stores_state_and_publishes_problem_check() {
        let host = checkbox();
        let wrong = host
            .handle::<Problem>("submit", json!({"answer": [1]}))
            .unwrap();
        assert_eq!(
            wrong,
            json!({"correct": false, "score": 0.0, "max_score": 2.0, "attempts": 1})
        );
        let right = host
            .handle::<Problem>("submit", json!({"answer": [2, 1]}))
            .unwrap();
        assert_eq!(
            right,
            json!({"correct": true, "score": 2.0, "max_score": 2.0, "attempts": 2})
        );
        let events = host.events();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].0, "problem_check");
        assert_eq!(events[1].1["correct"], true);
        assert_eq!(
            host.handle::<Problem>("grade", json!(null)).unwrap()["earned"],
            2.0
        );
        let page = host.render::<Problem>(View::Student).unwrap();
        assert!(page.html.contains("value=\"1\" checked"));
        assert!(page.html.contains("Correct (2 / 2 points, attempt 2)"));
        assert_eq!(page.icon.as_deref(), Some("problem"));
    }

    #[test]
    fn grade_follows_the_current_weight() {
        let host = checkbox();
        host.handle::<Problem>("submit", json!({"answer": [1, 2]}))
            .unwrap();
        let reweighted = TestHost::new("problem", "p1")
            .fields(json!({"kind": "checkbox", "weight": 0.5, "choices": [{"text": "1"}, {"text": "2", "correct": true}, {"text": "4", "correct": true}]}))
            .with_state(host.stored_state().unwrap());
        assert_eq!(
            reweighted.handle::<Problem>("grade", json!(null)).unwrap(),
            json!({"earned": 0.5, "possible": 0.5, "answered": true})
        );
    }

    #[test]
    fn bad_answers_are_errors_and_store_nothing() {
        let host = checkbox();
        assert!(
            host.handle::<Problem>("submit", json!({"answer": [7]}))
                .unwrap_err()
                .0
                .contains("choice 7 does not exist")
        );
        assert!(
            host.handle::<Problem>("submit", json!({"nope": 1}))
                .is_err()
        );
        assert!(
            host.handle::<Problem>("submit", json!({"answer": []}))
                .is_err()
        );
        assert!(host.stored_state().is_none());
        let grade = host.handle::<Problem>("grade", json!(null)).unwrap();
        assert_eq!(
            grade,
            json!({"earned": 0.0, "possible": 2.0, "answered": false})
        );
    }

    #[test]
    fn multiple_choice_takes_one_answer_and_limits_attempts() {
        let host = TestHost::new("problem", "p2").fields(json!({
            "question": "2+2?",
            "choices": [{"text": "3"}, {"text": "4", "correct": true}],
            "max_attempts": 1
        }));
        assert!(
            host.handle::<Problem>("submit", json!({"answer": [0, 1]}))
                .is_err()
        );
        assert_eq!(
            host.handle::<Problem>("submit", json!({"answer": 1}))
                .unwrap()["correct"],
            true
        );
        assert!(
            host.handle::<Problem>("submit", json!({"answer": 1}))
                .unwrap_err()
                .0
                .contains("no attempts left")
        );
    }
}
