//! Untrusted blocks (issue 18): no plugin can stall the host, forge the host's data, or
//! break the page. Each test puts a real hostile plugin (`plugins/testing/{sleeper,
//! fanout,forger}`) beside healthy blocks in the real host on a real sled store.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xbhost::events::{ASSIGNED_EVENT, BLOCK_FAILED_EVENT, CHILD_RENDER_EVENT};
use xbhost::model::CourseDoc;
use xbhost::{FailureKind, HostConfig, User, View};
use xbhost_tests::{DEMO_COURSE, Fixture, demo_course, patient_config, probe_report};

const KEY: &str = "course-v1:xbhost+untrusted+1";

/// The production defaults with the block and request budgets ten times longer (500 ms,
/// 2000 ms), as the sandbox's deadline tests use: hostile blocks are still cut off while
/// healthy neighbours keep a margin on a shared machine.
fn deadline_config() -> HostConfig {
    let mut config = HostConfig::default();
    config.limits.block_time = Duration::from_millis(500);
    config.limits.request_deadline = Duration::from_millis(2000);
    config
}

fn course(blocks: Value) -> CourseDoc {
    serde_json::from_value(json!({"course_key": KEY, "blocks": blocks})).unwrap()
}

fn html(id: &str) -> Value {
    json!({"usage_id": id, "type": "html", "fields": {"data": format!("<p>healthy {id}</p>")}})
}

fn failure_of<'o>(out: &'o xbhost::RenderOutput, usage: &str) -> &'o xbhost::BlockFailure {
    out.failures
        .iter()
        .find(|f| f.usage_id == usage)
        .unwrap_or_else(|| panic!("{usage} did not fail: {:#?}", out.failures))
}

#[test]
fn a_block_that_sleeps_fails_at_once_and_its_neighbours_render() {
    let f = Fixture::with_config(
        &["html", "vertical", "sleeper", "problem"],
        deadline_config(),
    );
    f.host
        .load_course(course(json!([
            {"usage_id": "page", "type": "vertical",
                "children": ["a", "nap", "b", "short", "c", "napper"]},
            html("a"), html("b"), html("c"),
            {"usage_id": "nap", "type": "sleeper", "fields": {"ms": 60000}},
            {"usage_id": "short", "type": "sleeper", "fields": {"ms": 5}},
            {"usage_id": "napper", "type": "sleeper", "fields": {"ms": 60000}, "children": ["qz"]},
            {"usage_id": "qz", "type": "problem", "fields": {
                "display_name": "Q", "question": "2+2?", "kind": "multiple_choice",
                "choices": [{"text": "4", "correct": true}]}},
        ])))
        .unwrap();
    let started = Instant::now();
    let out = f.render(KEY, "page", User::learner("lea"), View::Student);
    // The 60 s sleeps are refused without waiting: the whole page takes far less than the
    // blocks' own 500 ms budgets would allow, let alone a minute.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let nap = failure_of(&out, "nap");
    assert_eq!(nap.kind, FailureKind::Timeout);
    assert!(
        nap.error.contains("asked to wait 60000 ms"),
        "{}",
        nap.error
    );
    for id in ["a", "b", "c"] {
        assert!(out.html.contains(&format!("<p>healthy {id}</p>")), "{id}");
    }
    // A wait that fits the block's time is granted as asked.
    assert!(out.html.contains("<p>slept</p>"), "{}", out.html);
    assert_eq!(out.failures.len(), 2, "{:#?}", out.failures);

    // Handlers and visible children (grading) are bounded the same way.
    let started = Instant::now();
    let err = f
        .host
        .handle(KEY, "nap", &User::learner("lea"), "anything", &json!({}))
        .unwrap_err();
    assert!(format!("{err:#}").contains("asked to wait"), "{err:#}");
    let grades = f.host.grades(KEY, Some("lea")).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let lea = &grades.learners[0];
    assert_eq!(lea.ungradable.len(), 1, "{lea:#?}");
    assert_eq!(lea.ungradable[0].usage_id, "napper");
    assert!(
        lea.ungradable[0].error.contains("asked to wait"),
        "{lea:#?}"
    );
    assert_eq!(lea.ungradable[0].problems, vec!["qz".to_string()]);
    let csv = grades.to_csv();
    assert!(csv.lines().nth(1).unwrap().contains("error"), "{csv}");
}

