//! `problem`: capa-style problems, as Open edX's capa grades them: multiple choice,
//! checkboxes, dropdowns (`optionresponse`), numerical, text (`stringresponse`), formula and
//! image inputs, several in one problem.
//!
//! - render: the body with its inputs in place (see [`render`]); once answered, the marks.
//! - handler `submit` with `{"answers": {input id: answer}}` (or `{"answer": ...}` when the
//!   problem has one input): marks every input, stores answers, correct map, score and
//!   attempts in the learner's state and publishes `problem_check` with capa's fields.
//!   Answers `{correct, score, max_score, attempts}`. A payload that is no answer is refused
//!   and stores nothing.
//! - handler `grade`: `{earned, possible, answered}`, what grading adds up.
//! - handlers `hint` (the next `<demandhint>`), `show_answer` (answers and solutions, when
//!   `showanswer` allows) and `reset` (where capa allows it: a new seed for `rerandomize`
//!   `always` and `onreset`).
//!
//! Scoring is capa's: each input is worth one point (a partial mark a share of it), and the
//! problem's score is the points earned over the inputs, times its `weight` when it has
//! one.

pub mod calc;
pub mod fields;
pub mod render;
pub mod responses;
pub mod showanswer;
pub mod state;
pub mod submit;

use serde_json::{Value, json};
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, ValidationMessage, View};

use fields::{Fields, input_id};
use showanswer::{answer_available, can_reset, cannot_submit};
use state::{State, seed_for};

pub struct Problem;

/// The fields in the current layout.
fn fields_of(cx: &Context<'_, Fields>) -> Fields {
    cx.fields().clone().normalized()
}

fn state_of(cx: &Context<'_, Fields>) -> BlockResult<State> {
    Ok(cx.state::<State>()?.unwrap_or_default())
}

/// The learner's seed: stored at the first submission, else what it would be.
fn seed_of(cx: &Context<'_, Fields>, f: &Fields, s: &State) -> u64 {
    s.seed
        .unwrap_or_else(|| seed_for(f, &cx.user().id, &cx.usage_id(), s.resets))
}

impl Block for Problem {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = fields_of(cx);
        let s = state_of(cx)?;
        let usage = cx.usage_id();
        let staff = view != View::Student && cx.user().is_staff;
        let html = render::View {
            fields: &f,
            state: &s,
            usage: &usage,
            staff,
        }
        .html();
        Ok(Fragment {
            html,
            title: f.display_name.clone(),
            icon: Some("problem".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = fields_of(cx);
        let mut messages = Vec::new();
        if f.responses.is_empty() {
            messages.push(ValidationMessage::error(
                "The problem has no choices and no responses.",
            ));
        }
        for (r, response) in f.responses.iter().enumerate() {
            if let Some(why) = responses::authoring_problem(response) {
                messages.push(ValidationMessage::error(format!(
                    "Response {}: {why}.",
                    r + 1
                )));
            }
            if let fields::Kind::MultipleChoice { choices } = &response.kind {
                let correct = choices.iter().filter(|c| c.correct).count();
                if correct > 1 {
                    messages.push(ValidationMessage::warning(format!(
                        "A multiple-choice problem has {correct} correct choices; learners can pick only one."
                    )));
                }
            }
        }
        messages
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        let f = fields_of(cx);
        let usage = cx.usage_id();
        match name {
            "submit" => {
                if f.responses.is_empty() {
                    return Err(BlockError::new("the problem has no responses to answer"));
                }
                let raw = submit::answers_of(&f, &usage, &payload).map_err(BlockError::new)?;
                let before = state_of(cx)?;
                if let Some(why) = cannot_submit(&f, &before) {
                    return Err(BlockError::new(why));
                }
                let seed = seed_of(cx, &f, &before);
                let outcome = submit::mark_all(&f, &usage, &raw, seed).map_err(BlockError::new)?;
                let after = submit::next_state(&f, &before, outcome, seed);
                let event = submit::problem_check(&f, &usage, &before, &after, seed);
                cx.set_state(&after)?;
                cx.publish("problem_check", &event)?;
                Ok(json!({
                    "correct": after.correct,
                    "score": after.score,
                    "max_score": after.max_score,
                    "attempts": after.attempts,
                }))
            }
            "grade" => {
                // Earned from the share of points and the current weight, so a weight
                // changed after learners answered never gives more than is possible.
                let state: Option<State> = cx.state()?;
                let fraction = state.as_ref().map_or(0.0, |s| s.fraction(&f));
                Ok(json!({
                    "earned": fraction * f.possible(),
                    "possible": f.possible(),
                    "answered": state.is_some_and(|s| s.attempts > 0),
                }))
            }
            "hint" => {
                if f.hints.is_empty() {
                    return Err(BlockError::new("this problem has no hints"));
                }
                let mut s = state_of(cx)?;
                let index = s.hints_shown % f.hints.len();
                s.hints_shown = index + 1;
                cx.set_state(&s)?;
                cx.publish(
                    "edx.problem.hint.demandhint_displayed",
                    &json!({"module_id": usage, "hint_index": index, "hint_len": f.hints.len(), "hint_text": f.hints[index]}),
                )?;
                Ok(json!({
                    "success": true,
                    "hint_index": index,
                    "hint_len": f.hints.len(),
                    "should_enable_next_hint": index + 1 < f.hints.len(),
                    "msg": render::hints_html(&f.hints, index),
                }))
            }
            "show_answer" => {
                let mut s = state_of(cx)?;
                if !answer_available(&f, &s, cx.user().is_staff) {
                    return Err(BlockError::new(format!(
                        "the answer is not available yet (showanswer: {})",
                        f.showanswer()
                    )));
                }
                s.answer_shown = true;
                cx.set_state(&s)?;
                cx.publish("showanswer", &json!({"problem_id": usage}))?;
                let mut answers = serde_json::Map::new();
                for (r, response) in f.responses.iter().enumerate() {
                    for (i, a) in responses::correct_answers(response).into_iter().enumerate() {
                        answers.insert(input_id(&usage, r, i), json!(a));
                    }
                }
                Ok(json!({"answers": answers, "solutions": f.solutions}))
            }
            "reset" => {
                let before = state_of(cx)?;
                can_reset(&f, &before).map_err(BlockError::new)?;
                let seed = seed_of(cx, &f, &before);
                let mut after = State {
                    attempts: before.attempts,
                    hints_shown: before.hints_shown,
                    resets: before.resets,
                    seed: Some(seed),
                    max_score: f.possible(),
                    ..State::default()
                };
                if matches!(
                    f.rerandomize(),
                    fields::Rerandomize::Always | fields::Rerandomize::OnReset
                ) {
                    after.resets += 1;
                    after.seed = Some(seed_for(&f, &cx.user().id, &usage, after.resets));
                }
                cx.set_state(&after)?;
                cx.publish(
                    "reset_problem",
                    &json!({"problem_id": usage, "old_state": before.capa_view(seed), "new_state": after.capa_view(seed)}),
                )?;
                Ok(json!({"success": true, "attempts": after.attempts, "seed": after.seed}))
            }
            other => Err(BlockError::new(format!(
                "problem has no handler {other:?} (submit, grade, hint, show_answer, reset)"
            ))),
        }
    }
}

xbhost_sdk::export_block!(Problem);

#[cfg(test)]
mod tests;
