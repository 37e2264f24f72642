//! The command line's silent and raw failures of #17 (trap 3), run through the real
//! `xbhost` binary on real plugins and stores: each refusal is one line naming what is at
//! fault, and what the commands print is what the documents say.

use std::path::Path;
use std::process::{Command, Stdio};

use xbhost_tests::served::Served;
use xbhost_tests::{DEMO_COURSE, demo_course_path, plugin_path, xbhost, xbhost_bin, xbhost_ok};

/// A data directory with the demo course's plugins and the demo course loaded.
fn demo_data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for p in ["html", "vertical", "split_test", "problem"] {
        xbhost_ok(
            dir.path(),
            &["plugin", "add", plugin_path(p).to_str().unwrap()],
        );
    }
    xbhost_ok(
        dir.path(),
        &["course", "load", demo_course_path().to_str().unwrap()],
    );
    dir
}

/// A failing command's stderr, checked to be a one-line error.
fn one_line_error(data: &Path, args: &[&str]) -> String {
    let (ok, _, err) = xbhost(data, args);
    assert!(!ok, "xbhost {args:?} should fail");
    assert_eq!(err.trim().lines().count(), 1, "one-line error, got: {err}");
    err
}

#[test]
fn a_course_whose_field_does_not_match_its_plugin_is_refused_naming_block_and_field() {
    let data = demo_data();
    let d = data.path();
    let before = xbhost_ok(d, &["course", "show", DEMO_COURSE]);
    let mut doc: serde_json::Value = serde_json::from_str(&before).unwrap();
    let intro = doc["blocks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|b| b["usage_id"] == "intro")
        .unwrap();
    // The html plugin reads `data` as text: a number could only render as "unavailable".
    intro["fields"]["data"] = 5.into();
    let file = d.join("mistyped.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let err = one_line_error(d, &["course", "load", file.to_str().unwrap()]);
    assert!(err.contains("\"intro\""), "names the block: {err}");
    assert!(err.contains("field `data`"), "names the field: {err}");
    assert!(err.contains("mistyped.json"), "names the file: {err}");
    assert_eq!(
        xbhost_ok(d, &["course", "show", DEMO_COURSE]),
        before,
        "nothing was stored"
    );

    // A field nested in a list is named by its path; a dry run changes nothing either way.
    let mut doc: serde_json::Value = serde_json::from_str(&before).unwrap();
    let split = doc["blocks"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|b| b["type"] == "split_test")
        .unwrap();
    split["fields"]["user_partition_id"] = "zero".into();
    let usage = split["usage_id"].as_str().unwrap().to_string();
    std::fs::write(&file, doc.to_string()).unwrap();
    let err = one_line_error(d, &["course", "load", file.to_str().unwrap()]);
    assert!(
        err.contains(&format!("{usage:?}")) && err.contains("field `user_partition_id`"),
        "{err}"
    );
    // The shipped demo course itself matches every plugin it uses.
    xbhost_ok(d, &["course", "load", demo_course_path().to_str().unwrap()]);
}

#[test]
fn read_only_commands_refuse_a_data_directory_without_a_store_and_create_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let typo = parent.path().join("xbhost-dta");
    let t = typo.to_str().unwrap();
    for args in [
        &["course", "list"][..],
        &["plugin", "list"],
        &["course", "show", DEMO_COURSE],
        &["experiment", "show", "--course", DEMO_COURSE],
        &["tags", "list", "--user", "a", "--global"],
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            "a",
        ],
        &["events", "export", "--course", DEMO_COURSE],
        &[
            "course",
            "load",
            "--dry-run",
            demo_course_path().to_str().unwrap(),
        ],
    ] {
        let err = one_line_error(&typo, args);
        assert!(
            err.contains(t) && err.contains("no xbhost store"),
            "{args:?}: {err}"
        );
        assert!(!typo.exists(), "{args:?} created {t}");
    }
    // An existing directory that holds no store is refused the same way.
    let empty = tempfile::tempdir().unwrap();
    let err = one_line_error(empty.path(), &["course", "list"]);
    assert!(err.contains("no xbhost store"), "{err}");
    assert!(!empty.path().join("db").exists());
    // The commands that install or load something start a store.
    xbhost_ok(
        &typo,
        &["plugin", "add", plugin_path("html").to_str().unwrap()],
    );
    assert!(xbhost_ok(&typo, &["plugin", "list"]).starts_with("html\t"));
}

