//! The course policy and user partitions as exports write them ([`read_course_policy`],
//! [`partition_from_json`]), and the grading policy ([`read_grading_policy`]).
//!
//! Where they are is Open edX's rule (`XMLModuleStore.load_course` and
//! `CourseBlock.from_xml`): the policy is `policies/{run}/policy.json`, or in older
//! exports `policies/{run}.json` when the first is absent or empty; the grading policy is
//! `policies/{run}/grading_policy.json`, else `grading_policy.json` beside `course.xml`.

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

use super::source::Source;
use crate::model::{Group, UserPartition};

/// The course's policy (by run) and the file it came from (the new layout's path when
/// neither file exists, for messages).
pub(super) fn read_course_policy(
    src: &Source,
    run: &str,
) -> Result<(String, serde_json::Map<String, Value>)> {
    let new = format!("policies/{run}/policy.json");
    let policy = read_policy(src, &new)?;
    if !policy.is_empty() {
        return Ok((new, policy));
    }
    let old = format!("policies/{run}.json");
    if src.read(&old).is_some() {
        return Ok((old.clone(), read_policy(src, &old)?));
    }
    Ok((new, policy))
}

/// The course's grading policy and the file it came from, if the export has one. It must
/// be a JSON object; an error names the file, line and column.
pub(super) fn read_grading_policy(src: &Source, run: &str) -> Result<Option<(String, Value)>> {
    for path in [
        format!("policies/{run}/grading_policy.json"),
        "grading_policy.json".to_string(),
    ] {
        let Some(text) = src.read(&path) else {
            continue;
        };
        let value: Value = serde_json::from_str(&text?)
            .map_err(|e| anyhow!("{path}:{}:{}: {e}", e.line(), e.column()))?;
        if !value.is_object() {
            bail!("{path}: the grading policy is not a JSON object");
        }
        return Ok(Some((path, value)));
    }
    Ok(None)
}

/// The policy file at `policy_path`, as a map (empty if the file is absent or not an object).
fn read_policy(src: &Source, policy_path: &str) -> Result<serde_json::Map<String, Value>> {
    let mut policy = serde_json::Map::new();
    if let Some(text) = src.read(policy_path) {
        let value: Value = serde_json::from_str(&text?)
            .map_err(|e| anyhow!("{policy_path}:{}:{}: {e}", e.line(), e.column()))?;
        policy = value.as_object().cloned().unwrap_or_default();
    }
    Ok(policy)
}

/// A partition as exports write it (extra keys such as `version` and `parameters` ignored).
pub(super) fn partition_from_json(v: &Value) -> Result<UserPartition> {
    let id = v["id"]
        .as_u64()
        .ok_or_else(|| anyhow!("a user partition has no numeric id: {v}"))?;
    let groups = v["groups"]
        .as_array()
        .ok_or_else(|| anyhow!("user partition {id} has no groups list"))?
        .iter()
        .map(|g| {
            Ok(Group {
                id: g["id"].as_u64().ok_or_else(|| {
                    anyhow!("user partition {id} has a group without a numeric id: {g}")
                })?,
                name: g["name"].as_str().unwrap_or_default().to_string(),
                weight: 1,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(UserPartition {
        id,
        name: v["name"].as_str().unwrap_or_default().to_string(),
        description: v["description"].as_str().unwrap_or_default().to_string(),
        scheme: v["scheme"].as_str().unwrap_or("random").to_string(),
        active: v["active"].as_bool().unwrap_or(true),
        groups,
        ..UserPartition::default()
    })
}
