//! Rendering through the real host and plugins: staff markers, hiding, author validation,
//! escaping, tag scoping and bad input from a real block, and event decoration.

use serde_json::json;
use xbhost::events::{ASSIGNED_EVENT, CHILD_RENDER_EVENT};
use xbhost::model::CourseDoc;
use xbhost::{RenderRequest, User, View};
use xbhost_tests::{DEMO_COURSE, Fixture, demo_course, probe_report};

/// The opening tag of the element with this usage id.
fn opening_tag<'h>(html: &'h str, usage_id: &str) -> &'h str {
    let at = html
        .find(&format!("data-usage-id=\"{usage_id}\""))
        .unwrap_or_else(|| panic!("{usage_id} not in page"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

/// The first learner (by number) whose group in `partition` is `group`.
fn learner_in(f: &Fixture, partition: u64, group: u64) -> String {
    (0..500)
        .map(|i| format!("probe-{i}"))
        .find(|id| {
            f.host
                .assignment(DEMO_COURSE, partition, id)
                .unwrap()
                .group
                .unwrap()
                .id
                == group
        })
        .expect("some learner lands in every group")
}

#[test]
fn staff_view_shows_every_condition_with_its_markers() {
    let f = Fixture::demo();
    let staff = User::staff("staff-1");
    let out = f.render(DEMO_COURSE, "unit_1", staff.clone(), View::Staff);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let conditions = [
        ("explanation_a_text", 0, "Text"),
        ("explanation_a_video", 1, "Video"),
        ("explanation_b_text", 0, "Text"),
        ("explanation_b_video", 1, "Video"),
        ("hints_plain", 1, "Hints"),
        ("hints_examples", 2, "Hints and examples"),
    ];
    for (usage, group, name) in conditions {
        let tag = opening_tag(&out.html, usage);
        assert!(tag.contains(&format!("data-group-id=\"{group}\"")), "{tag}");
        assert!(
            tag.contains(&format!("data-group-name=\"{name}\"")),
            "{tag}"
        );
        assert!(!tag.contains("data-inactive"), "{tag}");
    }
    // The staff member's own group is marked on the conditions of that group only.
    let own = out.assignments[&0];
    for (usage, group, _) in &conditions[..4] {
        let tag = opening_tag(&out.html, usage);
        assert_eq!(
            tag.contains("data-own-group=\"true\""),
            *group == own,
            "{tag}"
        );
    }
    // The empty condition is named for staff.
    assert!(out.html.contains("Group No hints has no content"));
    // Staff view is not exposure.
    assert!(out.events.iter().all(|e| e.name != CHILD_RENDER_EVENT));
}

#[test]
fn inactive_children_are_marked_for_staff() {
    let f = Fixture::with_plugins(&["html", "vertical", "split_test", "problem"]);
    let mut doc = demo_course();
    // Map a child to a group id the partition does not have.
    let split = doc
        .blocks
        .iter_mut()
        .find(|b| b.usage_id == "split_explanation_a")
        .unwrap();
    split.fields["group_id_to_child"] =
        json!({"0": "explanation_a_text", "7": "explanation_a_video"});
    f.host.load_course(doc).unwrap();
    let out = f.render(
        DEMO_COURSE,
        "split_explanation_a",
        User::staff("s"),
        View::Staff,
    );
    let tag = opening_tag(&out.html, "explanation_a_video");
    assert!(tag.contains("data-inactive=\"true\""), "{tag}");
    assert!(tag.contains("data-group-id=\"7\""), "{tag}");
    assert!(!tag.contains("data-group-name"), "{tag}");
    assert!(!opening_tag(&out.html, "explanation_a_text").contains("data-inactive"));
}

#[test]
fn the_hidden_condition_leaves_no_visible_block_in_the_vertical() {
    let f = Fixture::demo();
    let id = learner_in(&f, 1, 0);
    let out = f.learner_unit(&id);
    assert_eq!(out.assignments[&1], 0);
    assert!(!out.hidden, "the unit still shows its other blocks");
    for hidden in ["split_hints", "hints_plain", "hints_examples"] {
        assert!(
            !out.visible_blocks.iter().any(|b| b == hidden),
            "{hidden} visible: {:?}",
            out.visible_blocks
        );
        assert!(
            !out.html.contains(&format!("data-usage-id=\"{hidden}\"")),
            "{hidden} in the page"
        );
    }
    for shown in ["unit_1", "intro", "between", "before_exercise", "outro"] {
        assert!(
            out.visible_blocks.iter().any(|b| b == shown),
            "{shown} missing"
        );
    }
    // Rendered on its own, the split test is hidden and shows nothing.
    let alone = f.render(
        DEMO_COURSE,
        "split_hints",
        User::learner(&id),
        View::Student,
    );
    assert!(alone.hidden);
    assert!(alone.html.is_empty());
    assert!(alone.visible_blocks.is_empty());
    // A learner with a hint group sees it.
    let other = f.learner_unit(&learner_in(&f, 1, 2));
    assert!(other.visible_blocks.iter().any(|b| b == "hints_examples"));
}

#[test]
fn a_vertical_whose_children_are_all_hidden_is_hidden_in_its_parent() {
    let f = Fixture::with_plugins(&["html", "vertical", "split_test", "problem"]);
    let mut doc = demo_course();
    // Wrap split_hints alone in its own unit inside unit_1.
    let unit = doc
        .blocks
        .iter_mut()
        .find(|b| b.usage_id == "unit_1")
        .unwrap();
    let at = unit
        .children
        .iter()
        .position(|c| c == "split_hints")
        .unwrap();
    unit.children[at] = "hints_unit".into();
    doc.blocks.push(
        serde_json::from_value(json!({
            "usage_id": "hints_unit", "type": "vertical", "children": ["split_hints"]
        }))
        .unwrap(),
    );
    f.host.load_course(doc).unwrap();
    let id = learner_in(&f, 1, 0);
    let out = f.learner_unit(&id);
    assert!(
        !out.visible_blocks.iter().any(|b| b == "hints_unit"),
        "{:?}",
        out.visible_blocks
    );
    assert!(!out.html.contains("hints_unit"));
    let other = f.learner_unit(&learner_in(&f, 1, 1));
    assert!(other.visible_blocks.iter().any(|b| b == "hints_unit"));
}

#[test]
fn author_view_shows_children_and_validation_messages() {
    let f = Fixture::demo();
    let out = f.render(
        DEMO_COURSE,
        "split_hints",
        User::staff("author"),
        View::Author,
    );
    assert!(
        out.html
            .contains("Group \"No hints\" (id 0) has no content."),
        "{}",
        out.html
    );
    assert!(out.html.contains("data-usage-id=\"hints_plain\""));
    assert!(out.html.contains("data-usage-id=\"hints_examples\""));
    // The same messages come back when the course is loaded.
    let report = f.host.load_course(demo_course()).unwrap();
    assert!(
        report
            .messages
            .iter()
            .any(|m| m.usage_id == "split_hints" && m.severity == "warning")
    );
}

#[test]
fn learners_cannot_ask_for_staff_or_author_view() {
    let f = Fixture::demo();
    for view in [View::Staff, View::Author] {
        let err = f
            .host
            .render(&RenderRequest {
                course_key: DEMO_COURSE.into(),
                usage_id: "unit_1".into(),
                user: User::learner("eve"),
                view,
                user_agent: None,
                masquerade: None,
            })
            .unwrap_err();
        assert!(err.to_string().contains("not staff"), "{err}");
    }
}

#[test]
fn unknown_course_and_block_are_errors_that_name_them() {
    let f = Fixture::demo();
    let render = |course: &str, block: &str| {
        f.host
            .render(&RenderRequest {
                course_key: course.into(),
                usage_id: block.into(),
                user: User::learner("a"),
                view: View::Student,
                user_agent: None,
                masquerade: None,
            })
            .unwrap_err()
            .to_string()
    };
    assert!(render("course-v1:no+such+course", "unit_1").contains("course-v1:no+such+course"));
    assert!(render(DEMO_COURSE, "no_such_block").contains("no_such_block"));
    let err = f
        .host
        .assignment(DEMO_COURSE, 99, "a")
        .unwrap_err()
        .to_string();
    assert!(err.contains("99"), "{err}");
}

#[test]
fn host_generated_names_are_escaped() {
    let f = Fixture::with_plugins(&["html", "vertical", "split_test", "problem"]);
    let mut doc: CourseDoc = demo_course();
    doc.user_partitions[0].name = "<script>alert('p')</script>".into();
    doc.user_partitions[0].groups[1].name = "\"Video\" & <b>more</b>".into();
    f.host.load_course(doc).unwrap();
    let out = f.render(DEMO_COURSE, "unit_1", User::staff("s"), View::Staff);
    assert!(
        !out.html.contains("<script>alert"),
        "partition name not escaped"
    );
    assert!(!out.html.contains("<b>more</b>"), "group name not escaped");
    assert!(
        out.html
            .contains("data-group-name=\"&quot;Video&quot; &amp; &lt;b&gt;more&lt;/b&gt;\"")
    );
    // The split test escaped the name in its heading; the host's containment writes the
    // same text with only the characters that must be escaped.
    assert!(out.html.contains("&lt;script&gt;alert('p')&lt;/script&gt;"));
}

fn probe_course(key: &str) -> CourseDoc {
    serde_json::from_value(json!({
        "course_key": key,
        "blocks": [{"usage_id": "probe", "type": "tag_probe"}],
    }))
    .unwrap()
}

#[test]
fn blocks_get_error_values_for_bad_tags_and_reach_only_their_own_user_and_course() {
    let f = Fixture::with_plugins(&["tag_probe"]);
    let (c1, c2) = ("course-v1:x+probe+1", "course-v1:x+probe+2");
    f.host.load_course(probe_course(c1)).unwrap();
    f.host.load_course(probe_course(c2)).unwrap();
    let probe = |course: &str, user: &str| {
        let out = f.render(course, "probe", User::learner(user), View::Student);
        assert!(
            out.failures.is_empty(),
            "the probe must not trap: {:?}",
            out.failures
        );
        probe_report(&out.html).unwrap()
    };

    let r = probe(c1, "ann");
    assert_eq!(r["user"], "ann");
    for bad in [
        "empty_key",
        "long_key",
        "get_long_key",
        "long_value",
        "nul_value",
        "reserved",
    ] {
        let err = r[bad]["err"]
            .as_str()
            .unwrap_or_else(|| panic!("{bad} should be an error: {r}"));
        assert!(err.starts_with("invalid input"), "{bad}: {err}");
    }
    assert!(r["long_key"]["err"].as_str().unwrap().contains("256 bytes"));
    // Refused alike on every store (PostgreSQL's text cannot hold a NUL).
    assert!(
        r["nul_value"]["err"].as_str().unwrap().contains("NUL"),
        "{r}"
    );
    assert!(
        r["max_key"]["ok"].is_null() && r["max_key"].get("err").is_none(),
        "a 255-byte key fits: {r}"
    );
    assert_eq!(r["course_visits"]["before"], json!(null));
    assert_eq!(r["global_visits"]["before"], json!(null));

    // The same user again, same course: the course tag persisted.
    let r = probe(c1, "ann");
    assert_eq!(r["course_visits"]["before"], "1");
    assert_eq!(r["global_visits"]["before"], "1");
    // Another course: course tags are per course, global tags follow the user.
    let r = probe(c2, "ann");
    assert_eq!(r["course_visits"]["before"], json!(null));
    assert_eq!(r["global_visits"]["before"], "2");
    // Another user sees none of ann's tags.
    let r = probe(c1, "ben");
    assert_eq!(r["course_visits"]["before"], json!(null));
    assert_eq!(r["global_visits"]["before"], json!(null));

    // Storage agrees, and the refused writes left nothing behind.
    let tags = f.host.storage().course_tags(c1, "ann").unwrap();
    assert_eq!(tags.get("visits").map(String::as_str), Some("2"));
    assert!(!tags.contains_key("big"));
    assert!(!tags.contains_key(""));
    assert!(
        !tags
            .keys()
            .any(|k| k.starts_with("xblock.partition_service"))
    );
    assert_eq!(tags.get(&"k".repeat(255)).map(String::as_str), Some("fits"));
}

#[test]
fn every_event_of_a_page_carries_membership_and_course_tags() {
    let f = Fixture::demo();
    let out = f.learner_unit("zoe");
    let names: Vec<&str> = out.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == ASSIGNED_EVENT).count(),
        2,
        "{names:?}"
    );
    assert!(names.contains(&CHILD_RENDER_EVENT));
    let group0 = if out.assignments[&0] == 0 {
        "Text"
    } else {
        "Video"
    };
    for e in &out.events {
        assert_eq!(e.user_id, "zoe");
        assert_eq!(e.course_key, DEMO_COURSE);
        assert_eq!(
            e.experiments.enrolled,
            ["Explanation style", "Hints"],
            "{e:?}"
        );
        assert_eq!(e.experiments.assigned["Explanation style"], group0);
        assert_eq!(
            e.course_tags["xblock.partition_service.partition_0"],
            out.assignments[&0].to_string()
        );
    }
    let exposure = out
        .events
        .iter()
        .find(|e| e.name == CHILD_RENDER_EVENT)
        .unwrap();
    assert_eq!(exposure.usage_id.as_deref(), Some("split_explanation_a"));
    // The sink got the same events.
    assert_eq!(f.events.events(), out.events);
}

#[test]
fn an_inactive_partition_gives_no_group_to_render_or_to_assign() {
    let f = Fixture::demo();
    let id = learner_in(&f, 1, 2);
    assert!(
        f.learner_unit(&id)
            .visible_blocks
            .iter()
            .any(|b| b == "hints_examples")
    );
    let mut doc = demo_course();
    doc.user_partitions[1].active = false;
    f.host.load_course(doc).unwrap();
    let out = f.learner_unit(&id);
    assert!(
        !out.visible_blocks
            .iter()
            .any(|b| b.starts_with("hints") || b == "split_hints")
    );
    assert!(!out.assignments.contains_key(&1));
    let view = f.host.assignment(DEMO_COURSE, 1, &id).unwrap();
    assert!(
        view.group.is_none(),
        "assign agrees with rendering: {view:?}"
    );
}
