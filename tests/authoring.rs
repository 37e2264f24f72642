//! Authoring: importing the real Open edX exports in `shared/olx/`, containers and hiding,
//! content groups and cohorts, problems and grading, and author-facing validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;
use xbhost::model::CourseDoc;
use xbhost::olx::ImportOptions;
use xbhost::{User, View};
use xbhost_tests::{DEMO_COURSE, Fixture, copy_dir, demo_course, xbhost, xbhost_ok};

const PLUGINS: &[&str] = xbhost_tests::PRODUCT_PLUGINS;
const TEST_COURSE: &str = "course-v1:TestX+Course+1";
const EXPERIMENT: u64 = 1617092182;
const CONTENT_GROUPS: u64 = 2084052488;
const SPLIT_UNIT: &str = "19bb0e826d014c15b3b4178ab9725c22";
const QUESTION_SPLIT: &str = "17c9c74e7f4f4af887d3611bee41337b";

fn olx(name: &str) -> PathBuf {
    xbhost_tests::workspace_root()
        .parent()
        .unwrap()
        .join("shared/olx")
        .join(name)
}

fn fixture() -> Fixture {
    Fixture::with_plugins(PLUGINS)
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn imports_the_open_edx_test_course() {
    let f = fixture();
    let (report, loaded) = f
        .host
        .import_course(&olx("openedx-test-course"), &ImportOptions::default())
        .unwrap();
    assert_eq!(report.course_key, TEST_COURSE);
    assert_eq!(
        report.blocks_by_type,
        counts(&[
            ("annotatable", 1),
            ("chapter", 2),
            ("course", 1),
            ("done", 1),
            ("edx_sga", 1),
            ("google-calendar", 1),
            ("google-document", 1),
            ("html", 17),
            ("library_content", 2),
            ("library_sourced", 1),
            ("lti", 1),
            ("lti_consumer", 1),
            ("poll", 1),
            ("problem", 3),
            ("rate", 1),
            ("scorm", 1),
            ("sequential", 3),
            ("split_test", 2),
            ("survey", 1),
            ("vertical", 28),
            ("video", 3),
            ("wiki", 1),
        ])
    );
    assert_eq!(report.unsupported.values().sum::<usize>(), 18);
    assert!(
        !report.unsupported.contains_key("problem"),
        "the three problems are choice problems"
    );
    assert_eq!(loaded.blocks, 74);
    assert_eq!(
        report.blocks_by_type.values().sum::<usize>(),
        74,
        "every imported block is counted"
    );

    // Partitions, as in policy.json.
    let partitions: Vec<(u64, &str, &str, Vec<u64>)> = report
        .partitions
        .iter()
        .map(|p| {
            (
                p.id,
                p.name.as_str(),
                p.scheme.as_str(),
                p.groups.iter().map(|g| g.id).collect(),
            )
        })
        .collect();
    assert_eq!(
        partitions,
        [
            (
                EXPERIMENT,
                "Test Group Config 1",
                "random",
                vec![1510747468, 1299116708, 1203097969]
            ),
            (
                CONTENT_GROUPS,
                "Content Groups",
                "cohort",
                vec![597655586, 1255884249, 794766095]
            ),
        ]
    );
    // Split tests: old-style i4x:// locations mapped to the imported children.
    let mappings: BTreeMap<&str, BTreeMap<String, String>> = report
        .split_tests
        .iter()
        .map(|s| (s.usage_id.as_str(), s.group_id_to_child.clone()))
        .collect();
    assert_eq!(
        mappings[QUESTION_SPLIT],
        BTreeMap::from([
            (
                "1510747468".to_string(),
                "9ddfbdb864b64d65a78b6b55a4e42490".to_string()
            ),
            (
                "1299116708".to_string(),
                "ca4b73c26a0b467fbdc08352b694f0d5".to_string()
            ),
            (
                "1203097969".to_string(),
                "37c4cdabe1224273a41f3977d84a8981".to_string()
            ),
        ])
    );
    assert_eq!(mappings["ae94e062721248639bd1543e77d9a0bd"].len(), 3);
    // What was left out is named.
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("drafts/ holds 12 unpublished files")),
        "{:#?}",
        report.warnings
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("not reachable from the course outline"))
    );
    // Stored as imported: the url_names are the usage ids, html bodies came from html/*.html.
    let course = f.host.course(TEST_COURSE).unwrap();
    let split = course.block(QUESTION_SPLIT).unwrap();
    assert_eq!(split.def.block_type, "split_test");
    assert_eq!(split.def.fields["user_partition_id"], EXPERIMENT);
    let readme = course.block("d38e7c88b9dc4090ad8a7126cee9bb51").unwrap();
    assert!(readme.def.fields["data"].as_str().unwrap().len() > 20);
    let x_only = course.block("c07d8e5d4de845098a5fb70cb7963a20").unwrap();
    assert_eq!(
        x_only.def.group_access,
        BTreeMap::from([(CONTENT_GROUPS.to_string(), vec![597655586])])
    );
    let problem = course.block("e167b496dc1741ab864cd2d138b17d01").unwrap();
    assert_eq!(problem.def.block_type, "problem");
    assert!(
        problem.def.fields["choices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["correct"] == true)
    );
}

