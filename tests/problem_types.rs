//! Every problem of the real Open edX exports (`shared/olx/openedx-demo-course` and
//! `openedx-test-course`), imported and answered right and wrong through the real host
//! (`handle`) and over HTTP (`xbhost serve`), graded, with `problem_check` logged with
//! capa's fields; the only problems left unsupported are the script-graded ones, each with
//! its reason.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use xbhost::User;
use xbhost::olx::ImportOptions;
use xbhost::server::auth::Role;
use xbhost_tests::authoring::{PLUGINS, fixture};
use xbhost_tests::http::{client, send};
use xbhost_tests::olx::olx;
use xbhost_tests::problem_answers::{first_right, input_count, submission};
use xbhost_tests::served::{Served, token};
use xbhost_tests::{Fixture, plugin_path, xbhost_ok};

/// Fields capa's `problem_check` carries.
const PROBLEM_CHECK_FIELDS: &[&str] = &[
    "answers",
    "attempts",
    "correct_map",
    "grade",
    "max_grade",
    "problem_id",
    "state",
    "submission",
    "success",
];

/// The problems of an imported course: supported ones (usage id -> fields) and the
/// unsupported ones (usage id -> reason).
struct Problems {
    key: String,
    supported: BTreeMap<String, Value>,
    unsupported: BTreeMap<String, String>,
}

fn import(f: &Fixture, export: &str) -> Problems {
    let (report, _) = f
        .host
        .import_course(&olx(export), &ImportOptions::default())
        .unwrap();
    let course = f.host.course(&report.course_key).unwrap();
    let mut out = Problems {
        key: report.course_key.clone(),
        supported: BTreeMap::new(),
        unsupported: BTreeMap::new(),
    };
    for b in &course.doc.blocks {
        match b.block_type.as_str() {
            "problem" => {
                out.supported.insert(b.usage_id.clone(), b.fields.clone());
            }
            "unsupported" if b.fields["original_type"] == "problem" => {
                let reason = b.fields["reason"].as_str().unwrap_or("").to_string();
                out.unsupported.insert(b.usage_id.clone(), reason);
            }
            _ => {}
        }
    }
    out
}

/// Calls `submit` as a learner; a problem a learner cannot reach (a content group) is
/// answered as staff.
fn submit(f: &Fixture, key: &str, usage: &str, user: &str, payload: &Value) -> Value {
    let learner = f
        .host
        .handle(key, usage, &User::learner(user), "submit", payload);
    match learner {
        Ok(v) => v,
        Err(e) if format!("{e:#}").contains("not available") => f
            .host
            .handle(key, usage, &User::staff(user), "submit", payload)
            .unwrap_or_else(|e| panic!("{usage}: {e:#}")),
        Err(e) => panic!("{usage}: submit {payload} failed: {e:#}"),
    }
}

fn check_problem_check(f: &Fixture, usage: &str, user: &str, correct: bool) {
    let events = f.events.events();
    let event = events
        .iter()
        .rev()
        .find(|e| {
            e.name == "problem_check" && e.usage_id.as_deref() == Some(usage) && e.user_id == user
        })
        .unwrap_or_else(|| panic!("{usage}: no problem_check for {user}"));
    for field in PROBLEM_CHECK_FIELDS {
        assert!(
            event.data.get(*field).is_some(),
            "{usage}: problem_check lacks {field}: {}",
            event.data
        );
    }
    assert_eq!(event.data["problem_id"], usage);
    assert_eq!(
        event.data["success"],
        if correct { "correct" } else { "incorrect" }
    );
    let cmap = event.data["correct_map"].as_object().unwrap();
    assert!(!cmap.is_empty(), "{usage}: empty correct_map");
    for (id, m) in cmap {
        let expected = if correct { "correct" } else { "incorrect" };
        assert_eq!(
            m["correctness"], expected,
            "{usage}: input {id}: {}",
            event.data
        );
        assert_eq!(
            event.data["submission"][id]["correct"], correct,
            "{usage}: {}",
            event.data
        );
    }
}

/// Answers every supported problem right and wrong through `handle`, and checks grades.
fn answer_all(export: &str) -> Problems {
    let f = fixture();
    let problems = import(&f, export);
    assert!(
        !problems.supported.is_empty(),
        "{export}: no problem imported as supported"
    );
    for (usage, fields) in &problems.supported {
        let wrong_user = format!("wrong-{usage}");
        if let Some(wrong) = submission(usage, fields, false) {
            let r = submit(&f, &problems.key, usage, &wrong_user, &wrong);
            assert_eq!(
                (r["correct"].clone(), r["score"].clone()),
                (json!(false), json!(0.0)),
                "{usage}: {wrong} -> {r}"
            );
            check_problem_check(&f, usage, &wrong_user, false);
        }
        let right_user = format!("right-{usage}");
        let right = submission(usage, fields, true)
            .unwrap_or_else(|| panic!("{usage}: no right answer from {fields}"));
        let r = submit(&f, &problems.key, usage, &right_user, &right);
        assert_eq!(r["correct"], true, "{usage}: {right} -> {r}");
        assert_eq!(r["score"], r["max_score"], "{usage}: {r}");
        check_problem_check(&f, usage, &right_user, true);
        // The grade counts it: the learner who answered right has earned all its points.
        let report = f.host.grades(&problems.key, Some(&right_user)).unwrap();
        let score = report.learners[0].problems.get(usage);
        if let Some(score) = score {
            assert_eq!(score.earned, score.possible, "{usage}: graded {score:?}");
            assert!(score.possible > 0.0);
        }
        // Several inputs: each graded, partial credit of one point per input.
        let inputs = input_count(fields);
        if inputs > 1
            && fields["weight"].is_null()
            && let Some(partial) = first_right(usage, fields)
        {
            let user = format!("partial-{usage}");
            let r = submit(&f, &problems.key, usage, &user, &partial);
            assert_eq!(r["max_score"], json!(inputs as f64), "{usage}: {r}");
            assert!(
                r["score"].as_f64().unwrap() >= 1.0 && r["score"].as_f64().unwrap() < inputs as f64,
                "{usage}: {r}"
            );
        }
    }
    // The grade export lists every supported problem, answered or not.
    let report = f.host.grades(&problems.key, None).unwrap();
    let csv = report.to_csv();
    assert!(csv.lines().next().unwrap().starts_with("user,"), "{csv}");
    problems
}

