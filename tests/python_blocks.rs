//! Python blocks (#16) through the real host: `plugins/python/*`, built by `cargo xtask
//! build` with `xbhost block build` (componentize-py), added with `plugin add` and driven
//! with the CLI on a real store. A `group_message` and a `split_test` on one partition give
//! each learner the same condition; `thumbs_py`'s votes are shared by every learner, one
//! each; a block project built here shows what an author sees when their block is wrong.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use xbhost_tests::{plugin_dir, plugin_path, xbhost, xbhost_ok};

const COURSE: &str = "course-v1:xbhost+python+2026";

fn python_plugin(name: &str) -> PathBuf {
    let path = plugin_dir().join("python").join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: `cargo xtask build` builds the Python blocks",
        path.display()
    );
    path
}

/// A store with the Python blocks and the Rust ones the course uses, and the course: a
/// copy of one made once per test process (an 18 MB component takes seconds to compile;
/// the copy keeps the compiled cache).
fn store() -> tempfile::TempDir {
    static TEMPLATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let data = tempfile::Builder::new()
            .prefix("xbhost-python-template")
            .tempdir()
            .unwrap()
            .keep();
        make_store(&data);
        data
    });
    let data = tempfile::tempdir().unwrap();
    xbhost_tests::copy_dir(template, data.path());
    data
}

fn make_store(data: &Path) {
    let plugins: Vec<String> = [
        python_plugin("thumbs_py"),
        python_plugin("group_message"),
        plugin_path("vertical"),
        plugin_path("split_test"),
        plugin_path("html"),
    ]
    .iter()
    .map(|p| p.to_string_lossy().into_owned())
    .collect();
    let mut add = vec!["plugin", "add"];
    add.extend(plugins.iter().map(String::as_str));
    xbhost_ok(data, &add);
    let course = json!({
        "course_key": COURSE,
        "display_name": "Python blocks",
        "user_partitions": [{
            "id": 4, "name": "Tone", "description": "", "scheme": "random", "active": true,
            "groups": [{"id": 0, "name": "Plain"}, {"id": 1, "name": "Warm"}]
        }],
        "blocks": [
            {"usage_id": "unit", "type": "vertical", "fields": {},
             "children": ["note", "split", "vote"]},
            {"usage_id": "note", "type": "group_message",
             "fields": {"user_partition_id": 4,
                        "messages": {"0": "NOTE-PLAIN", "1": "NOTE-WARM"}}},
            {"usage_id": "split", "type": "split_test",
             "fields": {"user_partition_id": 4,
                        "group_id_to_child": {"0": "plain", "1": "warm"}},
             "children": ["plain", "warm"]},
            {"usage_id": "plain", "type": "html", "fields": {"data": "<p>BODY-PLAIN</p>"}},
            {"usage_id": "warm", "type": "html", "fields": {"data": "<p>BODY-WARM</p>"}},
            {"usage_id": "vote", "type": "thumbs_py", "fields": {"prompt": "Useful <here>?"}}
        ]
    });
    let file = data.join("course.json");
    std::fs::write(&file, course.to_string()).unwrap();
    xbhost_ok(data, &["course", "load", file.to_str().unwrap()]);
}

fn render(data: &Path, user: &str, view: &str) -> String {
    xbhost_ok(
        data,
        &[
            "render", "--course", COURSE, "--block", "unit", "--user", user, "--view", view,
        ],
    )
}

fn vote(data: &Path, user: &str, direction: &str) -> (bool, String, String) {
    let payload = json!({ "direction": direction }).to_string();
    xbhost(
        data,
        &[
            "handle",
            "--course",
            COURSE,
            "--block",
            "vote",
            "--user",
            user,
            "--handler",
            "vote",
            "--payload",
            &payload,
        ],
    )
}

fn events(data: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(data.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["name"] == name)
        .collect()
}

