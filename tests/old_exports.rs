//! Older and odd Open edX exports import as Open edX imports them: a pointer whose file's
//! root tag differs (the pointer's type wins), `:` in a url_name as a sub-folder, the old
//! `policies/<run>.json` and a grading policy, `slug` and `name` for a missing url_name,
//! ids of unnamed inline blocks that survive lines added above, `videosequence` as a
//! sequence, `wiki` and `textbook` as course settings, a symlinked `course.xml` in a
//! `.tar.gz` (and every link that must not be followed), block files deeper than one
//! folder in the not-reachable warning; and the report says what learners will miss.
//! Each on a small export built here, through the real host (or the real `xbhost`
//! binary) with the real built plugins and a real store.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use xbhost::model::{BlockDef, CourseDoc};
use xbhost::olx::{ImportOptions, ImportReport};
use xbhost::{User, View};
use xbhost_tests::Fixture;
use xbhost_tests::authoring::fixture;
use xbhost_tests::exports::{
    RawArchive, Run, SMALL_COURSE, data_with_plugins, small_course, stored_courses, write_dir,
    xbhost_within,
};

const KEY: &str = "course-v1:OldX+Exports+r1";

/// Far above what any of these imports takes.
const LIMIT: Duration = Duration::from_secs(120);

/// An export of course `r1` whose `<course>` holds `body`, with `more` files.
fn export(body: &str, more: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        (
            "course.xml".to_string(),
            b"<course url_name=\"r1\" org=\"OldX\" course=\"Exports\"/>\n".to_vec(),
        ),
        (
            "course/r1.xml".to_string(),
            format!("<course>\n{body}\n</course>\n").into_bytes(),
        ),
    ];
    files.extend(
        more.iter()
            .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec())),
    );
    files
}

/// Imports `files` as a directory export under `key` (None: the export's own).
fn import_as(f: &Fixture, files: &[(String, Vec<u8>)], key: Option<&str>) -> ImportReport {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), files);
    let options = ImportOptions {
        course_key: key.map(str::to_string),
        ..ImportOptions::default()
    };
    f.host.import_course(dir.path(), &options).unwrap().0
}

fn import(f: &Fixture, files: &[(String, Vec<u8>)]) -> ImportReport {
    import_as(f, files, None)
}

/// The course document as stored.
fn stored(f: &Fixture, key: &str) -> CourseDoc {
    f.host.course_for_change(key).unwrap().0
}

fn block<'a>(doc: &'a CourseDoc, id: &str) -> &'a BlockDef {
    doc.blocks
        .iter()
        .find(|b| b.usage_id == id)
        .unwrap_or_else(|| {
            let ids: Vec<&str> = doc.blocks.iter().map(|b| b.usage_id.as_str()).collect();
            panic!("no block {id:?} among {ids:?}")
        })
}

fn warned<'a>(report: &'a ImportReport, part: &str) -> &'a str {
    report
        .warnings
        .iter()
        .find(|w| w.contains(part))
        .unwrap_or_else(|| panic!("no warning with {part:?}: {:#?}", report.warnings))
}

#[test]
fn a_pointer_to_a_file_of_another_root_tag_imports_as_the_pointer_says() {
    let f = fixture();
    let report = import(
        &f,
        &export(
            "<chapter url_name=\"ch\"><sequential url_name=\"s1\"/></chapter>",
            &[
                (
                    "sequential/s1.xml",
                    "<vertical display_name=\"Week 1\"><vertical url_name=\"u1\"/></vertical>",
                ),
                (
                    "vertical/u1.xml",
                    "<vertical><html url_name=\"h1\">Hi</html></vertical>",
                ),
            ],
        ),
    );
    let doc = stored(&f, KEY);
    let s1 = block(&doc, "s1");
    assert_eq!(s1.block_type, "sequential");
    assert_eq!(s1.fields["display_name"], "Week 1");
    assert_eq!(s1.children, ["u1"]);
    assert_eq!(block(&doc, "u1").children, ["h1"]);
    assert_eq!(report.blocks_by_type["sequential"], 1);
    let w = warned(&report, "sequential/s1.xml");
    assert!(
        w.contains("the root element is <vertical>")
            && w.contains("course/r1.xml:2 points to it as <sequential>")
            && w.contains("imported as a sequential"),
        "{w}"
    );
}

