//! Problems: turning a capa `<problem>` into the `problem` plugin's fields
//! ([`problem_fields`]), or saying why it cannot be one.
//!
//! The fields are the problem's body as a list of parts (authored HTML, the place of each
//! input, the place of each `<solution>`), its responses ([`super::problem_responses`]),
//! its `<demandhint>` hints and its settings (`showanswer`, `rerandomize`,
//! `show_reset_button`; `weight` and `max_attempts` are read by the importer). capa's own
//! elements that are not for learners (hints of choices, `additional_answer`,
//! `responseparam`, scripts) are left out of the body.
//!
//! Not supported, with the reason named: responses graded by code (`customresponse` and
//! the others in [`SCRIPT_GRADED`]), and problems whose answers or text come from their
//! Python `<script>` (`$name` substitutions).

use anyhow::Result;
use roxmltree::{Document, Node};
use serde_json::{Value, json};

use super::problem_responses::{
    INPUTS, SCRIPT_GRADED, SUPPORTED, response_fields, split_options, text_of,
};
use super::xml::{at, inner_source};

/// capa elements never shown to learners as they are.
const HIDDEN: &[&str] = &[
    "script",
    "demandhint",
    "choicehint",
    "optionhint",
    "compoundhint",
    "correcthint",
    "stringequalhint",
    "regexphint",
    "numerichint",
    "formulahint",
    "hintgroup",
    "additional_answer",
    "responseparam",
];

fn is_response(n: Node) -> bool {
    n.is_element() && SUPPORTED.contains(&n.tag_name().name())
}

/// Elements whose content the body walk must look into (or leave out).
fn is_special(n: Node) -> bool {
    n.is_element() && {
        let t = n.tag_name().name();
        HIDDEN.contains(&t) || INPUTS.contains(&t) || t == "solution" || SUPPORTED.contains(&t)
    }
}

/// Builds the body: HTML text, input places and solution places.
struct Body<'d, 'i> {
    text: &'d str,
    parts: Vec<Value>,
    html: String,
    responses: Vec<Value>,
    solutions: Vec<String>,
    doc: &'d Document<'i>,
}

impl<'d, 'i> Body<'d, 'i> {
    fn flush(&mut self) {
        if !self.html.trim().is_empty() {
            self.parts.push(json!(std::mem::take(&mut self.html)));
        }
        self.html.clear();
    }

    fn push(&mut self, part: Value) {
        self.flush();
        self.parts.push(part);
    }

    /// Walks `node`'s children; `response` is the index of the response they are in.
    fn walk(&mut self, node: Node<'d, 'i>, response: Option<usize>) -> Result<(), String> {
        for c in node.children() {
            if c.is_text() {
                self.html.push_str(&self.text[c.range()]);
                continue;
            }
            if !c.is_element() {
                continue;
            }
            let tag = c.tag_name().name();
            if HIDDEN.contains(&tag) {
                continue;
            }
            if tag == "solution" {
                let k = self.solutions.len();
                self.solutions.push(inner_source(self.doc, c, HIDDEN));
                self.push(json!({ "solution": k }));
            } else if is_response(c) {
                self.response(c)?;
            } else if INPUTS.contains(&tag) {
                if tag == "optioninput" {
                    // Its own response (see problem_responses::split_options).
                    if let Some(parent) = c.ancestors().find(|a| is_response(*a)) {
                        let label = label_of(parent);
                        let fields = response_fields(parent, Some(c), &label)?;
                        let r = self.responses.len();
                        self.responses.push(fields);
                        self.push(json!({ "response": r }));
                    }
                    continue;
                }
                let Some(r) = response else { continue };
                let input = self
                    .parts
                    .iter()
                    .filter(|p| p["response"] == json!(r))
                    .count();
                self.push(json!({ "response": r, "input": input }));
            } else if c.descendants().skip(1).any(is_special) {
                let first = c.first_child().map_or(c.range().end, |f| f.range().start);
                let last = c.last_child().map_or(c.range().end, |l| l.range().end);
                self.html.push_str(&self.text[c.range().start..first]);
                self.walk(c, response)?;
                self.html.push_str(&self.text[last..c.range().end]);
            } else {
                self.html.push_str(&self.text[c.range()]);
            }
        }
        Ok(())
    }

