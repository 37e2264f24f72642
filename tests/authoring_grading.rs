//! Authoring, problems and grading: grades over only the problems each learner's groups
//! show, the grade CSV, and problem submissions through the CLI storing state and sending
//! `problem_check`.

use std::collections::BTreeMap;

use serde_json::json;
use xbhost::{User, View};
use xbhost_tests::authoring::{PLUGINS, fixture, graded_course, learner_in};
use xbhost_tests::{xbhost, xbhost_ok};

#[test]
fn learners_are_graded_only_over_the_problems_they_see() {
    let f = fixture();
    f.host.load_course(graded_course()).unwrap();
    let course = "course-v1:xbhost+graded+1";
    let a = learner_in(&f, course, 5, 0);
    let b = learner_in(&f, course, 5, 1);
    let submit = |user: &str, block: &str, answer: serde_json::Value| {
        f.host
            .handle(
                course,
                block,
                &User::learner(user),
                "submit",
                &json!({"answer": answer}),
            )
            .unwrap()
    };
    assert_eq!(submit(&a, "pa", json!(0))["correct"], true);
    assert_eq!(submit(&b, "pb", json!([0, 1]))["score"], 2.0);
    assert_eq!(submit(&b, "common", json!(0))["correct"], false);
    // Grades count only what each learner sees, whatever else they may have answered.
    let report = f.host.grades(course, None).unwrap();
    assert_eq!(report.problems, ["pa", "pb", "common"]);
    let by_user: BTreeMap<&str, &xbhost::grading::LearnerGrade> = report
        .learners
        .iter()
        .map(|l| (l.user.as_str(), l))
        .collect();
    let ga = by_user[a.as_str()];
    assert_eq!(
        (ga.earned, ga.possible),
        (1.0, 2.0),
        "A: pa (1/1) and common (0/1)"
    );
    assert!(!ga.problems.contains_key("pb"));
    let gb = by_user[b.as_str()];
    assert_eq!(
        (gb.earned, gb.possible),
        (2.0, 3.0),
        "B: pb (2/2) and common (0/1)"
    );
    assert!(!gb.problems.contains_key("pa"));

    let csv = report.to_csv();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "user,pa,pb,common,total,possible");
    assert!(rows.contains(&format!("{a},1,n/a,0,1,2").as_str()), "{csv}");
    assert!(rows.contains(&format!("{b},n/a,2,0,2,3").as_str()), "{csv}");

    // The sequence omits the bonus unit for group A, whose only content is hidden.
    let page_a = f.render(course, "seq", User::learner(&a), View::Student);
    assert!(!page_a.html.contains("data-unit=\"u2\""), "{}", page_a.html);
    assert!(
        page_a
            .html
            .contains("data-unit=\"u1\" data-icon=\"problem\" title=\"Practice\""),
        "{}",
        page_a.html
    );
    let page_b = f.render(course, "seq", User::learner(&b), View::Student);
    assert!(page_b.html.contains("data-unit=\"u2\""));
    // Grading wrote nothing for a learner who never visited.
    let before = f.host.storage().course_users(course).unwrap();
    f.host.grades(course, Some("never-visited")).unwrap();
    assert_eq!(f.host.storage().course_users(course).unwrap(), before);
}

#[test]
fn problem_submissions_through_the_cli_store_state_and_send_problem_check() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for p in PLUGINS {
        xbhost_ok(
            d,
            &[
                "plugin",
                "add",
                xbhost_tests::plugin_path(p).to_str().unwrap(),
            ],
        );
    }
    let file = d.join("graded.json");
    std::fs::write(&file, serde_json::to_string(&graded_course()).unwrap()).unwrap();
    xbhost_ok(d, &["course", "load", file.to_str().unwrap()]);
    let course = "course-v1:xbhost+graded+1";
    let out = xbhost_ok(
        d,
        &[
            "handle",
            "--course",
            course,
            "--block",
            "common",
            "--user",
            "u1",
            "--handler",
            "submit",
            "--payload",
            "{\"answer\": [1]}",
        ],
    );
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        answer,
        json!({"correct": true, "score": 1.0, "max_score": 1.0, "attempts": 1})
    );
    let log = std::fs::read_to_string(d.join("events.jsonl")).unwrap();
    let check: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["name"] == "problem_check")
        .unwrap();
    assert_eq!(check["data"]["correct"], true);
    assert_eq!(check["usage_id"], "common");
    let submit = |payload: &str| {
        xbhost(
            d,
            &[
                "handle",
                "--course",
                course,
                "--block",
                "common",
                "--user",
                "u1",
                "--handler",
                "submit",
                "--payload",
                payload,
            ],
        )
    };
    let (ok, _, err) = submit("{\"answer\": [9]}");
    assert!(!ok && err.contains("choice 9 does not exist"), "{err}");
    let (ok, _, err) = submit("not json");
    assert!(!ok && err.contains("--payload is not JSON"), "{err}");
    let csv = d.join("grades.csv");
    xbhost_ok(
        d,
        &[
            "grades",
            "export",
            "--course",
            course,
            "--csv",
            csv.to_str().unwrap(),
        ],
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("user,pa,pb,common,total,possible"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("u1,") && l.contains(",1,1,")),
        "{text}"
    );
}
