//! The demo course's assignment events as the crash tests read them: from an event log's
//! lines, and pending in a store's outbox.

use std::collections::BTreeMap;

use xbhost::storage::Storage;

use super::DEMO_COURSE;

/// The assignment events of the demo course in an event log: (user, partition) to the
/// groups of its events, in log order. Lines a kill left torn are not events.
pub fn in_log<'a>(lines: impl Iterator<Item = &'a [u8]>) -> BTreeMap<(String, u64), Vec<String>> {
    let mut out: BTreeMap<(String, u64), Vec<String>> = BTreeMap::new();
    for line in lines {
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if event["name"] != xbhost::events::ASSIGNED_EVENT || event["course_key"] != DEMO_COURSE {
            continue;
        }
        let user = event["user_id"].as_str().unwrap().to_string();
        let partition = event["data"]["partition_id"].as_u64().unwrap();
        out.entry((user, partition))
            .or_default()
            .push(event["data"]["group_id"].to_string());
    }
    out
}

/// The assignment events waiting in the store's outbox: (user, partition, group).
pub fn pending(storage: &dyn Storage) -> Vec<(String, u64, String)> {
    storage
        .outbox()
        .unwrap()
        .iter()
        .map(|entry| serde_json::from_slice::<serde_json::Value>(&entry.line).unwrap())
        .filter(|e| e["name"] == xbhost::events::ASSIGNED_EVENT && e["course_key"] == DEMO_COURSE)
        .map(|e| {
            (
                e["user_id"].as_str().unwrap().to_string(),
                e["data"]["partition_id"].as_u64().unwrap(),
                e["data"]["group_id"].to_string(),
            )
        })
        .collect()
}
