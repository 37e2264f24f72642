//! Scenarios a plugin ships (like XBlock's `workbench_scenarios`): small example courses the
//! workbench lists and renders with the shipped containers, without a course document.
//! [`scenarios!`](crate::scenarios!) compiles a JSON file into the plugin's
//! `xbhost-scenarios` custom section; the host reads it with [`parse`] when the plugin is
//! installed, and a native test can call [`parse`] on `SCENARIOS` to check the file.
//!
//! The file is a JSON list of scenarios:
//!
//! ```json
//! [
//!   {
//!     "name": "one-vote",
//!     "title": "Thumbs: a vote",
//!     "blocks": [
//!       { "type": "thumbs", "fields": { "prompt": "Was this helpful?" } },
//!       { "type": "vertical", "id": "more", "children": [ { "type": "html" } ] }
//!     ]
//!   }
//! ]
//! ```
//!
//! - `name`: 1 to 64 of `a-z`, `0-9`, `_` and `-`, starting with a letter or digit, unique
//!   in the file: the scenario's unit is called so.
//! - `title`: what the workbench shows, 1 to 200 characters without control characters.
//! - `blocks`: 1 to [`MAX_BLOCKS_PER_SCENARIO`] blocks in all, the top ones in the
//!   scenario's unit. A block has `type` (a block type: a plugin name), optional `fields`
//!   (a JSON object, the block's authored fields), optional `children` (blocks, at most
//!   [`MAX_DEPTH`] deep) and an optional `id` (its usage id, for fields that name another
//!   block; the host names the others `SCENARIO.TYPE.N`). Other keys are refused.
//!
//! Every byte of the section is the plugin author's, so all of it is bounded here.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest section (the JSON file), in bytes.
pub const MAX_SECTION_BYTES: usize = 256 << 10;
/// Most scenarios one plugin ships.
pub const MAX_SCENARIOS: usize = 32;
/// Most blocks of one scenario, at any depth.
pub const MAX_BLOCKS_PER_SCENARIO: usize = 64;
/// Deepest nesting of blocks in a scenario (its top blocks are depth 1).
pub const MAX_DEPTH: usize = 8;
/// Longest scenario name, block type or plugin name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest block id, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// One scenario: a titled unit of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub title: String,
    pub blocks: Vec<ScenarioBlock>,
}

/// One block of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioBlock {
    #[serde(rename = "type")]
    pub block_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default = "empty_object")]
    pub fields: Value,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ScenarioBlock>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl Scenario {
    /// Every block type the scenario uses, each once, in the order first met.
    pub fn block_types(&self) -> Vec<&str> {
        let mut types = Vec::new();
        let mut stack: Vec<&ScenarioBlock> = self.blocks.iter().rev().collect();
        while let Some(block) = stack.pop() {
            if !types.contains(&block.block_type.as_str()) {
                types.push(block.block_type.as_str());
            }
            stack.extend(block.children.iter().rev());
        }
        types
    }
}

/// Whether `name` has the shape of a plugin name, a block type or a scenario name: 1 to
/// [`MAX_NAME_CHARS`] of `a-z`, `0-9`, `_` and `-`, starting with a letter or digit.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// The scenarios of a section (the JSON file), checked against every bound above. The
/// error names the scenario (by name, or by position when it has none) and what is wrong.
pub fn parse(section: &[u8]) -> Result<Vec<Scenario>, String> {
    if section.len() > MAX_SECTION_BYTES {
        return Err(format!(
            "it is {} bytes, over the limit of {MAX_SECTION_BYTES}",
            section.len()
        ));
    }
    let list: Vec<Value> =
        serde_json::from_slice(section).map_err(|e| format!("it is not a JSON list: {e}"))?;
    if list.is_empty() {
        return Err("it lists no scenario".into());
    }
    if list.len() > MAX_SCENARIOS {
        return Err(format!(
            "it lists {} scenarios, over the limit of {MAX_SCENARIOS}",
            list.len()
        ));
    }
    let mut names = HashSet::new();
    let mut scenarios = Vec::with_capacity(list.len());
    for (i, value) in list.into_iter().enumerate() {
        let shown = match value.get("name").and_then(Value::as_str) {
            Some(name) => format!("scenario {:?}", truncate(name, 40)),
            None => format!("scenario #{}", i + 1),
        };
        let scenario: Scenario = serde_path_to_error::deserialize(value)
            .map_err(|e| format!("{shown}: at {}: {}", e.path(), e.inner()))?;
        check(&scenario).map_err(|e| format!("{shown}: {e}"))?;
        if !names.insert(scenario.name.clone()) {
            return Err(format!("{shown} is listed twice"));
        }
        scenarios.push(scenario);
    }
    Ok(scenarios)
}

