//! State shared by every learner of a block (contract 0.1.1 `tallies`), through the real
//! host, the real built `poll`, `survey` and `conditional` plugins and a sled store: the
//! real exports' polls and surveys count every learner's answer and show the results after
//! answering, concurrent votes are never lost, a vote and its count are stored together or
//! not at all, a block's tally keys are bounded, and `conditional` (contract `sources`)
//! shows its content once the learner meets its condition.

use std::sync::Arc;

use serde_json::json;
use xbhost::model::CourseDoc;
use xbhost::olx::ImportOptions;
use xbhost::{User, View};
use xbhost_tests::authoring::fixture;
use xbhost_tests::olx::{TEST_COURSE, olx};

const DEMO_COURSE: &str = "course-v1:OpenedX+DemoX+DemoCourse";
/// The demo course's poll ("Poll: Open edX features", answers R, B, G, O).
const DEMO_POLL: &str = "6b75d4fab22a4c70afcafc6ec699d64d";
/// Its survey (questions enjoy, recommend, learn; answers Y, N, M).
const DEMO_SURVEY: &str = "6da749b1e81f42faa38bf51a37f7ea32";
/// The test course's poll and survey: xblock-poll's defaults (nothing but a url_name).
const TEST_POLL: &str = "fcd833d77cc84756a60ba60cae9f65fa";
const TEST_SURVEY: &str = "3203a4d5c5ea41e1ac65befef3d5e881";

fn page(f: &xbhost_tests::Fixture, course: &str, block: &str, user: &str) -> String {
    let out = f.render(course, block, User::learner(user), View::Student);
    assert!(
        out.failures.is_empty(),
        "{block} for {user}: {:?}",
        out.failures
    );
    out.html
}

#[test]
fn the_demo_poll_counts_every_learner_and_shows_results_after_voting() {
    let f = fixture();
    f.host
        .import_course(&olx("openedx-demo-course"), &ImportOptions::default())
        .unwrap();
    let before = page(&f, DEMO_COURSE, DEMO_POLL, "p0");
    assert!(before.contains("which features of Open edX are you most excited to use?"));
    assert!(before.contains("Social Learning Features"));
    assert!(
        !before.contains("poll-results"),
        "results only after voting"
    );
    let votes = ["R", "B", "B", "G", "B", "O", "R"];
    for (i, v) in votes.iter().enumerate() {
        let answer = f
            .host
            .handle(
                DEMO_COURSE,
                DEMO_POLL,
                &User::learner(&format!("p{i}")),
                "vote",
                &json!({"answer": [v]}),
            )
            .unwrap();
        assert_eq!(answer["success"], true);
    }
    let after = page(&f, DEMO_COURSE, DEMO_POLL, "p1");
    assert!(after.contains("7 votes"), "{after}");
    assert!(after.contains("42% (3)</span> (your vote)"), "{after}");
    assert!(after.contains("head into the discussion"), "the feedback");
    // max_submissions 1: a second vote is refused and counts nothing.
    let err = f
        .host
        .handle(
            DEMO_COURSE,
            DEMO_POLL,
            &User::learner("p1"),
            "vote",
            &json!({"choice": "R"}),
        )
        .unwrap_err();
    assert!(format!("{err:#}").contains("most times"), "{err:#}");
    let results = f
        .host
        .handle(
            DEMO_COURSE,
            DEMO_POLL,
            &User::staff("staff"),
            "get_results",
            &json!({}),
        )
        .unwrap();
    assert_eq!(results["tally"], json!({"R": 2, "B": 3, "G": 1, "O": 1}));
    let submitted = f
        .events
        .events()
        .into_iter()
        .filter(|e| e.name == "xblock.poll.submitted" && e.usage_id.as_deref() == Some(DEMO_POLL))
        .count();
    assert_eq!(submitted, votes.len());
}

#[test]
fn the_surveys_of_both_exports_take_answers_and_show_everyone_s() {
    let f = fixture();
    f.host
        .import_course(&olx("openedx-demo-course"), &ImportOptions::default())
        .unwrap();
    f.host
        .import_course(&olx("openedx-test-course"), &ImportOptions::default())
        .unwrap();
    for (course, survey, first_question) in [
        (
            DEMO_COURSE,
            DEMO_SURVEY,
            "Are you enjoying the course so far?",
        ),
        (TEST_COURSE, TEST_SURVEY, "Are you enjoying the course?"),
    ] {
        assert!(page(&f, course, survey, "s0").contains(first_question));
        for (user, answers) in [("s0", ["0:Y", "1:Y", "2:N"]), ("s1", ["0:Y", "1:M", "2:N"])] {
            f.host
                .handle(
                    course,
                    survey,
                    &User::learner(user),
                    "submit",
                    &json!({"answer": answers}),
                )
                .unwrap();
        }
        let html = page(&f, course, survey, "s1");
        assert!(
            html.contains("survey-results") && html.contains("100% (2)"),
            "{html}"
        );
        // A learner who has not answered sees no results; a partial answer is refused.
        assert!(!page(&f, course, survey, "s2").contains("survey-results"));
        let err = f
            .host
            .handle(
                course,
                survey,
                &User::learner("s2"),
                "submit",
                &json!({"answer": ["0:Y"]}),
            )
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("every question needs an answer"),
            "{err:#}"
        );
    }
    // The test course's poll has xblock-poll's defaults.
    f.host
        .handle(
            TEST_COURSE,
            TEST_POLL,
            &User::learner("t"),
            "vote",
            &json!({"choice": "G"}),
        )
        .unwrap();
    let html = page(&f, TEST_COURSE, TEST_POLL, "t");
    assert!(
        html.contains("What is your favorite color?") && html.contains("100% (1)"),
        "{html}"
    );
}

