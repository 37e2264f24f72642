//! The XBlocks of real exports that are neither problems, video nor randomized content:
//! `done` (DoneXBlock), `google-calendar` and `google-document` (xblock-google-drive),
//! `rate` (RateXBlock), `annotatable`, and the LTI 1.1 blocks `lti` and `lti_consumer`.
//! Each becomes a block of its plugin's type (the tag, with `-` as `_`: a plugin is named
//! after its crate, and cargo's crate names cannot hold `-`) whose fields are the
//! XBlock's, from the element's attributes and the block's policy entry, typed as the
//! XBlock declares them. Attributes the XBlock does not have are ignored, as Open edX
//! ignores them; fields absent from both keep the plugin's defaults, which are the
//! XBlock's.
//!
//! An LTI block also gets `lti_passport`, the key and secret of the course's
//! `lti_passports` entry `"id:key:secret"` for its `lti_id` (Open edX's
//! `get_client_key_secret`: the first entry whose id matches). An entry that is not three
//! parts is warned about (naming its id, never its secret) and skipped.

use anyhow::{Result, anyhow, bail};
use roxmltree::{Document, Node};
use serde_json::{Map, Value, json};

use super::importer::Importer;
use super::xml::at;

/// How the XBlock declares a field, and so how its attribute text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Int,
    Float,
    /// A JSON list (`List` fields are exported as JSON).
    List,
}

use Kind::{Bool, Float, Int, List, Text};

/// The LTI fields `lti` and `lti_consumer` share.
const LTI_COMMON: &[(&str, Kind)] = &[
    ("lti_id", Text),
    ("launch_url", Text),
    ("custom_parameters", List),
    ("has_score", Bool),
    ("weight", Float),
    ("hide_launch", Bool),
    ("ask_to_send_username", Bool),
    ("ask_to_send_email", Bool),
    ("description", Text),
    ("button_text", Text),
    ("accept_grades_past_due", Bool),
];

/// Each tag's fields besides `display_name` (and `data`, `annotatable`'s content).
fn fields_of(tag: &str) -> Vec<(&'static str, Kind)> {
    match tag {
        "done" => vec![("align", Text)],
        "google-calendar" => vec![("calendar_id", Text), ("default_view", Int)],
        "google-document" => vec![("embed_code", Text), ("alt_text", Text)],
        "rate" => vec![("prompts", List), ("p", Float)],
        "lti" => [LTI_COMMON, &[("open_in_a_new_page", Bool)]].concat(),
        "lti_consumer" => [
            LTI_COMMON,
            &[
                ("lti_version", Text),
                ("launch_target", Text),
                ("inline_height", Int),
                ("ask_to_send_full_name", Bool),
            ],
        ]
        .concat(),
        _ => vec![],
    }
}

/// What a block becomes: its type, fields and children.
type Imported = (String, Value, Vec<String>);