#[test]
fn a_parent_cannot_spend_the_page_through_its_children() {
    let f = Fixture::with_config(&["html", "vertical", "looper", "fanout"], deadline_config());
    let mut blocks = vec![
        json!({"usage_id": "page", "type": "vertical", "children": ["greedy", "again", "ok"]}),
        json!({"usage_id": "greedy", "type": "fanout", "fields": {"repeat": 1},
            "children": ["l1", "l2", "l3", "l4", "l5"]}),
        json!({"usage_id": "again", "type": "fanout", "fields": {"repeat": 10000},
            "children": ["slow"]}),
        json!({"usage_id": "slow", "type": "looper"}),
        html("ok"),
    ];
    for i in 1..=5 {
        blocks.push(json!({"usage_id": format!("l{i}"), "type": "looper"}));
    }
    f.host.load_course(course(json!(blocks))).unwrap();
    let out = f.render(KEY, "page", User::learner("lea"), View::Student);
    // Five loopers at 500 ms of own time each would outlast the 2000 ms page; sharing
    // the greedy parent's part of the page among them, they fail within it, and the page
    // and its last block still render.
    assert!(
        out.failures.iter().all(|x| x.usage_id != "page"),
        "{:#?}",
        out.failures
    );
    assert!(
        out.html.contains("<p>healthy ok</p>"),
        "{:#?}",
        out.failures
    );
    for i in 1..=5 {
        assert_eq!(
            failure_of(&out, &format!("l{i}")).kind,
            FailureKind::Timeout
        );
    }
    assert!(
        failure_of(&out, "l1")
            .error
            .contains("share of the request's time"),
        "{}",
        failure_of(&out, "l1").error
    );
    // Rendering the slow child again and again: only the first render runs.
    assert_eq!(
        out.failures.iter().filter(|x| x.usage_id == "slow").count(),
        1,
        "{:#?}",
        out.failures
    );
}

#[test]
fn visible_blocks_list_each_child_once_and_grading_survives_a_looping_container() {
    let f = Fixture::with_config(
        &["html", "vertical", "looper", "fanout", "problem"],
        deadline_config(),
    );
    let problem = json!({"usage_id": "q", "type": "problem", "fields": {
        "display_name": "Q", "question": "2+2?", "kind": "multiple_choice",
        "choices": [{"text": "4", "correct": true}, {"text": "5", "correct": false}]}});
    f.host
        .load_course(course(json!([
            {"usage_id": "course", "type": "vertical", "children": ["page", "stuck"]},
            {"usage_id": "page", "type": "fanout", "fields": {"repeat": 1000}, "children": ["a", "q"]},
            html("a"),
            problem,
            {"usage_id": "stuck", "type": "fanout", "fields": {"repeat": 10000},
                "children": ["slow", "q2"]},
            {"usage_id": "slow", "type": "looper"},
            {"usage_id": "q2", "type": "problem", "fields": {
                "display_name": "Q2", "question": "1+1?", "kind": "multiple_choice",
                "choices": [{"text": "2", "correct": true}]}},
        ])))
        .unwrap();
    let out = f.render(KEY, "page", User::learner("lea"), View::Student);
    assert!(out.failures.is_empty(), "{:#?}", out.failures);
    let count = |id: &str| out.visible_blocks.iter().filter(|b| *b == id).count();
    assert_eq!(
        (count("a"), count("q"), count("page")),
        (1, 1, 1),
        "{:?}",
        out.visible_blocks
    );

    let started = Instant::now();
    let grades = f.host.grades(KEY, Some("lea")).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // Its loop in visible-children no longer holds grading: the slow child runs once,
    // and both problems are graded.
    let lea = &grades.learners[0];
    assert!(lea.ungradable.is_empty(), "{:#?}", lea.ungradable);
    assert!(
        lea.problems.contains_key("q") && lea.problems.contains_key("q2"),
        "{lea:#?}"
    );
}

