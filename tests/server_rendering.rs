//! `xbhost serve` over real HTTP, pages and handlers: 200 concurrent first visits of one
//! learner, handler calls and bad payloads, a JSON render matching `render --json`, and
//! looping blocks as timeouts in the metrics while a full server answers 503, sleeping
//! blocks that hold no slot, and a stop in bounded time whatever clients do.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::header;
use serde_json::{Value, json};
use xbhost::server::auth::Role;
use xbhost_tests::http::{client, error_of, send};
use xbhost_tests::served::{Served, admin_token, learner_token, token};
use xbhost_tests::{DEMO_COURSE, plugin_wasm};

/// Uploads a test plugin and a course through the admin routes.
async fn install(served: &Served, plugin: &str, course: Value) {
    let (c, admin) = (client(), admin_token("root"));
    let (status, body) = send(
        c.post(format!("{}/admin/plugins", served.url))
            .bearer_auth(&admin)
            .body(plugin_wasm(plugin)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        c.post(format!("{}/admin/courses", served.url))
            .query(&[("course", course["course_key"].as_str().unwrap())])
            .bearer_auth(&admin)
            .json(&course),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_first_requests_leave_one_stored_group() {
    let served = Served::demo(&[]);
    let c = client();
    let learner = "newcomer-7f3a";
    let session = learner_token(learner);
    let url = format!("{}?format=json", served.block_url("unit_1"));
    let requests = (0..200).map(|_| {
        let (c, url, session) = (c.clone(), url.clone(), session.clone());
        tokio::spawn(async move { send(c.get(&url).bearer_auth(&session)).await })
    });
    let mut seen = BTreeSet::new();
    for request in requests.collect::<Vec<_>>() {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body["failures"].as_array().unwrap().is_empty(), "{body}");
        let groups: BTreeMap<String, u64> =
            serde_json::from_value(body["assignments"].clone()).unwrap();
        assert_eq!(groups.len(), 2, "both experiments of the unit: {body}");
        // The page shows that group: exactly its condition of each split test.
        let html = body["html"].as_str().unwrap();
        let text_shown = html.contains("data-usage-id=\"explanation_a_text\"");
        let video_shown = html.contains("data-usage-id=\"explanation_a_video\"");
        assert!(text_shown != video_shown, "exactly one condition: {html}");
        assert_eq!(video_shown, groups["0"] == 1, "{groups:?}: {html}");
        seen.insert(groups);
    }
    assert_eq!(seen.len(), 1, "responses disagree: {seen:?}");
    let shown = seen.into_iter().next().unwrap();
    // The stored group is the one every response showed, and was assigned once.
    let (status, body) = send(
        c.get(format!(
            "{}/courses/{DEMO_COURSE}/users/{learner}/assignments",
            served.url
        ))
        .bearer_auth(&session),
    )
    .await;
    assert_eq!(status, 200);
    for view in body.as_array().unwrap() {
        let partition = view["partition_id"].to_string();
        assert_eq!(view["stored"], true, "{view}");
        assert_eq!(
            view["group"]["id"].as_u64(),
            Some(shown[&partition]),
            "{view}"
        );
    }
    let data = served.stop();
    let events = std::fs::read_to_string(data.path().join("events.jsonl")).unwrap();
    let assigned: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["name"] == xbhost::events::ASSIGNED_EVENT && e["user_id"] == learner)
        .collect();
    assert_eq!(
        assigned.len(),
        2,
        "one assignment event per partition: {assigned:?}"
    );
    // And the store, reopened after the server stopped, agrees.
    let host = xbhost::Host::open(data.path(), xbhost::HostConfig::default()).unwrap();
    for (partition, group) in shown {
        let view = host
            .assignment(DEMO_COURSE, partition.parse().unwrap(), learner)
            .unwrap();
        assert!(view.stored);
        assert_eq!(view.group.unwrap().id, group);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_calls_store_state_and_bad_payloads_are_named() {
    let served = Served::demo(&[]);
    let c = client();
    let alice = learner_token("alice");
    let handler = format!("{}/handler/submit", served.block_url("check_sum"));
    let (status, body) = send(c.post(&handler).bearer_auth(&alice).body("not json")).await;
    assert_eq!(status, 400);
    assert!(
        error_of(&body).contains("not JSON") && error_of(&body).contains("submit"),
        "{body}"
    );
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(&alice)
            .json(&json!({"answer": [7]})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        error_of(&body).contains("choice 7 does not exist"),
        "{body}"
    );
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(&alice)
            .json(&json!({"answer": [0]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["correct"], false);
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(&alice)
            .json(&json!({"answer": 1})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["correct"], true);
    assert_eq!(body["attempts"], 2);
    let (_, body) = send(
        c.get(format!(
            "{}/courses/{DEMO_COURSE}/users/alice/state/check_sum",
            served.url
        ))
        .bearer_auth(&alice),
    )
    .await;
    assert_eq!(body["state"]["answer"], json!([1]), "{body}");
    let (_, page) = send(
        c.get(format!("{}?format=json", served.block_url("unit_1")))
            .bearer_auth(&alice),
    )
    .await;
    assert!(
        page["html"]
            .as_str()
            .unwrap()
            .contains("class=\"result correct\""),
        "{page}"
    );
    let (status, body) = send(
        c.post(format!(
            "{}/handler/no_such_handler",
            served.block_url("check_sum")
        ))
        .bearer_auth(&alice)
        .json(&json!({})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("no_such_handler"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_render_has_the_fields_and_groups_of_render_json() {
    // The CLI on one copy of the demo data, the server on another: the same learner gets
    // the same (deterministic) groups and page, under the same fields.
    let cli_data = tempfile::tempdir().unwrap();
    xbhost_tests::copy_dir(xbhost_tests::served::demo_template(), cli_data.path());
    let line = xbhost_tests::xbhost_ok(
        cli_data.path(),
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            "zoe",
            "--json",
        ],
    );
    let cli: Value = serde_json::from_str(line.trim()).unwrap();
    let served = Served::demo(&[]);
    let (status, http) = send(
        client()
            .get(served.block_url("unit_1"))
            .header(header::ACCEPT, "application/json")
            .bearer_auth(learner_token("zoe")),
    )
    .await;
    assert_eq!(status, 200, "{http}");
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&http), keys(&cli));
    for field in [
        "user",
        "view",
        "html",
        "hidden",
        "visible_blocks",
        "assignments",
        "experiments",
    ] {
        assert_eq!(http[field], cli[field], "{field}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_blocks_are_timeouts_in_the_metrics_and_a_full_server_answers_503() {
    // Short block budget so the looper is cut off quickly; one render slot, and a short
    // wait for it, so requests behind a looping page are turned away.
    let served = Served::demo_with_env(
        &[
            ("XBHOST_BLOCK_TIME_MS", "300"),
            ("XBHOST_REQUEST_DEADLINE_MS", "5000"),
        ],
        &["--max-concurrent-renders", "1", "--queue-timeout-ms", "50"],
    );
    let c = client();
    let key = "course-v1:xbhost+loops+1";
    install(
        &served,
        "looper",
        json!({"course_key": key, "blocks": [
            {"usage_id": "unit", "type": "vertical", "children": ["spin", "ok"]},
            {"usage_id": "spin", "type": "looper"},
            {"usage_id": "ok", "type": "html", "fields": {"data": "<p>still here</p>"}}
        ]}),
    )
    .await;
    let url = format!("{}/courses/{key}/blocks/unit?format=json", served.url);
    let requests: Vec<_> = (0..6)
        .map(|i| {
            let (c, url) = (c.clone(), url.clone());
            let token = token(&format!("looper-{i}"), &[(key, Role::Learner)]);
            tokio::spawn(async move {
                let response = c.get(&url).bearer_auth(token).send().await.unwrap();
                let retry = response.headers().get(header::RETRY_AFTER).is_some();
                let status = response.status();
                (status, retry, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let (mut served_pages, mut busy) = (0, 0);
    for request in requests {
        let (status, retry, body) = request.await.unwrap();
        match status.as_u16() {
            200 => {
                served_pages += 1;
                assert_eq!(body["failures"][0]["block_type"], "looper", "{body}");
                assert_eq!(body["failures"][0]["kind"], "timeout", "{body}");
                assert!(
                    body["html"].as_str().unwrap().contains("still here"),
                    "{body}"
                );
            }
            503 => {
                busy += 1;
                assert!(retry, "503 without Retry-After");
                assert!(error_of(&body).contains("busy"), "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        served_pages >= 1 && busy >= 1,
        "{served_pages} served, {busy} busy"
    );
    let metrics = c
        .get(format!("{}/metrics", served.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let timeouts = metrics
        .lines()
        .find(|l| l.starts_with("xbhost_block_failures_total{plugin=\"looper\",kind=\"timeout\"}"))
        .unwrap_or_else(|| panic!("no looper timeouts in the metrics:\n{metrics}"));
    assert!(
        timeouts.ends_with(&format!(" {served_pages}")),
        "{timeouts}"
    );
    assert!(
        metrics.contains(&format!("status=\"503\"}} {busy}")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_block_holds_no_slot_and_sigterm_stops_the_server_in_bounded_time() {
    // One render slot: if a sleeping block held it, the next request would get 503.
    let served = Served::demo_with_env(
        &[
            ("XBHOST_BLOCK_TIME_MS", "300"),
            ("XBHOST_REQUEST_DEADLINE_MS", "5000"),
        ],
        &[
            "--max-concurrent-renders",
            "1",
            "--queue-timeout-ms",
            "2000",
            "--shutdown-grace-ms",
            "1000",
        ],
    );
    let c = client();
    let key = "course-v1:xbhost+sleep+1";
    install(
        &served,
        "sleeper",
        json!({"course_key": key, "blocks": [
            {"usage_id": "unit", "type": "vertical", "children": ["nap", "ok"]},
            {"usage_id": "nap", "type": "sleeper", "fields": {"ms": 600000}},
            {"usage_id": "ok", "type": "html", "fields": {"data": "<p>still here</p>"}}
        ]}),
    )
    .await;
    let url = format!("{}/courses/{key}/blocks/unit?format=json", served.url);
    let started = std::time::Instant::now();
    for i in 0..4 {
        let token = token(&format!("sleepy-{i}"), &[(key, Role::Learner)]);
        let (status, body) = send(c.get(&url).bearer_auth(token)).await;
        assert_eq!(status, 200, "request {i}: {body}");
        assert_eq!(body["failures"][0]["block_type"], "sleeper", "{body}");
        assert_eq!(body["failures"][0]["kind"], "timeout", "{body}");
        assert!(
            body["html"].as_str().unwrap().contains("still here"),
            "{body}"
        );
    }
    // Four pages whose block asks to sleep ten minutes, one after another, on one slot.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // A client that sends its body a byte at a time keeps a request open; SIGTERM still
    // stops the server within the shutdown grace.
    let addr = served.url.trim_start_matches("http://").to_string();
    let slow = std::thread::spawn(move || {
        use std::io::Write;
        let mut socket = std::net::TcpStream::connect(addr).unwrap();
        let head = "POST /admin/plugins HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
        let _ = socket.write_all(head.as_bytes());
        for _ in 0..300 {
            if socket.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let took = served
        .terminate_within(std::time::Duration::from_secs(15))
        .expect("the server stopped after SIGTERM");
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");
    let _ = slow.join();
}