#[test]
fn a_colon_in_a_url_name_is_a_folder_and_deep_files_count_as_unreached() {
    let f = fixture();
    let report = import(
        &f,
        &export(
            "<chapter url_name=\"secret:magic\"/>",
            &[
                (
                    "chapter/secret/magic.xml",
                    "<chapter display_name=\"Magic\"><vertical url_name=\"unit:one\"/></chapter>",
                ),
                (
                    "vertical/unit/one.xml",
                    "<vertical><html url_name=\"h1\">the magic words</html></vertical>",
                ),
                // Never pointed to: one deep in a block folder, one in a folder the old
                // fixed list of folders did not look in; static/ holds no blocks.
                ("chapter/secret/old/forgotten.xml", "<chapter/>"),
                ("lti/tool.xml", "<lti/>"),
                ("static/ignored.xml", "<x/>"),
            ],
        ),
    );
    let doc = stored(&f, KEY);
    assert_eq!(block(&doc, "r1").children, ["secret:magic"]);
    let magic = block(&doc, "secret:magic");
    assert_eq!(
        (magic.block_type.as_str(), magic.children.as_slice()),
        ("chapter", ["unit:one".to_string()].as_slice())
    );
    // The ids are valid everywhere ids go: the chapter renders for a learner.
    let out = f.render(KEY, "secret:magic", User::learner("l1"), View::Student);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert!(out.html.contains("the magic words"), "{}", out.html);
    let w = warned(&report, "not reachable from the course outline");
    assert!(
        w.starts_with("2 files")
            && w.contains("chapter/secret/old/forgotten.xml, lti/tool.xml")
            && !w.contains("static/"),
        "{w}"
    );

    // A folder part that climbs out (or is empty) names no file: refused, naming it.
    let g = fixture();
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &export("<chapter url_name=\"..:..:etc:passwd\"/>", &[]),
    );
    let err = g
        .host
        .import_course(dir.path(), &ImportOptions::default())
        .unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("course/r1.xml:2") && err.contains("\"..:..:etc:passwd\""),
        "{err}"
    );
    assert!(g.host.course_keys().unwrap().is_empty(), "nothing stored");
}

#[test]
fn the_old_policy_layout_and_the_grading_policy_are_read() {
    let f = fixture();
    let policy = json!({
        "course/r1": {
            "display_name": "From the old policy",
            "user_partitions": [{"id": 7, "name": "Cohorts", "scheme": "cohort",
                "groups": [{"id": 1, "name": "A"}, {"id": 2, "name": "B"}]}]
        },
        "vertical/u1": {"display_name": "Unit from the policy"}
    })
    .to_string();
    let grading = json!({
        "GRADER": [{"type": "Homework", "min_count": 1, "drop_count": 0, "weight": 1.0}],
        "GRADE_CUTOFFS": {"Pass": 0.5}
    })
    .to_string();
    let body = "<chapter url_name=\"ch\"><vertical url_name=\"u1\"/></chapter>";
    let unit = ("vertical/u1.xml", "<vertical/>");
    let report = import(
        &f,
        &export(
            body,
            &[
                unit,
                ("policies/r1.json", &policy),
                ("grading_policy.json", &grading),
            ],
        ),
    );
    let doc = stored(&f, KEY);
    assert_eq!(doc.display_name.as_deref(), Some("From the old policy"));
    assert_eq!(doc.user_partitions.len(), 1);
    assert_eq!(doc.user_partitions[0].id, 7);
    assert_eq!(
        block(&doc, "u1").fields["display_name"],
        "Unit from the policy"
    );
    assert_eq!(
        block(&doc, "r1").fields["grading_policy"]["GRADE_CUTOFFS"]["Pass"],
        0.5
    );
    assert!(
        report
            .course_settings
            .contains(&"grading_policy (grading_policy.json)".to_string()),
        "{:?}",
        report.course_settings
    );

    // Both layouts: the new one wins, for the policy and the grading policy alike.
    let new_policy = json!({"course/r1": {"display_name": "From the new policy"}}).to_string();
    let new_grading = json!({"GRADE_CUTOFFS": {"Pass": 0.7}}).to_string();
    let g = fixture();
    let report = import(
        &g,
        &export(
            body,
            &[
                unit,
                ("policies/r1.json", &policy),
                ("policies/r1/policy.json", &new_policy),
                ("grading_policy.json", &grading),
                ("policies/r1/grading_policy.json", &new_grading),
            ],
        ),
    );
    let doc = stored(&g, KEY);
    assert_eq!(doc.display_name.as_deref(), Some("From the new policy"));
    assert!(doc.user_partitions.is_empty());
    assert_eq!(
        block(&doc, "r1").fields["grading_policy"]["GRADE_CUTOFFS"]["Pass"],
        0.7
    );
    assert!(
        report
            .course_settings
            .iter()
            .any(|s| s == "grading_policy (policies/r1/grading_policy.json)")
    );
}