/// What the host answered a block that forged its events (the `forger` plugin's `events`
/// mode, and `hostile_py`'s): the host's own names refused, a goal event accepted, an
/// event over its size refused, and the request's event bytes exhausted before 64 events
/// of 16 KiB.
pub(crate) fn check_forged_events_report(report: &Value) {
    for name in [ASSIGNED_EVENT, CHILD_RENDER_EVENT, BLOCK_FAILED_EVENT] {
        let said = report[name].as_str().unwrap();
        assert!(said.contains("the host's own"), "{name}: {said}");
    }
    assert_eq!(report["problem_check"], "accepted");
    assert!(
        report["big"].as_str().unwrap().contains("over the limit"),
        "{report}"
    );
    // 16 KiB events up to the request's 256 KiB: some accepted, then refused.
    let medium = &report["medium"];
    assert!(medium["accepted"].as_u64().unwrap() < 64, "{medium}");
    assert!(
        medium["refusal"]
            .as_str()
            .unwrap()
            .contains("bytes of events"),
        "{medium}"
    );
}

#[test]
fn blocks_cannot_send_the_hosts_events_and_every_event_names_its_block() {
    let f = Fixture::with_plugins(&["html", "vertical", "forger", "split_test", "problem"]);
    f.host
        .load_course(course(json!([
            {"usage_id": "page", "type": "vertical", "children": ["forge", "a"]},
            {"usage_id": "forge", "type": "forger", "fields": {"mode": "events"}},
            html("a"),
        ])))
        .unwrap();
    let out = f.render(KEY, "page", User::learner("lea"), View::Student);
    check_forged_events_report(&probe_report(&out.html).unwrap());
    let events = f.events.events();
    assert!(
        events.iter().all(
            |e| ![ASSIGNED_EVENT, CHILD_RENDER_EVENT, BLOCK_FAILED_EVENT]
                .contains(&e.name.as_str())
        ),
        "{events:#?}"
    );
    let check = events.iter().find(|e| e.name == "problem_check").unwrap();
    assert_eq!(check.usage_id.as_deref(), Some("forge"));
    assert_eq!(check.plugin.as_deref(), Some("forger"));
    let logged: usize = events.iter().map(|e| e.data.to_string().len()).sum();
    assert!(
        logged <= 300 << 10,
        "{logged} bytes of events from one page"
    );
}