fn only_script_graded_unsupported(p: &Problems) {
    for (usage, reason) in &p.unsupported {
        assert!(
            reason.contains("script")
                || reason.contains("annotation")
                || reason.contains("external grader"),
            "{usage} is unsupported for a reason that is not a script: {reason}"
        );
    }
}

#[test]
fn every_supported_problem_of_the_demo_course_is_graded_right_and_wrong() {
    let p = answer_all("openedx-demo-course");
    only_script_graded_unsupported(&p);
    let reasons: Vec<&str> = p.unsupported.values().map(String::as_str).collect();
    assert!(
        reasons.iter().any(|r| r.contains("<customresponse>")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("<schematicresponse>")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("<annotationresponse>")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("Python script ($")),
        "the Python-evaluated numerical input: {reasons:?}"
    );
    let types: std::collections::BTreeSet<String> = p
        .supported
        .values()
        .flat_map(|f| {
            f["responses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["type"].as_str().unwrap().to_string())
        })
        .collect();
    for t in [
        "multiple_choice",
        "checkbox",
        "option",
        "numerical",
        "string",
        "formula",
        "image",
    ] {
        assert!(types.contains(t), "no {t} problem imported: {types:?}");
    }
    eprintln!(
        "demo course: {} problems supported, {} unsupported",
        p.supported.len(),
        p.unsupported.len()
    );
}

#[test]
fn every_problem_of_the_test_course_is_graded_right_and_wrong() {
    let p = answer_all("openedx-test-course");
    assert!(p.unsupported.is_empty(), "{:?}", p.unsupported);
    eprintln!("test course: {} problems supported", p.supported.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_are_answered_over_http_and_logged() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for p in PLUGINS {
        xbhost_ok(d, &["plugin", "add", plugin_path(p).to_str().unwrap()]);
    }
    let f = fixture();
    let mut all = Vec::new();
    for export in ["openedx-demo-course", "openedx-test-course"] {
        xbhost_ok(d, &["course", "import", olx(export).to_str().unwrap()]);
        all.push(import(&f, export));
    }
    let served = Served::start(data, &[]);
    let c = client();
    let mut answered = 0;
    for p in &all {
        for (usage, fields) in &p.supported {
            let url = format!(
                "{}/courses/{}/blocks/{usage}/handler/submit",
                served.url, p.key
            );
            for right in [false, true] {
                let Some(payload) = submission(usage, fields, right) else {
                    continue;
                };
                let user = format!("http-{right}-{usage}");
                let mut roles = vec![(p.key.as_str(), Role::Learner)];
                let (mut status, mut body) = send(
                    c.post(&url)
                        .bearer_auth(token(&user, &roles))
                        .json(&payload),
                )
                .await;
                if status == 403 {
                    roles = vec![(p.key.as_str(), Role::Staff)];
                    (status, body) = send(
                        c.post(&url)
                            .bearer_auth(token(&user, &roles))
                            .json(&payload),
                    )
                    .await;
                }
                assert_eq!(status, 200, "{usage}: {payload} -> {body}");
                assert_eq!(body["correct"], right, "{usage}: {payload} -> {body}");
                answered += 1;
            }
            // The page a learner gets has a form naming each input.
            let page = format!(
                "{}/courses/{}/blocks/{usage}?format=json",
                served.url, p.key
            );
            let user = format!("http-true-{usage}");
            let (status, body) = send(
                c.get(&page)
                    .bearer_auth(token(&user, &[(p.key.as_str(), Role::Staff)])),
            )
            .await;
            assert_eq!(status, 200, "{usage}: {body}");
            let html = body.to_string();
            assert!(
                html.contains("data-answers=\\\"by-name\\\""),
                "{usage}: {html}"
            );
        }
    }
    assert!(answered > 40, "{answered} submissions");
    let dir = served.stop();
    let log = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    let checks: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["name"] == "problem_check")
        .collect();
    assert_eq!(checks.len(), answered, "one problem_check per submission");
    for e in &checks {
        for field in PROBLEM_CHECK_FIELDS {
            assert!(
                e["data"].get(*field).is_some(),
                "problem_check lacks {field}: {e}"
            );
        }
    }
}