impl Importer<'_> {
    /// Imports `node` as a block of `tag` (one of the module doc's; the pointer's, for a
    /// block in its own file) under `usage`; `attr` reads the element's (or its pointer's)
    /// attributes. An attribute or policy value of the wrong type is an error naming the
    /// file, line, block and field.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn xblock(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        tag: &str,
        usage: &str,
        display_name: Option<String>,
        attr: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Imported> {
        let here = at(doc, file, node);
        let mut fields = Map::new();
        if let Some(name) = display_name {
            fields.insert("display_name".into(), json!(name));
        }
        let policy = self
            .policy
            .get(&format!("{tag}/{usage}"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (name, kind) in fields_of(tag) {
            if let Some(text) = attr(name) {
                let value = typed(kind, &text)
                    .and_then(|v| strings_only(name, v))
                    .map_err(|e| {
                        anyhow!("{here}: {tag} {usage:?} has {name}={text:?}, which {e}")
                    })?;
                fields.insert(name.into(), value);
            }
            // The policy's settings override the element's, as Open edX applies them last.
            if let Some(v) = policy.get(name).filter(|v| !v.is_null()) {
                let value = match v {
                    Value::String(s) if kind != Text => typed(kind, s),
                    v => check(kind, v.clone()),
                }
                .and_then(|v| strings_only(name, v));
                let value = value.map_err(|e| {
                    anyhow!("the policy entry {tag}/{usage} has {name} {v}, which {e}")
                })?;
                fields.insert(name.into(), value);
            }
        }
        match tag {
            "annotatable" => {
                let source = &doc.input_text()[node.range()];
                fields.insert("data".into(), json!(source));
            }
            "rate" => {
                // RateXBlock's prompts are an XML-node field: `<prompts>JSON</prompts>`.
                if let Some(child) = node
                    .children()
                    .find(|c| c.is_element() && c.tag_name().name() == "prompts")
                {
                    let text = child.text().unwrap_or_default();
                    let value = typed(List, text).map_err(|e| {
                        anyhow!(
                            "{}: rate {usage:?} has <prompts> that {e}",
                            at(doc, file, child)
                        )
                    })?;
                    fields.insert("prompts".into(), value);
                }
            }
            _ => {}
        }
        if tag != "annotatable" {
            let nested = node
                .children()
                .filter(|c| c.is_element() && !(tag == "rate" && c.tag_name().name() == "prompts"))
                .count();
            if nested > 0 {
                self.warn(format!(
                    "{here}: {tag} {usage:?} has {nested} child elements, which the {tag} XBlock does not read: not imported"
                ));
            }
        }
        if tag == "lti" || tag == "lti_consumer" {
            let lti_id = fields
                .get("lti_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string();
            if let Some((key, secret)) = self.lti_passport(&lti_id) {
                fields.insert(
                    "lti_passport".into(),
                    json!({ "key": key, "secret": secret }),
                );
            }
        }
        Ok((tag.replace('-', "_"), Value::Object(fields), vec![]))
    }

    /// The key and secret of the course's first `lti_passports` entry for `lti_id`.
    fn lti_passport(&mut self, lti_id: &str) -> Option<(String, String)> {
        let run = self.blocks.first()?.usage_id.clone();
        let entries = self
            .policy
            .get(&format!("course/{run}"))?
            .get("lti_passports")?
            .as_array()?
            .clone();
        for (i, entry) in entries.iter().enumerate() {
            let parts: Vec<&str> = entry
                .as_str()
                .map(|s| s.split(':').map(str::trim).collect())
                .unwrap_or_default();
            let [id, key, secret] = parts[..] else {
                let id = parts.first().copied().unwrap_or("");
                let warning = format!(
                    "policy: lti_passports entry {i} (id {id:?}) is not an \"id:key:secret\" string \
                     ({} parts): ignored",
                    parts.len()
                );
                if !self.report.warnings.contains(&warning) {
                    self.warn(warning);
                }
                continue;
            };
            if id == lti_id {
                return Some((key.to_string(), secret.to_string()));
            }
        }
        None
    }
}

/// An attribute's text as a field of `kind` (what XBlock's `from_string` accepts), or
/// why it is not one.
fn typed(kind: Kind, text: &str) -> Result<Value> {
    let t = text.trim();
    Ok(match kind {
        Text => json!(text),
        Bool if t.eq_ignore_ascii_case("true") => json!(true),
        Bool if t.eq_ignore_ascii_case("false") => json!(false),
        Bool => bail!("is not true or false"),
        Int => json!(
            t.parse::<i64>()
                .map_err(|_| anyhow!("is not a whole number"))?
        ),
        Float => match t.parse::<f64>() {
            Ok(v) if v.is_finite() => json!(v),
            _ => bail!("is not a number"),
        },
        List => check(
            List,
            serde_json::from_str(t).map_err(|e| anyhow!("is not a JSON list: {e}"))?,
        )?,
    })
}

/// `custom_parameters` is a list of `"name=value"` strings; other fields pass as they are.
fn strings_only(name: &str, v: Value) -> Result<Value> {
    if name == "custom_parameters"
        && let Some(bad) = v.as_array().and_then(|a| a.iter().find(|e| !e.is_string()))
    {
        bail!("holds {bad}, not a \"name=value\" string");
    }
    Ok(v)
}

/// `v` if it is a value of `kind`.
fn check(kind: Kind, v: Value) -> Result<Value> {
    let fits = match kind {
        Text => v.is_string(),
        Bool => v.is_boolean(),
        Int => v.is_i64(),
        Float => v.is_number(),
        List => v.is_array(),
    };
    if !fits {
        bail!(
            "is not {}",
            match kind {
                Text => "a string",
                Bool => "true or false",
                Int => "a whole number",
                Float => "a number",
                List => "a list",
            }
        );
    }
    Ok(v)
}
