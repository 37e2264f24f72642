//! `poll`: Open edX's poll XBlock (xblock-poll). One question, a list of answers; a
//! learner votes (and may change their vote while `max_submissions` allows), and after
//! voting sees everyone's results, unless `private_results`. The counts are the block's
//! tallies, shared by all its learners and stored with the learner's vote in one
//! transaction (the host's `tallies`), so concurrent votes are never lost.
//!
//! - handler `vote` with `{"answer": [key]}` (what the page's form posts) or
//!   `{"choice": key}`: answers `{success, submissions_count, max_submissions, tally}`
//!   (`tally` absent when results are private) and publishes `xblock.poll.submitted`.
//! - handler `get_results`: `{question, tally, total}` (staff always; learners after voting
//!   and only when results are public), and publishes `xblock.poll.view_results`.
//!
//! The learner's state is `{"choice": key, "submissions_count": n}`: `conditional` blocks
//! read `choice` (Open edX's `poll_answer` and `voted`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use xbhost_sdk::html::escape;
use xbhost_sdk::{
    Block, BlockError, BlockResult, Context, Fragment, Severity, ValidationMessage, View,
};

pub struct Poll;

/// One answer: its key and how it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub key: String,
    pub label: String,
    pub img: Option<String>,
    pub img_alt: Option<String>,
}

/// Open edX writes answers as `[key, {"label", "img", "img_alt"}]` pairs (older polls as
/// `[key, "label"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum AnswerDetails {
    Label(String),
    Full {
        #[serde(default)]
        label: String,
        #[serde(default)]
        img: Option<String>,
        #[serde(default)]
        img_alt: Option<String>,
    },
}