#[test]
fn slug_and_name_stand_in_for_a_missing_url_name() {
    let f = fixture();
    import(
        &f,
        &export(
            "<chapter slug=\"ch2\"/>",
            &[(
                "chapter/ch2.xml",
                "<chapter><vertical name=\"Unit one: intro\">\
                 <html slug=\"note\">Hello</html></vertical></chapter>",
            )],
        ),
    );
    let doc = stored(&f, KEY);
    // A lone slug is a pointer (Open edX turns it into a url_name first).
    assert_eq!(block(&doc, "r1").children, ["ch2"]);
    // The deprecated name, cleaned as Open edX cleans it.
    assert_eq!(block(&doc, "ch2").children, ["Unit_one_intro"]);
    assert_eq!(block(&doc, "Unit_one_intro").children, ["note"]);
    let note = block(&doc, "note");
    assert_eq!(
        (note.block_type.as_str(), &note.fields["data"]),
        ("html", &json!("Hello"))
    );
}

#[test]
fn unnamed_inline_blocks_keep_their_ids_when_lines_are_added_above() {
    let problem = "<problem><multiplechoiceresponse><choicegroup>\
                   <choice correct=\"true\">yes</choice><choice correct=\"false\">no</choice>\
                   </choicegroup></multiplechoiceresponse></problem>";
    let unit = |extra_above: &str| {
        format!(
            "<chapter url_name=\"ch\">\n{extra_above}\
             <vertical url_name=\"u1\">\n<html>Same</html>\n<html>Same</html>\n{problem}\n</vertical>\n\
             <vertical url_name=\"u2\"><html>Same</html></vertical>\n</chapter>"
        )
    };
    let before = export(&unit(""), &[]);
    let after = export(
        &unit(
            "<!-- a comment and blank lines -->\n\n\n\
             <vertical url_name=\"u0\"><html>New</html><html>Same</html></vertical>\n",
        ),
        &[],
    );
    let f = fixture();
    import_as(&f, &before, Some("course-v1:OldX+Exports+before"));
    import_as(&f, &after, Some("course-v1:OldX+Exports+after"));
    let (a, b) = (
        stored(&f, "course-v1:OldX+Exports+before"),
        stored(&f, "course-v1:OldX+Exports+after"),
    );
    let ids = block(&a, "u1").children.clone();
    assert_eq!(ids, block(&b, "u1").children, "the same ids after the edit");
    assert_eq!(block(&a, "u2").children, block(&b, "u2").children);
    // Two identical siblings: the second is numbered.
    assert!(ids[0].starts_with("html_") && ids[0].len() == "html_".len() + 12);
    assert_eq!(ids[1], format!("{}_2", ids[0]));
    assert!(ids[2].starts_with("problem_"));
    assert_eq!(block(&a, &ids[2]).block_type, "problem");
    // The same element in another unit is another block.
    assert_ne!(block(&a, "u2").children[0], ids[0]);
    assert_ne!(block(&b, "u0").children[1], ids[0]);
}

