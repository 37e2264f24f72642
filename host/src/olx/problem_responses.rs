//! One capa response element as the `problem` plugin's response fields
//! ([`response_fields`]), or why it cannot be one. Each supported response has one input,
//! except `imageresponse` (one per `<imageinput>`); an `optionresponse` with several
//! `<optioninput>`s becomes one response per dropdown (see [`split_options`]).

use roxmltree::Node;
use serde_json::{Value, json};

use super::xml::inner_source;

/// Response types graded by code the host does not run, with the reason a learner's
/// answer cannot be graded here.
pub(super) const SCRIPT_GRADED: &[(&str, &str)] = &[
    (
        "customresponse",
        "it is graded by a Python script (<customresponse>), which xbhost does not run",
    ),
    (
        "schematicresponse",
        "it is graded by a Python script on a circuit (<schematicresponse>), which xbhost does not run",
    ),
    (
        "annotationresponse",
        "it is an annotation exercise (<annotationresponse>) graded by capa's annotation tool, which xbhost does not have",
    ),
    (
        "coderesponse",
        "it is graded by an external grader through XQueue (<coderesponse>), which xbhost does not reach",
    ),
    (
        "externalresponse",
        "it is graded by an external server (<externalresponse>), which xbhost does not reach",
    ),
    (
        "javascriptresponse",
        "it is graded by a JavaScript program (<javascriptresponse>), which xbhost does not run",
    ),
    (
        "symbolicresponse",
        "it is graded symbolically by a Python script (<symbolicresponse>), which xbhost does not run",
    ),
    (
        "jsmeresponse",
        "it is graded by a JavaScript editor's script (<jsmeresponse>), which xbhost does not run",
    ),
];

/// Response types this host grades.
pub(super) const SUPPORTED: &[&str] = &[
    "multiplechoiceresponse",
    "choiceresponse",
    "optionresponse",
    "numericalresponse",
    "stringresponse",
    "formularesponse",
    "imageresponse",
];

/// Input elements: each is one input of its response (in the body, its place).
pub(super) const INPUTS: &[&str] = &[
    "choicegroup",
    "checkboxgroup",
    "optioninput",
    "textline",
    "formulaequationinput",
    "imageinput",
];

fn element<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.descendants()
        .find(|d| d.is_element() && d.tag_name().name() == name)
}

fn elements<'a, 'i>(node: Node<'a, 'i>, name: &'a str) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |d| d.is_element() && d.tag_name().name() == name)
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Plain text of a node (its label), whitespace collapsed.
pub(super) fn text_of(node: Node) -> String {
    let text: String = node
        .descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `default` of a `<responseparam type="tolerance">`, or of one with `attr`.
fn param(response: Node, attr: &str) -> Option<String> {
    response
        .descendants()
        .filter(|d| d.is_element() && d.tag_name().name() == "responseparam")
        .find_map(|p| match attr {
            "tolerance" => (p.attribute("type") == Some("tolerance"))
                .then(|| p.attribute("default"))
                .flatten(),
            other => p.attribute(other),
        })
        .map(|v| v.trim().to_string())
}

fn choices(group: Node, hint_tag: &str) -> Vec<Value> {
    elements(group, "choice")
        .map(|c| {
            let mut hint = None;
            let mut unselected = None;
            for h in elements(c, hint_tag) {
                match h
                    .attribute("selected")
                    .map(|s| s.trim().to_ascii_lowercase())
                {
                    Some(s) if s == "false" => unselected = Some(inner(h)),
                    _ => hint = Some(inner(h)),
                }
            }
            json!({
                "text": inner_skip(c, &[hint_tag]),
                "correct": is_true(c.attribute("correct")),
                "hint": hint,
                "hint_unselected": unselected,
            })
        })
        .collect()
}

fn inner(node: Node) -> String {
    inner_skip(node, &[])
}

fn inner_skip(node: Node, skip: &[&str]) -> String {
    let doc = node.document();
    inner_source(doc, node, skip)
}

/// capa's `options="('a','b')"`: the quoted strings, in order.
fn option_list(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            let mut item = String::new();
            while let Some(d) = chars.next() {
                match d {
                    '\\' => item.extend(chars.next()),
                    d if d == c => break,
                    d => item.push(d),
                }
            }
            out.push(item);
        }
    }
    out
}

/// One dropdown's options: from `options` and `correct`, or from `<option>` children.
fn options(input: Node) -> Result<Vec<Value>, String> {
    if let Some(list) = input.attribute("options") {
        let correct = input.attribute("correct").unwrap_or("").trim();
        let list = option_list(list);
        if list.is_empty() {
            return Err(format!(
                "its <optioninput> has options {list:?} that list no quoted option"
            ));
        }
        return Ok(list
            .into_iter()
            .map(|o| json!({"text": o.trim(), "correct": o.trim() == correct}))
            .collect());
    }
    Ok(elements(input, "option")
        .map(|o| {
            let hint = elements(o, "optionhint").next().map(inner);
            json!({
                "text": text_of_skip(o, "optionhint"),
                "correct": is_true(o.attribute("correct")),
                "hint": hint,
            })
        })
        .collect())
}

