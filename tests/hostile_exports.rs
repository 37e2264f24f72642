//! Hostile directory exports and ambiguous archives: links to `.` under `drafts/` are
//! not walked, a FIFO or a socket is refused by name without blocking the import, a
//! path through a linked directory is refused naming the link, and an archive with two
//! `course.xml` at one depth, or two entries of one name, is an error. Nothing is stored
//! by a refused import.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use xbhost_tests::copy_dir;
use xbhost_tests::exports::{
    RawArchive, Run, data_with_plugins, small_course, stored_courses, tgz, xbhost_within,
};
use xbhost_tests::olx::{TEST_COURSE, olx};

/// Far above what any of these imports takes when it neither hangs nor walks without end.
const LIMIT: Duration = Duration::from_secs(120);

/// The html block of the test course whose body file the tests replace.
const README_BODY: &str = "html/d38e7c88b9dc4090ad8a7126cee9bb51.html";

fn import(data: &Path, export: &Path) -> Run {
    xbhost_within(data, &["course", "import", export.to_str().unwrap()], LIMIT)
}

fn course_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&olx("openedx-test-course"), dir.path());
    dir
}

#[test]
fn links_to_the_export_itself_are_listed_not_walked() {
    let data = data_with_plugins();
    let export = course_copy();
    let drafts = export.path().join("drafts");
    // Followed, 20 links to `.` in each directory make a walk of 20^40 directories
    // (until the kernel's link limit): without end.
    for i in 0..20 {
        symlink(".", drafts.join(format!("loop{i}"))).unwrap();
    }
    symlink("..", drafts.join("up")).unwrap();
    symlink("/", drafts.join("root")).unwrap();
    let run = import(data.path(), export.path());
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("drafts/ holds 12 unpublished files"),
        "only the real draft files are counted: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "22 paths of the export are not regular files and were neither followed nor read"
        ) && run.stdout.contains("drafts/loop0 (a symbolic link)"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_link_on_the_way_to_a_file_is_refused_naming_it() {
    let data = data_with_plugins();
    // The html directory itself a link (to a copy of it elsewhere).
    let export = course_copy();
    let elsewhere = tempfile::tempdir().unwrap();
    let html = export.path().join("html");
    copy_dir(&html, elsewhere.path());
    std::fs::remove_dir_all(&html).unwrap();
    symlink(elsewhere.path(), &html).unwrap();
    let run = import(data.path(), export.path());
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("html is a symbolic link, and the import follows no links"),
        "{}",
        run.stderr
    );
    // A body file that is a link out of the export.
    let export = course_copy();
    let body = export.path().join(README_BODY);
    std::fs::remove_file(&body).unwrap();
    symlink("/etc/hostname", &body).unwrap();
    let run = import(data.path(), export.path());
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr
            .contains(&format!("{README_BODY} is a symbolic link")),
        "{}",
        run.stderr
    );
    assert!(stored_courses(data.path()).is_empty(), "nothing stored");
}

#[test]
fn fifos_and_sockets_are_refused_by_name_without_blocking() {
    let data = data_with_plugins();
    // A FIFO where the import reads an html body: opening it for reading would wait for
    // a writer for ever.
    let export = course_copy();
    let body = export.path().join(README_BODY);
    std::fs::remove_file(&body).unwrap();
    mkfifo(&body);
    let run = import(data.path(), export.path());
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!("{README_BODY} is a FIFO")),
        "{}",
        run.stderr
    );
    // A socket in its place.
    let export = course_copy();
    let body = export.path().join(README_BODY);
    std::fs::remove_file(&body).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(&body).unwrap();
    let run = import(data.path(), export.path());
    assert!(!run.ok, "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!("{README_BODY} is a socket")),
        "{}",
        run.stderr
    );
    assert!(stored_courses(data.path()).is_empty(), "nothing stored");
    // A FIFO the import never needs (in drafts/) is named in the warnings, never opened.
    let export = course_copy();
    mkfifo(&export.path().join("drafts/pipe.xml"));
    let run = import(data.path(), export.path());
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("drafts/pipe.xml (a FIFO)"),
        "{}",
        run.stdout
    );
    assert_eq!(stored_courses(data.path()), vec![TEST_COURSE.to_string()]);
}

#[test]
fn ambiguous_archives_are_refused() {
    let data = data_with_plugins();
    let d = data.path();
    let refused = |archive: Vec<u8>| {
        let file = d.join("upload.tar.gz");
        std::fs::write(&file, archive).unwrap();
        let run = import(d, &file);
        assert!(!run.ok, "imported an ambiguous archive: {}", run.stdout);
        run.stderr
    };
    // Two courses side by side: which one is meant?
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for top in ["a", "b"] {
        files.extend(
            small_course("")
                .into_iter()
                .map(|(name, bytes)| (format!("{top}/{name}"), bytes)),
        );
    }
    let err = refused(tgz("export", &files));
    assert!(
        err.contains("2 course.xml at the same depth (export/a/course.xml, export/b/course.xml)")
            && err.contains("ambiguous"),
        "{err}"
    );
    // One entry twice, with different contents (tar would keep the last; others the first).
    let mut twice = RawArchive::default();
    for (name, bytes) in small_course("") {
        twice.file(&format!("c/{name}"), &bytes);
    }
    twice.file("c/html/h1.html", b"<p>the other one</p>");
    let err = refused(twice.finish());
    assert!(
        err.contains("two entries named \"c/html/h1.html\""),
        "{err}"
    );
    // A name climbing out with "..".
    let mut climbing = RawArchive::default();
    for (name, bytes) in small_course("") {
        climbing.file(&format!("c/{name}"), &bytes);
    }
    climbing.file("c/../../etc/cron.d/x.xml", b"<x/>");
    let err = refused(climbing.finish());
    assert!(err.contains("climbs out of the archive"), "{err}");
    // Links inside an archive are not followed: the body is a link, so reading it fails.
    let mut linked = RawArchive::default();
    for (name, bytes) in small_course("") {
        if name == "html/h1.html" {
            linked.entry(b'2', "c/html/h1.html", 0, &[]);
        } else {
            linked.file(&format!("c/{name}"), &bytes);
        }
    }
    let err = refused(linked.finish());
    assert!(err.contains("html/h1.html is a symbolic link"), "{err}");
    assert!(stored_courses(d).is_empty(), "nothing stored");
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}