#[test]
fn a_python_block_in_an_experiment_shows_each_learner_the_condition_of_their_split_test() {
    let data = store();
    let mut seen = [0; 2];
    for i in 0..16 {
        let learner = format!("py-learner-{i}");
        let page = render(data.path(), &learner, "student");
        let plain = page.contains("NOTE-PLAIN") && page.contains("BODY-PLAIN");
        let warm = page.contains("NOTE-WARM") && page.contains("BODY-WARM");
        assert!(plain != warm, "{learner} got a mixed page: {page}");
        assert!(
            !page.contains(if plain { "NOTE-WARM" } else { "NOTE-PLAIN" }),
            "{page}"
        );
        seen[usize::from(warm)] += 1;
        // The reading is an event the host stamps with the learner's group.
        let shown = events(data.path(), "xblock.group_message.shown");
        let mine = shown
            .iter()
            .find(|e| e["user_id"] == learner.as_str())
            .unwrap_or_else(|| panic!("no shown event for {learner}: {shown:?}"));
        assert_eq!(mine["data"]["group"], json!(u64::from(warm)), "{mine}");
        let groups = mine["experiments"]["assigned"].to_string();
        let expected = if warm { "Warm" } else { "Plain" };
        assert!(groups.contains(expected), "{mine}");
        // Sticky: the same again.
        assert_eq!(
            render(data.path(), &learner, "student").contains("NOTE-WARM"),
            warm
        );
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "16 learners, one group: {seen:?}"
    );
    // Staff read every condition, each headed by its group.
    let staff = render(data.path(), "py-staff", "staff");
    for text in [
        "<h4>Plain</h4><p>NOTE-PLAIN</p>",
        "<h4>Warm</h4><p>NOTE-WARM</p>",
    ] {
        assert!(staff.contains(text), "{staff}");
    }
}

#[test]
fn thumbs_in_python_counts_one_vote_per_learner_shared_by_all() {
    let data = store();
    for (learner, direction) in [("ann", "up"), ("ben", "up"), ("cy", "down")] {
        let (ok, out, err) = vote(data.path(), learner, direction);
        assert!(ok, "{learner}: {err}");
        let answer: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(answer["voted"], direction, "{answer}");
    }
    let (ok, _, err) = vote(data.path(), "ann", "down");
    assert!(!ok && err.contains("you have already voted up"), "{err}");
    let (ok, _, err) = vote(data.path(), "dee", "sideways");
    assert!(!ok && err.contains("vote expects"), "{err}");
    let page = render(data.path(), "dee", "student");
    assert!(page.contains("<span class=\"count\">2</span>"), "{page}");
    assert!(page.contains("<span class=\"count\">1</span>"), "{page}");
    assert!(page.contains("Useful &lt;here&gt;?"), "{page}");
    assert_eq!(events(data.path(), "xblock.thumbs.voted").len(), 3);
}

