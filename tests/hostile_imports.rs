//! Archive bombs and the import's limits: `xbhost course import` (and `xbhost serve`'s
//! uploads) refuse each archive at the limit it breaks, naming the limit and its flag,
//! before reading what breaks it; nothing is stored. Course uploads name their course in
//! the query, so the uploader's role is checked before the body is parsed.

use std::path::Path;
use std::time::Duration;

use reqwest::header;
use serde_json::json;
use xbhost::server::auth::Role;
use xbhost_tests::exports::{
    RawArchive, SMALL_COURSE, data_with_plugins, small_course, stored_courses, tgz, xbhost_within,
};
use xbhost_tests::http::{client, error_of, send};
use xbhost_tests::olx::test_course_archive;
use xbhost_tests::served::{Served, admin_token, token};

const LIMIT: Duration = Duration::from_secs(300);

/// Imports `archive` (bytes) with `flags`; returns the error, failing if it imported.
fn refused(data: &Path, archive: &[u8], flags: &[&str]) -> String {
    let file = data.join("upload.tar.gz");
    std::fs::write(&file, archive).unwrap();
    let mut args = vec!["course", "import", file.to_str().unwrap()];
    args.extend_from_slice(flags);
    let run = xbhost_within(data, &args, LIMIT);
    assert!(!run.ok, "imported, but should not have: {}", run.stdout);
    run.stderr
}

fn says(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "the error does not say {p:?}: {err}");
    }
}

#[test]
fn extension_headers_are_refused_by_their_size_before_they_are_read() {
    let data = data_with_plugins();
    let d = data.path();
    // A GNU long name claiming 8 GiB, with 256 MiB of its zeros present (about 250 KB
    // compressed): refused at its header, so none of them is read.
    let mut bomb = RawArchive::default();
    bomb.entry(b'L', "././@LongLink", 8 << 30, &[])
        .zeros(256 << 20);
    let err = refused(d, &bomb.finish(), &[]);
    says(
        &err,
        &[
            "GNU long name of 8589934592 bytes",
            "65536",
            "--max-import-header-bytes",
        ],
    );
    // The same for a GNU long link name and a PAX header.
    for (kind, what) in [(b'K', "GNU long link name"), (b'x', "PAX header")] {
        let mut bomb = RawArchive::default();
        bomb.entry(kind, "././@PaxHeader", 1 << 30, &[])
            .zeros(1 << 20);
        let err = refused(d, &bomb.finish(), &[]);
        says(&err, &[what, "--max-import-header-bytes"]);
    }
    // Within the limit, a long name is applied to the member it describes.
    let mut long = RawArchive::default();
    let deep = format!("export/{}/", "d".repeat(150));
    for (name, bytes) in small_course("") {
        let full = format!("{deep}{name}\0");
        long.entry(b'L', "././@LongLink", full.len() as u64, full.as_bytes())
            .file("ignored-short-name", &bytes);
    }
    let file = d.join("long.tar.gz");
    std::fs::write(&file, long.finish()).unwrap();
    let run = xbhost_within(d, &["course", "import", file.to_str().unwrap()], LIMIT);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("imported {SMALL_COURSE}")),
        "{}",
        run.stdout
    );
    // A PAX size that disagrees with its member's header: ambiguous, refused.
    let mut lying = RawArchive::default();
    // A PAX record gives its own length, digits included.
    let record = "15 size=999999\n";
    lying
        .entry(
            b'x',
            "././@PaxHeader",
            record.len() as u64,
            record.as_bytes(),
        )
        .file("course.xml", b"<course/>");
    let err = refused(d, &lying.finish(), &[]);
    says(&err, &["PAX header gives a size", "ambiguous"]);
    assert_eq!(stored_courses(d), vec![SMALL_COURSE.to_string()]);
}

#[test]
fn every_byte_entry_and_file_is_counted_against_its_limit() {
    let data = data_with_plugins();
    let d = data.path();
    let course = small_course("");
    // Bytes out of the decoder: a 2 MiB file the import would not even keep...
    let mut files = course.clone();
    files.push(("static/video.mp4".into(), vec![7u8; 2 << 20]));
    let err = refused(d, &tgz("c", &files), &["--max-import-bytes", "1048576"]);
    says(
        &err,
        &["unpacks to more than 1048576 bytes", "--max-import-bytes"],
    );
    // ...and headers alone: 4,000 empty directories are 2 MB of tar headers.
    let mut dirs = RawArchive::default();
    for i in 0..4000 {
        dirs.entry(b'5', &format!("c/static/d{i}/"), 0, &[]);
    }
    let err = refused(d, &dirs.finish(), &["--max-import-bytes", "1048576"]);
    says(&err, &["--max-import-bytes"]);
    // Entries.
    let mut files = course.clone();
    files.extend((0..300).map(|i| (format!("static/f{i}.txt"), Vec::new())));
    let err = refused(d, &tgz("c", &files), &["--max-import-entries", "100"]);
    says(&err, &["more than 100 entries", "--max-import-entries"]);
    // One file.
    let mut files = course.clone();
    files[2].1 = vec![b'a'; 2 << 20];
    let err = refused(
        d,
        &tgz("c", &files),
        &["--max-import-file-bytes", "1048576"],
    );
    says(
        &err,
        &[
            "\"c/html/h1.html\" is 2097152 bytes",
            "--max-import-file-bytes",
        ],
    );
    assert!(stored_courses(d).is_empty(), "nothing stored");
}

