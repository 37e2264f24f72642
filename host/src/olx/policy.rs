//! The course policy (`policies/{run}/policy.json`) and user partitions as exports write
//! them ([`read_policy`], [`partition_from_json`]).

use anyhow::{Result, anyhow};
use serde_json::Value;

use super::source::Source;
use crate::model::{Group, UserPartition};

/// The policy file at `policy_path`, as a map (empty if the file is absent or not an object).
pub(super) fn read_policy(
    src: &Source,
    policy_path: &str,
) -> Result<serde_json::Map<String, Value>> {
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