/// Contract 0.1.1 from a block that tries to abuse it: it cannot read a block its
/// `sources` field does not name, send the host's selection event, write tally keys out of
/// bounds or without limit, or show a learner a child the host did not pick for them.
#[test]
fn the_shared_state_selection_and_sources_interfaces_hold_against_a_hostile_block() {
    let f = Fixture::with_plugins(&["html", "vertical", "forger"]);
    f.host
        .load_course(course(json!([
            {"usage_id": "page", "type": "vertical", "children": ["forge", "victim"]},
            {"usage_id": "forge", "type": "forger", "fields": {"mode": "shared"},
             "children": ["h1", "h2", "h3"]},
            html("h1"), html("h2"), html("h3"),
            {"usage_id": "victim", "type": "html", "fields": {"data": "<p>secret</p>"}},
        ])))
        .unwrap();
    f.host
        .storage()
        .set_user_state(KEY, "lea", "victim", r#"{"answer":"secret"}"#)
        .unwrap();
    let out = f.render(KEY, "page", User::learner("lea"), View::Student);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let report = probe_report(&out.html).unwrap();
    let said = |k: &str| report[k]["err"].as_str().unwrap_or("").to_string();
    let unlisted = said("unlisted_source");
    assert!(
        unlisted.contains("does not list")
            && unlisted.contains("victim")
            && !unlisted.contains("secret"),
        "{report}"
    );
    assert!(
        report["selection_event"]
            .as_str()
            .unwrap()
            .contains("the host's own"),
        "{report}"
    );
    assert!(said("empty_key").contains("1 to 255"), "{report}");
    assert!(said("long_key").contains("256 bytes"), "{report}");
    assert_eq!(report["keys"]["accepted"], 256, "{report}");
    assert!(
        report["keys"]["refusal"]
            .as_str()
            .unwrap()
            .contains("256 tally keys"),
        "{report}"
    );
    // One child picked; the block rendered all three, the host showed one.
    assert_eq!(report["picked"], 1, "{report}");
    assert_eq!(report["shown"], 1, "{report}");
    // Asking again with another count in the same request is refused.
    let again = report["picked_max"]["err"].as_str().unwrap_or("");
    assert!(again.contains("after asking for 1"), "{report}");
    // Its visible-children lists every child: the host still lets the learner reach, and
    // grades, only the one picked.
    let user = User::learner("lea");
    let refused = ["h1", "h2", "h3"]
        .iter()
        .filter(|child| {
            // html has no handler "none": a reachable child fails in the block, not here.
            let err = f
                .host
                .handle(KEY, child, &user, "none", &json!({}))
                .unwrap_err();
            format!("{err:#}").contains("is not available to user")
        })
        .count();
    assert_eq!(refused, 2, "only the picked child is reachable");
    // The tallies of the successful call were stored (256 of them, each 1), bounded.
    let tallies = f.host.storage().block_tallies(KEY, "forge").unwrap();
    assert_eq!(tallies.len(), 256);
    assert!(
        f.events
            .events()
            .iter()
            .filter(|e| e.name.starts_with("edx.librarycontentblock."))
            .all(|e| e.plugin.is_none()),
        "only the host's own selection events"
    );
}

#[test]
fn goals_count_only_the_blocks_they_name() {
    let goal = xbhost::experiment::Goal {
        name: "solved".into(),
        event: "problem_check".into(),
        matches: [("correct".to_string(), json!(true))].into_iter().collect(),
        value: None,
        block_types: vec!["problem".into()],
        blocks: vec![],
    };
    let data = json!({"correct": true});
    assert!(goal.counts("problem_check", &data, Some("problem"), Some("q1")));
    assert!(!goal.counts("problem_check", &data, Some("forger"), Some("forge")));
    assert!(!goal.counts("problem_check", &data, None, None));
    let unnamed = xbhost::experiment::Goal {
        block_types: vec![],
        ..goal.clone()
    };
    assert!(!unnamed.counts("problem_check", &data, Some("problem"), Some("q1")));
}

#[test]
fn exposures_come_from_what_the_host_placed_and_marks_only_from_the_course() {
    let f = Fixture::with_plugins(&["html", "vertical", "split_test", "problem", "fanout"]);
    f.host.load_course(demo_course()).unwrap();
    // The demo's split tests: every exposure the host sends names a condition that is on
    // the learner's page, with the learner's group.
    let out = f.learner_unit("lea");
    let exposures: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.name == CHILD_RENDER_EVENT)
        .collect();
    assert!(!exposures.is_empty());
    for e in &exposures {
        let child = e.data["child_id"].as_str().unwrap();
        assert!(out.visible_blocks.iter().any(|b| b == child), "{e:?}");
        let partition = e.data["user_partition_id"].as_u64().unwrap();
        assert_eq!(
            e.data["group_id"].as_u64(),
            out.assignments.get(&partition).copied()
        );
        assert_eq!(e.plugin, None);
    }
    // A block claiming its plain child is a condition gets no mark, in any view.
    let demo = demo_course();
    let partition = demo.user_partitions[0].id;
    let group = demo.user_partitions[0].groups[1].id;
    let mut doc = demo;
    doc.course_key = KEY.into();
    doc.blocks.push(
        serde_json::from_value(json!({"usage_id": "claimer", "type": "fanout",
            "fields": {"repeat": 1, "claim": true, "claim_partition": partition, "claim_group": group},
            "children": ["plain"]}))
        .unwrap(),
    );
    doc.blocks.push(
        serde_json::from_value(
            json!({"usage_id": "plain", "type": "html", "fields": {"data": "<p>plain</p>"}}),
        )
        .unwrap(),
    );
    f.host.load_course(doc).unwrap();
    for (user, view) in [
        (User::learner("lea"), View::Student),
        (User::staff("sam"), View::Staff),
        (User::staff("sam"), View::Author),
    ] {
        let out = f.render(KEY, "claimer", user, view);
        assert!(out.html.contains("<p>plain</p>"), "{}", out.html);
        assert!(
            !out.html.contains("data-group-id"),
            "{view:?}: {}",
            out.html
        );
        assert!(
            !out.html.contains("xbhost-condition-label"),
            "{view:?}: {}",
            out.html
        );
        assert!(!out.html.contains("your group"), "{view:?}: {}", out.html);
    }
}