#[test]
fn xml_nodes_depth_and_attributes_are_bounded_for_the_whole_import() {
    let data = data_with_plugins();
    let d = data.path();
    // 150,000 nodes in one file, over a budget of 100,000.
    let many = format!("<wiki>{}</wiki>", "<a/>".repeat(150_000));
    let err = refused(
        d,
        &tgz("c", &small_course(&many)),
        &["--max-import-xml-nodes", "100000"],
    );
    says(
        &err,
        &["over the limit of 100000 nodes", "--max-import-xml-nodes"],
    );
    // Two files of 60,000 nodes each: within the budget one at a time, not together.
    let mut files = small_course("<vertical url_name=\"x1\"/><vertical url_name=\"x2\"/>");
    for name in ["x1", "x2"] {
        let text = format!(
            "<vertical><wiki>{}</wiki></vertical>",
            "<a/>".repeat(60_000)
        );
        files.push((format!("vertical/{name}.xml"), text.into_bytes()));
    }
    let err = refused(d, &tgz("c", &files), &["--max-import-xml-nodes", "100000"]);
    says(&err, &["vertical/x2.xml", "all files together"]);
    // Depth and attributes, checked before the parser sees the file.
    let deep = format!("{}{}", "<div>".repeat(300), "</div>".repeat(300));
    let err = refused(d, &tgz("c", &small_course(&deep)), &[]);
    says(
        &err,
        &[
            "course/r1.xml",
            "nested more than 256 deep",
            "--max-import-xml-depth",
        ],
    );
    let attributes: String = (0..5000).map(|i| format!(" a{i}=\"\"")).collect();
    let wide = format!("<wiki{attributes}/>");
    let err = refused(d, &tgz("c", &small_course(&wide)), &[]);
    says(&err, &["5000 attributes", "--max-import-xml-attributes"]);
    assert!(stored_courses(d).is_empty(), "nothing stored");
}

#[test]
fn an_import_stops_at_its_deadline() {
    let data = data_with_plugins();
    let d = data.path();
    let err = refused(
        d,
        &tgz("c", &small_course("")),
        &["--load-deadline-ms", "0"],
    );
    says(&err, &["load deadline of 0 ms", "--load-deadline-ms"]);
    assert!(stored_courses(d).is_empty(), "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_name_their_course_and_the_role_is_checked_before_the_body() {
    let served = Served::demo(&["--max-import-entries", "30"]);
    let c = client();
    let upload = format!("{}/admin/courses", served.url);
    let key = SMALL_COURSE;
    let other = "course-v1:HostileX+Other+1";
    let admin = token("ada", &[(key, Role::Admin)]);
    // No course named: refused before the body is read.
    let (status, body) = send(c.post(&upload).bearer_auth(&admin).json(&json!({}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("?course=COURSE_KEY"), "{body}");
    // An admin of one course uploading for another: 403, whatever the body holds (it
    // is not parsed: this one is not even gzip).
    let (status, body) = send(
        c.post(&upload)
            .query(&[("course", other)])
            .bearer_auth(&admin)
            .header(header::CONTENT_TYPE, "application/gzip")
            .body(b"\x1f\x8bnot really".to_vec()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains(other), "{body}");
    // A document for another course than the one named: 400 naming both.
    let doc = json!({"course_key": other, "blocks": [{"usage_id": "h", "type": "html"}]});
    let (status, body) = send(
        c.post(&upload)
            .query(&[("course", key)])
            .bearer_auth(&admin)
            .json(&doc),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let message = error_of(&body);
    assert!(message.contains(other) && message.contains(key), "{body}");
    // An export is imported under the course named, within serve's import limits.
    let (status, body) = send(
        c.post(&upload)
            .query(&[("course", key)])
            .bearer_auth(&admin)
            .header(header::CONTENT_TYPE, "application/gzip")
            .body(tgz("c", &small_course(""))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["course_key"], key);
    let root = admin_token("root");
    let test_course = "course-v1:TestX+Course+1";
    let (status, body) = send(
        c.post(&upload)
            .query(&[("course", test_course)])
            .bearer_auth(&root)
            .header(header::CONTENT_TYPE, "application/gzip")
            .body(test_course_archive()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("--max-import-entries"), "{body}");
    assert!(
        !error_of(&body).contains(served.data.path().to_str().unwrap()),
        "no server path in the error: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_runs_within_the_load_deadline() {
    let served = Served::demo(&["--load-deadline-ms", "0"]);
    let (status, body) = send(
        client()
            .post(format!("{}/admin/courses", served.url))
            .query(&[("course", SMALL_COURSE)])
            .bearer_auth(admin_token("root"))
            .header(header::CONTENT_TYPE, "application/gzip")
            .body(tgz("c", &small_course(""))),
    )
    .await;
    assert!(status == 400 || status == 422, "{status} {body}");
    assert!(error_of(&body).contains("--load-deadline-ms"), "{body}");
}
