//! `survey`: Open edX's survey XBlock (xblock-poll). Several questions, each answered on
//! the same scale of answers; after answering every question a learner sees how everyone
//! answered, unless `private_results`. Counts per (question, answer) are the block's
//! tallies, shared by all its learners and stored with the learner's answers in one
//! transaction.
//!
//! - handler `submit` with `{"answer": ["<question index>:<answer key>", ...]}` (what the
//!   page's form posts: one checked radio per question) or `{"choices": {question key:
//!   answer key}}`: every question must be answered. Answers `{success,
//!   submissions_count, max_submissions, tally}` and publishes `xblock.survey.submitted`.
//! - handler `get_results`: `{tally: {question: {answer: count}}}` (staff always; learners
//!   after answering and only when results are public); publishes
//!   `xblock.survey.view_results`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xbhost_sdk::html::escape;
use xbhost_sdk::{Block, BlockError, BlockResult, Context, Fragment, ValidationMessage, View};

pub struct Survey;

/// xblock-poll writes questions as `[key, {"label", "img", "img_alt"}]` and answers as
/// `[key, "label"]`; either may be the other shape in older data.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Label {
    Text(String),
    Full {
        #[serde(default)]
        label: String,
    },
}

impl Label {
    fn text(&self) -> &str {
        match self {
            Label::Text(t) => t,
            Label::Full { label } => label,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    pub block_name: Option<String>,
    questions: Option<Vec<(String, Label)>>,
    answers: Option<Vec<(String, Label)>>,
    pub feedback: String,
    /// Times a learner may submit; 0 is unlimited.
    pub max_submissions: u32,
    pub private_results: bool,
}

impl Default for Fields {
    // xblock-poll's defaults.
    fn default() -> Self {
        Fields {
            display_name: None,
            block_name: None,
            questions: None,
            answers: None,
            feedback: String::new(),
            max_submissions: 1,
            private_results: false,
        }
    }
}

impl Fields {
    /// (key, label) of each question.
    pub fn questions(&self) -> Vec<(String, String)> {
        match &self.questions {
            Some(q) => q
                .iter()
                .map(|(k, l)| (k.clone(), l.text().to_string()))
                .collect(),
            None => vec![
                ("enjoy".into(), "Are you enjoying the course?".into()),
                (
                    "recommend".into(),
                    "Would you recommend this course to your friends?".into(),
                ),
                ("learn".into(), "Do you think you will learn a lot?".into()),
            ],
        }
    }

    /// (key, label) of each answer on the scale.
    pub fn answers(&self) -> Vec<(String, String)> {
        match &self.answers {
            Some(a) => a
                .iter()
                .map(|(k, l)| (k.clone(), l.text().to_string()))
                .collect(),
            None => vec![
                ("Y".into(), "Yes".into()),
                ("N".into(), "No".into()),
                ("M".into(), "Maybe".into()),
            ],
        }
    }
}

/// The tally key of one answer to one question: unambiguous whatever the keys hold.
fn tally_key(question: &str, answer: &str) -> String {
    json!([question, answer]).to_string()
}

/// What the survey keeps per learner.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct State {
    /// Question key -> answer key.
    pub choices: BTreeMap<String, String>,
    pub submissions_count: u32,
}

/// The learner's answers from the page's form or an API caller, checked against the
/// questions and the scale: every question answered once, with an answer on the scale.
fn choices_from(payload: &Value, f: &Fields) -> Result<BTreeMap<String, String>, BlockError> {
    let questions = f.questions();
    let answers = f.answers();
    let mut choices = BTreeMap::new();
    if let Some(map) = payload.get("choices").and_then(Value::as_object) {
        for (q, a) in map {
            let a = a
                .as_str()
                .ok_or_else(|| BlockError::new(format!("the answer to {q:?} is not a string")))?;
            choices.insert(q.clone(), a.to_string());
        }
    } else if let Some(list) = payload.get("answer").and_then(Value::as_array) {
        for v in list {
            let v = v
                .as_str()
                .ok_or_else(|| BlockError::new(format!("{v} is not \"<question>:<answer>\"")))?;
            let (index, answer) = v
                .split_once(':')
                .ok_or_else(|| BlockError::new(format!("{v:?} is not \"<question>:<answer>\"")))?;
            let (question, _) = index
                .parse::<usize>()
                .ok()
                .and_then(|i| questions.get(i))
                .ok_or_else(|| BlockError::new(format!("{v:?} names no question")))?;
            if choices
                .insert(question.clone(), answer.to_string())
                .is_some()
            {
                return Err(BlockError::new(format!("{question:?} is answered twice")));
            }
        }
    } else {
        return Err(BlockError::new(
            "submit expects {\"choices\": {question: answer}} or {\"answer\": [\"<question>:<answer>\"]}",
        ));
    }
    for (q, a) in &choices {
        if !questions.iter().any(|(k, _)| k == q) {
            return Err(BlockError::new(format!(
                "{q:?} is not one of this survey's questions"
            )));
        }
        if !answers.iter().any(|(k, _)| k == a) {
            return Err(BlockError::new(format!(
                "{a:?} is not one of this survey's answers"
            )));
        }
    }
    if let Some((q, label)) = questions.iter().find(|(k, _)| !choices.contains_key(k)) {
        return Err(BlockError::new(format!(
            "every question needs an answer: {q:?} ({label}) has none"
        )));
    }
    Ok(choices)
}

/// question -> answer -> count, from the block's tallies.
fn results(cx: &Context<'_, Fields>) -> BlockResult<BTreeMap<String, BTreeMap<String, i64>>> {
    let tallies = cx.tallies()?;
    let f = cx.fields();
    let mut out = BTreeMap::new();
    for (q, _) in f.questions() {
        let row: BTreeMap<String, i64> = f
            .answers()
            .into_iter()
            .map(|(a, _)| {
                let n = tallies.get(&tally_key(&q, &a)).copied().unwrap_or(0);
                (a, n)
            })
            .collect();
        out.insert(q, row);
    }
    Ok(out)
}

impl Block for Survey {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let state: State = cx.state()?.unwrap_or_default();
        let (questions, answers) = (f.questions(), f.answers());
        let answered = !state.choices.is_empty();
        let can_submit = f.max_submissions == 0 || state.submissions_count < f.max_submissions;
        let name = f.display_name.clone().or_else(|| f.block_name.clone());
        let mut html = String::from("<div class=\"survey\">");
        if let Some(name) = &name {
            html.push_str(&format!(
                "<h3 class=\"survey-header\">{}</h3>",
                escape(name)
            ));
        }
        if can_submit {
            html.push_str("<form class=\"survey-form\" data-handler=\"submit\"><table class=\"survey-table\"><thead><tr><th></th>");
            for (_, label) in &answers {
                html.push_str(&format!("<th scope=\"col\">{}</th>", escape(label)));
            }
            html.push_str("</tr></thead><tbody>");
            for (qi, (qk, qlabel)) in questions.iter().enumerate() {
                html.push_str(&format!("<tr><th scope=\"row\">{}</th>", escape(qlabel)));
                for (ak, alabel) in &answers {
                    let checked = state.choices.get(qk) == Some(ak);
                    html.push_str(&format!(
                        "<td><input type=\"radio\" name=\"q{qi}\" value=\"{qi}:{}\" aria-label=\"{}\"{}></td>",
                        escape(ak),
                        escape(alabel),
                        if checked { " checked" } else { "" }
                    ));
                }
                html.push_str("</tr>");
            }
            html.push_str("</tbody></table><button type=\"submit\">Submit</button></form>");
        }
        if answered && !f.feedback.is_empty() {
            html.push_str(&format!(
                "<div class=\"survey-feedback\">{}</div>",
                escape(&f.feedback)
            ));
        }
        let staff = view != View::Student;
        if staff || (answered && !f.private_results) {
            let results = results(cx)?;
            html.push_str("<table class=\"survey-results\"><thead><tr><th></th>");
            for (_, label) in &answers {
                html.push_str(&format!("<th scope=\"col\">{}</th>", escape(label)));
            }
            html.push_str("</tr></thead><tbody>");
            for (qk, qlabel) in &questions {
                html.push_str(&format!("<tr><th scope=\"row\">{}</th>", escape(qlabel)));
                let row = &results[qk];
                let total: i64 = row.values().map(|n| (*n).max(0)).sum();
                for (ak, _) in &answers {
                    let n = row[ak].max(0);
                    let percent = if total > 0 { n * 100 / total } else { 0 };
                    let mine = state.choices.get(qk) == Some(ak);
                    html.push_str(&format!(
                        "<td class=\"survey-result{}\">{percent}% ({n})</td>",
                        if mine { " survey-mine" } else { "" }
                    ));
                }
                html.push_str("</tr>");
            }
            html.push_str("</tbody></table>");
            if staff && f.private_results {
                html.push_str(
                    "<p class=\"survey-note\">Results are private: learners do not see them.</p>",
                );
            }
        } else if answered {
            html.push_str("<p class=\"survey-note\">Thank you for your answers.</p>");
        }
        html.push_str("</div>");
        Ok(Fragment {
            html,
            title: name,
            icon: Some("other".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let f = cx.fields();
        let mut messages = Vec::new();
        if f.questions().is_empty() {
            messages.push(ValidationMessage::error("The survey has no questions."));
        }
        if f.answers().len() < 2 {
            messages.push(ValidationMessage::error(
                "The survey needs at least two answers.",
            ));
        }
        let cells = f.questions().len() * f.answers().len();
        if cells > 256 {
            messages.push(ValidationMessage::error(format!(
                "{cells} question and answer pairs: the host counts at most 256 per block"
            )));
        }
        messages
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        let f = cx.fields();
        match name {
            "submit" => {
                let choices = choices_from(&payload, f)?;
                let before: State = cx.state()?.unwrap_or_default();
                if f.max_submissions != 0 && before.submissions_count >= f.max_submissions {
                    return Err(BlockError::new(format!(
                        "you have already submitted the most times this survey allows ({})",
                        f.max_submissions
                    )));
                }
                for (q, a) in &before.choices {
                    if choices.get(q) != Some(a) {
                        cx.add_tally(&tally_key(q, a), -1)?;
                    }
                }
                for (q, a) in &choices {
                    if before.choices.get(q) != Some(a) {
                        cx.add_tally(&tally_key(q, a), 1)?;
                    }
                }
                let state = State {
                    choices: choices.clone(),
                    submissions_count: before.submissions_count + 1,
                };
                cx.set_state(&state)?;
                cx.publish("xblock.survey.submitted", &json!({ "choices": choices }))?;
                let mut answer = json!({
                    "success": true,
                    "submissions_count": state.submissions_count,
                    "max_submissions": f.max_submissions,
                    "feedback": f.feedback,
                });
                if !f.private_results {
                    answer["tally"] = json!(results(cx)?);
                }
                Ok(answer)
            }
            "get_results" => {
                let state: State = cx.state()?.unwrap_or_default();
                let staff = cx.user().is_staff;
                if !staff && f.private_results {
                    return Err(BlockError::new("this survey's results are private"));
                }
                if !staff && state.choices.is_empty() {
                    return Err(BlockError::new("results are shown after you answer"));
                }
                cx.publish("xblock.survey.view_results", &json!({}))?;
                Ok(json!({ "tally": results(cx)? }))
            }
            other => Err(BlockError::new(format!(
                "survey has no handler {other:?} (submit, get_results)"
            ))),
        }
    }
}

xbhost_sdk::export_block!(Survey);

#[cfg(test)]
mod tests {
    use super::Survey;
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    #[test]
    fn the_page_s_answers_are_counted_per_question_and_shown_after_answering() {
        let host = TestHost::new("survey", "s").with_tallies([(r#"["enjoy","Y"]"#, 4)]);
        let page = host.render::<Survey>(View::Student).unwrap().html;
        assert!(page.contains("Are you enjoying the course?") && page.contains("Maybe"));
        assert!(page.contains("value=\"0:Y\"") && !page.contains("survey-results"));
        let answer = host
            .handle::<Survey>("submit", json!({"answer": ["0:Y", "1:N", "2:M"]}))
            .unwrap();
        assert_eq!(answer["tally"]["enjoy"], json!({"Y": 5, "N": 0, "M": 0}));
        assert_eq!(answer["tally"]["learn"]["M"], 1);
        assert_eq!(host.events()[0].0, "xblock.survey.submitted");
        let page = host.render::<Survey>(View::Student).unwrap().html;
        assert!(
            page.contains("survey-results") && page.contains("100% (5)"),
            "{page}"
        );
        assert!(!page.contains("survey-form"), "one submission by default");
    }

    #[test]
    fn every_question_must_be_answered_on_the_scale_and_nothing_is_stored_otherwise() {
        let host = TestHost::new("survey", "s");
        for payload in [
            json!({"answer": ["0:Y", "1:N"]}),
            json!({"answer": ["0:Y", "0:N", "2:M"]}),
            json!({"answer": ["0:Q", "1:N", "2:M"]}),
            json!({"answer": ["9:Y", "1:N", "2:M"]}),
            json!({"choices": {"enjoy": "Y", "recommend": "N", "nope": "M"}}),
            json!({"answer": [1, 2, 3]}),
            json!("nothing"),
        ] {
            assert!(
                host.handle::<Survey>("submit", payload.clone()).is_err(),
                "{payload}"
            );
        }
        assert!(host.stored_state().is_none() && host.stored_tallies().is_empty());
        assert!(host.handle::<Survey>("get_results", json!({})).is_err());
    }

    #[test]
    fn resubmitting_moves_the_counts() {
        let host = TestHost::new("survey", "s").fields(json!({
            "questions": [["q", {"label": "Good?", "img": "", "img_alt": ""}]],
            "answers": [["Y", "Yes"], ["N", "No"]],
            "max_submissions": 0,
        }));
        host.handle::<Survey>("submit", json!({"choices": {"q": "Y"}}))
            .unwrap();
        host.handle::<Survey>("submit", json!({"choices": {"q": "N"}}))
            .unwrap();
        let t = host.stored_tallies();
        assert_eq!((t[r#"["q","Y"]"#], t[r#"["q","N"]"#]), (0, 1));
    }
}
