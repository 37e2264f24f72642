//! The problem's authored fields: the body (HTML with the places of its inputs and
//! solutions), its responses (what each input is graded against), hints and settings.
//!
//! The older single-response layout (`question`, `kind`, `choices`) is still read: it is a
//! body of the question followed by one choice input ([`Fields::normalized`]).

use serde::Deserialize;

/// One choice of a multiple-choice or checkbox response, or one option of a dropdown.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Choice {
    /// The choice's text, as authored HTML (an option's is plain text: it is its value).
    pub text: String,
    pub correct: bool,
    /// Feedback shown when the learner picked it (`<choicehint>`, `<optionhint>`).
    pub hint: Option<String>,
    /// Checkboxes: feedback shown when the learner left it unchecked.
    pub hint_unselected: Option<String>,
}

/// What one response grades against.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Kind {
    MultipleChoice {
        choices: Vec<Choice>,
    },
    Checkbox {
        choices: Vec<Choice>,
    },
    /// `optionresponse`: a dropdown; the answer is the option's text.
    Option {
        options: Vec<Choice>,
    },
    /// `numericalresponse`: a number (or an expression of numbers) within a tolerance of
    /// `answer`, or inside a range `[a, b)`.
    Numerical {
        answer: String,
        /// Absolute (`5`) or percent of the answer (`5%`); capa's default is `0.001%`.
        #[serde(default)]
        tolerance: Option<String>,
        #[serde(default)]
        additional_answers: Vec<String>,
        /// capa's `partial_credit`: `close`, `list` or both.
        #[serde(default)]
        partial_credit: Vec<String>,
        #[serde(default)]
        partial_answers: Vec<String>,
        /// The multiple of the tolerance (or range) that is worth partial credit.
        #[serde(default)]
        partial_range: Option<f64>,
    },
    /// `stringresponse`: the text equals one of `answers` (or matches one as a regex).
    String {
        answers: Vec<String>,
        #[serde(default)]
        case_insensitive: bool,
        #[serde(default)]
        regexp: bool,
    },
    /// `formularesponse`: an expression equal to `answer` at every sampled point.
    Formula {
        answer: String,
        /// capa's `samples`: `x,y@1,1:5,5#10`.
        samples: String,
        #[serde(default)]
        tolerance: Option<String>,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// `imageresponse`: one click per image, inside one of its rectangles or regions.
    Image {
        images: Vec<Image>,
    },
}

/// One `<imageinput>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Image {
    pub src: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub alt: Option<String>,
    /// `(x1,y1)-(x2,y2)`, several separated by `;`.
    pub rectangle: Option<String>,
    /// JSON polygons: `[[x,y],...]` or `[[[x,y],...],...]`.
    pub regions: Option<String>,
}

/// One response of the problem: its kind and its label (the question it asks, as text).
#[derive(Debug, Clone, Deserialize)]
pub struct Response {
    #[serde(flatten)]
    pub kind: Kind,
    #[serde(default)]
    pub label: String,
}

impl Response {
    /// How many inputs the response has (only image responses have several).
    pub fn input_count(&self) -> usize {
        match &self.kind {
            Kind::Image { images } => images.len(),
            _ => 1,
        }
    }

    /// capa's name of the response type, for events.
    pub fn response_type(&self) -> &'static str {
        match self.kind {
            Kind::MultipleChoice { .. } => "multiplechoiceresponse",
            Kind::Checkbox { .. } => "choiceresponse",
            Kind::Option { .. } => "optionresponse",
            Kind::Numerical { .. } => "numericalresponse",
            Kind::String { .. } => "stringresponse",
            Kind::Formula { .. } => "formularesponse",
            Kind::Image { .. } => "imageresponse",
        }
    }

    /// capa's name of the input type, for events.
    pub fn input_type(&self) -> &'static str {
        match self.kind {
            Kind::MultipleChoice { .. } => "choicegroup",
            Kind::Checkbox { .. } => "checkboxgroup",
            Kind::Option { .. } => "optioninput",
            Kind::Numerical { .. } | Kind::Formula { .. } => "formulaequationinput",
            Kind::String { .. } => "textline",
            Kind::Image { .. } => "imageinput",
        }
    }
}

/// A piece of the body: authored HTML, the place of an input, or the place of a solution.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Part {
    Html(String),
    Input {
        response: usize,
        #[serde(default)]
        input: usize,
    },
    Solution {
        solution: usize,
    },
}

/// The older single-response layout's kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegacyKind {
    #[default]
    MultipleChoice,
    Checkbox,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    pub body: Vec<Part>,
    pub responses: Vec<Response>,
    /// `<solution>` HTML, shown with the answers (see [`crate::showanswer`]).
    pub solutions: Vec<String>,
    /// `<demandhint>` hints, one at a time through the `hint` handler.
    pub hints: Vec<String>,
    /// Points for the whole problem; without it, one point per input (as capa).
    pub weight: Option<f64>,
    /// Submissions allowed (default: unlimited).
    pub max_attempts: Option<u32>,
    /// capa's `showanswer` (default `finished`).
    pub showanswer: Option<String>,
    /// capa's `rerandomize` (default `never`).
    pub rerandomize: Option<String>,
    pub show_reset_button: bool,
    // The older layout.
    pub question: String,
    pub kind: LegacyKind,
    pub choices: Vec<Choice>,
}

/// capa's `rerandomize` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rerandomize {
    Never,
    Always,
    OnReset,
    PerStudent,
}

impl Fields {
    /// The fields in the current layout: an older single-response problem becomes a body of
    /// its question and one choice input.
    pub fn normalized(mut self) -> Fields {
        if self.responses.is_empty() && !self.choices.is_empty() {
            let choices = std::mem::take(&mut self.choices);
            let kind = match self.kind {
                LegacyKind::MultipleChoice => Kind::MultipleChoice { choices },
                LegacyKind::Checkbox => Kind::Checkbox { choices },
            };
            self.responses = vec![Response {
                kind,
                label: String::new(),
            }];
            self.body = vec![
                Part::Html(format!("<div class=\"question\">{}</div>", self.question)),
                Part::Input {
                    response: 0,
                    input: 0,
                },
            ];
        }
        self
    }

    /// Every input as (response index, input index within it), in order.
    pub fn inputs(&self) -> Vec<(usize, usize)> {
        self.responses
            .iter()
            .enumerate()
            .flat_map(|(r, resp)| (0..resp.input_count()).map(move |i| (r, i)))
            .collect()
    }

    /// capa's raw total: one point per input.
    pub fn raw_total(&self) -> f64 {
        self.inputs().len() as f64
    }

    /// Points the problem is worth: its weight, or its raw total.
    pub fn possible(&self) -> f64 {
        self.weight.unwrap_or_else(|| self.raw_total())
    }

    pub fn rerandomize(&self) -> Rerandomize {
        // As capa's Randomization field: "true" and "" mean always, "false" per student.
        match self.rerandomize.as_deref().map(str::trim) {
            Some("always") | Some("true") | Some("") => Rerandomize::Always,
            Some("onreset") => Rerandomize::OnReset,
            Some("per_student") | Some("false") => Rerandomize::PerStudent,
            _ => Rerandomize::Never,
        }
    }

    pub fn showanswer(&self) -> &str {
        self.showanswer
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or("finished")
    }
}

/// An input's id, as capa names them: `{problem}_{response + 2}_{input + 1}`.
pub fn input_id(usage: &str, response: usize, input: usize) -> String {
    format!("{usage}_{}_{}", response + 2, input + 1)
}
