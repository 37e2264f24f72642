//! `rate`: RateXBlock (the `rate` entry point of openedx/FeedbackXBlock's `rate/rate.py`),
//! which asks learners to rate a section on a scale and say what could be better.
//!
//! - fields as the XBlock has them: `prompts`, a list of `{freeform, likert, mouseovers,
//!   icons}` (missing keys come from the XBlock's default prompt; by default one prompt,
//!   "What could be improved to make this section more clear?" / "Was this section clear
//!   or confusing?"), and `p`, the percent of learners who see the block (default 100).
//! - which prompt a learner gets, and whether they are among the `p` percent, is drawn as
//!   the XBlock draws it (uniformly), but from a hash of course, block and learner instead
//!   of a stored random number: the same learner always gets the same, with no write.
//! - render: the free-text prompt and box (the learner's text), the likert prompt and the
//!   scale (their vote checked), one Submit button. The host's page script posts the form
//!   as `{"answer": [text, vote?]}` (the box first: it comes first in the page).
//! - handler `feedback`, as the XBlock's: `{"freeform": text, "vote": index}` (either or
//!   both), or the page form's `{"answer": [text, vote?]}` (the text counts when it
//!   changed). Stores `{user_vote, user_freeform}` and publishes the XBlock's events:
//!   `edx.ratexblock.freeform_feedback` (`{old_freeform, new_freeform}`) and
//!   `edx.ratexblock.likert_rate` (`{old_vote, new_vote}`, -1 for none). A vote outside the
//!   scale, text over [`MAX_FREEFORM_BYTES`], or nothing to store is refused, storing
//!   nothing. The XBlock's `vote_aggregate` (votes summed over learners) is not kept.

mod prompt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, ValidationMessage, View};

pub use prompt::{Prompt, PromptFields, draw};

pub struct Rate;

/// Longest free-text answer kept, in bytes (its event carries it twice, old and new).
pub const MAX_FREEFORM_BYTES: usize = 4096;

pub const FREEFORM_EVENT: &str = "edx.ratexblock.freeform_feedback";
pub const LIKERT_EVENT: &str = "edx.ratexblock.likert_rate";

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    pub prompts: Vec<PromptFields>,
    /// Percent of learners who see the block.
    pub p: f64,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            display_name: None,
            prompts: vec![PromptFields::xblock_default()],
            p: 100.0,
        }
    }
}

/// What the block keeps per learner (the XBlock's user-state fields).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct State {
    /// Index on the scale, -1 before the learner votes.
    pub user_vote: i64,
    pub user_freeform: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            user_vote: -1,
            user_freeform: String::new(),
        }
    }
}

/// What one `feedback` call asks to store.
#[derive(Debug, Default, PartialEq)]
struct Feedback {
    freeform: Option<String>,
    vote: Option<i64>,
}

fn the_prompt(cx: &Context<'_, Fields>) -> BlockResult<(Prompt, bool)> {
    let f = cx.fields();
    let (index, percentile) = draw(
        &cx.course_key(),
        &cx.usage_id(),
        &cx.user().id,
        f.prompts.len(),
    )
    .ok_or_else(|| BlockError::new(format!("rate block {:?} has no prompts", cx.usage_id())))?;
    Ok((f.prompts[index].resolve(), percentile < f.p))
}