#[test]
fn every_value_a_block_returns_is_capped_and_charged_to_it() {
    let f = Fixture::with_plugins(&["html", "vertical", "forger"]);
    f.host
        .load_course(course(json!([
            {"usage_id": "page", "type": "vertical", "children": ["titled", "a", "answers"]},
            {"usage_id": "titled", "type": "forger", "fields": {"mode": "title"}},
            {"usage_id": "answers", "type": "forger", "fields": {"mode": "answer-huge"}},
            html("a"),
        ])))
        .unwrap();
    // A child's 1 MiB title fails the child, not its parent.
    let out = f.render(KEY, "page", User::learner("lea"), View::Student);
    assert_eq!(
        failure_of(&out, "titled").kind,
        FailureKind::OutputTooLarge,
        "{:#?}",
        out.failures
    );
    assert!(out.failures.iter().all(|x| x.usage_id != "page"));
    assert!(out.html.contains("<p>healthy a</p>"));
    assert!(out.html.len() < 64 << 10, "{} bytes", out.html.len());
    // A 20 MB answer is refused.
    let err = f
        .host
        .handle(KEY, "answers", &User::learner("lea"), "any", &json!({}))
        .unwrap_err();
    let failed =
        xbhost::errors::find::<xbhost::errors::HandlerFailed>(&err).expect("handler failed");
    assert_eq!(failed.kind, FailureKind::OutputTooLarge);
    assert!(format!("{err:#}").contains("over the limit"), "{err:#}");
    // 1,000 messages of 10 KiB refuse the course, naming the block.
    let err = f
        .host
        .load_course(course(json!([
            {"usage_id": "chatty", "type": "forger", "fields": {"mode": "messages"}},
        ])))
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("chatty") && text.contains("over the limit"),
        "{text}"
    );
}

#[test]
fn a_call_whose_answer_is_refused_keeps_none_of_its_writes() {
    let f = Fixture::with_plugins(&["forger"]);
    f.host
        .load_course(course(json!([
            {"usage_id": "liar", "type": "forger", "fields": {"mode": "answer-not-json"}},
        ])))
        .unwrap();
    let err = f
        .host
        .handle(KEY, "liar", &User::learner("lea"), "submit", &json!({}))
        .unwrap_err();
    assert!(format!("{err:#}").contains("not JSON"), "{err:#}");
    let storage = f.host.storage();
    assert_eq!(
        storage
            .course_tags(KEY, "lea")
            .unwrap()
            .get("forger.refused"),
        None
    );
    assert_eq!(
        storage.user_tags("lea").unwrap().get("forger.refused"),
        None
    );
    assert_eq!(storage.user_state(KEY, "lea", "liar").unwrap(), None);
    let events = f.events.events();
    assert!(
        events.iter().all(|e| e.name != "forger.refused"),
        "{events:#?}"
    );
    // It is a failed call like any other: the failure is recorded.
    assert!(
        events.iter().any(|e| e.name == BLOCK_FAILED_EVENT),
        "{events:#?}"
    );
}

