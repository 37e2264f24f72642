//! The `xbhost` command line, run as a separate process on a real data directory:
//! persistence across processes, the commands users' scripts rely on, and bad input.

use xbhost_tests::{DEMO_COURSE, demo_course_path, plugin_path, plugin_wasm, xbhost, xbhost_ok};

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

#[test]
fn groups_survive_closing_and_reopening_the_store_in_a_new_process() {
    let data = demo_data();
    let users = data.path().join("users.txt");
    let ids: Vec<String> = (0..40).map(|i| format!("p-{i}")).collect();
    std::fs::write(&users, format!("# learners\n{}\n\n", ids.join("\n"))).unwrap();

    // Before anyone visits, `assign` answers without storing anything.
    let before = xbhost_ok(
        data.path(),
        &[
            "assign",
            "--course",
            DEMO_COURSE,
            "--partition",
            "0",
            "--user",
            "p-0",
            "--json",
        ],
    );
    let before: serde_json::Value = serde_json::from_str(&before).unwrap();
    assert_eq!(before["stored"], false);
    let tags = xbhost_ok(
        data.path(),
        &["tags", "list", "--course", DEMO_COURSE, "--user", "p-0"],
    );
    assert!(tags.is_empty(), "assign wrote tags: {tags}");

    let out = xbhost_ok(
        data.path(),
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--users-file",
            users.to_str().unwrap(),
            "--json",
        ],
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), ids.len());
    assert_eq!(
        lines[0]["assignments"]["0"], before["group"]["id"],
        "assign predicted the stored group"
    );

    for line in &lines {
        let user = line["user"].as_str().unwrap();
        for partition in ["0", "1"] {
            let stored = xbhost_ok(
                data.path(),
                &[
                    "assign",
                    "--course",
                    DEMO_COURSE,
                    "--partition",
                    partition,
                    "--user",
                    user,
                    "--json",
                ],
            );
            let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
            assert_eq!(stored["stored"], true, "{user}");
            assert_eq!(
                stored["group"]["id"], line["assignments"][partition],
                "{user} partition {partition}"
            );
        }
    }
    // A new process renders the same page for the same learner.
    let again = xbhost_ok(
        data.path(),
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_1",
            "--user",
            "p-7",
            "--json",
        ],
    );
    let again: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(again["visible_blocks"], lines[7]["visible_blocks"]);
    assert_eq!(again["assignments"], lines[7]["assignments"]);
    // Every assignment event is in the event log, once.
    let log = std::fs::read_to_string(data.path().join("events.jsonl")).unwrap();
    let assigned = log
        .lines()
        .filter(|l| l.contains("assigned_user_to_partition"))
        .count();
    assert_eq!(assigned, 2 * ids.len());
}

/// Runs a failing command: one line on stderr naming `culprit`, non-zero exit.
fn fails_naming(data: &std::path::Path, args: &[&str], culprit: &str) {
    let (ok, _, err) = xbhost(data, args);
    assert!(!ok, "xbhost {args:?} should fail");
    assert_eq!(err.trim().lines().count(), 1, "one-line error, got: {err}");
    assert!(
        err.contains(culprit),
        "error should name {culprit:?}: {err}"
    );
}

