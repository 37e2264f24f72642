//! Authoring, groups: an imported split test showing each group its condition and staff
//! all of them, content groups and cohorts, learners refused what their groups hide even
//! when they name it, and adding missing group children with a dry-run change preview.

use serde_json::json;
use xbhost::olx::ImportOptions;
use xbhost::{User, View};
use xbhost_tests::authoring::{fixture, graded_course, learner_in};
use xbhost_tests::olx::{CONTENT_GROUPS, EXPERIMENT, SPLIT_UNIT, TEST_COURSE, olx};
use xbhost_tests::{DEMO_COURSE, demo_course, xbhost_ok};

#[test]
fn the_imported_split_test_unit_shows_each_group_its_own_condition_and_staff_all() {
    let f = fixture();
    f.host
        .import_course(&olx("openedx-test-course"), &ImportOptions::default())
        .unwrap();
    let conditions = [
        (1510747468u64, "9ddfbdb864b64d65a78b6b55a4e42490"),
        (1299116708, "ca4b73c26a0b467fbdc08352b694f0d5"),
        (1203097969, "37c4cdabe1224273a41f3977d84a8981"),
    ];
    for (group, unit) in conditions {
        let learner = learner_in(&f, TEST_COURSE, EXPERIMENT, group);
        let out = f.render(
            TEST_COURSE,
            SPLIT_UNIT,
            User::learner(&learner),
            View::Student,
        );
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        assert_eq!(out.assignments[&EXPERIMENT], group);
        for (_, other) in conditions {
            assert_eq!(
                out.visible_blocks.iter().any(|b| b == other),
                other == unit,
                "{learner}: {:?}",
                out.visible_blocks
            );
        }
        // The video experiment (the same partition) shows the learner their group's video
        // condition only.
        assert!(
            out.visible_blocks
                .iter()
                .any(|b| b == "ae94e062721248639bd1543e77d9a0bd"),
            "{:?}",
            out.visible_blocks
        );
        let (_, own_video) = VIDEO_CONDITIONS.iter().find(|(g, _)| *g == group).unwrap();
        for (_, video) in VIDEO_CONDITIONS {
            assert_eq!(
                out.visible_blocks.iter().any(|b| b == video),
                video == *own_video,
                "{learner}: {:?}",
                out.visible_blocks
            );
        }
    }
    let staff = f.render(TEST_COURSE, SPLIT_UNIT, User::staff("staff"), View::Staff);
    for (group, unit) in conditions {
        let at = staff
            .html
            .find(&format!("data-usage-id=\"{unit}\""))
            .unwrap();
        let tag = &staff.html[at..at + staff.html[at..].find('>').unwrap()];
        assert!(tag.contains(&format!("data-group-id=\"{group}\"")), "{tag}");
        assert!(tag.contains("data-group-name=\"Group 1"), "{tag}");
    }
    for (_, video) in VIDEO_CONDITIONS {
        assert!(
            staff.html.contains(&format!("data-usage-id=\"{video}\"")),
            "staff see every video condition"
        );
    }
    assert!(
        !staff.html.contains("Unsupported block <code>video</code>"),
        "videos render through the video plugin"
    );
}

/// The test course's video experiment: each group's condition (a vertical holding one
/// video), in the split test `ae94e062721248639bd1543e77d9a0bd`.
const VIDEO_CONDITIONS: [(u64, &str); 3] = [
    (1510747468, "9544970dc23644abb0d5f67e7d7c969a"),
    (1299116708, "6292369de5494704b08f0c7b1bbad012"),
    (1203097969, "f8978f41aa5347c9b0e2fd99200b5aed"),
];

#[test]
fn content_groups_hide_blocks_from_learners_outside_them_and_staff_see_the_restriction() {
    let f = fixture();
    f.host
        .import_course(&olx("openedx-test-course"), &ImportOptions::default())
        .unwrap();
    let unit = "c1c8c1d6cc4441648d7f807aa3f774a6";
    let (x, y, z) = (
        "c07d8e5d4de845098a5fb70cb7963a20",
        "e6d33bd086704f2c8e57c72b609846a3",
        "6543ce1a16504a7aa59836d5bdeba28f",
    );
    let seen = |user: &str| {
        let out = f.render(TEST_COURSE, unit, User::learner(user), View::Student);
        [x, y, z]
            .iter()
            .filter(|b| out.visible_blocks.iter().any(|v| v == *b))
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
    };
    // No cohort: no cohort-restricted content; never randomly assigned.
    assert!(seen("nobody").is_empty());
    assert!(
        f.host
            .storage()
            .course_tag(
                TEST_COURSE,
                "nobody",
                "xblock.partition_service.partition_2084052488"
            )
            .unwrap()
            .is_none()
    );
    f.host
        .set_cohort(TEST_COURSE, CONTENT_GROUPS, "zed", 1255884249)
        .unwrap();
    assert_eq!(seen("zed"), [z]);
    f.host
        .set_cohort(TEST_COURSE, CONTENT_GROUPS, "xena", 597655586)
        .unwrap();
    assert_eq!(seen("xena"), [x]);
    // A random partition's groups cannot be set by staff; unknown groups are refused.
    assert!(
        f.host
            .set_cohort(TEST_COURSE, EXPERIMENT, "zed", 1510747468)
            .unwrap_err()
            .to_string()
            .contains("random experiment")
    );
    assert!(
        f.host
            .set_cohort(TEST_COURSE, CONTENT_GROUPS, "zed", 42)
            .unwrap_err()
            .to_string()
            .contains("no group 42")
    );

    let staff = f.render(TEST_COURSE, unit, User::staff("staff"), View::Staff);
    for b in [x, y, z] {
        assert!(staff.visible_blocks.iter().any(|v| v == b));
    }
    assert!(
        staff
            .html
            .contains("data-group-access=\"Content Groups: Test Content Group X\""),
        "{}",
        staff.html
    );
    assert!(
        staff
            .html
            .contains("Visible only to Content Groups: Test Content Group Y")
    );
}

