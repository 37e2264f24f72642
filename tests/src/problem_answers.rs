//! Right and wrong submissions for an imported problem, worked out from its authored
//! fields (what a learner who read the answer, or did not, would type), for the tests that
//! answer every problem of the real exports.

use serde_json::{Map, Value, json};

/// An input's id, as the problem plugin (and capa) names it.
pub fn input_id(usage: &str, response: usize, input: usize) -> String {
    format!("{usage}_{}_{}", response + 2, input + 1)
}

/// A regular expression that accepts any non-empty text (the export's reflection question).
fn accepts_anything(pattern: &str) -> bool {
    matches!(pattern.trim(), ".*." | ".+" | ".*" | ".+." | "(.*)")
}

/// What to answer to one response, right or wrong; `None` when no answer can be wrong.
fn answer(response: &Value, right: bool) -> Option<Vec<Value>> {
    let picked = |list: &Value| -> Vec<usize> {
        let list = list.as_array().cloned().unwrap_or_default();
        (0..list.len())
            .filter(|&i| list[i]["correct"].as_bool().unwrap_or(false) == right)
            .collect()
    };
    Some(match response["type"].as_str()? {
        "multiple_choice" => vec![json!(*picked(&response["choices"]).first()?)],
        "checkbox" => {
            let mut p = picked(&response["choices"]);
            if !right {
                p.truncate(1);
            }
            vec![json!(p)]
        }
        "option" => {
            let options = response["options"].as_array()?;
            let i = *picked(&response["options"]).first()?;
            vec![options[i]["text"].clone()]
        }
        "numerical" => {
            let a = response["answer"].as_str()?.trim();
            let value = if a.starts_with(['[', '(']) {
                let inner = &a[1..a.len() - 1];
                let (lo, hi) = inner.split_once(',')?;
                let (lo, hi): (f64, f64) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
                if right {
                    (lo + hi) / 2.0
                } else {
                    hi + (hi - lo) * 10.0 + 1000.0
                }
            } else {
                let v: f64 = a.parse().ok()?;
                if right { v } else { v * 10.0 + 1000.0 }
            };
            vec![json!(value.to_string())]
        }
        "string" => {
            let first = response["answers"][0].as_str()?.trim().to_string();
            let regexp = response["regexp"].as_bool().unwrap_or(false);
            if !right {
                if regexp && accepts_anything(&first) {
                    return None;
                }
                return Some(vec![json!("zzzz not the answer")]);
            }
            // A pattern of literal letters and `.`: each `.` stands for a `b`.
            let text = if regexp {
                first.replace(".*", "").replace('.', "b")
            } else {
                first
            };
            vec![json!(if text.is_empty() {
                "bb".to_string()
            } else {
                text
            })]
        }
        "formula" => {
            let a = response["answer"].as_str()?;
            vec![json!(if right {
                a.to_string()
            } else {
                format!("({a})*2+1")
            })]
        }
        "image" => response["images"]
            .as_array()?
            .iter()
            .map(|img| {
                let nums: Vec<i64> = img["rectangle"]
                    .as_str()
                    .unwrap_or("")
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|s| s.parse().ok())
                    .collect();
                let (x, y) = match (right, nums.as_slice()) {
                    (true, [x1, y1, x2, y2, ..]) => ((x1 + x2) / 2, (y1 + y2) / 2),
                    _ => (nums.iter().max().copied().unwrap_or(0) + 50, 0),
                };
                Some(json!(format!("[{x},{y}]")))
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    })
}

/// `{"answers": {input id: answer}}` answering every response of `fields` right (or
/// wrong); `None` for a problem with an input that cannot be answered wrong.
pub fn submission(usage: &str, fields: &Value, right: bool) -> Option<Value> {
    let mut answers = Map::new();
    for (r, response) in fields["responses"].as_array()?.iter().enumerate() {
        for (i, a) in answer(response, right)?.into_iter().enumerate() {
            answers.insert(input_id(usage, r, i), a);
        }
    }
    Some(json!({ "answers": answers }))
}

/// A submission whose first response is answered right and the others wrong (partial
/// credit for a problem with several inputs).
pub fn first_right(usage: &str, fields: &Value) -> Option<Value> {
    let mut answers = Map::new();
    for (r, response) in fields["responses"].as_array()?.iter().enumerate() {
        for (i, a) in answer(response, r == 0)?.into_iter().enumerate() {
            answers.insert(input_id(usage, r, i), a);
        }
    }
    Some(json!({ "answers": answers }))
}

/// How many inputs `fields` has (one point each in capa's raw score).
pub fn input_count(fields: &Value) -> usize {
    fields["responses"].as_array().map_or(0, |rs| {
        rs.iter()
            .map(|r| r["images"].as_array().map_or(1, Vec::len))
            .sum()
    })
}