#[test]
fn bad_input_is_a_one_line_error_naming_the_culprit_and_changes_nothing() {
    let data = demo_data();
    let d = data.path();
    let course_before = xbhost_ok(d, &["course", "show", DEMO_COURSE]);
    let plugins_before = xbhost_ok(d, &["plugin", "list"]);

    fails_naming(
        d,
        &[
            "render",
            "--course",
            "course-v1:nope+x+y",
            "--block",
            "unit_1",
            "--user",
            "a",
        ],
        "course-v1:nope+x+y",
    );
    fails_naming(
        d,
        &[
            "render",
            "--course",
            DEMO_COURSE,
            "--block",
            "unit_9",
            "--user",
            "a",
        ],
        "unit_9",
    );
    fails_naming(
        d,
        &[
            "assign",
            "--course",
            DEMO_COURSE,
            "--partition",
            "42",
            "--user",
            "a",
        ],
        "42",
    );
    fails_naming(
        d,
        &[
            "tags",
            "list",
            "--course",
            "course-v1:nope+x+y",
            "--user",
            "a",
        ],
        "course-v1:nope+x+y",
    );

    // A course document that does not parse: the file and the line are named.
    let broken = d.join("broken.json");
    std::fs::write(
        &broken,
        "{\n  \"course_key\": \"course-v1:xbhost+demo+2026\",\n  \"blocks\": [ }\n",
    )
    .unwrap();
    fails_naming(d, &["course", "load", broken.to_str().unwrap()], "line 3");
    fails_naming(
        d,
        &["course", "load", broken.to_str().unwrap()],
        "broken.json",
    );
    // A course whose block needs a plugin nobody installed: the type is named.
    let unknown = d.join("unknown.json");
    let mut doc: serde_json::Value = serde_json::from_str(&course_before).unwrap();
    doc["blocks"][1]["type"] = "poll".into();
    std::fs::write(&unknown, doc.to_string()).unwrap();
    fails_naming(
        d,
        &["course", "load", unknown.to_str().unwrap()],
        "\"poll\"",
    );
    // A child that does not exist.
    let dangling = d.join("dangling.json");
    let mut doc: serde_json::Value = serde_json::from_str(&course_before).unwrap();
    doc["blocks"][0]["children"][0] = "ghost".into();
    std::fs::write(&dangling, doc.to_string()).unwrap();
    fails_naming(d, &["course", "load", dangling.to_str().unwrap()], "ghost");

    // Plugins that are not plugins: refused with a reason, nothing stored.
    let core = d.join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    fails_naming(
        d,
        &["plugin", "add", core.to_str().unwrap()],
        "core WebAssembly module",
    );
    let random = d.join("random.wasm");
    std::fs::write(
        &random,
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    fails_naming(
        d,
        &["plugin", "add", random.to_str().unwrap()],
        "not a WebAssembly component",
    );
    let truncated = d.join("truncated.wasm");
    let html = plugin_wasm("html");
    std::fs::write(&truncated, &html[..html.len() / 2]).unwrap();
    fails_naming(
        d,
        &["plugin", "add", truncated.to_str().unwrap()],
        "truncated.wasm",
    );
    fails_naming(
        d,
        &["plugin", "add", d.join("missing.wasm").to_str().unwrap()],
        "missing.wasm",
    );

    // Over-long and empty tag keys, and the reserved partition tags.
    let long = "k".repeat(256);
    fails_naming(
        d,
        &[
            "tags",
            "set",
            "--course",
            DEMO_COURSE,
            "--user",
            "a",
            &long,
            "v",
        ],
        "256 bytes",
    );
    fails_naming(
        d,
        &[
            "tags",
            "set",
            "--course",
            DEMO_COURSE,
            "--user",
            "a",
            "",
            "v",
        ],
        "empty",
    );
    fails_naming(
        d,
        &[
            "tags",
            "set",
            "--course",
            DEMO_COURSE,
            "--user",
            "a",
            "xblock.partition_service.partition_0",
            "1",
        ],
        "partition",
    );

    assert_eq!(
        xbhost_ok(d, &["course", "show", DEMO_COURSE]),
        course_before,
        "course changed"
    );
    assert_eq!(
        xbhost_ok(d, &["plugin", "list"]),
        plugins_before,
        "plugins changed"
    );
    assert!(xbhost_ok(d, &["tags", "list", "--course", DEMO_COURSE, "--user", "a"]).is_empty());
}

#[test]
fn tags_commands_read_and_write_course_and_global_tags() {
    let data = demo_data();
    let d = data.path();
    xbhost_ok(
        d,
        &[
            "tags",
            "set",
            "--course",
            DEMO_COURSE,
            "--user",
            "a",
            "cohort_hint",
            "evening",
        ],
    );
    xbhost_ok(
        d,
        &["tags", "set", "--global", "--user", "a", "language", "fr"],
    );
    assert_eq!(
        xbhost_ok(
            d,
            &[
                "tags",
                "get",
                "--course",
                DEMO_COURSE,
                "--user",
                "a",
                "cohort_hint"
            ]
        )
        .trim(),
        "evening"
    );
    assert_eq!(
        xbhost_ok(d, &["tags", "get", "--global", "--user", "a", "language"]).trim(),
        "fr"
    );
    assert_eq!(
        xbhost_ok(d, &["tags", "list", "--course", DEMO_COURSE, "--user", "a"]),
        "cohort_hint\tevening\n"
    );
    assert!(xbhost_ok(d, &["tags", "list", "--course", DEMO_COURSE, "--user", "b"]).is_empty());
    let (ok, _, err) = xbhost(
        d,
        &[
            "tags",
            "get",
            "--course",
            DEMO_COURSE,
            "--user",
            "b",
            "cohort_hint",
        ],
    );
    assert!(!ok && err.contains("cohort_hint"), "{err}");
}

#[test]
fn plugin_add_takes_the_name_from_the_plugin_or_from_name() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let out = xbhost_ok(d, &["plugin", "add", plugin_path("html").to_str().unwrap()]);
    assert!(
        out.starts_with(&format!(
            "added plugin html 0.1.0 (contract {}",
            xbhost::runtime::plugin::CONTRACT_VERSION
        )),
        "{out}"
    );
    let out = xbhost_ok(
        d,
        &[
            "plugin",
            "add",
            "--name",
            "rich_text",
            plugin_path("html").to_str().unwrap(),
        ],
    );
    assert!(out.starts_with("added plugin rich_text"), "{out}");
    let list = xbhost_ok(d, &["plugin", "list"]);
    assert!(
        list.lines().any(|l| l.starts_with("html\t"))
            && list.lines().any(|l| l.starts_with("rich_text\t")),
        "{list}"
    );
}