#[test]
fn a_user_has_a_bounded_number_of_tag_keys() {
    let f = Fixture::with_plugins(&["forger"]);
    f.host
        .load_course(course(json!([
            {"usage_id": "hoard", "type": "forger", "fields": {"mode": "tags"}},
        ])))
        .unwrap();
    let max = f.host.limits().max_tag_keys as u64;
    // Each request may write 100 tags; the forger writes new course keys first, then new
    // global ones, until it is refused.
    let (mut course_refusal, mut user_refusal) = (None, None);
    for _ in 0..12 {
        let out = f.render(KEY, "hoard", User::learner("lea"), View::Student);
        let report = probe_report(&out.html).unwrap();
        for (scope, refusal) in [("course", &mut course_refusal), ("user", &mut user_refusal)] {
            if let Some(text) = report[scope]["refusal"].as_str()
                && text.contains("tag keys")
            {
                *refusal = Some(text.to_string());
            }
        }
    }
    let course_refusal = course_refusal.expect("the course keys were capped");
    assert!(
        course_refusal.contains(&format!("at most {max} course tag keys")),
        "{course_refusal}"
    );
    let user_refusal = user_refusal.expect("the global keys were capped");
    assert!(
        user_refusal.contains(&format!("at most {max} global tag keys")),
        "{user_refusal}"
    );
    let storage = f.host.storage();
    assert_eq!(storage.course_tags(KEY, "lea").unwrap().len() as u64, max);
    assert_eq!(storage.user_tags("lea").unwrap().len() as u64, max);
}

#[test]
fn staff_are_never_enrolled_and_partition_names_are_unique() {
    let f = Fixture::demo();
    let out = f.render(DEMO_COURSE, "unit_1", User::staff("sam"), View::Staff);
    assert!(out.failures.is_empty(), "{:#?}", out.failures);
    let out = f.render(DEMO_COURSE, "unit_1", User::staff("sam"), View::Student);
    assert!(out.failures.is_empty(), "{:#?}", out.failures);
    let tags = f.host.storage().course_tags(DEMO_COURSE, "sam").unwrap();
    assert!(
        tags.keys()
            .all(|k| !k.starts_with("xblock.partition_service")),
        "{tags:?}"
    );
    assert!(f.events.events().iter().all(|e| e.name != ASSIGNED_EVENT));

    let mut doc = demo_course();
    let mut twin = doc.user_partitions[0].clone();
    twin.id = 4242;
    doc.user_partitions.push(twin);
    let err = f.host.load_course(doc).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("both named") && text.contains("4242"),
        "{text}"
    );
}

#[test]
fn patient_budgets_do_not_change_what_healthy_pages_do() {
    // The demo unit renders whole under the patient budgets and under the production ones.
    for config in [patient_config(), HostConfig::default()] {
        let f = Fixture::with_config(&["html", "vertical", "split_test", "problem"], config);
        f.host.load_course(demo_course()).unwrap();
        let out = f.render(DEMO_COURSE, "unit_1", User::learner("lea"), View::Student);
        assert!(out.failures.is_empty(), "{:#?}", out.failures);
    }
}

/// A chain of `depth` fanout blocks, each the only child of the one above.
fn chain(key: &str, depth: usize, fields: Value) -> CourseDoc {
    let blocks: Vec<Value> = (0..depth)
        .map(|i| {
            let children: Vec<String> = if i + 1 < depth {
                vec![format!("c{}", i + 1)]
            } else {
                vec![]
            };
            json!({"usage_id": format!("c{i}"), "type": "fanout",
                "fields": fields, "children": children})
        })
        .collect();
    serde_json::from_value(json!({"course_key": key, "blocks": blocks})).unwrap()
}

#[test]
fn deep_chains_at_full_concurrency_leave_instances_for_every_other_course() {
    let f = Fixture::with_plugins(&["html", "vertical", "split_test", "problem", "fanout"]);
    f.host.load_course(demo_course()).unwrap();
    // 31 levels, each holding its instance 20 ms after its child rendered.
    f.host
        .load_course(chain(KEY, 31, json!({"repeat": 1, "sleep_ms": 20})))
        .unwrap();
    let concurrent = f.host.limits().concurrent_requests;
    std::thread::scope(|s| {
        let chains: Vec<_> = (0..concurrent - 1)
            .map(|i| {
                let f = &f;
                s.spawn(move || {
                    f.render(
                        KEY,
                        "c0",
                        User::learner(&format!("deep-{i}")),
                        View::Student,
                    )
                })
            })
            .collect();
        // Meanwhile another course renders, as it would for other learners.
        let other = s.spawn(|| {
            for i in 0..20 {
                f.learner_unit(&format!("other-{i}"));
            }
        });
        for chain in chains {
            let out = chain.join().unwrap();
            assert!(out.failures.is_empty(), "{:#?}", out.failures);
            assert_eq!(out.visible_blocks.len(), 31);
        }
        other.join().unwrap();
    });
}

