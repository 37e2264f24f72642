//! Pages of the demo unit over HTTP on hosts that share a PostgreSQL database, and what
//! the database holds afterwards, read straight from its tables (`user_course_tags`,
//! `events`), not through a host: what the multi-host and database fault tests compare.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use xbhost::assignment::partition_tag_key;
use xbhost::events::ASSIGNED_EVENT;

use crate::DEMO_COURSE;
use crate::pg::TestDatabase;
use crate::served::learner_token;

/// The demo unit with both experiments (partitions 0 and 1).
pub const UNIT: &str = "unit_1";

/// One page answer: the status, and for a 200 the groups it shows (partition id to group).
#[derive(Debug, Clone)]
pub struct Answer {
    pub host: usize,
    pub learner: String,
    pub status: Option<StatusCode>,
    pub retry_after: bool,
    pub groups: BTreeMap<String, u64>,
    pub body: String,
}

impl Answer {
    pub fn acknowledged(&self) -> bool {
        self.status == Some(StatusCode::OK)
    }
}

/// A learner's first (or later) visit of the unit on `base`: its answer. A connection that
/// fails (a killed host) is an answer with no status.
pub async fn visit(c: &reqwest::Client, base: &str, host: usize, learner: &str) -> Answer {
    let url = format!("{base}/courses/{DEMO_COURSE}/blocks/{UNIT}?format=json");
    let mut answer = Answer {
        host,
        learner: learner.to_string(),
        status: None,
        retry_after: false,
        groups: BTreeMap::new(),
        body: String::new(),
    };
    let response = match c
        .get(&url)
        .bearer_auth(learner_token(learner))
        .timeout(Duration::from_secs(60))
        .send()
        .await
    {
        Ok(response) => response,
        Err(e) => {
            answer.body = format!("no answer: {e}");
            return answer;
        }
    };
    let status = response.status();
    answer.retry_after = response.headers().get("retry-after").is_some();
    let Ok(text) = response.text().await else {
        // The host died while sending the page: not acknowledged.
        answer.body = "the answer was cut off".into();
        return answer;
    };
    answer.status = Some(status);
    if status == StatusCode::OK {
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(
            body["failures"].as_array().unwrap().is_empty(),
            "a page answered 200 with failed blocks: {body}"
        );
        answer.groups = serde_json::from_value(body["assignments"].clone()).unwrap();
        // The page shows the group it reports: exactly its condition of the first split test.
        let html = body["html"].as_str().unwrap();
        let text_shown = html.contains("data-usage-id=\"explanation_a_text\"");
        let video_shown = html.contains("data-usage-id=\"explanation_a_video\"");
        assert!(text_shown != video_shown, "exactly one condition: {html}");
        assert_eq!(
            video_shown,
            answer.groups.get("0") == Some(&1),
            "{:?}: {html}",
            answer.groups
        );
    }
    answer.body = text;
    answer
}

/// The groups stored for a learner, read from `user_course_tags`: partition id to group.
pub fn stored_groups(db: &TestDatabase, learner: &str) -> BTreeMap<String, u64> {
    let prefix = partition_tag_key(0).trim_end_matches('0').to_string();
    db.query(
        "SELECT key, value FROM user_course_tags WHERE course_id = $1 AND user_id = $2",
        &[&DEMO_COURSE, &learner],
    )
    .iter()
    .filter_map(|r| {
        let key: String = r.get(0);
        let value: String = r.get(1);
        let partition = key.strip_prefix(&prefix)?.to_string();
        Some((partition, value.parse().unwrap()))
    })
    .collect()
}

/// Every stored assignment event by learner: (partition id, group id) in storing order.
pub fn assignment_events(db: &TestDatabase) -> BTreeMap<String, Vec<(String, u64)>> {
    let mut out: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for row in db.query(
        "SELECT user_id, line FROM events WHERE course_id = $1 AND name = $2 ORDER BY seq",
        &[&DEMO_COURSE, &ASSIGNED_EVENT],
    ) {
        let user: String = row.get(0);
        let line: Value = serde_json::from_str(row.get::<_, &str>(1)).unwrap();
        let partition = line["data"]["partition_id"].to_string();
        let group = line["data"]["group_id"].as_u64().unwrap();
        out.entry(user).or_default().push((partition, group));
    }
    out
}

/// A first page on a new host, so that it compiles the course's plugins (which it does
/// once, on first use) before a test measures anything.
pub async fn warm_up(c: &reqwest::Client, base: &str) {
    let a = visit(c, base, 0, "warm-up").await;
    assert!(a.acknowledged(), "the first page on {base}: {}", a.body);
}

/// Installs the `sleeper` plugin and a course whose unit runs an experiment, then sleeps
/// `nap_ms` in a second block; returns the unit's URL (JSON).
pub async fn install_slow_experiment(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    nap_ms: u64,
) -> String {
    let admin = crate::served::admin_token("root");
    let (status, body) = crate::http::send(
        c.post(format!("{base}/admin/plugins"))
            .bearer_auth(&admin)
            .body(crate::plugin_wasm("sleeper")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let course = serde_json::json!({"course_key": key,
    "user_partitions": [{"id": 7, "name": "Slow", "scheme": "random",
                         "groups": [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}]}],
    "blocks": [
        {"usage_id": "unit", "type": "vertical", "children": ["split", "nap"]},
        {"usage_id": "split", "type": "split_test", "children": ["a", "b"],
         "fields": {"user_partition_id": 7, "group_id_to_child": {"0": "a", "1": "b"}}},
        {"usage_id": "a", "type": "html", "fields": {"data": "<p>a</p>"}},
        {"usage_id": "b", "type": "html", "fields": {"data": "<p>b</p>"}},
        {"usage_id": "nap", "type": "sleeper", "fields": {"ms": nap_ms}}
    ]});
    let (status, body) = crate::http::send(
        c.post(format!("{base}/admin/courses"))
            .query(&[("course", key)])
            .bearer_auth(&admin)
            .json(&course),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    format!("{base}/courses/{key}/blocks/unit?format=json")
}
