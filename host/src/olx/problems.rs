//! Problems: turning a `<problem>` into multiple-choice or checkbox fields
//! ([`problem_fields`]), or saying why it is not one.

use anyhow::{Result, bail};
use roxmltree::{Document, Node};
use serde_json::{Value, json};

use super::xml::{at, inner_source, trim_in_place};

/// Problem fields for a multiple-choice or checkbox problem, or why it is not one.
pub(super) fn problem_fields(
    doc: &Document,
    file: &str,
    node: Node,
) -> Result<std::result::Result<Value, String>> {
    let responses: Vec<Node> = node
        .descendants()
        .filter(|d| d.is_element() && d.tag_name().name().ends_with("response"))
        .collect();
    let Some(response) = responses.first().copied() else {
        return Ok(Err("it has no response element".into()));
    };
    let (kind, group_tag) = match response.tag_name().name() {
        "multiplechoiceresponse" => ("multiple_choice", "choicegroup"),
        "choiceresponse" => ("checkbox", "checkboxgroup"),
        other => {
            return Ok(Err(format!(
                "only multiple-choice and checkbox problems are supported, this one is <{other}>"
            )));
        }
    };
    if responses.len() > 1 {
        return Ok(Err(format!(
            "it has {} responses; only single-response problems are supported",
            responses.len()
        )));
    }
    // The question is what surrounds the response; a response nested in other markup
    // cannot be cut out safely (the choices and solutions would leak into the question).
    if response.parent() != Some(node) {
        return Ok(Err(format!(
            "its <{}> is nested inside <{}>; only responses directly inside <problem> are supported",
            response.tag_name().name(),
            response.parent().map_or("?", |p| p.tag_name().name())
        )));
    }
    let Some(group) = response
        .descendants()
        .find(|d| d.is_element() && d.tag_name().name() == group_tag)
    else {
        bail!(
            "{}: <{}> has no <{group_tag}>",
            at(doc, file, response),
            response.tag_name().name()
        );
    };
    let choices: Vec<Value> = group
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "choice")
        .map(|c| {
            json!({
                "text": inner_source(doc, c, &["choicehint"]),
                "correct": c.attribute("correct").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            })
        })
        .collect();
    // The question: the problem's content with the response's own content in its place,
    // without the choices, solutions and hints.
    const HIDDEN: &[&str] = &[
        "choicegroup",
        "checkboxgroup",
        "solution",
        "demandhint",
        "script",
        "choicehint",
        "compoundhint",
    ];
    let text = doc.input_text();
    // Built once, in one string (a problem's text may be most of a large file).
    let mut question = String::new();
    for c in node
        .children()
        .filter(|c| c.is_element() || c.is_text())
        .filter(|c| !(c.is_element() && HIDDEN.contains(&c.tag_name().name())))
    {
        // The response's own content, without its choices and solutions; the rest as is.
        if c == response {
            question.push_str(&inner_source(doc, c, HIDDEN));
        } else {
            question.push_str(&text[c.range()]);
        }
    }
    trim_in_place(&mut question);
    Ok(Ok(
        json!({ "question": question, "kind": kind, "choices": choices }),
    ))
}
