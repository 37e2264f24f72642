//! The problem's HTML: its body with each input in its authored place, each input named
//! by its capa id so a form posts `{"answers": {id: value}}` (`data-answers="by-name"`; the
//! page script's plain `{"answer": [...]}` still works for a problem with one input), the
//! learner's last answers and marks, the demand hints shown, the answers and solutions once
//! asked for, and buttons for hints, the answer and reset where they apply.

use serde_json::Value;
use xbhost_sdk::html::escape;

use crate::fields::{Fields, Kind, Part, Response, input_id};
use crate::responses::{self, choice};
use crate::showanswer::{answer_available, can_reset, cannot_submit};
use crate::state::State;

pub struct View<'a> {
    pub fields: &'a Fields,
    pub state: &'a State,
    pub usage: &'a str,
    pub staff: bool,
}

impl View<'_> {
    fn showing_answer(&self) -> bool {
        self.state.answer_shown && answer_available(self.fields, self.state, self.staff)
    }

    pub fn html(&self) -> String {
        let f = self.fields;
        let s = self.state;
        let mut html = format!(
            "<div class=\"problem\" data-problem-id=\"{}\">",
            escape(self.usage)
        );
        if let Some(name) = &f.display_name {
            html.push_str(&format!(
                "<h3 class=\"problem-header\">{}</h3>",
                escape(name)
            ));
        }
        html.push_str("<form class=\"problem-form choices\" data-handler=\"submit\" data-answers=\"by-name\">");
        for part in &f.body {
            match part {
                Part::Html(h) => html.push_str(h),
                Part::Input { response, input } => {
                    if let Some(r) = f.responses.get(*response) {
                        html.push_str(&self.input(r, *response, *input));
                    }
                }
                Part::Solution { solution } => {
                    if self.showing_answer()
                        && let Some(sol) = f.solutions.get(*solution)
                    {
                        html.push_str(&format!("<div class=\"solution\">{sol}</div>"));
                    }
                }
            }
        }
        let refused = cannot_submit(f, s);
        html.push_str(&format!(
            "<div class=\"submit-area\"><button type=\"submit\"{}>Submit</button>",
            if refused.is_some() { " disabled" } else { "" }
        ));
        if let Some(max) = f.max_attempts {
            html.push_str(&format!(
                " <span class=\"submission-feedback\">You have used {} of {max} attempts</span>",
                s.attempts
            ));
        }
        if let Some(why) = refused.filter(|_| s.attempts > 0) {
            html.push_str(&format!(" <span class=\"closed\">{}</span>", escape(&why)));
        }
        html.push_str("</div></form>");
        if s.attempts > 0 && (!s.correct_map.is_empty() || s.correct) {
            let fraction = s.fraction(f);
            let (class, word) = if fraction >= 1.0 {
                ("correct", "Correct")
            } else if fraction > 0.0 {
                ("partially-correct", "Partially correct")
            } else {
                ("incorrect", "Incorrect")
            };
            html.push_str(&format!(
                "<p class=\"result {class}\">{word} ({} / {} points, attempt {})</p>",
                fraction * f.possible(),
                f.possible(),
                s.attempts
            ));
        }
        if s.hints_shown > 0 && !f.hints.is_empty() {
            html.push_str(&hints_html(&f.hints, s.hints_shown - 1));
        }
        if self.showing_answer() && !f.body.iter().any(|p| matches!(p, Part::Solution { .. })) {
            for sol in &f.solutions {
                html.push_str(&format!("<div class=\"solution\">{sol}</div>"));
            }
        }
        html.push_str("<div class=\"problem-actions\">");
        if !f.hints.is_empty() {
            html.push_str(
                "<form data-handler=\"hint\"><button type=\"submit\">Hint</button></form>",
            );
        }
        if answer_available(f, s, self.staff) && !self.showing_answer() {
            html.push_str("<form data-handler=\"show_answer\"><button type=\"submit\">Show answer</button></form>");
        }
        if can_reset(f, s).is_ok() {
            html.push_str(
                "<form data-handler=\"reset\"><button type=\"submit\">Reset</button></form>",
            );
        }
        html.push_str("</div></div>");
        html
    }

    fn input(&self, response: &Response, r: usize, i: usize) -> String {
        let id = input_id(self.usage, r, i);
        let name = escape(&id);
        let given = self.state.student_answers.get(&id);
        let mut html = format!("<span class=\"capa-input\" data-input-id=\"{name}\">");
        match &response.kind {
            Kind::MultipleChoice { choices } | Kind::Checkbox { choices } => {
                let radio = matches!(response.kind, Kind::MultipleChoice { .. });
                let picked = |k: usize| match given {
                    Some(Value::Array(a)) => a.iter().any(|v| choice::stored_index(v) == Some(k)),
                    Some(v) => choice::stored_index(v) == Some(k),
                    None => false,
                };
                for (k, c) in choices.iter().enumerate() {
                    html.push_str(&format!(
                        "<label class=\"choice\"><input type=\"{}\" name=\"{name}\" value=\"{k}\"{}> {}</label>",
                        if radio { "radio" } else { "checkbox" },
                        if picked(k) { " checked" } else { "" },
                        c.text
                    ));
                }
            }
            Kind::Option { options } => {
                let current = given.and_then(Value::as_str);
                html.push_str(&format!(
                    "<select name=\"{name}\"><option value=\"\">Select an option</option>"
                ));
                for o in options {
                    let text = o.text.trim();
                    html.push_str(&format!(
                        "<option value=\"{v}\"{}>{v}</option>",
                        if current == Some(text) {
                            " selected"
                        } else {
                            ""
                        },
                        v = escape(text)
                    ));
                }
                html.push_str("</select>");
            }
            Kind::Numerical { .. } | Kind::String { .. } | Kind::Formula { .. } => {
                html.push_str(&format!(
                    "<input type=\"text\" name=\"{name}\" value=\"{}\" size=\"20\">",
                    escape(given.and_then(Value::as_str).unwrap_or(""))
                ));
            }
            Kind::Image { images } => {
                if let Some(img) = images.get(i) {
                    let dim = |n: &str, v: Option<u32>| {
                        v.map_or(String::new(), |v| format!(" {n}=\"{v}\""))
                    };
                    html.push_str(&format!(
                        "<img class=\"imageinput\" src=\"{}\" alt=\"{}\"{}{} data-point-input=\"{name}\">",
                        escape(&img.src),
                        escape(img.alt.as_deref().unwrap_or("")),
                        dim("width", img.width),
                        dim("height", img.height)
                    ));
                    html.push_str(&format!(
                        "<input type=\"text\" name=\"{name}\" value=\"{}\" placeholder=\"[x,y]: click the image\" size=\"12\">",
                        escape(given.and_then(Value::as_str).unwrap_or(""))
                    ));
                }
            }
        }
        if let Some(mark) = self.state.correct_map.get(&id) {
            html.push_str(&format!(
                "<span class=\"status {c}\">{c}</span>",
                c = escape(&mark.correctness)
            ));
            if !mark.msg.is_empty() {
                html.push_str(&format!("<div class=\"feedback-hint\">{}</div>", mark.msg));
            }
        }
        if self.showing_answer()
            && let Some(answer) = responses::correct_answers(response).get(i)
        {
            html.push_str(&format!("<span class=\"answer\">Answer: {answer}</span>"));
        }
        html.push_str("</span>");
        html
    }
}

/// The demand hints up to `index`, as capa lists them.
pub fn hints_html(hints: &[String], index: usize) -> String {
    let mut html = String::from("<div class=\"problem-hint\"><ol>");
    for (k, hint) in hints.iter().enumerate().take(index + 1) {
        html.push_str(&format!(
            "<li class=\"hint-index-{k}\"><strong>Hint ({} of {}): </strong>{hint}</li>",
            k + 1,
            hints.len()
        ));
    }
    html.push_str("</ol></div>");
    html
}