#[test]
fn imports_the_open_edx_demo_course() {
    let f = fixture();
    let (report, loaded) = f
        .host
        .import_course(&olx("openedx-demo-course"), &ImportOptions::default())
        .unwrap();
    assert_eq!(report.course_key, "course-v1:OpenedX+DemoX+DemoCourse");
    for (t, n) in [
        ("course", 1),
        ("chapter", 6),
        ("sequential", 17),
        ("vertical", 58),
        ("html", 266),
        ("problem", 23),
        ("video", 11),
    ] {
        assert_eq!(
            report.blocks_by_type.get(t),
            Some(&n),
            "{t}: {:?}",
            report.blocks_by_type
        );
    }
    assert_eq!(
        report.unsupported["problem"], 17,
        "other problem kinds are imported as unsupported"
    );
    assert!(report.split_tests.is_empty());
    assert_eq!(report.partitions.len(), 1);
    assert_eq!(report.partitions[0].id, 18587404);
    assert_eq!(report.partitions[0].scheme, "cohort");
    assert_eq!(loaded.blocks, report.blocks_by_type.values().sum::<usize>());
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("<optionresponse>"))
    );
}

/// The first of many learners whose group in the test course's experiment is `group`.
fn learner_in(f: &Fixture, course: &str, partition: u64, group: u64) -> String {
    (0..1000)
        .map(|i| format!("olx-{i}"))
        .find(|u| {
            f.host
                .assignment(course, partition, u)
                .unwrap()
                .group
                .map(|g| g.id)
                == Some(group)
        })
        .unwrap()
}

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
        // The video experiment's conditions hold only unsupported videos: hidden entirely.
        assert!(
            !out.visible_blocks
                .iter()
                .any(|b| b == "ae94e062721248639bd1543e77d9a0bd")
        );
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
    assert!(
        staff.html.contains("Unsupported block <code>video</code>"),
        "staff see unsupported blocks named"
    );
}

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

/// A course with one experiment whose two conditions each hold a problem, in a sequence
/// whose second unit is only a split test that shows group 0 nothing.
fn graded_course() -> CourseDoc {
    serde_json::from_value(json!({
        "course_key": "course-v1:xbhost+graded+1",
        "user_partitions": [{"id": 5, "name": "Practice style", "groups": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}]}],
        "blocks": [
            {"usage_id": "root", "type": "course", "fields": {"display_name": "Graded"}, "children": ["ch"]},
            {"usage_id": "ch", "type": "chapter", "children": ["seq"]},
            {"usage_id": "seq", "type": "sequential", "children": ["u1", "u2"]},
            {"usage_id": "u1", "type": "vertical", "fields": {"display_name": "Practice"}, "children": ["split", "common"]},
            {"usage_id": "split", "type": "split_test", "fields": {"user_partition_id": 5, "group_id_to_child": {"0": "pa", "1": "pb"}}, "children": ["pa", "pb"]},
            {"usage_id": "pa", "type": "problem", "fields": {"question": "A?", "choices": [{"text": "yes", "correct": true}, {"text": "no"}]}},
            {"usage_id": "pb", "type": "problem", "fields": {"question": "B?", "kind": "checkbox", "weight": 2, "choices": [{"text": "1", "correct": true}, {"text": "2", "correct": true}, {"text": "3"}]}},
            {"usage_id": "common", "type": "problem", "fields": {"question": "Everyone?", "choices": [{"text": "x"}, {"text": "y", "correct": true}]}},
            {"usage_id": "u2", "type": "vertical", "fields": {"display_name": "Bonus for B"}, "children": ["bonus_split"]},
            {"usage_id": "bonus_split", "type": "split_test", "fields": {"user_partition_id": 5, "group_id_to_child": {"1": "bonus"}}, "children": ["bonus"]},
            {"usage_id": "bonus", "type": "html", "fields": {"data": "<p>bonus</p>"}}
        ]
    }))
    .unwrap()
}

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

