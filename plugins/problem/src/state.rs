//! What a problem keeps per learner, in capa's shape (`student_answers`, `correct_map`,
//! `done`, `seed`, `attempts`), plus the older fields (`answer`, `correct`, `score`,
//! `max_score`) that earlier readers of this block's state use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fields::{Fields, Rerandomize};
use crate::responses::Mark;

/// capa's correct-map entry of one input.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct InputMark {
    pub correctness: String,
    pub npoints: f64,
    pub msg: String,
    pub hint: String,
    pub hintmode: Option<String>,
    pub queuestate: Option<Value>,
    pub answervariable: Option<String>,
}

impl From<&Mark> for InputMark {
    fn from(m: &Mark) -> Self {
        InputMark {
            correctness: m.correctness.as_str().into(),
            npoints: m.npoints,
            msg: m.msg.clone(),
            ..InputMark::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct State {
    /// Input id -> the learner's last answer, as capa stores it.
    pub student_answers: BTreeMap<String, Value>,
    pub correct_map: BTreeMap<String, InputMark>,
    /// Points earned, of one per input.
    pub raw_earned: f64,
    pub attempts: u32,
    /// Submitted since the last reset.
    pub done: bool,
    /// The learner's problem seed (see [`seed_for`]), fixed at the first submission.
    pub seed: Option<u64>,
    /// Resets so far (a new seed for `always` and `onreset` comes from it).
    pub resets: u32,
    /// Demand hints shown so far.
    pub hints_shown: usize,
    /// The learner asked to see the answer.
    pub answer_shown: bool,
    // Older fields, kept for their readers.
    /// A single choice input's picked indices.
    pub answer: Vec<usize>,
    /// All inputs correct.
    pub correct: bool,
    pub score: f64,
    pub max_score: f64,
}

impl State {
    /// The share of the points earned (0 to 1), from the correct map, or for a state of the
    /// older layout from its correctness.
    pub fn fraction(&self, fields: &Fields) -> f64 {
        if self.correct_map.is_empty() {
            return if self.correct && self.attempts > 0 {
                1.0
            } else {
                0.0
            };
        }
        let total = fields.raw_total();
        if total <= 0.0 {
            return 0.0;
        }
        (self.raw_earned / total).clamp(0.0, 1.0)
    }

    /// All points earned (capa's `is_correct`).
    pub fn is_correct(&self, fields: &Fields) -> bool {
        self.attempts > 0 && self.fraction(fields) >= 1.0
    }

    /// The state as capa's `lcp.get_state()`, for events.
    pub fn capa_view(&self, seed: u64) -> Value {
        json!({
            "correct_map": self.correct_map,
            "done": self.done,
            "input_state": {},
            "seed": self.seed.unwrap_or(seed),
            "student_answers": self.student_answers,
            "has_saved_answers": false,
        })
    }
}

/// FNV-1a: a stable hash (the same in every build) for seeds.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The seed a learner's problem uses, as capa chooses it: always 1 for `never`; one of 20
/// bins from the learner and the problem for `per_student`; for `always` and `onreset` one
/// of 1000, new at each reset (capa draws it at random; here it is drawn from the learner,
/// the problem and the reset count, so it is reproducible).
pub fn seed_for(fields: &Fields, user: &str, usage: &str, resets: u32) -> u64 {
    match fields.rerandomize() {
        Rerandomize::Never => 1,
        Rerandomize::PerStudent => fnv(&[user, usage]) % 20,
        Rerandomize::Always | Rerandomize::OnReset => {
            fnv(&[user, usage, &resets.to_string()]) % 1000
        }
    }
}
