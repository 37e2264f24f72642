//! Multiple choice (`choicegroup`), checkboxes (`checkboxgroup`) and dropdowns
//! (`optioninput`). Choices are stored as capa names them, `choice_N`; an option by its text.
//! Checkboxes are all or nothing (capa's default; its partial-credit modes are not read).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::Mark;
use crate::fields::Choice;

/// A choice index from what a page or client sends: `1`, `"1"` or `"choice_1"`.
fn index_of(raw: &Value, choices: &[Choice], id: &str) -> Result<usize, String> {
    let index = match raw {
        Value::Number(n) => n.as_u64().map(|n| n as usize),
        Value::String(s) => {
            let s = s.trim();
            s.strip_prefix("choice_").unwrap_or(s).parse::<usize>().ok()
        }
        _ => None,
    };
    let Some(i) = index else {
        return Err(format!("{id} expects a choice index, not {raw}"));
    };
    if i >= choices.len() {
        return Err(format!(
            "choice {i} does not exist: the problem has {} choices",
            choices.len()
        ));
    }
    Ok(i)
}

fn name(i: usize) -> String {
    format!("choice_{i}")
}

/// The chosen index of a stored answer (`"choice_N"`).
pub fn stored_index(v: &Value) -> Option<usize> {
    v.as_str()?.strip_prefix("choice_")?.parse().ok()
}

pub fn normalize_one(choices: &[Choice], raw: &Value, id: &str) -> Result<Option<Value>, String> {
    let one = match raw {
        Value::Null => return Ok(None),
        Value::Array(a) if a.is_empty() => return Ok(None),
        Value::Array(a) if a.len() == 1 => &a[0],
        Value::Array(_) => return Err("a multiple-choice problem takes exactly one choice".into()),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        other => other,
    };
    Ok(Some(json!(name(index_of(one, choices, id)?))))
}

pub fn normalize_many(choices: &[Choice], raw: &Value, id: &str) -> Result<Option<Value>, String> {
    let items: Vec<&Value> = match raw {
        Value::Null => vec![],
        Value::Array(a) => {
            if a.len() > choices.len() {
                return Err(format!(
                    "{id} has {} choices; {} were sent",
                    choices.len(),
                    a.len()
                ));
            }
            a.iter().collect()
        }
        other => vec![other],
    };
    let picked: BTreeSet<usize> = items
        .into_iter()
        .map(|v| index_of(v, choices, id))
        .collect::<Result<_, _>>()?;
    if picked.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!(
        picked.into_iter().map(name).collect::<Vec<_>>()
    )))
}

pub fn normalize_option(
    options: &[Choice],
    raw: &Value,
    id: &str,
) -> Result<Option<Value>, String> {
    let Some(text) = super::text_of(raw, id)? else {
        return Ok(None);
    };
    if !options.iter().any(|o| o.text.trim() == text) {
        return Err(format!("{text:?} is not one of the options of {id}"));
    }
    Ok(Some(json!(text)))
}

pub fn mark_one(choices: &[Choice], given: Option<&Value>) -> Mark {
    let Some(i) = given.and_then(stored_index) else {
        return Mark::of(false);
    };
    // A stored answer may name a choice that a later edit removed.
    let Some(choice) = choices.get(i) else {
        return Mark::of(false);
    };
    Mark::of(choice.correct).with_msg(choice.hint.clone().unwrap_or_default())
}

pub fn mark_many(choices: &[Choice], given: Option<&Value>) -> Mark {
    let picked: BTreeSet<usize> = given
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(stored_index).collect())
        .unwrap_or_default();
    let correct: BTreeSet<usize> = (0..choices.len()).filter(|&i| choices[i].correct).collect();
    let msg: String = choices
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            if picked.contains(&i) {
                c.hint.clone()
            } else {
                c.hint_unselected.clone()
            }
        })
        .map(|h| format!("<div class=\"hint-text\">{h}</div>"))
        .collect();
    Mark::of(!picked.is_empty() && picked == correct).with_msg(msg)
}

pub fn mark_option(options: &[Choice], given: Option<&str>) -> Mark {
    let Some(option) = given.and_then(|g| options.iter().find(|o| o.text.trim() == g)) else {
        return Mark::of(false);
    };
    Mark::of(option.correct).with_msg(option.hint.clone().unwrap_or_default())
}

/// The correct choices' texts (HTML), for the shown answer.
pub fn correct_text(choices: &[Choice]) -> String {
    choices
        .iter()
        .filter(|c| c.correct)
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