/// A copy of the test course export to modify.
fn course_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&olx("openedx-test-course"), dir.path());
    dir
}

#[test]
fn broken_exports_give_clear_errors_or_warnings_and_store_nothing_on_error() {
    let f = fixture();
    let import = |dir: &Path| f.host.import_course(dir, &ImportOptions::default());

    // Malformed XML: an error naming the file, line and column; nothing stored.
    let broken = course_copy();
    std::fs::write(
        broken
            .path()
            .join("vertical/c1c8c1d6cc4441648d7f807aa3f774a6.xml"),
        "<vertical display_name=\"x\">\n  <html url_name=\"a\">\n</vertical>\n",
    )
    .unwrap();
    let err = format!("{:#}", import(broken.path()).unwrap_err());
    assert!(
        err.contains("vertical/c1c8c1d6cc4441648d7f807aa3f774a6.xml:3:"),
        "{err}"
    );
    assert!(
        f.host.course_keys().unwrap().is_empty(),
        "nothing stored from a failed import"
    );

    // A duplicate url_name: an error naming both places.
    let duplicate = course_copy();
    let body = std::fs::read_to_string(duplicate.path().join("course/1.xml")).unwrap();
    let body = body.replace(
        "<wiki slug=\"TestX.Course.1\"/>",
        "<chapter url_name=\"46e3a4903a8a4921a35bcde7fcde9b0f\"/>",
    );
    std::fs::write(duplicate.path().join("course/1.xml"), body).unwrap();
    let err = format!("{:#}", import(duplicate.path()).unwrap_err());
    assert!(
        err.contains("url_name \"46e3a4903a8a4921a35bcde7fcde9b0f\" is used again"),
        "{err}"
    );
    assert!(f.host.course_keys().unwrap().is_empty());

    // A missing pointer file and an unknown partition: warnings; the import goes on.
    let warned = course_copy();
    std::fs::remove_file(
        warned
            .path()
            .join("vertical/9ddfbdb864b64d65a78b6b55a4e42490.xml"),
    )
    .unwrap();
    let split = warned
        .path()
        .join("split_test/ae94e062721248639bd1543e77d9a0bd.xml");
    let text = std::fs::read_to_string(&split).unwrap().replace(
        "user_partition_id=\"1617092182\"",
        "user_partition_id=\"999\"",
    );
    std::fs::write(&split, text).unwrap();
    let (report, _) = import(warned.path()).unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w
                .contains("vertical/9ddfbdb864b64d65a78b6b55a4e42490.xml, which does not exist")),
        "{:#?}",
        report.warnings
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("uses user partition 999, which the course does not define"))
    );
    let author = f.render(
        TEST_COURSE,
        "ae94e062721248639bd1543e77d9a0bd",
        User::staff("author"),
        View::Author,
    );
    assert!(
        author
            .html
            .contains("uses group configuration 999, which no longer exists"),
        "{}",
        author.html
    );
}