fn check(scenario: &Scenario) -> Result<(), String> {
    if !is_name(&scenario.name) {
        return Err(format!(
            "a scenario name is 1 to {MAX_NAME_CHARS} of a-z, 0-9, `_` and `-`, starting \
             with a letter or digit"
        ));
    }
    let title_chars = scenario.title.chars().count();
    if scenario.title.trim().is_empty()
        || title_chars > MAX_TITLE_CHARS
        || scenario.title.chars().any(char::is_control)
    {
        return Err(format!(
            "its title is 1 to {MAX_TITLE_CHARS} characters without control characters"
        ));
    }
    if scenario.blocks.is_empty() {
        return Err("it has no blocks".into());
    }
    let mut count = 0;
    let mut stack: Vec<(&ScenarioBlock, usize)> = scenario.blocks.iter().map(|b| (b, 1)).collect();
    while let Some((block, depth)) = stack.pop() {
        count += 1;
        if count > MAX_BLOCKS_PER_SCENARIO {
            return Err(format!(
                "it has over {MAX_BLOCKS_PER_SCENARIO} blocks, the most a scenario may have"
            ));
        }
        if depth > MAX_DEPTH {
            return Err(format!(
                "its blocks are nested over {MAX_DEPTH} deep, the most a scenario may nest"
            ));
        }
        if !is_name(&block.block_type) {
            return Err(format!(
                "block type {:?} is not a plugin name (1 to {MAX_NAME_CHARS} of a-z, 0-9, \
                 `_` and `-`)",
                truncate(&block.block_type, 40)
            ));
        }
        if let Some(id) = &block.id
            && (id.is_empty()
                || id.len() > MAX_ID_BYTES
                || id.chars().any(|c| c.is_control() || c == '/' || c == '\\'))
        {
            return Err(format!(
                "block id {:?} is not 1 to {MAX_ID_BYTES} bytes without control characters \
                 or path separators",
                truncate(id, 40)
            ));
        }
        if !block.fields.is_object() {
            return Err(format!(
                "the fields of a {} block are not a JSON object",
                block.block_type
            ));
        }
        stack.extend(block.children.iter().map(|c| (c, depth + 1)));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn reads_the_documented_format() {
        let s = parse(&text(json!([{
            "name": "one-vote", "title": "A vote",
            "blocks": [
                {"type": "thumbs", "fields": {"prompt": "?"}},
                {"type": "vertical", "id": "more", "children": [{"type": "html"}]}
            ]
        }])))
        .unwrap();
        assert_eq!(s[0].name, "one-vote");
        assert_eq!(s[0].block_types(), ["thumbs", "vertical", "html"]);
        assert_eq!(s[0].blocks[1].id.as_deref(), Some("more"));
        assert_eq!(s[0].blocks[1].children[0].fields, json!({}));
    }

    #[test]
    fn refuses_what_is_out_of_bounds_naming_the_scenario() {
        let one = |blocks: Value| json!({"name": "s", "title": "T", "blocks": blocks});
        let deep = (0..=MAX_DEPTH).fold(
            json!({"type": "html"}),
            |inner, _| json!({"type": "vertical", "children": [inner]}),
        );
        let many: Vec<Value> = (0..=MAX_BLOCKS_PER_SCENARIO)
            .map(|_| json!({"type": "html"}))
            .collect();
        let scenarios: Vec<Value> = (0..=MAX_SCENARIOS)
            .map(|i| json!({"name": format!("s{i}"), "title": "T", "blocks": [{"type": "html"}]}))
            .collect();
        for (section, why) in [
            (b"{".to_vec(), "not a JSON list"),
            (text(json!({"name": "s"})), "not a JSON list"),
            (text(json!([])), "no scenario"),
            (text(Value::Array(scenarios)), "scenarios, over the limit"),
            (vec![b' '; MAX_SECTION_BYTES + 1], "over the limit of"),
            (
                text(json!([{"name": "Bad Name", "title": "T", "blocks": [{"type": "html"}]}])),
                "scenario \"Bad Name\": a scenario name is",
            ),
            (
                text(json!([{"name": "s", "title": "\u{7}", "blocks": [{"type": "html"}]}])),
                "scenario \"s\": its title",
            ),
            (
                text(json!([one(json!([]))])),
                "scenario \"s\": it has no blocks",
            ),
            (text(json!([one(json!([deep]))])), "nested over"),
            (text(json!([one(Value::Array(many))])), "over 64 blocks"),
            (
                text(json!([one(json!([{"type": "<script>"}]))])),
                "block type \"<script>\"",
            ),
            (
                text(json!([one(json!([{"type": "html", "id": "a/b"}]))])),
                "block id \"a/b\"",
            ),
            (
                text(json!([one(json!([{"type": "html", "fields": [1]}]))])),
                "not a JSON object",
            ),
            (
                text(json!([one(json!([{"type": "html", "colour": 1}]))])),
                "scenario \"s\": at blocks[0].colour: unknown field `colour`",
            ),
            (text(json!([{"title": "T", "blocks": []}])), "scenario #1"),
            (
                text(json!([
                    one(json!([{"type": "html"}])),
                    one(json!([{"type": "html"}]))
                ])),
                "listed twice",
            ),
        ] {
            let err = parse(&section).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