#[test]
fn concurrent_votes_are_never_lost() {
    let f = fixture();
    f.host
        .import_course(&olx("openedx-test-course"), &ImportOptions::default())
        .unwrap();
    let host = Arc::new(f.host.clone());
    let answers = ["R", "B", "G", "O"];
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let host = host.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let user = User::learner(&format!("c{t}-{i}"));
                    let choice = answers[(t + i) % 4];
                    host.handle(
                        TEST_COURSE,
                        TEST_POLL,
                        &user,
                        "vote",
                        &json!({"choice": choice}),
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let results = host
        .handle(
            TEST_COURSE,
            TEST_POLL,
            &User::staff("staff"),
            "get_results",
            &json!({}),
        )
        .unwrap();
    assert_eq!(results["total"], 200, "{results}");
    assert_eq!(
        results["tally"],
        json!({"R": 50, "B": 50, "G": 50, "O": 50})
    );
}

/// A course of one survey with `questions` x `answers` cells, and a conditional gated on
/// a problem being attempted.
fn small_course(questions: usize, answers: usize) -> CourseDoc {
    let q: Vec<_> = (0..questions)
        .map(|i| json!([format!("q{i}"), {"label": format!("Q{i}")}]))
        .collect();
    let a: Vec<_> = (0..answers)
        .map(|i| json!([format!("a{i}"), format!("A{i}")]))
        .collect();
    serde_json::from_value(json!({
        "course_key": "course-v1:xbhost+shared+1",
        "blocks": [
            {"usage_id": "unit", "type": "vertical", "children": ["big", "p1", "gate"]},
            {"usage_id": "big", "type": "survey", "fields": {"questions": q, "answers": a, "max_submissions": 0}},
            {"usage_id": "p1", "type": "problem", "fields": {"question": "2+2?", "kind": "multiple_choice", "choices": [{"text": "3"}, {"text": "4", "correct": true}]}},
            {"usage_id": "gate", "type": "conditional", "fields": {"sources": ["p1"], "conditional_attr": "attempted", "conditional_value": "True", "message": "Try {link} first."}, "children": ["secret"]},
            {"usage_id": "secret", "type": "html", "fields": {"data": "<p>the secret</p>"}}
        ]
    }))
    .unwrap()
}

#[test]
fn a_block_s_tally_keys_are_bounded_and_a_refused_call_stores_nothing() {
    let f = fixture();
    f.host.load_course(small_course(20, 13)).unwrap();
    let course = "course-v1:xbhost+shared+1";
    let all: Vec<String> = (0..20).map(|i| format!("{i}:a0")).collect();
    // 20 keys: fine.
    f.host
        .handle(
            course,
            "big",
            &User::learner("u1"),
            "submit",
            &json!({"answer": all}),
        )
        .unwrap();
    // Moving all 20 answers to 12 other answers each would need 260 keys: the 257th is
    // refused, and the whole call with it: the learner's state stays as it was.
    for a in 1..13 {
        let moved: Vec<String> = (0..20).map(|i| format!("{i}:a{a}")).collect();
        let r = f.host.handle(
            course,
            "big",
            &User::learner("u1"),
            "submit",
            &json!({"answer": moved}),
        );
        if a < 12 {
            r.unwrap();
        } else {
            let err = format!("{:#}", r.unwrap_err());
            assert!(err.contains("256 tally keys"), "{err}");
        }
    }
    let results = f
        .host
        .handle(
            course,
            "big",
            &User::staff("staff"),
            "get_results",
            &json!({}),
        )
        .unwrap();
    assert_eq!(results["tally"]["q0"]["a11"], 1, "the last vote that fit");
    assert_eq!(
        results["tally"]["q0"]["a12"], 0,
        "the refused one counted nothing"
    );
}

#[test]
fn a_conditional_shows_its_content_once_its_source_is_attempted() {
    let f = fixture();
    f.host.load_course(small_course(1, 2)).unwrap();
    let course = "course-v1:xbhost+shared+1";
    let before = page(&f, course, "gate", "cara");
    assert!(!before.contains("the secret"), "{before}");
    assert!(
        before.contains("Try the content it depends on first."),
        "{before}"
    );
    let err = f
        .host
        .handle(
            course,
            "secret",
            &User::learner("cara"),
            "nothing",
            &json!({}),
        )
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("is not available to user \"cara\""),
        "{err:#}"
    );
    f.host
        .handle(
            course,
            "p1",
            &User::learner("cara"),
            "submit",
            &json!({"answer": [0]}),
        )
        .unwrap();
    let after = page(&f, course, "gate", "cara");
    assert!(after.contains("the secret"), "{after}");
    // Another learner has not attempted it.
    assert!(!page(&f, course, "gate", "dan").contains("the secret"));
    let staff = f.render(course, "gate", User::staff("sam"), View::Staff);
    assert!(staff.html.contains("the secret") && staff.html.contains("(you: not met)"));
}