#[test]
fn imports_a_tar_gz_export_with_a_chosen_course_key() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("course.tar.gz");
    {
        let file = std::fs::File::create(&archive).unwrap();
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::fast(),
        ));
        tar.append_dir_all("course", olx("openedx-test-course"))
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap();
    }
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
    let out = xbhost_ok(
        d,
        &[
            "course",
            "import",
            archive.to_str().unwrap(),
            "--course-key",
            "course-v1:TestX+Course+rerun",
        ],
    );
    assert!(
        out.contains("imported course-v1:TestX+Course+rerun"),
        "{out}"
    );
    assert!(out.contains("  vertical: 28"), "{out}");
    assert!(
        out.contains("split_test 17c9c74e7f4f4af887d3611bee41337b on partition Some(1617092182)"),
        "{out}"
    );
    assert!(
        out.contains("loaded course course-v1:TestX+Course+rerun: 74 blocks, 2 user partitions"),
        "{out}"
    );
    let (ok, _, err) = xbhost(
        d,
        &["course", "import", d.join("nope.tar.gz").to_str().unwrap()],
    );
    assert!(!ok && err.contains("nope.tar.gz"), "{err}");
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

#[test]
fn hostile_exports_cannot_read_outside_themselves_or_drop_restrictions() {
    let f = fixture();
    let import = |dir: &Path| {
        f.host
            .import_course(dir, &ImportOptions::default())
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    };
    let readme = "html/d38e7c88b9dc4090ad8a7126cee9bb51.xml";

    // A filename that climbs out of the export.
    let climbing = course_copy();
    std::fs::write(
        climbing.path().join(readme),
        "<html filename=\"../../../../../etc/hostname\" display_name=\"x\"/>",
    )
    .unwrap();
    let err = import(climbing.path()).unwrap_err();
    assert!(
        err.contains("html filename") && err.contains("path separator"),
        "{err}"
    );

    // A file in the export that is a link to somewhere else.
    let linked = course_copy();
    std::os::unix::fs::symlink("/etc/hostname", linked.path().join("html/evil.html")).unwrap();
    std::fs::write(
        linked.path().join(readme),
        "<html filename=\"evil\" display_name=\"x\"/>",
    )
    .unwrap();
    let err = import(linked.path()).unwrap_err();
    assert!(
        err.contains("html/evil.html leads outside the export"),
        "{err}"
    );

    // A group_access that does not parse is an error, not an unrestricted block.
    let broken = course_copy();
    let x_only = broken
        .path()
        .join("html/c07d8e5d4de845098a5fb70cb7963a20.xml");
    let text = std::fs::read_to_string(&x_only).unwrap().replace(
        "group_access=\"{&quot;2084052488&quot;: [597655586]}\"",
        "group_access=\"{broken\"",
    );
    std::fs::write(&x_only, text).unwrap();
    let err = import(broken.path()).unwrap_err();
    assert!(
        err.contains("group_access") && err.contains("c07d8e5d4de845098a5fb70cb7963a20.xml"),
        "{err}"
    );

    // Nesting without end is an error, not a crash.
    let deep = course_copy();
    let body = std::fs::read_to_string(deep.path().join("course/1.xml")).unwrap();
    let nested = format!("{}{}", "<vertical>".repeat(500), "</vertical>".repeat(500));
    std::fs::write(
        deep.path().join("course/1.xml"),
        body.replace("<wiki slug=\"TestX.Course.1\"/>", &nested),
    )
    .unwrap();
    let err = import(deep.path()).unwrap_err();
    assert!(err.contains("nested more than 100 deep"), "{err}");
    assert!(
        f.host.course_keys().unwrap().is_empty(),
        "nothing stored from any of them"
    );

    // A problem whose response sits inside other markup is not cut up (answers could leak).
    let wrapped = course_copy();
    std::fs::write(
        wrapped.path().join("problem/e167b496dc1741ab864cd2d138b17d01.xml"),
        "<problem><div><multiplechoiceresponse><choicegroup><choice correct=\"true\">secret answer</choice></choicegroup></multiplechoiceresponse></div></problem>",
    )
    .unwrap();
    let (report, _) = f
        .host
        .import_course(wrapped.path(), &ImportOptions::default())
        .unwrap();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("nested inside <div>")),
        "{:#?}",
        report.warnings
    );
    let course = f.host.course(TEST_COURSE).unwrap();
    assert_eq!(
        course
            .block("e167b496dc1741ab864cd2d138b17d01")
            .unwrap()
            .def
            .block_type,
        "unsupported"
    );
}