    fn response(&mut self, node: Node<'d, 'i>) -> Result<(), String> {
        if node.tag_name().name() == "optionresponse" {
            if split_options(node).is_empty() {
                return Err("its <optionresponse> has no <optioninput>".into());
            }
            self.html
                .push_str("<div class=\"wrapper-problem-response\">");
            self.walk(node, None)?;
            self.html.push_str("</div>");
            return Ok(());
        }
        let label = label_of(node);
        let fields = response_fields(node, None, &label)?;
        let r = self.responses.len();
        self.responses.push(fields);
        self.html
            .push_str("<div class=\"wrapper-problem-response\">");
        self.walk(node, Some(r))?;
        self.html.push_str("</div>");
        Ok(())
    }
}

/// The question a response asks: its `<label>`, else its `label` attribute's input's.
fn label_of(response: Node) -> String {
    response
        .descendants()
        .find(|d| d.is_element() && d.tag_name().name() == "label")
        .map(text_of)
        .or_else(|| {
            response
                .descendants()
                .find_map(|d| d.attribute("label").map(str::to_string))
        })
        .unwrap_or_default()
}

/// Why the problem cannot be graded here, if it cannot.
fn unsupported_reason(node: Node) -> Option<String> {
    for d in node.descendants().filter(|d| d.is_element()) {
        let tag = d.tag_name().name();
        if let Some((_, why)) = SCRIPT_GRADED.iter().find(|(t, _)| *t == tag) {
            return Some((*why).to_string());
        }
        if tag == "jsinput" {
            return Some("its input is a JavaScript program (<jsinput>) graded by a script, which xbhost does not run".into());
        }
        if tag.ends_with("response") && !SUPPORTED.contains(&tag) {
            return Some(format!("<{tag}> is not a response type xbhost grades"));
        }
    }
    let has_script = node
        .descendants()
        .any(|d| d.is_element() && d.tag_name().name() == "script");
    if has_script {
        // capa replaces `$name` in the problem with the script's variables.
        let uses = node.descendants().find_map(|d| {
            let texts = d
                .attributes()
                .map(|a| a.value())
                .chain(d.text().filter(|_| d.is_text()));
            texts
                .filter(|_| !d.ancestors().any(|a| a.tag_name().name() == "script"))
                .find_map(dollar_name)
        });
        if let Some(name) = uses {
            return Some(format!(
                "its answers or text come from its Python script (${name}), which xbhost does not run"
            ));
        }
    }
    None
}

/// The first `$name` in `text`.
fn dollar_name(text: &str) -> Option<String> {
    let at = text.find('$')?;
    let name: String = text[at + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    {
        Some(name)
    } else {
        dollar_name(&text[at + 1..])
    }
}

/// Problem fields for a supported problem, or why it is not one.
pub(super) fn problem_fields(
    doc: &Document,
    file: &str,
    node: Node,
) -> Result<std::result::Result<Value, String>> {
    if let Some(reason) = unsupported_reason(node) {
        return Ok(Err(reason));
    }
    if !node.descendants().any(is_response) {
        return Ok(Err("it has no response element".into()));
    }
    let mut body = Body {
        text: doc.input_text(),
        parts: Vec::new(),
        html: String::new(),
        responses: Vec::new(),
        solutions: Vec::new(),
        doc,
    };
    if let Err(why) = body.walk(node, None) {
        return Ok(Err(format!("{why} ({})", at(doc, file, node))));
    }
    body.flush();
    let hints: Vec<String> = node
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "demandhint")
        .flat_map(|d| {
            d.children()
                .filter(|h| h.is_element() && h.tag_name().name() == "hint")
        })
        .map(|h| inner_source(doc, h, &[]))
        .collect();
    let mut fields = json!({
        "body": body.parts,
        "responses": body.responses,
        "solutions": body.solutions,
        "hints": hints,
    });
    for name in ["showanswer", "rerandomize"] {
        if let Some(v) = node
            .attribute(name)
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "null")
        {
            fields[name] = json!(v);
        }
    }
    if let Some(v) = node.attribute("show_reset_button") {
        fields["show_reset_button"] = json!(v.trim().eq_ignore_ascii_case("true"));
    }
    Ok(Ok(fields))
}