fn answers_from(raw: Vec<(String, AnswerDetails)>) -> Vec<Answer> {
    raw.into_iter()
        .map(|(key, details)| match details {
            AnswerDetails::Label(label) => Answer {
                key,
                label,
                img: None,
                img_alt: None,
            },
            AnswerDetails::Full {
                label,
                img,
                img_alt,
            } => Answer {
                key,
                label,
                img: img.filter(|s| !s.is_empty()),
                img_alt: img_alt.filter(|s| !s.is_empty()),
            },
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    pub question: String,
    answers: Option<Vec<(String, AnswerDetails)>>,
    /// Shown after voting.
    pub feedback: String,
    /// Votes a learner may cast (changing their answer); 0 is unlimited.
    pub max_submissions: u32,
    /// Learners never see the results (staff do).
    pub private_results: bool,
}

impl Default for Fields {
    // xblock-poll's defaults: an export of a poll never edited carries none of these.
    fn default() -> Self {
        Fields {
            display_name: None,
            question: "What is your favorite color?".into(),
            answers: None,
            feedback: String::new(),
            max_submissions: 1,
            private_results: false,
        }
    }
}

impl Fields {
    pub fn answers(&self) -> Vec<Answer> {
        match &self.answers {
            Some(raw) => answers_from(raw.clone()),
            None => [("R", "Red"), ("B", "Blue"), ("G", "Green"), ("O", "Other")]
                .into_iter()
                .map(|(key, label)| Answer {
                    key: key.into(),
                    label: label.into(),
                    img: None,
                    img_alt: None,
                })
                .collect(),
        }
    }
}

/// What the poll keeps per learner.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct State {
    pub choice: Option<String>,
    pub submissions_count: u32,
}

/// A vote as the page's form (`{"answer": [key]}`) or an API caller (`{"choice": key}`)
/// sends it.
fn chosen(payload: &Value) -> Result<String, BlockError> {
    let key = match (payload.get("choice"), payload.get("answer")) {
        (Some(c), _) => c,
        (None, Some(Value::Array(a))) if a.len() == 1 => &a[0],
        (None, Some(Value::Array(a))) => {
            return Err(BlockError::new(format!(
                "vote takes exactly one answer, not {}",
                a.len()
            )));
        }
        (None, Some(one)) => one,
        (None, None) => {
            return Err(BlockError::new(
                "vote expects {\"choice\": answer key} or {\"answer\": [answer key]}",
            ));
        }
    };
    match key {
        Value::String(s) => Ok(s.clone()),
        // The page sends keys that look like numbers as numbers.
        Value::Number(n) => Ok(n.to_string()),
        other => Err(BlockError::new(format!(
            "an answer key is a string, not {other}"
        ))),
    }
}

impl Block for Poll {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        let f = cx.fields();
        let state: State = cx.state()?.unwrap_or_default();
        let answers = f.answers();
        let staff = view != View::Student;
        let mut html = String::from("<div class=\"poll\">");
        if let Some(name) = &f.display_name {
            html.push_str(&format!("<h3 class=\"poll-header\">{}</h3>", escape(name)));
        }
        html.push_str(&format!(
            "<div class=\"poll-question\">{}</div>",
            escape(&f.question)
        ));
        let can_vote = f.max_submissions == 0 || state.submissions_count < f.max_submissions;
        if can_vote {
            html.push_str("<form class=\"poll-answers\" data-handler=\"vote\">");
            for a in &answers {
                let checked = state.choice.as_deref() == Some(a.key.as_str());
                html.push_str(&format!(
                    "<label class=\"poll-answer\"><input type=\"radio\" name=\"choice\" value=\"{}\"{}> {}{}</label>",
                    escape(&a.key),
                    if checked { " checked" } else { "" },
                    image(a),
                    escape(&a.label)
                ));
            }
            html.push_str(&format!(
                "<button type=\"submit\">{}</button></form>",
                if state.choice.is_some() {
                    "Change your vote"
                } else {
                    "Submit"
                }
            ));
        }
        if state.choice.is_some() && !f.feedback.is_empty() {
            html.push_str(&format!(
                "<div class=\"poll-feedback\">{}</div>",
                escape(&f.feedback)
            ));
        }
        let show_results = staff || (state.choice.is_some() && !f.private_results);
        if show_results {
            let tally = cx.tallies()?;
            html.push_str(&results_html(&answers, &tally, state.choice.as_deref()));
            if staff && f.private_results {
                html.push_str(
                    "<p class=\"poll-note\">Results are private: learners do not see them.</p>",
                );
            }
        } else if state.choice.is_some() {
            html.push_str("<p class=\"poll-note\">Thank you for voting.</p>");
        }
        html.push_str("</div>");
        Ok(Fragment {
            html,
            title: f.display_name.clone(),
            icon: Some("other".into()),
            ..Fragment::default()
        })
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        let answers = cx.fields().answers();
        let mut messages = Vec::new();
        if answers.len() < 2 {
            messages.push(ValidationMessage::error(
                "A poll needs at least two answers.",
            ));
        }
        let mut keys: Vec<&str> = answers.iter().map(|a| a.key.as_str()).collect();
        keys.sort_unstable();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            messages.push(ValidationMessage::error("Two answers share a key."));
        }
        if answers
            .iter()
            .any(|a| a.label.trim().is_empty() && a.img.is_none())
        {
            messages.push(ValidationMessage {
                severity: Severity::Warning,
                text: "An answer has neither a label nor an image.".into(),
            });
        }
        messages
    }

    fn handle(cx: &Context<'_, Fields>, name: &str, payload: Value) -> BlockResult<Value> {
        let f = cx.fields();
        match name {
            "vote" => {
                let key = chosen(&payload)?;
                let answers = f.answers();
                if !answers.iter().any(|a| a.key == key) {
                    return Err(BlockError::new(format!(
                        "{key:?} is not one of this poll's answers ({})",
                        answers
                            .iter()
                            .map(|a| a.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                let before: State = cx.state()?.unwrap_or_default();
                if f.max_submissions != 0 && before.submissions_count >= f.max_submissions {
                    return Err(BlockError::new(format!(
                        "you have already voted the most times this poll allows ({})",
                        f.max_submissions
                    )));
                }
                if let Some(old) = &before.choice
                    && *old != key
                {
                    cx.add_tally(old, -1)?;
                }
                if before.choice.as_deref() != Some(key.as_str()) {
                    cx.add_tally(&key, 1)?;
                }
                let state = State {
                    choice: Some(key.clone()),
                    submissions_count: before.submissions_count + 1,
                };
                cx.set_state(&state)?;
                cx.publish("xblock.poll.submitted", &json!({ "choice": key }))?;
                let mut answer = json!({
                    "success": true,
                    "submissions_count": state.submissions_count,
                    "max_submissions": f.max_submissions,
                    "feedback": f.feedback,
                });
                if !f.private_results {
                    answer["tally"] = json!(cx.tallies()?);
                }
                Ok(answer)
            }
            "get_results" => {
                let state: State = cx.state()?.unwrap_or_default();
                let staff = cx.user().is_staff;
                if !staff && f.private_results {
                    return Err(BlockError::new("this poll's results are private"));
                }
                if !staff && state.choice.is_none() {
                    return Err(BlockError::new("results are shown after you vote"));
                }
                let tally = cx.tallies()?;
                cx.publish("xblock.poll.view_results", &json!({}))?;
                let total: i64 = tally.values().sum();
                Ok(json!({ "question": f.question, "tally": tally, "total": total }))
            }
            other => Err(BlockError::new(format!(
                "poll has no handler {other:?} (vote, get_results)"
            ))),
        }
    }
}

fn image(a: &Answer) -> String {
    a.img
        .as_deref()
        .map(|src| {
            format!(
                "<img class=\"poll-image\" src=\"{}\" alt=\"{}\"> ",
                escape(src),
                escape(a.img_alt.as_deref().unwrap_or(""))
            )
        })
        .unwrap_or_default()
}

/// Each answer's count and share, the learner's own answer marked.
fn results_html(
    answers: &[Answer],
    tally: &std::collections::BTreeMap<String, i64>,
    mine: Option<&str>,
) -> String {
    let total: i64 = answers
        .iter()
        .map(|a| tally.get(&a.key).copied().unwrap_or(0).max(0))
        .sum();
    let mut html = format!(
        "<div class=\"poll-results\"><p class=\"poll-total\">{total} vote{}</p><ul>",
        if total == 1 { "" } else { "s" }
    );
    for a in answers {
        let n = tally.get(&a.key).copied().unwrap_or(0).max(0);
        let percent = if total > 0 { n * 100 / total } else { 0 };
        html.push_str(&format!(
            "<li class=\"poll-result{}\"><span class=\"poll-result-label\">{}</span> <meter min=\"0\" max=\"100\" value=\"{percent}\"></meter> <span class=\"poll-result-count\">{percent}% ({n})</span>{}</li>",
            if mine == Some(a.key.as_str()) { " poll-mine" } else { "" },
            escape(&a.label),
            if mine == Some(a.key.as_str()) { " (your vote)" } else { "" }
        ));
    }
    html.push_str("</ul></div>");
    html
}

xbhost_sdk::export_block!(Poll);

#[cfg(test)]
mod tests {
    use super::Poll;
    use serde_json::json;
    use xbhost_sdk::View;
    use xbhost_sdk::testing::TestHost;

    fn poll() -> TestHost {
        TestHost::new("poll", "poll_1")
            .fields(json!({
                "question": "Which?",
                "answers": [["R", {"label": "Red", "img": "", "img_alt": ""}], ["B", "Blue"]],
                "feedback": "Thanks!",
                "max_submissions": 2,
            }))
            .with_tallies([("R", 3), ("B", 1)])
    }

    #[test]
    fn defaults_are_xblock_poll_s() {
        let host = TestHost::new("poll", "p");
        let f = host.render::<Poll>(View::Student).unwrap();
        assert!(
            f.html.contains("What is your favorite color?"),
            "{}",
            f.html
        );
        for label in ["Red", "Blue", "Green", "Other"] {
            assert!(f.html.contains(label), "{label}");
        }
        assert!(
            !f.html.contains("poll-results"),
            "results only after voting"
        );
    }

    #[test]
    fn a_vote_adds_to_the_shared_tally_and_shows_the_results() {
        let host = poll();
        let answer = host
            .handle::<Poll>("vote", json!({"answer": ["B"]}))
            .unwrap();
        assert_eq!(answer["tally"], json!({"R": 3, "B": 2}));
        assert_eq!(answer["submissions_count"], 1);
        assert_eq!(host.stored_tallies()["B"], 2);
        assert_eq!(host.events()[0].0, "xblock.poll.submitted");
        assert_eq!(host.events()[0].1, json!({"choice": "B"}));
        let page = host.render::<Poll>(View::Student).unwrap().html;
        assert!(page.contains("5 votes"), "{page}");
        assert!(page.contains("40% (2)</span> (your vote)"), "{page}");
        assert!(page.contains("Thanks!"));
        // Changing the vote moves it: nothing is counted twice.
        host.handle::<Poll>("vote", json!({"choice": "R"})).unwrap();
        assert_eq!(host.stored_tallies()["B"], 1);
        assert_eq!(host.stored_tallies()["R"], 4);
        let err = host
            .handle::<Poll>("vote", json!({"choice": "B"}))
            .unwrap_err();
        assert!(err.0.contains("most times"), "{}", err.0);
        assert_eq!(host.stored_tallies()["R"], 4);
    }

    #[test]
    fn bad_votes_are_refused_and_store_nothing() {
        let host = poll();
        for payload in [
            json!({"choice": "Z"}),
            json!({"answer": ["R", "B"]}),
            json!({"answer": [{"x": 1}]}),
            json!({}),
        ] {
            assert!(
                host.handle::<Poll>("vote", payload.clone()).is_err(),
                "{payload}"
            );
        }
        assert!(host.stored_state().is_none());
        assert_eq!(host.stored_tallies()["R"], 3);
        assert!(host.events().is_empty());
    }

    #[test]
    fn private_results_are_for_staff_only() {
        let host = TestHost::new("poll", "p")
            .fields(json!({"private_results": true}))
            .with_tallies([("R", 2)]);
        let answer = host.handle::<Poll>("vote", json!({"choice": "G"})).unwrap();
        assert!(answer.get("tally").is_none());
        let page = host.render::<Poll>(View::Student).unwrap().html;
        assert!(!page.contains("poll-results") && page.contains("Thank you for voting"));
        assert!(host.handle::<Poll>("get_results", json!({})).is_err());
        let staff = TestHost::new("poll", "p")
            .fields(json!({"private_results": true}))
            .with_tallies([("R", 2)])
            .staff();
        assert_eq!(
            staff.handle::<Poll>("get_results", json!({})).unwrap()["total"],
            2
        );
        assert!(
            staff
                .render::<Poll>(View::Staff)
                .unwrap()
                .html
                .contains("Results are private")
        );
    }
}