/// `plugin add` takes several files and directories (their `.wasm` files, by name); all
/// are checked before any is stored, so one bad file among good ones stores none.
#[test]
fn plugin_add_takes_several_files_or_a_directory_and_a_bad_one_stores_none() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let shelf = tempfile::tempdir().unwrap();
    for p in ["course", "chapter"] {
        std::fs::copy(plugin_path(p), shelf.path().join(format!("{p}.wasm"))).unwrap();
    }
    std::fs::write(shelf.path().join("notes.txt"), "not a plugin").unwrap();
    let shelf = shelf.path().to_str().unwrap();
    let html = plugin_path("html");
    let html = html.to_str().unwrap();
    let other = tempfile::tempdir().unwrap();
    let broken = other.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm\x0d\0\x01\0 not a component").unwrap();
    let broken = broken.to_str().unwrap();

    let (ok, out, err) = xbhost(d, &["plugin", "add", html, broken, shelf]);
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("broken.wasm was not added, nor any of the other 3 files"),
        "{err}"
    );
    let (_, list, _) = xbhost(d, &["plugin", "list"]);
    assert!(list.trim().is_empty(), "a failed add stored {list}");

    let out = xbhost_ok(d, &["plugin", "add", html, shelf]);
    let added: Vec<&str> = out
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(added, ["html", "chapter", "course"], "{out}");
    let list = xbhost_ok(d, &["plugin", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");

    let (ok, _, err) = xbhost(d, &["plugin", "add", html, html]);
    assert!(!ok && err.contains("are both plugin \"html\""), "{err}");
    let (ok, _, err) = xbhost(d, &["plugin", "add", "--name", "x", html, shelf]);
    assert!(!ok && err.contains("--name renames one plugin"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = xbhost(d, &["plugin", "add", empty.path().to_str().unwrap()]);
    assert!(!ok && err.contains("holds no .wasm file"), "{err}");
}

/// `new-block` refuses a name that is not a plugin name (or is a shipped block's), a
/// directory that is not empty, an SDK that is not one and Python, writing nothing; a good
/// name gets the whole project, and no store is made.
#[test]
fn new_block_writes_a_project_or_refuses_saying_why() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("block");
    let dir_arg = dir.to_str().unwrap();
    for (name, why) in [
        ("Quiz", "does not start with a lowercase letter"),
        ("<script>", "does not start with a lowercase letter"),
        ("quiz card", "contains ' '"),
        ("vertical", "a block type xbhost ships"),
        ("fn", "reserved"),
        ("self", "reserved"),
        ("crate", "reserved"),
        ("string", "a name of Rust's prelude"),
        ("ok", "a name of Rust's prelude"),
        ("thumbs", "a block type xbhost ships"),
    ] {
        let (ok, _, err) = xbhost(d, &["new-block", name, "--dir", dir_arg]);
        assert!(!ok && err.contains(why), "{name}: {err}");
        assert!(!dir.exists(), "{name} wrote something");
    }
    for (name, why) in [
        ("none", "Python class `None`"),
        ("test-host", "Python class `TestHost`"),
        ("xbhost", "the host's own"),
        ("unit", "two blocks \"unit_1\""),
    ] {
        let (ok, _, err) = xbhost(
            d,
            &["new-block", name, "--dir", dir_arg, "--lang", "python"],
        );
        assert!(!ok && err.contains(why), "{name}: {err}");
        assert!(!dir.exists(), "{name} wrote something");
    }
    // A Python project: the block's module, its tests, its pyproject naming both.
    let python = work.path().join("quiz-py");
    let out = xbhost_ok(
        d,
        &[
            "new-block",
            "quiz-py",
            "--dir",
            python.to_str().unwrap(),
            "--lang",
            "python",
        ],
    );
    assert!(
        out.contains("created block quiz-py in ") && out.contains("(Python"),
        "{out}"
    );
    let pyproject = std::fs::read_to_string(python.join("pyproject.toml")).unwrap();
    assert!(pyproject.contains("name = \"quiz-py\""), "{pyproject}");
    assert!(
        pyproject.contains("block = \"quiz_py_block:QuizPy\""),
        "{pyproject}"
    );
    assert!(pyproject.contains("guest-sdk/python\"]"), "{pyproject}");
    let module = std::fs::read_to_string(python.join("quiz_py_block.py")).unwrap();
    assert!(module.contains("class QuizPy(Block):"), "{module}");
    assert!(module.contains("\"quiz-py.answered\""), "{module}");
    let tests = std::fs::read_to_string(python.join("test_quiz_py_block.py")).unwrap();
    assert!(
        tests.contains("from quiz_py_block import MAX_ANSWER_BYTES, QuizPy"),
        "{tests}"
    );
    for shared in [
        "static/block.js",
        "static/block.css",
        "scenarios.json",
        "course.json",
    ] {
        assert!(python.join(shared).is_file(), "{shared}");
    }
    assert!(!python.join("Cargo.toml").exists());
    let (ok, _, err) = xbhost(
        d,
        &[
            "new-block",
            "quiz",
            "--dir",
            dir_arg,
            "--sdk",
            work.path().to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("no xbhost-sdk at"), "{err}");
    assert!(!dir.exists());
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("mine.txt"), "keep me").unwrap();
    let (ok, _, err) = xbhost(d, &["new-block", "quiz", "--dir", dir_arg]);
    assert!(!ok && err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    let fresh = work.path().join("quiz-card");
    let out = xbhost_ok(
        d,
        &["new-block", "quiz-card", "--dir", fresh.to_str().unwrap()],
    );
    assert!(out.contains("created block quiz-card in "), "{out}");
    let read = |path: &str| std::fs::read_to_string(fresh.join(path)).unwrap();
    let cargo = read("Cargo.toml");
    assert!(
        cargo.contains("name = \"quiz-card\"") && cargo.contains("[workspace]"),
        "{cargo}"
    );
    assert!(cargo.contains("guest-sdk\" }"), "{cargo}");
    assert!(read("rust-toolchain.toml").contains("wasm32-wasip2"));
    assert!(read(".cargo/config.toml").contains("-zstack-size=131072"));
    assert!(read("src/lib.rs").contains("pub struct QuizCard;"));
    assert!(read("README.md").contains("wasm32-wasip2/plugin/quiz_card.wasm"));
    assert!(read("Cargo.lock").contains("name = \"serde\""));
    // Interactive: its script calls its own handler from the block's frame.
    let script = read("static/block.js");
    assert!(
        script.contains("function QuizCardBlock(runtime, element, args)")
            && script.contains("runtime.call(\"answer\""),
        "{script}"
    );
    assert!(read("static/block.css").contains(".quiz-card"));
    let lib = read("src/lib.rs");
    assert!(
        lib.contains("xbhost_sdk::client_assets!(\"block.css\", \"block.js\");")
            && lib.contains("xbhost_sdk::scenarios!(\"scenarios.json\");")
            && lib.contains(".initialize_js(\"QuizCardBlock\""),
        "{lib}"
    );
    let scenarios: serde_json::Value = serde_json::from_str(&read("scenarios.json")).unwrap();
    assert!(
        scenarios
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["blocks"][0]["type"] == "quiz-card"),
        "{scenarios}"
    );
    let course: serde_json::Value = serde_json::from_str(&read("course.json")).unwrap();
    let types: Vec<&str> = course["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["course", "chapter", "sequential", "vertical", "quiz-card"]
    );
    assert!(!d.join("db").exists(), "new-block opened a store");
}

#[test]
fn experiment_enrollment_batch_assign_and_events_file_commands() {
    let data = demo_data();
    let d = data.path();
    let k = DEMO_COURSE;
    let out = xbhost_ok(
        d,
        &[
            "experiment",
            "state",
            "--course",
            k,
            "--partition",
            "0",
            "paused",
        ],
    );
    assert!(out.contains("Explanation style\": paused"), "{out}");
    let (ok, _, err) = xbhost(
        d,
        &[
            "experiment",
            "state",
            "--course",
            k,
            "--partition",
            "0",
            "bogus",
        ],
    );
    assert!(!ok && err.contains("bogus"), "{err}");
    let (ok, _, err) = xbhost(
        d,
        &[
            "experiment",
            "state",
            "--course",
            k,
            "--partition",
            "7",
            "off",
        ],
    );
    assert!(!ok && err.contains("no user partition 7"), "{err}");
    xbhost_ok(
        d,
        &[
            "experiment",
            "state",
            "--course",
            k,
            "--partition",
            "0",
            "enabled",
        ],
    );
    let out = xbhost_ok(
        d,
        &[
            "experiment",
            "window",
            "--course",
            k,
            "--partition",
            "0",
            "--start",
            "2026-01-01",
            "--end",
            "2026-02-01",
        ],
    );
    assert!(
        out.contains("enrollment window 2026-01-01 .. 2026-02-01"),
        "{out}"
    );
    let (ok, _, err) = xbhost(
        d,
        &[
            "experiment",
            "window",
            "--course",
            k,
            "--partition",
            "0",
            "--end",
            "someday",
        ],
    );
    assert!(!ok && err.contains("someday"), "{err}");

    // Enrollment dates from CSV: a bad line is named and nothing of the file is stored.
    let csv = d.join("enrollments.csv");
    std::fs::write(&csv, "user_id,date\ninside,2026-01-10\nbroken,2026-02-30\n").unwrap();
    let (ok, _, err) = xbhost(
        d,
        &["enrollment", "import", "--course", k, csv.to_str().unwrap()],
    );
    assert!(!ok && err.contains("enrollments.csv line 3"), "{err}");
    let status = |user: &str| {
        let line = xbhost_ok(
            d,
            &[
                "assign",
                "--course",
                k,
                "--partition",
                "0",
                "--user",
                user,
                "--json",
            ],
        );
        serde_json::from_str::<serde_json::Value>(&line).unwrap()["status"].clone()
    };
    assert_eq!(
        status("inside"),
        "outside_enrollment_window",
        "nothing was stored"
    );
    std::fs::write(&csv, "user_id,date\ninside,2026-01-10\nearly,2025-06-01\n").unwrap();
    let out = xbhost_ok(
        d,
        &["enrollment", "import", "--course", k, csv.to_str().unwrap()],
    );
    assert!(out.contains("recorded 2 enrollment dates"), "{out}");
    assert_eq!(status("inside"), "would_be_assigned");
    assert_eq!(status("early"), "outside_enrollment_window");

    // Batch assignment: identifiers on stdin, one JSON line each, bad ones named.
    let mut child = std::process::Command::new(xbhost_tests::xbhost_bin())
        .args([
            "--data",
            d.to_str().unwrap(),
            "assign",
            "--course",
            k,
            "--partition",
            "0",
            "--batch",
        ])
        .env("XBHOST_LOG", "off")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"inside\nearly\n\nbad/id\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a failed line fails the batch");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    for (line, user) in lines.iter().zip(["inside", "early"]) {
        let single = xbhost_ok(
            d,
            &[
                "assign",
                "--course",
                k,
                "--partition",
                "0",
                "--user",
                user,
                "--json",
            ],
        );
        assert_eq!(
            *line,
            serde_json::from_str::<serde_json::Value>(&single).unwrap()
        );
    }
    assert_eq!(lines[2]["line"], 4);
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .contains("path separator"),
        "{}",
        lines[2]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 identifiers could not be assigned"));

    // Events go to the configured file; a bot's visit sends none.
    xbhost_ok(
        d,
        &[
            "experiment",
            "window",
            "--course",
            k,
            "--partition",
            "0",
            "--clear",
        ],
    );
    let events = d.join("elsewhere.jsonl");
    let ev = events.to_str().unwrap();
    xbhost_ok(
        d,
        &[
            "--events",
            ev,
            "render",
            "--course",
            k,
            "--block",
            "unit_1",
            "--user",
            "crawler",
            "--user-agent",
            "Googlebot/2.1",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(&events).unwrap_or_default(),
        "",
        "a bot sends no events"
    );
    xbhost_ok(
        d,
        &[
            "--events", ev, "render", "--course", k, "--block", "unit_1", "--user", "reader",
        ],
    );
    let written = std::fs::read_to_string(&events).unwrap();
    assert!(written.lines().count() >= 3, "{written}");
    assert!(
        !std::fs::read_to_string(d.join("events.jsonl"))
            .unwrap_or_default()
            .contains("reader")
    );

    // Staff viewing as that learner see the same page; nothing more is written.
    let own = xbhost_ok(
        d,
        &[
            "render", "--course", k, "--block", "unit_1", "--user", "reader", "--json",
        ],
    );
    let before = std::fs::read_to_string(&events).unwrap();
    let masq = xbhost_ok(
        d,
        &[
            "--events",
            ev,
            "render",
            "--course",
            k,
            "--block",
            "unit_1",
            "--user",
            "staff-1",
            "--as-learner",
            "reader",
            "--json",
        ],
    );
    let html = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["html"].clone();
    assert_eq!(html(&own), html(&masq));
    assert_eq!(std::fs::read_to_string(&events).unwrap(), before);
}