#[test]
fn a_request_holds_a_bounded_number_of_instances_and_deep_stacks_do_not_abort() {
    let mut config = patient_config();
    config.limits.max_instances = 8;
    let f = Fixture::with_config(&["fanout"], config);
    f.host
        .load_course(chain(KEY, 31, json!({"repeat": 1})))
        .unwrap();
    let out = f.render(KEY, "c0", User::learner("lea"), View::Student);
    let c8 = failure_of(&out, "c8");
    assert_eq!(c8.kind, FailureKind::Memory);
    assert!(c8.error.contains("8 sandbox instances"), "{}", c8.error);
    assert!(out.visible_blocks.contains(&"c7".to_string()));

    // Every level of a 32-deep chain recursing through 200 KiB of wasm stack, on a thread
    // with the 2 MiB stack of tokio's blocking pool: levels past wasmtime's stack limit
    // trap and become placeholders; the process goes on.
    let f = Fixture::with_plugins(&["fanout"]);
    f.host
        .load_course(chain(KEY, 32, json!({"repeat": 1, "burn_stack_kib": 200})))
        .unwrap();
    let out = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || f.render(KEY, "c0", User::learner("lea"), View::Student))
        .unwrap()
        .join()
        .expect("the render returned");
    assert!(
        out.visible_blocks.contains(&"c0".to_string()),
        "{:#?}",
        out.failures
    );
    assert!(
        out.failures.iter().any(|x| x.kind == FailureKind::Trap),
        "{:#?}",
        out.failures
    );
}

#[test]
fn what_a_parent_does_not_place_is_not_on_the_page_and_is_no_exposure() {
    // fanout installed as `split_test`: the course's structure makes its children the
    // experiment's conditions, whatever the plugin does with them.
    let f = Fixture::with_plugins(&["html", "vertical"]);
    f.host
        .add_plugin(&xbhost_tests::plugin_wasm("fanout"), Some("split_test"))
        .unwrap();
    for drop in [true, false] {
        let doc: CourseDoc = serde_json::from_value(json!({
            "course_key": KEY,
            "user_partitions": [{"id": 0, "name": "Exp", "scheme": "random",
                "groups": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}]}],
            "blocks": [
                {"usage_id": "unit", "type": "vertical", "children": ["exp"]},
                {"usage_id": "exp", "type": "split_test", "children": ["c0", "c1"],
                    "fields": {"user_partition_id": 0, "group_id_to_child": {"0": "c0", "1": "c1"},
                        "repeat": 1, "drop": drop}},
                html("c0"), html("c1"),
            ]
        }))
        .unwrap();
        f.host.load_course(doc).unwrap();
        let learner = format!("lea-{drop}");
        let out = f.render(KEY, "unit", User::learner(&learner), View::Student);
        let group = out.assignments[&0];
        let (mine, other) = if group == 0 {
            ("c0", "c1")
        } else {
            ("c1", "c0")
        };
        // The other group's condition is never shown, whatever the block renders.
        assert!(
            !out.visible_blocks.iter().any(|b| b == other),
            "{:?}",
            out.visible_blocks
        );
        assert!(
            !out.html.contains(&format!("healthy {other}")),
            "{}",
            out.html
        );
        let exposures: Vec<_> = out
            .events
            .iter()
            .filter(|e| e.name == CHILD_RENDER_EVENT)
            .collect();
        if drop {
            assert!(
                !out.visible_blocks.iter().any(|b| b == mine),
                "{:?}",
                out.visible_blocks
            );
            assert!(exposures.is_empty(), "{exposures:#?}");
        } else {
            assert!(
                out.visible_blocks.iter().any(|b| b == mine),
                "{:?}",
                out.visible_blocks
            );
            assert_eq!(exposures.len(), 1, "{exposures:#?}");
            assert_eq!(exposures[0].data["child_id"], mine);
            assert_eq!(exposures[0].usage_id.as_deref(), Some("exp"));
        }
    }
}
