//! What the server must not tell: a failed block's internal error to learners (they get its
//! kind; staff get the details), and `/metrics` to whoever asks when an operator set a
//! token, nor course keys in metric labels unless asked.

use serde_json::{Value, json};
use xbhost::server::auth::Role;
use xbhost_tests::http::{client, send};
use xbhost_tests::served::{Served, demo_template, learner_token, token};
use xbhost_tests::{DEMO_COURSE, copy_dir, plugin_path, xbhost_ok};

const COURSE: &str = "course-v1:xbhost+leaks+1";

/// The demo data directory plus a course whose unit holds a panicking block.
fn served_with_a_panicking_block(args: &[&str]) -> Served {
    let data = tempfile::tempdir().unwrap();
    copy_dir(demo_template(), data.path());
    xbhost_ok(
        data.path(),
        &["plugin", "add", plugin_path("panicker").to_str().unwrap()],
    );
    let doc = data.path().join("leaks.json");
    std::fs::write(
        &doc,
        json!({"course_key": COURSE, "blocks": [
            {"usage_id": "unit", "type": "vertical", "children": ["boom", "fine"]},
            {"usage_id": "boom", "type": "panicker"},
            {"usage_id": "fine", "type": "html", "fields": {"data": "<p>fine</p>"}}
        ]})
        .to_string(),
    )
    .unwrap();
    xbhost_ok(data.path(), &["course", "load", doc.to_str().unwrap()]);
    Served::start(data, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_get_the_failure_kind_and_staff_the_details() {
    let served = served_with_a_panicking_block(&[]);
    let c = client();
    let url = format!("{}/courses/{COURSE}/blocks/unit?format=json", served.url);

    let (status, learner) = send(
        c.get(&url)
            .bearer_auth(token("lea", &[(COURSE, Role::Learner)])),
    )
    .await;
    assert_eq!(status, 200, "{learner}");
    let failure = &learner["failures"][0];
    assert_eq!(failure["kind"], "panic", "{learner}");
    assert_eq!(failure["usage_id"], "boom", "{learner}");
    assert!(
        failure.get("error").is_none(),
        "a learner got the error: {learner}"
    );
    assert!(
        !learner.to_string().contains("internal secret"),
        "{learner}"
    );

    let (status, staff) = send(
        c.get(&url)
            .bearer_auth(token("sam", &[(COURSE, Role::Staff)])),
    )
    .await;
    assert_eq!(status, 200, "{staff}");
    let error = staff["failures"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("internal secret"),
        "staff did not get the details: {staff}"
    );

    // The workbench, as the learner: the kind, not the text.
    let page = c
        .get(format!("{}/workbench", served.url))
        .query(&[("course", COURSE), ("unit", "unit")])
        .bearer_auth(token("lea", &[(COURSE, Role::Learner)]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("failed (panic)"),
        "the workbench did not show the failure: {page}"
    );
    assert!(!page.contains("internal secret"), "{page}");
}

async fn metrics(served: &Served, bearer: Option<&str>) -> (u16, String) {
    let mut request = client().get(format!("{}/metrics", served.url));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn assign_one_learner(served: &Served) {
    let (status, body): (_, Value) = send(
        client()
            .get(format!("{}?format=json", served.block_url("unit_1")))
            .bearer_auth(learner_token("metrics-learner")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_their_token_and_name_courses_only_when_asked() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "metrics-token-0123456789\n").unwrap();
    let served = Served::demo(&["--metrics-token-file", secret.path().to_str().unwrap()]);
    assign_one_learner(&served).await;

    let (status, body) = metrics(&served, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("--metrics-token-file"), "{body}");
    assert_eq!(metrics(&served, Some("metrics-token-wrong")).await.0, 401);
    let (status, text) = metrics(&served, Some("metrics-token-0123456789")).await;
    assert_eq!(status, 200, "{text}");
    let assigned = text
        .lines()
        .find(|l| l.starts_with("xbhost_assignments_total{"))
        .unwrap_or_else(|| panic!("no assignments counted:\n{text}"));
    assert!(
        !assigned.contains(DEMO_COURSE),
        "a course key in a label: {assigned}"
    );

    let labelled = Served::demo(&["--metrics-course-labels"]);
    assign_one_learner(&labelled).await;
    let (status, text) = metrics(&labelled, None).await;
    assert_eq!(status, 200);
    assert!(
        text.lines()
            .any(|l| l.starts_with("xbhost_assignments_total{") && l.contains(DEMO_COURSE)),
        "{text}"
    );
}

#[test]
fn a_short_metrics_token_is_refused_at_start() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "short\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(xbhost_tests::xbhost_bin())
        .arg("--data")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics-token-file"])
        .arg(secret.path())
        .env("XBHOST_TOKEN_SECRET", xbhost_tests::served::TEST_SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 16"), "{err}");
}

/// The report says which log it read by name, never where it is on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_does_not_name_server_paths() {
    let served = Served::demo(&[]);
    assign_one_learner(&served).await;
    let staff = token("sam", &[(DEMO_COURSE, Role::Staff)]);
    let url = format!("{}/courses/{DEMO_COURSE}/report", served.url);
    let (status, json) = send(
        client()
            .get(format!("{url}?format=json"))
            .bearer_auth(&staff),
    )
    .await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["events_source"], "events.jsonl", "{json}");
    let page = client()
        .get(&url)
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = served.data.path().to_string_lossy().to_string();
    assert!(page.contains("events.jsonl"), "{page}");
    assert!(
        !page.contains(&data),
        "the report page names {data}: {page}"
    );
    assert!(!json.to_string().contains(&data), "{json}");
}