#[test]
fn a_videosequence_is_a_sequence() {
    let f = fixture();
    let report = import(
        &f,
        &export(
            "<chapter url_name=\"ch\">\
             <videosequence url_name=\"vs\" display_name=\"Videos\">\
             <vertical url_name=\"u1\"><html url_name=\"h1\">a</html></vertical>\
             </videosequence><videosequence url_name=\"vs2\"/></chapter>",
            &[(
                "videosequence/vs2.xml",
                "<videosequence><vertical url_name=\"u2\" display_name=\"U2\"/></videosequence>",
            )],
        ),
    );
    let doc = stored(&f, KEY);
    assert_eq!(block(&doc, "ch").children, ["vs", "vs2"]);
    for (id, child) in [("vs", "u1"), ("vs2", "u2")] {
        let seq = block(&doc, id);
        assert_eq!(seq.block_type, "sequential", "{id}");
        assert_eq!(seq.children, [child]);
    }
    assert_eq!(block(&doc, "vs").fields["display_name"], "Videos");
    assert_eq!(report.blocks_by_type["videosequence"], 2);
    assert!(report.unsupported.is_empty(), "{:?}", report.unsupported);
}

#[test]
fn wiki_and_textbook_are_course_settings_not_blocks() {
    let f = fixture();
    let report = import(
        &f,
        &export(
            "<chapter url_name=\"ch\" display_name=\"C\"/>\n\
             <wiki slug=\"OldX.Exports.r1\"/>\n\
             <textbook title=\"Open Book\" book_url=\"https://books.example/open/\"/>",
            &[],
        ),
    );
    let doc = stored(&f, KEY);
    let course = block(&doc, "r1");
    assert_eq!(course.children, ["ch"]);
    assert_eq!(course.fields["wiki_slug"], "OldX.Exports.r1");
    assert_eq!(
        course.fields["textbooks"],
        json!([{"title": "Open Book", "book_url": "https://books.example/open/"}])
    );
    assert_eq!(doc.blocks.len(), 2, "the course and its chapter only");
    assert!(!report.blocks_by_type.contains_key("wiki"));
    assert!(!report.blocks_by_type.contains_key("textbook"));
    assert!(report.unsupported.is_empty(), "{:?}", report.unsupported);
    assert_eq!(
        report.course_settings,
        [
            "wiki_slug \"OldX.Exports.r1\" (course/r1.xml:3)",
            "textbook \"Open Book\" at \"https://books.example/open/\" (course/r1.xml:4)",
        ]
    );
}

/// `small_course` in an archive under `c/`, its `course.xml` replaced by a link to
/// `target`, with `extra` entries.
fn linked_course(target: &str, extra: impl FnOnce(&mut RawArchive)) -> Vec<u8> {
    let mut archive = RawArchive::default();
    archive.symlink("c/course.xml", target);
    for (name, bytes) in small_course("<html url_name=\"h2\" filename=\"h2\"/>") {
        if name == "course.xml" {
            archive.file("c/roots/r1.xml", &bytes);
        } else {
            archive.file(&format!("c/{name}"), &bytes);
        }
    }
    extra(&mut archive);
    archive.finish()
}

fn import_archive(data: &Path, bytes: &[u8]) -> Run {
    let file = data.join("export.tar.gz");
    std::fs::write(&file, bytes).unwrap();
    xbhost_within(data, &["course", "import", file.to_str().unwrap()], LIMIT)
}

