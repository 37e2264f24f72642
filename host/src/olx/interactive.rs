//! Blocks that take part in what learners do beyond a page of content: randomized content
//! (`library_content`, and `itembank`, its newer name), blocks copied from a library
//! (`library_sourced`), `poll` and `survey` (xblock-poll), and `conditional`, each turned into its plugin's fields from the attributes Open edX
//! exports.

use anyhow::{Result, anyhow};
use roxmltree::{Document, Node};
use serde_json::{Value, json};

use super::importer::Importer;
use super::keys::url_name_of;
use super::xml::at;

/// The conditions a `conditional` may carry as attributes (Open edX's `conditions_map`).
const CONDITIONS: &[&str] = &[
    "attempted",
    "submitted",
    "correct",
    "voted",
    "poll_answer",
    "completed",
];

/// What a block becomes: its type, fields and children.
type Imported = (String, Value, Vec<String>);

impl Importer<'_> {
    /// `library_content`: its pool (the children the export carries) and how many each
    /// learner gets.
    pub(super) fn library_content(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        usage: &str,
        display_name: Option<String>,
    ) -> Result<Imported> {
        let here = at(doc, file, node);
        let children = self.children(doc, file, node)?;
        // Open edX's default is 1; -1 is "all".
        let max_count = match node.attribute("max_count").map(str::trim) {
            None | Some("") => 1,
            Some(v) => v.parse::<i64>().map_err(|_| {
                anyhow!("{here}: library_content {usage:?} has max_count {v:?}, which is not a whole number")
            })?,
        };
        Ok((
            "library_content".to_string(),
            json!({
                "display_name": display_name,
                "max_count": max_count,
                "source_library_id": node.attribute("source_library_id"),
                "capa_type": node.attribute("capa_type").filter(|t| *t != "any"),
            }),
            children,
        ))
    }

    /// `library_sourced`: blocks copied from a content library, its children.
    pub(super) fn library_sourced(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        usage: &str,
        display_name: Option<String>,
    ) -> Result<Imported> {
        let here = at(doc, file, node);
        let children = self.children(doc, file, node)?;
        let ids: Value = match node.attribute("source_block_ids") {
            Some(text) => serde_json::from_str(text).map_err(|e| {
                anyhow!(
                    "{here}: library_sourced {usage:?} has source_block_ids that is not JSON: {e}"
                )
            })?,
            None => json!([]),
        };
        Ok((
            "library_sourced".to_string(),
            json!({
                "display_name": display_name,
                "source_library_id": node.attribute("source_library_id"),
                "source_block_ids": ids,
            }),
            children,
        ))
    }

    /// `poll` and `survey` (xblock-poll): their JSON attributes parsed, the rest as text.
    pub(super) fn poll_or_survey(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        tag: &str,
        usage: &str,
        display_name: Option<String>,
    ) -> Result<Imported> {
        let here = at(doc, file, node);
        let mut fields = json!({ "display_name": display_name });
        for name in ["question", "feedback", "block_name"] {
            if let Some(v) = node.attribute(name) {
                fields[name] = json!(v);
            }
        }
        for name in ["answers", "questions"] {
            if let Some(text) = node.attribute(name) {
                let v: Value = serde_json::from_str(text).map_err(|e| {
                    anyhow!("{here}: {tag} {usage:?} has {name} that is not JSON: {e}")
                })?;
                if !v.is_array() {
                    return Err(anyhow!(
                        "{here}: {tag} {usage:?} has {name} that is not a list of [key, label] pairs"
                    ));
                }
                fields[name] = v;
            }
        }
        if let Some(v) = node.attribute("max_submissions").map(str::trim) {
            let n: u32 = v.parse().map_err(|_| {
                anyhow!("{here}: {tag} {usage:?} has max_submissions {v:?}, which is not a count")
            })?;
            fields["max_submissions"] = json!(n);
        }
        if let Some(v) = node.attribute("private_results") {
            fields["private_results"] = json!(v.trim().eq_ignore_ascii_case("true"));
        }
        Ok((tag.to_string(), fields, vec![]))
    }

    /// `conditional`: its sources as usage ids, its condition, its message and children
    /// (`<show>` elements name blocks elsewhere in the course, which it cannot show: they
    /// are left out, with a warning).
    pub(super) fn conditional(
        &mut self,
        doc: &Document,
        file: &str,
        node: Node,
        usage: &str,
        display_name: Option<String>,
    ) -> Result<Imported> {
        let here = at(doc, file, node);
        let mut sources: Vec<String> = node
            .attribute("sources")
            .unwrap_or("")
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| url_name_of(s).to_string())
            .collect();
        if let Some(text) = node.attribute("sources_list") {
            let list: Vec<String> = serde_json::from_str(text).map_err(|e| {
                anyhow!(
                    "{here}: conditional {usage:?} has sources_list that is not a JSON list: {e}"
                )
            })?;
            sources.extend(list.iter().map(|s| url_name_of(s).to_string()));
        }
        let (attr, value) = match (
            node.attribute("conditional_attr"),
            node.attribute("conditional_value"),
        ) {
            (Some(a), v) => (a.to_string(), v.unwrap_or("True").to_string()),
            (None, _) => CONDITIONS
                .iter()
                .find_map(|c| node.attribute(*c).map(|v| (c.to_string(), v.to_string())))
                .unwrap_or_else(|| ("correct".into(), "True".into())),
        };
        let mut children = Vec::new();
        let mut shows = 0;
        for child in node.children().filter(|c| c.is_element()) {
            if child.tag_name().name() == "show" {
                shows += 1;
                continue;
            }
            children.push(self.import(doc, file, child)?);
        }
        if shows > 0 {
            self.warn(format!(
                "{here}: conditional {usage:?} has {shows} <show> elements naming blocks elsewhere in the course; only its own children are shown"
            ));
        }
        Ok((
            "conditional".to_string(),
            json!({
                "display_name": display_name,
                "sources": sources,
                "conditional_attr": attr,
                "conditional_value": value,
                "message": node.attribute("message").unwrap_or(""),
            }),
            children,
        ))
    }
}