fn text_of_skip(node: Node, skip: &str) -> String {
    let text: String = node
        .children()
        .filter(|c| !(c.is_element() && c.tag_name().name() == skip))
        .map(text_of)
        .collect::<Vec<_>>()
        .join(" ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `<optioninput>`s of an `optionresponse` (each becomes its own response).
pub(super) fn split_options<'a, 'i>(response: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    response
        .descendants()
        .filter(|d| d.is_element() && d.tag_name().name() == "optioninput")
        .collect()
}

/// The fields of `response` (for an option response, of its dropdown `input`).
pub(super) fn response_fields(
    response: Node,
    input: Option<Node>,
    label: &str,
) -> Result<Value, String> {
    let tag = response.tag_name().name();
    let required = |name: &str| {
        response
            .attribute(name)
            .map(str::to_string)
            .ok_or_else(|| format!("its <{tag}> has no {name}"))
    };
    let mut fields = match tag {
        "multiplechoiceresponse" => {
            let group = element(response, "choicegroup")
                .ok_or("its <multiplechoiceresponse> has no <choicegroup>")?;
            json!({"type": "multiple_choice", "choices": choices(group, "choicehint")})
        }
        "choiceresponse" => {
            let group = element(response, "checkboxgroup")
                .ok_or("its <choiceresponse> has no <checkboxgroup>")?;
            json!({"type": "checkbox", "choices": choices(group, "choicehint")})
        }
        "optionresponse" => {
            let input = input.ok_or("its <optionresponse> has no <optioninput>")?;
            json!({"type": "option", "options": options(input)?})
        }
        "numericalresponse" => {
            let additional: Vec<String> = elements(response, "additional_answer")
                .filter_map(|a| a.attribute("answer").map(|s| s.trim().to_string()))
                .collect();
            let partial: Vec<String> = response
                .attribute("partial_credit")
                .filter(|p| !p.trim().eq_ignore_ascii_case("false"))
                .map(|p| {
                    p.split(',')
                        .map(|w| w.trim().to_ascii_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            let partial_answers: Vec<String> = param(response, "partial_answers")
                .map(|p| p.split(',').map(|w| w.trim().to_string()).collect())
                .unwrap_or_default();
            let partial_range =
                param(response, "partial_range").and_then(|r| r.parse::<f64>().ok());
            json!({
                "type": "numerical",
                "answer": required("answer")?.trim(),
                "tolerance": param(response, "tolerance"),
                "additional_answers": additional,
                "partial_credit": partial,
                "partial_answers": partial_answers,
                "partial_range": partial_range,
            })
        }
        "stringresponse" => {
            let answer = required("answer")?;
            let types: Vec<String> = response
                .attribute("type")
                .unwrap_or("")
                .split(|c: char| c.is_whitespace() || c == ',')
                .map(str::to_ascii_lowercase)
                .collect();
            // capa's old `a_or_b` form, and `additional_answer` (attribute or, older, text).
            let mut answers: Vec<String> = if answer.to_ascii_lowercase().contains("_or_") {
                answer.split("_or_").map(|a| a.trim().to_string()).collect()
            } else {
                vec![answer.trim().to_string()]
            };
            answers.extend(elements(response, "additional_answer").map(|a| {
                a.attribute("answer")
                    .map_or_else(|| text_of(a), |s| s.trim().to_string())
            }));
            json!({
                "type": "string",
                "answers": answers,
                "case_insensitive": types.iter().any(|t| t == "ci"),
                "regexp": types.iter().any(|t| t == "regexp"),
            })
        }
        "formularesponse" => {
            let types = response.attribute("type").unwrap_or("");
            json!({
                "type": "formula",
                "answer": required("answer")?.trim(),
                "samples": required("samples")?.trim(),
                "tolerance": param(response, "tolerance"),
                "case_sensitive": types.split(|c: char| c.is_whitespace() || c == ',').any(|t| t == "cs"),
            })
        }
        "imageresponse" => {
            let images: Vec<Value> = response
                .descendants()
                .filter(|d| d.is_element() && d.tag_name().name() == "imageinput")
                .map(|i| {
                    let num = |n: &str| i.attribute(n).and_then(|v| v.trim().parse::<u32>().ok());
                    json!({
                        "src": i.attribute("src").unwrap_or(""),
                        "width": num("width"),
                        "height": num("height"),
                        "alt": i.attribute("alt"),
                        "rectangle": i.attribute("rectangle"),
                        "regions": i.attribute("regions"),
                    })
                })
                .collect();
            if images.is_empty() {
                return Err("its <imageresponse> has no <imageinput>".into());
            }
            json!({"type": "image", "images": images})
        }
        other => return Err(format!("<{other}> is not a supported response")),
    };
    fields["label"] = json!(label);
    Ok(strip_nulls(fields))
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, v| !v.is_null());
        for choice in ["choices", "options", "images"] {
            if let Some(Value::Array(items)) = map.get_mut(choice) {
                for item in items {
                    if let Some(m) = item.as_object_mut() {
                        m.retain(|_, v| !v.is_null());
                    }
                }
            }
        }
    }
    v
}