#[test]
fn a_symlinked_course_xml_in_an_archive_is_followed_inside_it_only() {
    let data = data_with_plugins();
    let d = data.path();
    // course.xml a link to roots/r1.xml (as older Open edX exports have it), and an html
    // body a link to another body (through `..`, still inside).
    let good = linked_course("roots/r1.xml", |a| {
        a.symlink("c/html/h2.html", "../html/h1.html");
    });
    let run = import_archive(d, &good);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("imported {SMALL_COURSE}")),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("not reachable") && !run.stdout.contains("symbolic link"),
        "the link's target counts as read, and nothing is refused: {}",
        run.stdout
    );
    let shown = xbhost_within(d, &["course", "show", SMALL_COURSE], LIMIT);
    let doc: CourseDoc = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(block(&doc, "u1").children, ["h1", "p1", "h2"]);
    assert_eq!(block(&doc, "h2").fields["data"], "<p>hello</p>");

    // Links that must not be followed: refused saying why, and nothing is stored.
    let other = data_with_plugins();
    let d = other.path();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            linked_course("../../outside.xml", |_| {}),
            "course.xml is a symbolic link out of the archive",
        ),
        (
            linked_course("/etc/hostname", |_| {}),
            "course.xml is a symbolic link out of the archive (an absolute target)",
        ),
        (
            linked_course("roots", |_| {}),
            "course.xml is a symbolic link to a directory",
        ),
        (
            linked_course("../elsewhere/r1.xml", |a| {
                a.file(
                    "elsewhere/r1.xml",
                    b"<course url_name=\"r1\" org=\"HostileX\" course=\"Imports\"/>",
                );
            }),
            "course.xml is a symbolic link out of the course's folder",
        ),
        (
            linked_course("loop.xml", |a| {
                a.symlink("c/loop.xml", "course.xml");
            }),
            "course.xml is a symbolic link in a chain of too many links",
        ),
        (
            linked_course("roots/r1.xml", |a| {
                a.symlink("c/html/h2.html", "../../../etc/passwd");
            }),
            "html/h2.html is a symbolic link out of the archive",
        ),
    ];
    for (bytes, says) in cases {
        let run = import_archive(d, &bytes);
        assert!(
            !run.ok && run.stderr.contains(says),
            "{says}: {}",
            run.stderr
        );
    }
    assert!(stored_courses(d).is_empty(), "nothing stored");
}

#[test]
fn the_report_says_what_learners_will_miss_and_why() {
    // An XBlock type no plugin will ever render, and a script-graded problem.
    let extra = "<acme_simulator url_name=\"sim1\" model=\"orbit\"/>\n\
                 <problem url_name=\"p2\"><customresponse><textline/></customresponse></problem>";
    let files = small_course(extra);
    // Through the host: the counts, reasons and usage ids.
    let f = fixture();
    let report = import(&f, &files);
    let c = &report.learners;
    assert_eq!(
        (
            c.by_type["problem"].visible,
            c.by_type["problem"].unsupported
        ),
        (1, 1)
    );
    let stored_reason = block(&stored(&f, SMALL_COURSE), "p2").fields["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c.by_type["problem"].reasons[0].reason, stored_reason);
    assert_eq!(c.by_type["problem"].reasons[0].examples, ["p2"]);
    assert_eq!(
        c.by_type["acme_simulator"].reasons[0].reason,
        "no plugin renders acme_simulator blocks"
    );
    assert_eq!(c.by_type["html"].unsupported, 0);
    assert_eq!(c.by_type["vertical"].visible, 1);
    // Leaves: h1, p1 (seen), p2 and sim1 (missed).
    assert_eq!((c.leaf_blocks, c.visible_leaf_blocks), (4, 2));
    assert_eq!(c.visible_leaf_percent, 50.0);

    // Through the CLI: the same, as text.
    let data = data_with_plugins();
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &files);
    let run = xbhost_within(
        data.path(),
        &["course", "import", dir.path().to_str().unwrap()],
        LIMIT,
    );
    assert!(run.ok, "{}", run.stderr);
    for line in [
        "what learners will see:".to_string(),
        "  html: all 1 visible".to_string(),
        "  acme_simulator: 0 of 1 visible, 1 unsupported (learners never see them):".to_string(),
        "    1 block: no plugin renders acme_simulator blocks (sim1)".to_string(),
        "  problem: 1 of 2 visible, 1 unsupported (learners never see them):".to_string(),
        format!("    1 block: {stored_reason} (p2)"),
        "learners can see 50% of the leaf blocks (2 of 4)".to_string(),
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "no line {line:?} in:\n{}",
            run.stdout
        );
    }
}
