//! Authoring, importing OLX: the real Open edX exports in `shared/olx/` (block counts,
//! partitions, split-test mappings, warnings), a `.tar.gz` through the CLI with a chosen
//! course key, and broken or hostile exports that fail clearly and store nothing.

use std::collections::BTreeMap;
use std::path::Path;

use xbhost::olx::ImportOptions;
use xbhost::{User, View};
use xbhost_tests::authoring::{PLUGINS, fixture};
use xbhost_tests::olx::{CONTENT_GROUPS, EXPERIMENT, QUESTION_SPLIT, TEST_COURSE, olx};
use xbhost_tests::{copy_dir, xbhost, xbhost_ok};

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
            ("problem", 19),
            ("rate", 1),
            ("scorm", 1),
            ("sequential", 3),
            ("split_test", 2),
            ("survey", 1),
            ("vertical", 28),
            ("video", 3),
        ])
    );
    // edx_sga and scorm: no plugin renders them (wiki is a course setting, not a block).
    assert_eq!(report.unsupported.values().sum::<usize>(), 2);
    assert!(
        !report.unsupported.contains_key("problem"),
        "every problem of the test course (the library pools' too) is supported"
    );
    assert_eq!(loaded.blocks, 89);
    assert_eq!(
        report.blocks_by_type.values().sum::<usize>(),
        89,
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
    let responses = problem.def.fields["responses"].as_array().unwrap();
    assert!(
        responses
            .iter()
            .any(|r| r.to_string().contains("\"correct\":true")),
        "{responses:?}"
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
        ("problem", 29),
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
        report.unsupported["problem"], 7,
        "the script-graded problems are imported as unsupported"
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
            .any(|w| w.contains("<customresponse>")),
        "{:#?}",
        report.warnings
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
        out.contains("split_test 17c9c74e7f4f4af887d3611bee41337b on partition 1617092182: group "),
        "{out}"
    );
    assert!(!out.contains("Some("), "{out}");
    assert!(
        out.contains("loaded course course-v1:TestX+Course+rerun: 89 blocks, 2 user partitions"),
        "{out}"
    );
    let (ok, _, err) = xbhost(
        d,
        &["course", "import", d.join("nope.tar.gz").to_str().unwrap()],
    );
    assert!(!ok && err.contains("nope.tar.gz"), "{err}");
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
    assert!(err.contains("html/evil.html is a symbolic link"), "{err}");

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
    // (Within the XML depth limit of 256, past the block nesting limit of 100.)
    let nested = format!("{}{}", "<vertical>".repeat(150), "</vertical>".repeat(150));
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

    // A problem whose response sits inside other markup imports whole, and the HTML it
    // shows does not tell the learner which choice is correct.
    let wrapped = course_copy();
    std::fs::write(
        wrapped.path().join("problem/e167b496dc1741ab864cd2d138b17d01.xml"),
        "<problem><div><multiplechoiceresponse><choicegroup><choice correct=\"true\">secret answer</choice></choicegroup></multiplechoiceresponse></div></problem>",
    )
    .unwrap();
    f.host
        .import_course(wrapped.path(), &ImportOptions::default())
        .unwrap();
    let course = f.host.course(TEST_COURSE).unwrap();
    assert_eq!(
        course
            .block("e167b496dc1741ab864cd2d138b17d01")
            .unwrap()
            .def
            .block_type,
        "problem"
    );
    // The HTML a learner is shown (the body) holds the choice's text, never its answer.
    let fields = &course
        .block("e167b496dc1741ab864cd2d138b17d01")
        .unwrap()
        .def
        .fields;
    let body = fields["body"].to_string();
    assert!(!body.contains("correct"), "{body}");
    assert!(
        fields["responses"].to_string().contains("secret answer"),
        "{fields}"
    );
}