impl Block for Rate {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let (prompt, shown) = the_prompt(cx)?;
        let title = cx.fields().display_name.clone();
        if !shown && view == View::Student {
            return Ok(Fragment::hidden());
        }
        let state: State = cx.state()?.unwrap_or_default();
        let mut html = String::from("<div class=\"rate_block\"><form data-handler=\"feedback\">");
        html.push_str(&format!(
            "<label class=\"rate_header\">{}<br><textarea class=\"rate_string_area\" rows=\"4\" \
             cols=\"50\" maxlength=\"{MAX_FREEFORM_BYTES}\">{}</textarea></label>",
            escape(&prompt.freeform),
            escape(&state.user_freeform)
        ));
        html.push_str(&format!(
            "<fieldset class=\"rate_likert_scale\"><legend class=\"rate_likert_header\">{}</legend>",
            escape(&prompt.likert)
        ));
        for (i, (level, icon)) in prompt.scale().enumerate() {
            html.push_str(&format!(
                "<label class=\"rate_likert_rating\" title=\"{level}\"><input type=\"radio\" \
                 name=\"rate_scale\" class=\"rate_radio\" value=\"{i}\"{checked}>\
                 <span aria-hidden=\"true\">{icon}</span><span class=\"rate_sr_text\">{level}</span></label>",
                level = escape(level),
                icon = escape(icon),
                checked = if state.user_vote == i as i64 { " checked" } else { "" },
            ));
        }
        html.push_str("</fieldset><button type=\"submit\">Submit</button></form>");
        if state.user_vote >= 0 || !state.user_freeform.is_empty() {
            html.push_str("<p class=\"rate_thanks\">Thank you for your feedback!</p>");
        }
        if view != View::Student && !shown {
            html.push_str(&format!(
                "<p class=\"rate_staff_note\">Learners see this block with probability {}%; \
                 the learner this is rendered for does not.</p>",
                cx.fields().p
            ));
        }
        html.push_str("</div>");
        Ok(Fragment {
            html,
            title,
            icon: Some("other".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = cx.fields();
        let mut out = Vec::new();
        if f.prompts.is_empty() {
            out.push(ValidationMessage::error("The block has no prompts."));
        }
        if !(0.0..=100.0).contains(&f.p) {
            out.push(ValidationMessage::warning(format!(
                "p is {}: a percentage of learners is 0 to 100.",
                f.p
            )));
        }
        out
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        if name != "feedback" {
            return Err(BlockError::new(format!(
                "the rate block has no handler {name:?} (it has feedback)"
            )));
        }
        let (prompt, _) = the_prompt(cx)?;
        let before: State = cx.state()?.unwrap_or_default();
        let asked = parse_feedback(&payload, &before)?;
        let scale = prompt.scale().count() as i64;
        if let Some(v) = asked.vote
            && !(0..scale).contains(&v)
        {
            return Err(BlockError::new(format!(
                "vote {v} is not on the scale: it has {scale} levels, 0 to {}",
                scale - 1
            )));
        }
        if let Some(text) = &asked.freeform
            && text.len() > MAX_FREEFORM_BYTES
        {
            return Err(BlockError::new(format!(
                "the feedback is {} bytes, over the limit of {MAX_FREEFORM_BYTES}",
                text.len()
            )));
        }
        if asked == Feedback::default() {
            return Err(BlockError::new(
                "nothing to submit: choose a rating or write some feedback",
            ));
        }
        let mut after = before.clone();
        if let Some(text) = asked.freeform {
            cx.publish(
                FREEFORM_EVENT,
                &json!({ "old_freeform": before.user_freeform, "new_freeform": text }),
            )?;
            after.user_freeform = text;
        }
        if let Some(vote) = asked.vote {
            cx.publish(
                LIKERT_EVENT,
                &json!({ "old_vote": before.user_vote, "new_vote": vote }),
            )?;
            after.user_vote = vote;
        }
        cx.set_state(&after)?;
        Ok(json!({ "success": true, "vote": after.user_vote, "freeform": after.user_freeform }))
    }
}

/// The feedback a payload carries: the XBlock's `{freeform?, vote?}` or the page form's
/// `{"answer": [text, vote?]}`, whose text counts only when it differs from `before`.
fn parse_feedback(payload: &Value, before: &State) -> BlockResult<Feedback> {
    let expected =
        "feedback expects {\"freeform\": text, \"vote\": index} or {\"answer\": [text, vote]}";
    let bad = || BlockError::new(format!("{expected}, not {}", short(payload)));
    let object = payload.as_object().ok_or_else(bad)?;
    if let Some(answer) = object.get("answer") {
        if object.len() != 1 {
            return Err(bad());
        }
        let items = answer
            .as_array()
            .filter(|a| (1..=2).contains(&a.len()))
            .ok_or_else(bad)?;
        // The page script turns a box holding only a number into that number.
        let text = match &items[0] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(bad()),
        };
        let vote = match items.get(1) {
            None => None,
            Some(v) => Some(v.as_i64().ok_or_else(bad)?),
        };
        return Ok(Feedback {
            freeform: (text != before.user_freeform).then_some(text),
            vote,
        });
    }
    if object.keys().any(|k| k != "freeform" && k != "vote") {
        return Err(bad());
    }
    let freeform = match object.get("freeform") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad()),
    };
    let vote = match object.get("vote") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(bad)?),
    };
    Ok(Feedback { freeform, vote })
}

/// The payload as JSON, cut to 80 characters for the error message.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

xbhost_sdk::export_block!(Rate);

#[cfg(test)]
mod tests;