/// Builds a block project written here (pyproject.toml and one module) with `xbhost
/// block build`; the componentize-py `cargo xtask` installed, or XBHOST_COMPONENTIZE_PY.
fn build_project(dir: &Path, module: &str) -> (bool, String, String) {
    std::fs::write(
        dir.join("pyproject.toml"),
        "[project]\nname = \"faulty\"\nversion = \"0.2.0\"\n\n[tool.xbhost]\nblock = \"faulty:Faulty\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("faulty.py"), module).unwrap();
    let componentize = std::env::var("XBHOST_COMPONENTIZE_PY").unwrap_or_else(|_| {
        plugin_dir()
            .parent()
            .unwrap()
            .join("python-venv/bin/componentize-py")
            .to_string_lossy()
            .into_owned()
    });
    let out = dir.join("faulty.wasm");
    xbhost(
        dir,
        &[
            "block",
            "build",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--componentize-py",
            &componentize,
        ],
    )
}

#[test]
fn an_authors_mistakes_are_named_at_build_load_and_render() {
    let project = tempfile::tempdir().unwrap();
    // Not a project.
    let (ok, _, err) = xbhost(
        project.path(),
        &["block", "build", project.path().to_str().unwrap()],
    );
    assert!(!ok && err.contains("pyproject.toml"), "{err}");
    // Client files: only regular .css and .js files of the project's static/ (named
    // before anything is built).
    std::fs::write(
        project.path().join("pyproject.toml"),
        "[project]\nname = \"faulty\"\nversion = \"0.2.0\"\n\n[tool.xbhost]\nblock = \"faulty:Faulty\"\n",
    )
    .unwrap();
    let stat = project.path().join("static");
    std::fs::create_dir_all(&stat).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", stat.join("leak.js")).unwrap();
    let build = |dir: &Path| xbhost(dir, &["block", "build", dir.to_str().unwrap()]);
    let (ok, _, err) = build(project.path());
    assert!(!ok && err.contains("static/leak.js is a link"), "{err}");
    std::fs::remove_file(stat.join("leak.js")).unwrap();
    std::fs::write(stat.join("notes.md"), "x").unwrap();
    let (ok, _, err) = build(project.path());
    assert!(
        !ok && err.contains("static/notes.md is not a client file"),
        "{err}"
    );
    std::fs::remove_dir_all(&stat).unwrap();
    // Another componentize-py release than the SDK's adapter is written against.
    let tools = tempfile::tempdir().unwrap();
    let other = tools.path().join("componentize-py");
    std::fs::write(&other, "#!/bin/sh\necho componentize-py 0.19.3\n").unwrap();
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, _, err) = xbhost(
        project.path(),
        &[
            "block",
            "build",
            project.path().to_str().unwrap(),
            "--componentize-py",
            other.to_str().unwrap(),
        ],
    );
    assert!(
        !ok && err.contains("\"componentize-py 0.19.3\"") && err.contains("with 0.25.1"),
        "{err}"
    );
    // A module that does not import: componentize-py's own error, passed on.
    let (ok, _, err) = build_project(project.path(), "import no_such_module\n");
    assert!(!ok && err.contains("no_such_module"), "{err}");
    let (ok, out, err) = build_project(
        project.path(),
        "from dataclasses import dataclass\n\
         from xbhost_sdk import Block, Fragment\n\n\
         @dataclass\nclass Fields:\n    divisor: int = 1\n\n\
         class Faulty(Block):\n    Fields = Fields\n\n    \
         def render(self, view):\n        \
         return Fragment(str(100 // self.fields.divisor))\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("built plugin faulty 0.2.0 (contract"), "{out}");
    let data = tempfile::tempdir().unwrap();
    let wasm = project.path().join("faulty.wasm");
    let added = xbhost_ok(data.path(), &["plugin", "add", wasm.to_str().unwrap()]);
    assert!(added.contains("added plugin faulty 0.2.0"), "{added}");
    let course = |divisor: Value| {
        json!({"course_key": "course-v1:x+faulty+1", "display_name": "f", "user_partitions": [],
               "blocks": [{"usage_id": "f1", "type": "faulty", "fields": {"divisor": divisor}}]})
    };
    let file = data.path().join("course.json");
    // A field of the wrong type: refused at load, naming the block and the field.
    std::fs::write(&file, course(json!("two")).to_string()).unwrap();
    let (ok, _, err) = xbhost(data.path(), &["course", "load", file.to_str().unwrap()]);
    assert!(
        !ok && err.contains("field `divisor`") && err.contains("f1"),
        "{err}"
    );
    std::fs::write(&file, course(json!(4)).to_string()).unwrap();
    xbhost_ok(data.path(), &["course", "load", file.to_str().unwrap()]);
    let render = |data: &Path| {
        xbhost(
            data,
            &[
                "render",
                "--course",
                "course-v1:x+faulty+1",
                "--block",
                "f1",
                "--user",
                "u",
            ],
        )
    };
    let (ok, page, err) = render(data.path());
    assert!(ok && page.contains(">25</div>"), "{page}{err}");
    // A Python exception: the host reports it, with the block's own line, and goes on.
    std::fs::write(&file, course(json!(0)).to_string()).unwrap();
    xbhost_ok(data.path(), &["course", "load", file.to_str().unwrap()]);
    let (_, page, err) = render(data.path());
    let failure = events(data.path(), "xbhost.block.failed");
    let text = format!("{page}{err}{failure:?}");
    assert!(text.contains("ZeroDivisionError"), "{text}");
    assert!(text.contains("faulty.py:12"), "{text}");
}

/// `hostile_py` as the breakout block of `sandbox.rs`: the Rust plugin's attacks, written
/// by Python as its markup.
fn python_breakout(attack: Option<&str>) -> (&'static str, Value) {
    let markup: String = breakout::ATTACKS
        .iter()
        .filter(|(name, _)| attack.is_none_or(|a| a == *name))
        .map(|(_, html)| *html)
        .collect();
    assert!(!markup.is_empty(), "no breakout attack {attack:?}");
    ("hostile_py", json!({"mode": "markup", "markup": markup}))
}

/// Hostile Python blocks (`plugins/testing/python/hostile_py`) through the real host in
/// this process, as `sandbox.rs` and `untrusted.rs` try the Rust ones: a loop, a memory
/// hoard, a 60 s sleep and 2 MiB of HTML each fail alone while their neighbours render,
/// a short sleep is granted, the host's events and partition tag cannot be forged, the
/// event budget holds, and markup cannot leave the block's wrapper or forge the host's
/// marks.
#[test]
fn hostile_python_blocks_fail_alone_and_forge_nothing() {
    use xbhost::session::BLOCK_FAILED_EVENT;
    use xbhost::{FailureKind, User, View};

    let f = xbhost_tests::Fixture::with_config(
        &["html", "vertical", "split_test", "hostile_py"],
        crate::sandbox::deadline_config(),
    );
    const KEY: &str = "course-v1:xbhost+hostile-python+1";
    let hostile = [
        ("spin", json!({"mode": "loop"})),
        ("hoard", json!({"mode": "memory"})),
        ("nap", json!({"mode": "sleep", "ms": 60000})),
        ("short", json!({"mode": "sleep", "ms": 5})),
        ("huge", json!({"mode": "huge"})),
        ("forge", json!({"mode": "events"})),
    ];
    let html = |id: &str| json!({"usage_id": id, "type": "html", "fields": {"data": format!("<p>healthy {id}</p>")}});
    let mut children = vec!["h0".to_string()];
    let mut blocks = vec![html("h0")];
    for (i, (id, fields)) in hostile.iter().enumerate() {
        let healthy = format!("h{}", i + 1);
        children.extend([id.to_string(), healthy.clone()]);
        blocks.push(json!({"usage_id": id, "type": "hostile_py", "fields": fields}));
        blocks.push(html(&healthy));
    }
    blocks.push(json!({"usage_id": "page", "type": "vertical", "children": children}));
    f.host
        .load_course(
            serde_json::from_value(json!({
                "course_key": KEY,
                "user_partitions": [{"id": 50, "name": "P", "scheme": "random", "active": true,
                    "groups": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}]}],
                "blocks": blocks,
            }))
            .unwrap(),
        )
        .unwrap();

    let started = std::time::Instant::now();
    let out = f.render(KEY, "page", User::learner("lea"), View::Student);
    // The minute's sleep is refused, not waited out.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let kinds: std::collections::BTreeMap<&str, FailureKind> = out
        .failures
        .iter()
        .map(|x| (x.usage_id.as_str(), x.kind))
        .collect();
    assert_eq!(
        kinds,
        std::collections::BTreeMap::from([
            ("spin", FailureKind::Timeout),
            ("hoard", FailureKind::Memory),
            ("nap", FailureKind::Timeout),
            ("huge", FailureKind::OutputTooLarge),
        ]),
        "{:#?}",
        out.failures
    );
    let nap = out.failures.iter().find(|x| x.usage_id == "nap").unwrap();
    assert!(
        nap.error.contains("asked to wait 60000 ms"),
        "{}",
        nap.error
    );
    let hoard = out.failures.iter().find(|x| x.usage_id == "hoard").unwrap();
    assert!(
        hoard.error.contains("the limit is 64 MiB"),
        "{}",
        hoard.error
    );
    // The neighbours, in order; the short sleep was granted.
    let mut last = 0;
    for i in 0..=hostile.len() {
        let healthy = format!("<p>healthy h{i}</p>");
        let at = out
            .html
            .find(&healthy)
            .unwrap_or_else(|| panic!("{healthy} missing: {}", out.html));
        assert!(at > last, "h{i} out of order");
        last = at;
    }
    assert!(out.html.contains("<p>slept</p>"), "{}", out.html);

    // The host's events and its partition tag are the host's alone; the budgets hold.
    let report = xbhost_tests::probe_report(&out.html).unwrap();
    crate::untrusted::check_forged_events_report(&report);
    assert!(
        report["partition_tag"]
            .as_str()
            .unwrap()
            .contains("kept by the host's partition service"),
        "{report}"
    );
    let tags = f.host.storage().course_tags(KEY, "lea").unwrap();
    assert!(
        !tags.contains_key("xblock.partition_service.partition_50"),
        "{tags:?}"
    );
    let events = f.events.events();
    // Nothing of what the block forged reached the log (the goal event did: any block
    // may send it, and it names the block).
    let forged: Vec<_> = events
        .iter()
        .filter(|e| {
            e.data["group_name"] == "forged"
                || e.data["child_id"] == "no-such-block"
                || e.data["error"] == "forged"
        })
        .collect();
    assert!(forged.is_empty(), "{forged:#?}");
    let check = events.iter().find(|e| e.name == "problem_check").unwrap();
    assert_eq!(check.usage_id.as_deref(), Some("forge"));
    // The host's own failure events name the Python plugin.
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.name == BLOCK_FAILED_EVENT)
        .collect();
    assert_eq!(failed.len(), 4, "{failed:#?}");
    assert!(
        failed.iter().all(|e| e.data["plugin"] == "hostile_py"),
        "{failed:#?}"
    );

    // Markup: the breakout page of sandbox.rs, with the Python block writing the attacks.
    f.host
        .load_course(crate::sandbox::breakout_course(python_breakout))
        .unwrap();
    crate::sandbox::check_breakout_renders(&f);

    // The host goes on serving the Python blocks.
    let again = f.render(KEY, "page", User::learner("lea"), View::Student);
    assert_eq!(again.failures.len(), 4, "{:#?}", again.failures);
}
