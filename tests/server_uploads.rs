//! `xbhost serve` over real HTTP, what admins upload: plugins and JSON courses (and the
//! metrics counting their use), and an Open edX export as a `.tar.gz` that then renders,
//! with staff viewing it as chosen groups.

use reqwest::header;
use serde_json::json;
use xbhost::server::auth::Role;
use xbhost_tests::http::{client, error_of, send};
use xbhost_tests::olx::test_course_archive;
use xbhost_tests::served::{Served, admin_token, staff_token, token};
use xbhost_tests::{DEMO_COURSE, plugin_wasm};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_upload_plugins_and_courses_and_metrics_count_it_all() {
    let served = Served::demo(&[]);
    let c = client();
    let admin = admin_token("root");
    let base = &served.url;
    // A broken plugin is refused, naming why; nothing changes.
    let (status, body) = send(
        c.post(format!("{base}/admin/plugins"))
            .bearer_auth(&admin)
            .body(b"\0asm-not-really".to_vec()),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("not installed"), "{body}");
    let (status, body) = send(
        c.post(format!("{base}/admin/plugins"))
            .bearer_auth(&admin)
            .body(plugin_wasm("panicker")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "panicker");
    // A course (JSON) whose unit has a panicking block beside an experiment.
    let key = "course-v1:xbhost+uploaded+1";
    let course = json!({
        "course_key": key,
        "user_partitions": [{"id": 5, "name": "Upload test", "scheme": "random",
            "groups": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}]}],
        "blocks": [
            {"usage_id": "unit", "type": "vertical", "children": ["split", "bad"]},
            {"usage_id": "split", "type": "split_test",
             "fields": {"user_partition_id": 5, "group_id_to_child": {"0": "a", "1": "b"}},
             "children": ["a", "b"]},
            {"usage_id": "a", "type": "html", "fields": {"data": "<p>A</p>"}},
            {"usage_id": "b", "type": "html", "fields": {"data": "<p>B</p>"}},
            {"usage_id": "bad", "type": "panicker"}
        ]
    });
    let course_staff = token("root2", &[(key, Role::Staff)]);
    let (status, body) = send(
        c.post(format!("{base}/admin/courses"))
            .query(&[("course", key)])
            .bearer_auth(&course_staff)
            .json(&course),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = send(
        c.post(format!("{base}/admin/courses"))
            .query(&[("course", key)])
            .bearer_auth(token("cadmin", &[(key, Role::Admin)]))
            .json(&json!({"course_key": key, "blocks": 3})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = send(
        c.post(format!("{base}/admin/courses"))
            .query(&[("course", key)])
            .bearer_auth(token("cadmin", &[(key, Role::Admin)]))
            .json(&course),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["course_key"], key);
    let learner = token("lena", &[(key, Role::Learner)]);
    let (status, page) = send(
        c.get(format!("{base}/courses/{key}/blocks/unit?format=json"))
            .bearer_auth(&learner),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["failures"][0]["block_type"], "panicker", "{page}");
    let (status, _) = send(
        c.get(format!("{base}/courses/{key}/blocks/nope?format=json"))
            .bearer_auth(&learner),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(c.get(format!("{base}/courses/{key}/blocks/unit?format=json"))).await;
    assert_eq!(status, 401);

    let metrics = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |needle: &str| {
        assert!(
            metrics.contains(needle),
            "no {needle:?} in the metrics:\n{metrics}"
        );
    };
    has(
        "xbhost_http_requests_total{method=\"GET\",route=\"/courses/{course_key}/blocks/{usage_id}\",status=\"200\"} 1",
    );
    has(
        "xbhost_http_requests_total{method=\"GET\",route=\"/courses/{course_key}/blocks/{usage_id}\",status=\"404\"} 1",
    );
    has(
        "xbhost_http_requests_total{method=\"GET\",route=\"/courses/{course_key}/blocks/{usage_id}\",status=\"401\"} 1",
    );
    has("xbhost_http_requests_total{method=\"POST\",route=\"/admin/plugins\",status=\"422\"} 1");
    has("xbhost_render_duration_seconds_count{view=\"student\"} 1");
    has("xbhost_block_failures_total{plugin=\"panicker\",kind=\"panic\"} 1");
    // Course keys stay out of labels unless --metrics-course-labels (tests/leaks.rs).
    has("xbhost_assignments_total{partition=\"5\"} 1");
    assert!(
        !metrics.contains(key),
        "a course key in the metrics:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_edx_export_uploads_and_renders_and_staff_view_as_groups() {
    let served = Served::demo(&[]);
    let c = client();
    let admin = admin_token("root");
    let upload = format!("{}/admin/courses", served.url);
    let for_course = [("course", xbhost_tests::olx::TEST_COURSE)];
    // Not a course at all, and not a format we read: named, nothing stored.
    let (status, body) = send(
        c.post(&upload)
            .query(&for_course)
            .bearer_auth(&admin)
            .header(header::CONTENT_TYPE, "application/gzip")
            .body(b"\x1f\x8bnot really".to_vec()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error_of(&body).contains("the uploaded export is invalid"),
        "{body}"
    );
    let (status, body) = send(
        c.post(&upload)
            .query(&for_course)
            .bearer_auth(&admin)
            .header(header::CONTENT_TYPE, "text/plain")
            .body("hello"),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert!(error_of(&body).contains("application/gzip"), "{body}");
    // The real export.
    let (status, body) = send(
        c.post(&upload)
            .query(&for_course)
            .bearer_auth(&admin)
            .header(header::CONTENT_TYPE, "application/gzip")
            .body(test_course_archive()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let key = body["course_key"].as_str().unwrap().to_string();
    assert_eq!(key, "course-v1:TestX+Course+1");
    // The answer carries the import report: what learners will see, per block type.
    let import = &body["import"];
    assert_eq!(import["course_key"], "course-v1:TestX+Course+1", "{body}");
    let leaves = import["learners"]["leaf_blocks"].as_u64().unwrap();
    let visible = import["learners"]["visible_leaf_blocks"].as_u64().unwrap();
    assert!(leaves > 0 && visible <= leaves, "{import}");
    assert!(import["warnings"].is_array(), "{import}");
    assert!(
        std::fs::read_dir(served.data.path().join("uploads"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true),
        "nothing of the upload is left on disk"
    );
    let split_unit = "19bb0e826d014c15b3b4178ab9725c22";
    let learner = token("olga", &[(&key, Role::Learner)]);
    let (status, page) = send(
        c.get(format!(
            "{}/courses/{key}/blocks/{split_unit}?format=json",
            served.url
        ))
        .bearer_auth(&learner),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page["failures"].as_array().unwrap().is_empty(), "{page}");
    assert_eq!(page["assignments"].as_object().unwrap().len(), 1, "{page}");

    // Staff choose the groups to view as; nothing is stored for them.
    let staff = staff_token("sam");
    let unit = served.block_url("unit_1");
    let (status, body) = send(
        c.get(format!("{unit}?format=json&as_group=0:1,1:2"))
            .bearer_auth(&staff),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["assignments"], json!({"0": 1, "1": 2}), "{body}");
    assert!(
        body["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "viewed_as"),
        "{body}"
    );
    let html = body["html"].as_str().unwrap();
    assert!(
        html.contains("explanation_a_video") && html.contains("hints_examples"),
        "{html}"
    );
    let (status, body) = send(
        c.get(format!("{unit}?format=json&as_group=0-1"))
            .bearer_auth(&staff),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("PARTITION:GROUP"), "{body}");
    let (status, body) = send(
        c.get(format!("{unit}?format=json&as_group=0:7"))
            .bearer_auth(&staff),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(
        error_of(&body).contains("no group \"7 (user partition 0)\""),
        "{body}"
    );
    let (_, stored) = send(
        c.get(format!(
            "{}/courses/{DEMO_COURSE}/users/sam/assignments",
            served.url
        ))
        .bearer_auth(&staff),
    )
    .await;
    assert!(
        stored
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["stored"] == false),
        "{stored}"
    );
}