/// An export is not a course document its author can fix: one block whose value does not
/// fit its plugin (here an LTI block's `inline_height` below the plugin's whole-number
/// range) is imported as an `unsupported` block saying why, and the rest of the course
/// loads.
#[test]
fn an_import_keeps_a_misfit_block_as_unsupported_and_loads_the_rest() {
    use xbhost_tests::exports::{SMALL_COURSE, data_with_plugins, small_course, write_dir};
    let data = data_with_plugins();
    let d = data.path();
    let export = tempfile::tempdir().unwrap();
    write_dir(
        export.path(),
        &small_course(
            "<lti_consumer url_name=\"tall\" display_name=\"Tall\" inline_height=\"-5\"/>",
        ),
    );
    let (ok, out, err) = xbhost(d, &["course", "import", export.path().to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains("\"tall\"") && said.contains("inline_height") && said.contains("unsupported"),
        "the import names the block, its field and what became of it: {said}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&xbhost_ok(d, &["course", "show", SMALL_COURSE])).unwrap();
    let block = |doc: &serde_json::Value, id: &str| {
        doc["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .position(|b| b["usage_id"] == id)
            .unwrap_or_else(|| panic!("no block {id}: {doc}"))
    };
    let tall = &doc["blocks"][block(&doc, "tall")];
    assert_eq!(tall["type"], "unsupported", "{tall}");
    assert_eq!(tall["fields"]["original_type"], "lti_consumer", "{tall}");
    assert!(
        tall["fields"]["reason"]
            .as_str()
            .unwrap()
            .contains("inline_height"),
        "{tall}"
    );
    assert_eq!(
        doc["blocks"][block(&doc, "p1")]["type"],
        "problem",
        "the problem is kept"
    );
    // The same value in a course document is still refused, naming block and field.
    let mut refused = doc.clone();
    let i = block(&refused, "tall");
    refused["blocks"][i]["type"] = "lti_consumer".into();
    refused["blocks"][i]["fields"] = serde_json::json!({"inline_height": -5});
    let file = d.join("doc.json");
    std::fs::write(&file, refused.to_string()).unwrap();
    let err = one_line_error(d, &["course", "load", file.to_str().unwrap()]);
    assert!(
        err.contains("\"tall\"") && err.contains("inline_height"),
        "{err}"
    );
}

/// A command that would start a store and then fails takes back what it created: the
/// next command is refused as "no store", not served from an empty store.
#[test]
fn a_failed_command_that_started_a_store_leaves_none_behind() {
    let parent = tempfile::tempdir().unwrap();
    let fresh = parent.path().join("new-data");
    let garbage = parent.path().join("not-a-plugin.wasm");
    std::fs::write(&garbage, b"not wasm at all").unwrap();
    let err = one_line_error(&fresh, &["plugin", "add", garbage.to_str().unwrap()]);
    assert!(err.contains("not-a-plugin"), "{err}");
    assert!(
        !fresh.exists(),
        "the failed plugin add left {}",
        fresh.display()
    );
    // In a data directory that already held other files, only what the command made goes.
    let kept = tempfile::tempdir().unwrap();
    std::fs::write(kept.path().join("notes.txt"), b"mine").unwrap();
    let course = parent.path().join("broken.json");
    std::fs::write(&course, b"{ not json").unwrap();
    one_line_error(kept.path(), &["course", "load", course.to_str().unwrap()]);
    let left: Vec<_> = std::fs::read_dir(kept.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["notes.txt"], "the failed course load left {left:?}");
    // A failure on an existing store removes nothing.
    let data = demo_data();
    one_line_error(data.path(), &["plugin", "add", garbage.to_str().unwrap()]);
    assert!(xbhost_ok(data.path(), &["plugin", "list"]).contains("html\t"));
}

#[test]
fn a_command_beside_a_server_on_its_store_says_so_plainly() {
    let data = tempfile::tempdir().unwrap();
    xbhost_ok(
        data.path(),
        &["plugin", "add", plugin_path("html").to_str().unwrap()],
    );
    let served = Served::start(data, &[]);
    let err = one_line_error(
        served.data.path(),
        &["plugin", "add", plugin_path("vertical").to_str().unwrap()],
    );
    assert!(
        err.contains("in use by another xbhost process") && err.contains("xbhost serve"),
        "{err}"
    );
    assert!(
        err.contains("POST /admin/plugins"),
        "says what to do: {err}"
    );
    for raw in [
        "Os {",
        "code:",
        "kind:",
        "WouldBlock",
        "could not acquire lock",
    ] {
        assert!(!err.contains(raw), "Rust debug text {raw:?} in: {err}");
    }
}

#[test]
fn import_prints_partition_ids_as_numbers() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    for p in xbhost_tests::PRODUCT_PLUGINS {
        xbhost_ok(d, &["plugin", "add", plugin_path(p).to_str().unwrap()]);
    }
    let export = xbhost_tests::olx::olx("openedx-test-course");
    let out = xbhost_ok(d, &["course", "import", export.to_str().unwrap()]);
    assert!(!out.contains("Some("), "{out}");
    assert!(
        out.contains("split_test 17c9c74e7f4f4af887d3611bee41337b on partition 1617092182: group "),
        "{out}"
    );
}

#[test]
fn experiment_show_writes_controls_as_the_course_document_does() {
    let data = demo_data();
    let out = xbhost_ok(
        data.path(),
        &["experiment", "show", "--course", DEMO_COURSE],
    );
    assert!(out.contains("bucketing course-aware"), "{out}");
    assert!(!out.contains("courseaware"), "{out}");
    let mut doc: serde_json::Value =
        serde_json::from_str(&xbhost_ok(data.path(), &["course", "show", DEMO_COURSE])).unwrap();
    doc["user_partitions"][1]["bucketing"] = "course-unaware".into();
    let file = data.path().join("unaware.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    xbhost_ok(data.path(), &["course", "load", file.to_str().unwrap()]);
    let out = xbhost_ok(
        data.path(),
        &["experiment", "show", "--course", DEMO_COURSE],
    );
    assert!(out.contains("bucketing course-unaware"), "{out}");
}

/// `render --json` for staff `staff-1` with these extra arguments.
fn staff_render(data: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec![
        "render",
        "--course",
        DEMO_COURSE,
        "--block",
        "unit_1",
        "--user",
        "staff-1",
        "--json",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = xbhost(data, &args);
    assert!(ok, "{args:?}: {err}");
    (serde_json::from_str(out.trim()).unwrap(), err)
}

#[test]
fn masquerade_takes_http_s_group_syntax_and_says_it_is_a_masquerade() {
    let data = demo_data();
    let d = data.path();
    let (colon, err) = staff_render(d, &["--as-group", "0:1,1:2"]);
    assert!(
        err.contains("masquerade") && err.contains("partition 0 group 1"),
        "{err}"
    );
    assert_eq!(colon["masquerade"]["as_groups"]["0"], 1, "{colon}");
    assert_eq!(colon["masquerade"]["as_groups"]["1"], 2, "{colon}");
    assert_eq!(colon["assignments"]["0"], 1, "{colon}");
    assert_eq!(colon["assignments"]["1"], 2, "{colon}");
    // The `=` form and repeated flags mean the same.
    let (equals, _) = staff_render(d, &["--as-group", "0=1", "--as-group", "1=2"]);
    assert_eq!(equals["visible_blocks"], colon["visible_blocks"]);
    assert_eq!(equals["html"], colon["html"]);
    // Another group shows another condition.
    let (other, _) = staff_render(d, &["--as-group", "0:0,1:2"]);
    assert_ne!(other["visible_blocks"], colon["visible_blocks"]);
    // clap refuses it (its usage follows the error line).
    let (ok, _, err) = xbhost(
        d,
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            "s",
            "--as-group",
            "0-1",
        ],
    );
    assert!(
        !ok && err.contains("\"0-1\" is not PARTITION:GROUP"),
        "{err}"
    );

    // As a learner: the JSON and the HTML both say whom the page is for.
    let (json, _) = staff_render(d, &["--as-learner", "reader"]);
    assert_eq!(json["masquerade"]["as_learner"], "reader", "{json}");
    let html = xbhost_ok(
        d,
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            "staff-1",
            "--as-learner",
            "reader",
        ],
    );
    let first = html.lines().next().unwrap();
    assert!(
        first.starts_with(
            "<!-- masquerade: staff &quot;staff-1&quot; viewing as learner &quot;reader&quot;"
        ),
        "{first}"
    );
    // A learner's own page carries no such mark.
    let own = xbhost_ok(
        d,
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            "reader",
        ],
    );
    assert!(!own.contains("masquerade"), "{own}");
}

/// Runs `plugin add` on a fresh store with info logs; stderr goes to a pipe, or to a
/// pseudo-terminal when `terminal`. Returns what reached stderr.
fn plugin_add_stderr(terminal: bool, envs: &[(&str, &str)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(xbhost_bin());
    command
        .arg("--data")
        .arg(data.path())
        .args(["plugin", "add", plugin_path("html").to_str().unwrap()])
        .env("XBHOST_LOG", "xbhost=info")
        .env_remove("NO_COLOR")
        .envs(envs.iter().copied())
        .stdout(Stdio::null());
    if !terminal {
        let out = command.stderr(Stdio::piped()).output().unwrap();
        assert!(out.status.success());
        return String::from_utf8_lossy(&out.stderr).into_owned();
    }
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors, which the files below then own.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    use std::os::fd::FromRawFd as _;
    // SAFETY: both descriptors are open and owned by nothing else.
    let (master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let reader = std::thread::spawn(move || {
        let mut master = master;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Linux answers EIO once the terminal's last writer is gone.
        while let Ok(n) = std::io::Read::read(&mut master, &mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        seen
    });
    let status = command.stderr(Stdio::from(slave)).status().unwrap();
    drop(command);
    assert!(status.success());
    String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
}

#[test]
fn logs_are_coloured_only_on_a_terminal_and_never_with_no_color() {
    let piped = plugin_add_stderr(false, &[]);
    assert!(piped.contains("plugin added"), "{piped}");
    assert!(!piped.contains('\u{1b}'), "colours in a pipe: {piped:?}");
    let terminal = plugin_add_stderr(true, &[]);
    assert!(terminal.contains("plugin added"), "{terminal:?}");
    assert!(
        terminal.contains("\u{1b}["),
        "no colours on a terminal: {terminal:?}"
    );
    let no_color = plugin_add_stderr(true, &[("NO_COLOR", "1")]);
    assert!(no_color.contains("plugin added"), "{no_color:?}");
    assert!(
        !no_color.contains('\u{1b}'),
        "colours with NO_COLOR: {no_color:?}"
    );
}

#[test]
fn plugin_names_outside_the_safe_characters_are_refused_naming_the_name() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let html = plugin_path("html");
    for name in ["'<script>'", "Html", "two words", &"x".repeat(65)] {
        let err = one_line_error(
            d,
            &["plugin", "add", html.to_str().unwrap(), "--name", name],
        );
        assert!(
            err.contains("plugin name") && err.contains("a-z, 0-9, `_` and `-`"),
            "{name}: {err}"
        );
    }
    let err = one_line_error(
        d,
        &[
            "plugin",
            "add",
            html.to_str().unwrap(),
            "--name",
            "'<script>'",
        ],
    );
    assert!(err.contains("\"'<script>'\""), "{err}");
    // Nothing was stored (the first add starts the store).
    xbhost_ok(
        d,
        &[
            "plugin",
            "add",
            html.to_str().unwrap(),
            "--name",
            "rich-text_2",
        ],
    );
    assert_eq!(xbhost_ok(d, &["plugin", "list"]).lines().count(), 1);
}

#[test]
fn either_or_options_are_reported_as_a_choice() {
    let data = demo_data();
    let d = data.path();
    let (ok, _, err) = xbhost(d, &["tags", "list", "--user", "a"]);
    assert!(
        !ok && err.contains("--course") && err.contains("--global"),
        "{err}"
    );
    let (ok, _, err) = xbhost(d, &["render", "--course", DEMO_COURSE, "--block", "unit_1"]);
    assert!(
        !ok && err.contains("--user") && err.contains("--users-file") && err.contains("--session"),
        "{err}"
    );
    let (ok, _, err) = xbhost(d, &["assign", "--course", DEMO_COURSE, "--partition", "0"]);
    assert!(
        !ok && err.contains("--user") && err.contains("--batch"),
        "{err}"
    );
    let (ok, _, err) = xbhost(
        d,
        &[
            "experiment",
            "window",
            "--course",
            DEMO_COURSE,
            "--partition",
            "0",
        ],
    );
    assert!(
        !ok && err.contains("--start") && err.contains("--end") && err.contains("--clear"),
        "{err}"
    );
    // The allowed values are listed.
    let (ok, _, err) = xbhost(
        d,
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            "a",
            "--view",
            "teacher",
        ],
    );
    assert!(
        !ok && err.contains("student") && err.contains("author"),
        "{err}"
    );
}