#[test]
fn missing_group_children_can_be_added_and_a_change_can_be_previewed() {
    let f = fixture();
    f.host.load_course(demo_course()).unwrap();
    let before = f.render(DEMO_COURSE, "split_hints", User::staff("a"), View::Author);
    assert!(before.html.contains("(id 0) has no content"));
    let added = f
        .host
        .add_missing_group_children(DEMO_COURSE, "split_hints")
        .unwrap();
    assert_eq!(added, ["split_hints_group_0"]);
    let after = f.render(DEMO_COURSE, "split_hints", User::staff("a"), View::Author);
    assert!(!after.html.contains("has no content"), "{}", after.html);
    assert!(after.html.contains("data-usage-id=\"split_hints_group_0\""));
    assert!(
        f.host
            .add_missing_group_children(DEMO_COURSE, "split_hints")
            .unwrap()
            .is_empty()
    );
    assert!(
        f.host
            .add_missing_group_children(DEMO_COURSE, "intro")
            .unwrap_err()
            .to_string()
            .contains("not a split_test")
    );

    // The CLI dry run names the change and the learners who would move, and changes nothing.
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for p in ["html", "vertical", "split_test", "problem"] {
        xbhost_ok(
            d,
            &[
                "plugin",
                "add",
                xbhost_tests::plugin_path(p).to_str().unwrap(),
            ],
        );
    }
    xbhost_ok(
        d,
        &[
            "course",
            "load",
            xbhost_tests::demo_course_path().to_str().unwrap(),
        ],
    );
    for u in ["p1", "p2", "p3", "p4", "p5", "p6"] {
        xbhost_ok(
            d,
            &[
                "render",
                "--course",
                DEMO_COURSE,
                "--block",
                "unit_1",
                "--user",
                u,
            ],
        );
    }
    let in_video = ["p1", "p2", "p3", "p4", "p5", "p6"]
        .iter()
        .filter(|u| {
            xbhost_ok(
                d,
                &[
                    "assign",
                    "--course",
                    DEMO_COURSE,
                    "--partition",
                    "0",
                    "--user",
                    u,
                ],
            )
            .starts_with("1\t")
        })
        .count();
    let mut doc = demo_course();
    doc.user_partitions[0].groups.retain(|g| g.id != 1);
    doc.user_partitions[1].groups[2].name = "Worked examples".into();
    let file = d.join("changed.json");
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = xbhost_ok(d, &["course", "load", "--dry-run", file.to_str().unwrap()]);
    assert!(out.contains(&format!("partition 0 \"Explanation style\": changed; 6 learners assigned, {in_video} would be reassigned")), "{out}");
    assert!(out.contains("groups removed: [1]"), "{out}");
    assert!(
        out.contains("group 2 renamed: \"Hints and examples\" -> \"Worked examples\""),
        "{out}"
    );
    assert!(out.contains("dry run: nothing was changed"));
    let stored = xbhost_ok(d, &["course", "show", DEMO_COURSE]);
    assert!(
        stored.contains("\"Video\""),
        "the dry run changed the course"
    );
}

#[test]
fn learners_cannot_open_or_answer_what_their_groups_hide_by_naming_it() {
    let f = fixture();
    f.host.load_course(graded_course()).unwrap();
    let course = "course-v1:xbhost+graded+1";
    let a = learner_in(&f, course, 5, 0);
    // Group B's problem, named directly: hidden for A, and its handler refused.
    let out = f.render(course, "pb", User::learner(&a), View::Student);
    assert!(
        out.hidden && out.html.is_empty() && out.failures.is_empty(),
        "{out:?}"
    );
    let err = f
        .host
        .handle(
            course,
            "pb",
            &User::learner(&a),
            "submit",
            &json!({"answer": [0, 1]}),
        )
        .unwrap_err();
    assert!(err.to_string().contains("not available to user"), "{err}");
    assert_eq!(
        f.host.storage().user_state(course, &a, "pb").unwrap(),
        None,
        "nothing stored"
    );
    // Their own condition and shared content work; staff reach everything.
    assert!(
        !f.render(course, "pa", User::learner(&a), View::Student)
            .hidden
    );
    f.host
        .handle(
            course,
            "common",
            &User::learner(&a),
            "submit",
            &json!({"answer": 1}),
        )
        .unwrap();
    assert!(!f.render(course, "pb", User::staff("s"), View::Staff).hidden);

    // Cohort-restricted content, named directly, stays hidden for a learner in no cohort.
    f.host
        .import_course(&olx("openedx-test-course"), &ImportOptions::default())
        .unwrap();
    let x_only = "c07d8e5d4de845098a5fb70cb7963a20";
    assert!(
        f.render(TEST_COURSE, x_only, User::learner("nobody"), View::Student)
            .hidden
    );
    f.host
        .set_cohort(TEST_COURSE, CONTENT_GROUPS, "xena", 597655586)
        .unwrap();
    assert!(
        !f.render(TEST_COURSE, x_only, User::learner("xena"), View::Student)
            .hidden
    );
}
