//! Hostile and broken plugins cannot hurt the host, the page or other learners. Each
//! hostile plugin is a real guest crate (`plugins/testing/*`), built to wasm and loaded into
//! the real host inside a page next to healthy blocks.
//! A block's HTML stays inside the host's wrapper and cannot forge the host's marks, whatever
//! it writes (the `breakout` plugin).
//! Installing and compiling plugins (other contracts, malformed files, the compiled cache,
//! pooling) is in `plugin_loading.rs`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use xbhost::events::MemorySink;
use xbhost::model::CourseDoc;
use xbhost::runtime::SandboxLimits;
use xbhost::session::BLOCK_FAILED_EVENT;
use xbhost::{FailureKind, Host, HostConfig, RenderRequest, User, View};
use xbhost_tests::{
    Fixture, InstrumentedStorage, demo_course, plugin_path, plugin_wasm, probe_report,
};

const HOSTILE: &str = "course-v1:xbhost+hostile+1";
const HEALTHY: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

/// A page with a healthy html block before, between and after each hostile block.
fn hostile_course() -> CourseDoc {
    let hostile = [
        ("loop", "looper"),
        ("bomb", "memory_bomb"),
        ("panic", "panicker"),
        ("huge", "huge_output"),
        ("snoop", "snoop"),
        ("selfish", "recurser"),
    ];
    let mut children = vec![HEALTHY[0].to_string()];
    let mut blocks = vec![
        json!({"usage_id": HEALTHY[0], "type": "html", "fields": {"data": "<p>healthy a</p>"}}),
    ];
    for (i, (usage, plugin)) in hostile.iter().enumerate() {
        let healthy = HEALTHY[i + 1];
        children.extend([usage.to_string(), healthy.to_string()]);
        blocks.push(json!({"usage_id": usage, "type": plugin}));
        blocks.push(json!({"usage_id": healthy, "type": "html", "fields": {"data": format!("<p>healthy {healthy}</p>")}}));
    }
    blocks.push(json!({"usage_id": "page", "type": "vertical", "children": children}));
    serde_json::from_value(json!({"course_key": HOSTILE, "blocks": blocks})).unwrap()
}

const ALL_PLUGINS: &[&str] = &[
    "html",
    "vertical",
    "split_test",
    "problem",
    "looper",
    "memory_bomb",
    "panicker",
    "huge_output",
    "snoop",
    "recurser",
    "tag_probe",
    "spammer",
];

/// The production defaults with the block and request budgets ten times longer (500 ms,
/// 2000 ms): loopers are still cut off, while healthy neighbours keep a margin against a
/// shared CI machine descheduling a thread (deadlines are wall clock).
pub(crate) fn deadline_config() -> HostConfig {
    let mut config = HostConfig::default();
    config.limits.block_time = Duration::from_millis(500);
    config.limits.request_deadline = Duration::from_millis(2000);
    config
}

fn hostile_fixture() -> Fixture {
    let f = Fixture::with_config(ALL_PLUGINS, deadline_config());
    f.host.load_course(hostile_course()).unwrap();
    f.host.load_course(demo_course()).unwrap();
    f
}

/// The body of the element with this usage id (up to the next block wrapper).
fn slot<'h>(html: &'h str, usage_id: &str) -> &'h str {
    let at = html
        .find(&format!("data-usage-id=\"{usage_id}\""))
        .unwrap_or_else(|| panic!("{usage_id} missing"));
    let end = html[at + 1..]
        .find("data-usage-id=")
        .map_or(html.len(), |e| at + 1 + e);
    &html[at..end]
}

#[test]
fn hostile_blocks_become_placeholders_and_their_neighbours_render() {
    let f = hostile_fixture();
    let learner = f.render(HOSTILE, "page", User::learner("lea"), View::Student);

    let kinds: BTreeMap<&str, FailureKind> = learner
        .failures
        .iter()
        .map(|x| (x.usage_id.as_str(), x.kind))
        .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("loop", FailureKind::Timeout),
            ("bomb", FailureKind::Memory),
            ("panic", FailureKind::Panic),
            ("huge", FailureKind::OutputTooLarge),
            ("selfish", FailureKind::BlockError),
        ]),
        "{:#?}",
        learner.failures
    );
    // Neighbours rendered, in order, and the page itself did not fail.
    assert!(!learner.hidden);
    let mut last = 0;
    for healthy in HEALTHY {
        let at = learner
            .html
            .find(&format!("<p>healthy {healthy}</p>"))
            .unwrap_or_else(|| panic!("{healthy} missing"));
        assert!(at > last, "{healthy} out of order");
        last = at;
    }
    // Learners see a neutral message and nothing of the internals.
    for usage in ["loop", "bomb", "panic", "huge", "selfish"] {
        let s = slot(&learner.html, usage);
        assert!(s.contains("This content is unavailable."), "{usage}: {s}");
        assert!(s.contains("data-error=\"true\""), "{usage}: {s}");
    }
    for secret in [
        "secret",
        "panicked",
        "memory limit",
        "interrupted",
        "0.1.0",
        "is not a child",
        "Plugin ",
    ] {
        assert!(
            !learner.html.contains(secret),
            "learners must not see {secret:?}"
        );
    }
    // The snoop block did render (it is not hostile to the page, only curious).
    assert!(learner.failures.iter().all(|x| x.usage_id != "snoop"));

    // Staff see the plugin, its version, the block and the error.
    let staff = f.render(HOSTILE, "page", User::staff("sam"), View::Staff);
    for (usage, plugin, error) in [
        // 13 blocks share the 2000 ms page: the looper's share runs out before its own
        // 500 ms do (the own-time limit is in `limits_are_configurable`).
        ("loop", "looper", "its share of the request"),
        ("bomb", "memory_bomb", "the limit is 64 MiB"),
        ("panic", "panicker", "boom: internal secret 42"),
        ("huge", "huge_output", "over the limit of 1048576"),
        ("selfish", "recurser", "is not a child of"),
    ] {
        let s = slot(&staff.html, usage);
        assert!(
            s.contains(&format!("Plugin {plugin} 0.1.0, block {usage}:")),
            "{usage}: {s}"
        );
        assert!(s.contains(error), "{usage}: {s}");
    }

    // Every failure was recorded as an event naming the plugin.
    let failed: Vec<_> = learner
        .events
        .iter()
        .filter(|e| e.name == BLOCK_FAILED_EVENT)
        .collect();
    assert_eq!(failed.len(), 5);
    assert!(
        failed
            .iter()
            .any(|e| e.usage_id.as_deref() == Some("panic") && e.data["plugin"] == "panicker")
    );

    // What failing blocks wrote before they failed was not kept.
    let tags = f.host.storage().course_tags(HOSTILE, "lea").unwrap();
    assert!(!tags.contains_key("panicker.touched"), "{tags:?}");
    assert!(!tags.contains_key("huge_output.touched"), "{tags:?}");
    assert_eq!(
        f.host
            .storage()
            .user_state(HOSTILE, "lea", "panic")
            .unwrap(),
        None
    );
    assert!(
        learner
            .events
            .iter()
            .all(|e| e.name != "panicker.before_panic")
    );

    // The host goes on serving: the same page again, and another course.
    let again = f.render(HOSTILE, "page", User::learner("lea"), View::Student);
    assert_eq!(again.failures.len(), 5);
    let demo = f.learner_unit("next-learner");
    assert!(demo.failures.is_empty());
    assert!(demo.visible_blocks.contains(&"intro".to_string()));
}

const BREAKOUT: &str = "course-v1:xbhost+breakout+1";
/// The breakout plugin's attacks (`plugins/testing/breakout`), one block each.
const ATTACKS: &[&str] = &[
    "close",
    "body",
    "forge",
    "style",
    "script",
    "placeholder",
    "mxss",
    "plaintext",
    "comment",
];

/// How a course writes a breakout block: its type and fields for one attack of
/// [`ATTACKS`], or for all of them (`None`). The Rust `breakout` plugin has the attacks
/// built in; a block in another language is given them (`breakout::ATTACKS`).
pub(crate) type BreakoutBlock = fn(Option<&str>) -> (&'static str, serde_json::Value);

fn rust_breakout(attack: Option<&str>) -> (&'static str, serde_json::Value) {
    match attack {
        Some(attack) => ("breakout", json!({"attack": attack})),
        None => ("breakout", json!({})),
    }
}

/// A page of breakout blocks, one per attack, each between healthy html blocks; one that
/// tries them all; one that misuses its child's placeholder; and an experiment whose
/// conditions are a breakout and a healthy block (staff see both, marked).
pub(crate) fn breakout_course(breakout: BreakoutBlock) -> CourseDoc {
    let html = |id: &str| json!({"usage_id": id, "type": "html", "fields": {"data": format!("<p>healthy {id}</p>")}});
    let block = |id: &str, attack: Option<&str>| {
        let (kind, fields) = breakout(attack);
        json!({"usage_id": id, "type": kind, "fields": fields})
    };
    let mut children = vec!["h0".to_string()];
    let mut blocks = vec![html("h0")];
    for (i, attack) in ATTACKS.iter().enumerate() {
        let healthy = format!("h{}", i + 1);
        children.extend([format!("x_{attack}"), healthy.clone()]);
        blocks.push(block(&format!("x_{attack}"), Some(attack)));
        blocks.push(html(&healthy));
    }
    children.extend(["x_all", "x_parent", "h_parent", "split", "h_end"].map(String::from));
    let mut parent = block("x_parent", Some("close"));
    parent["children"] = json!(["kid"]);
    blocks.extend([
        block("x_all", None),
        parent,
        html("kid"),
        html("h_parent"),
        json!({"usage_id": "split", "type": "split_test", "children": ["cond_x", "cond_h"],
            "fields": {"user_partition_id": 50, "group_id_to_child": {"0": "cond_x", "1": "cond_h"}}}),
        block("cond_x", None),
        html("cond_h"),
        html("h_end"),
        json!({"usage_id": "page", "type": "vertical", "children": children}),
    ]);
    serde_json::from_value(json!({
        "course_key": BREAKOUT,
        "user_partitions": [{"id": 50, "name": "Breakout experiment", "scheme": "random", "active": true,
            "groups": [{"id": 0, "name": "Alpha"}, {"id": 1, "name": "Beta"}]}],
        "blocks": blocks,
    }))
    .unwrap()
}

/// Attributes only the host writes on its wrappers.
const HOST_ATTRIBUTES: &[&str] = &[
    "data-usage-id",
    "data-block-type",
    "data-partition-id",
    "data-group-id",
    "data-group-name",
    "data-own-group",
    "data-inactive",
    "data-group-access",
    "data-error",
];

fn sel(css: &str) -> scraper::Selector {
    scraper::Selector::parse(css).unwrap()
}

/// The nearest host wrapper around an element (not the element itself).
fn wrapper_of(el: scraper::ElementRef<'_>) -> Option<String> {
    el.ancestors()
        .filter_map(scraper::ElementRef::wrap)
        .find(|a| a.value().attr("data-usage-id").is_some())
        .map(|a| a.value().attr("data-usage-id").unwrap().to_string())
}

/// Checks the structure of the breakout page as a browser would build it: the page inside a
/// document, with an element after it that must survive.
fn check_breakout_page(html: &str, view: View, conditions: &[&str]) {
    let doc = scraper::Html::parse_document(&format!(
        "<!DOCTYPE html><html><head><title>t</title></head><body><main id=\"host-main\">{html}</main><footer id=\"after-page\"></footer></body></html>"
    ));
    let what = format!("{view:?} view");
    // Nothing swallowed the rest of the page, and the page's wrapper holds everything.
    let body = doc.select(&sel("body")).next().unwrap();
    let top: Vec<_> = body
        .child_elements()
        .map(|e| e.value().name().to_string())
        .collect();
    assert_eq!(top, ["main", "footer"], "{what}: body holds {top:?}");
    let main = doc.select(&sel("main#host-main")).next().unwrap();
    let inside: Vec<_> = main.child_elements().collect();
    assert_eq!(
        inside.len(),
        1,
        "{what}: main holds {} elements",
        inside.len()
    );
    assert_eq!(
        inside[0].value().attr("data-usage-id"),
        Some("page"),
        "{what}"
    );
    assert!(
        main.children()
            .all(|n| n.value().as_text().is_none_or(|t| t.trim().is_empty())),
        "{what}: text outside the page's wrapper"
    );
    assert!(
        doc.tree.nodes().all(|n| !n.value().is_comment()),
        "{what}: a comment reached the page"
    );
    assert!(!html.contains("<!--"), "{what}");

    // Every element with a host attribute is a host wrapper of a block of the course, and
    // each block the page shows is there once.
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for el in doc.tree.nodes().filter_map(scraper::ElementRef::wrap) {
        let attrs: Vec<&str> = el
            .value()
            .attrs()
            .map(|(name, _)| name)
            .filter(|name| HOST_ATTRIBUTES.contains(name) || name.starts_with("data-xbhost"))
            .collect();
        if attrs.is_empty() || el.value().name() == "main" {
            continue;
        }
        let usage = el
            .value()
            .attr("data-usage-id")
            .unwrap_or_else(|| panic!("{what}: {attrs:?} on a block's element: {}", el.html()));
        assert!(
            el.value().name() == "div" && el.value().classes().any(|c| c == "xblock"),
            "{what}: {usage} is not a host wrapper"
        );
        *seen.entry(usage.to_string()).or_default() += 1;
    }
    let mut expected: Vec<String> = [
        "page", "split", "kid", "x_all", "x_parent", "h_parent", "h_end", "h0",
    ]
    .map(String::from)
    .into();
    expected.extend(ATTACKS.iter().map(|a| format!("x_{a}")));
    expected.extend((1..=ATTACKS.len()).map(|i| format!("h{i}")));
    expected.extend(conditions.iter().map(|c| c.to_string()));
    expected.sort();
    let shown: Vec<String> = seen.keys().cloned().collect();
    assert_eq!(shown, expected, "{what}: the blocks on the page");
    assert!(seen.values().all(|&n| n == 1), "{what}: {seen:?}");

    // Healthy blocks: in order, each in its own wrapper, in the page's vertical.
    let mut last = None;
    for healthy in (0..=ATTACKS.len())
        .map(|i| format!("h{i}"))
        .chain(["h_parent".into(), "h_end".into()])
    {
        let w = doc
            .select(&sel(&format!("[data-usage-id=\"{healthy}\"]")))
            .next()
            .unwrap();
        let content: Vec<_> = w.child_elements().map(|e| e.html()).collect();
        assert_eq!(
            content,
            [format!("<p>healthy {healthy}</p>")],
            "{what}: {healthy}"
        );
        assert_eq!(wrapper_of(w).as_deref(), Some("page"), "{what}: {healthy}");
        let vert = scraper::ElementRef::wrap(w.parent().unwrap()).unwrap();
        assert!(
            vert.value().classes().any(|c| c == "vert"),
            "{what}: {healthy}"
        );
        let at = w.id();
        if let Some(before) = last {
            assert!(
                doc.tree.nodes().position(|n| n.id() == before)
                    < doc.tree.nodes().position(|n| n.id() == at),
                "{what}: {healthy} out of order"
            );
        }
        last = Some(at);
    }
    // Each breakout's HTML stays in its own wrapper: what it wrote after trying to close
    // the wrapper is still inside.
    for attack in ATTACKS
        .iter()
        .map(|a| format!("x_{a}"))
        .chain(["x_all".into(), "x_parent".into()])
    {
        let w = doc
            .select(&sel(&format!("[data-usage-id=\"{attack}\"]")))
            .next()
            .unwrap();
        assert_eq!(wrapper_of(w).as_deref(), Some("page"), "{what}: {attack}");
        let first = w
            .child_elements()
            .next()
            .map(|e| e.value().name().to_string());
        assert_eq!(first.as_deref(), Some("div"), "{what}: {attack}");
    }
    for escaped in doc.select(&sel(".escaped")) {
        let owner = wrapper_of(escaped).unwrap_or_default();
        assert!(
            owner.starts_with("x_") || owner == "cond_x",
            "{what}: a breakout's element landed in {owner:?}"
        );
    }
    // A child's placeholder is filled in once, where the parent placed it in the HTML body,
    // and a forged placeholder not at all.
    let kid = doc.select(&sel("[data-usage-id=\"kid\"]")).next().unwrap();
    assert_eq!(wrapper_of(kid).as_deref(), Some("x_parent"), "{what}");
    let slot = scraper::ElementRef::wrap(kid.parent().unwrap()).unwrap();
    assert!(
        slot.value().classes().any(|c| c == "child-slot"),
        "{what}: {}",
        slot.html()
    );
    assert!(
        doc.select(&sel(".child-again *")).next().is_none(),
        "{what}"
    );
    // Nothing of the host's marks, nor anything that runs, redirects or restyles.
    for css in [
        "xbhost-child",
        "meta",
        "base",
        "template[shadowrootmode]",
        "script:not([type=\"application/json\"])",
    ] {
        assert!(
            doc.select(&sel(&format!("main {css}"))).next().is_none(),
            "{what}: {css}"
        );
    }
    for script in doc.select(&sel("main script")) {
        assert!(
            !script.inner_html().contains('<'),
            "{what}: {}",
            script.html()
        );
    }
    for label in doc.select(&sel(
        ".xbhost-condition-label, .xbhost-restriction-label, .xbhost-error, .xblock",
    )) {
        let host_made = match label.value().attr("data-usage-id") {
            Some(_) => true,
            None => {
                let parent = scraper::ElementRef::wrap(label.parent().unwrap()).unwrap();
                parent.value().attr("data-group-id").is_some()
                    && parent.child_elements().next().map(|e| e.id()) == Some(label.id())
            }
        };
        assert!(
            host_made,
            "{what}: a block's element has a host class: {}",
            label.html()
        );
    }
    let styles = doc
        .select(&sel("main style, main link, main [style]"))
        .count();
    match view {
        View::Student => {
            assert!(styles > 0, "learners keep the authors' styling");
            for style in doc.select(&sel("main style")) {
                assert!(!style.inner_html().contains('<'), "{}", style.html());
            }
        }
        _ => assert_eq!(styles, 0, "{what}: block styling reached the page"),
    }
}

#[test]
fn block_html_stays_in_its_wrapper_and_cannot_forge_the_hosts_marks() {
    let f = Fixture::with_plugins(&["html", "vertical", "split_test", "breakout"]);
    f.host.load_course(breakout_course(rust_breakout)).unwrap();
    check_breakout_renders(&f);
}

/// The breakout course (loaded in `f`) rendered for a learner and for staff: every block's
/// HTML stays in its wrapper, and staff see exactly the experiment's marks, the host's.
pub(crate) fn check_breakout_renders(f: &Fixture) {
    let learner = f.render(BREAKOUT, "page", User::learner("lea"), View::Student);
    assert!(learner.failures.is_empty(), "{:?}", learner.failures);
    let condition = match learner.assignments[&50] {
        0 => "cond_x",
        _ => "cond_h",
    };
    check_breakout_page(&learner.html, View::Student, &[condition]);

    let staff = f.render(BREAKOUT, "page", User::staff("sam"), View::Staff);
    assert!(staff.failures.is_empty(), "{:?}", staff.failures);
    check_breakout_page(&staff.html, View::Staff, &["cond_x", "cond_h"]);
    // Staff see exactly the experiment's two conditions marked, with the host's labels.
    let doc = scraper::Html::parse_fragment(&staff.html);
    let marked: Vec<(String, String)> = doc
        .select(&sel("[data-group-id]"))
        .map(|e| {
            (
                e.value().attr("data-usage-id").unwrap_or("").to_string(),
                e.value().attr("data-group-name").unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        marked,
        [
            ("cond_x".to_string(), "Alpha".to_string()),
            ("cond_h".into(), "Beta".into())
        ]
    );
    let labels: Vec<String> = doc
        .select(&sel(".xbhost-condition-label"))
        .map(|e| e.text().collect())
        .collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(labels.iter().all(|l| !l.contains("Forged")), "{labels:?}");
    let own: Vec<_> = doc
        .select(&sel("[data-own-group]"))
        .map(|e| e.value().attr("data-usage-id").unwrap_or(""))
        .collect();
    assert_eq!(
        own.len(),
        1,
        "only the staff member's own condition: {own:?}"
    );
}

#[test]
fn a_block_gets_no_files_environment_arguments_network_or_fine_clocks() {
    let f = hostile_fixture();
    let logs = LogCapture::default();
    let out = tracing::subscriber::with_default(logs.subscriber(), || {
        f.render(HOSTILE, "snoop", User::learner("sid"), View::Student)
    });
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let r = probe_report(&out.html).unwrap();
    for denied in [
        "read_file",
        "open_relative",
        "read_dir",
        "write_file",
        "tcp",
        "udp",
        "dns",
    ] {
        assert!(
            r[denied].get("err").is_some(),
            "{denied} should have failed: {}",
            r[denied]
        );
    }
    assert_eq!(r["env_vars"], 0);
    assert_eq!(r["env_home"], json!(null));
    assert_eq!(r["args"], 0);
    // The wall clock is the request's start in whole seconds, and does not move.
    assert_eq!(r["wall_subsec_nanos"], 0);
    assert_eq!(r["wall_moved"], false);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(r["wall_unix_secs"].as_u64().unwrap().abs_diff(now) < 60);
    // The monotonic clock has millisecond resolution.
    assert_eq!(r["monotonic_ns"].as_u64().unwrap() % 1_000_000, 0);

    // Its stdout went to tracing, named by plugin, capped at 16 KiB.
    let log = logs.text();
    assert!(log.contains("plugin=snoop"), "{log}");
    assert!(log.contains("stream=\"stdout\""), "{log}");
    assert!(log.contains("snoop stdout line 0:"));
    assert!(
        !log.contains("snoop stdout line 1999:"),
        "stdout was not capped"
    );
    assert!(log.contains("dropped_bytes="));
    assert!(log.contains("snoop stderr: hello from the sandbox"));
}

#[test]
fn child_rendering_is_bounded_in_depth_and_cycles_do_not_load() {
    let f = Fixture::with_plugins(&["recurser", "html"]);
    // A chain of 40 recursers: the one at depth 32 is refused a child and fails; the rest render.
    let mut blocks = Vec::new();
    for i in 0..40 {
        let children = if i < 39 {
            vec![format!("r{}", i + 1)]
        } else {
            vec![]
        };
        blocks.push(json!({"usage_id": format!("r{i}"), "type": "recurser", "children": children}));
    }
    let doc: CourseDoc =
        serde_json::from_value(json!({"course_key": "course-v1:x+deep+1", "blocks": blocks}))
            .unwrap();
    f.host.load_course(doc).unwrap();
    let out = f.render(
        "course-v1:x+deep+1",
        "r0",
        User::learner("d"),
        View::Student,
    );
    assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
    assert_eq!(out.failures[0].usage_id, "r32");
    assert!(
        out.failures[0]
            .error
            .contains("nested deeper than 32 blocks"),
        "{}",
        out.failures[0].error
    );
    assert!(out.html.contains("data-usage-id=\"r31\""));

    // A cycle of blocks is refused when the course is loaded, naming a block on it.
    let cyclic: CourseDoc =
        serde_json::from_value(json!({"course_key": "course-v1:x+cycle+1", "blocks": [
            {"usage_id": "p", "type": "recurser", "children": ["q"]},
            {"usage_id": "q", "type": "recurser", "children": ["p"]},
        ]}))
        .unwrap();
    let err = f.host.load_course(cyclic).unwrap_err();
    assert!(format!("{err:#}").contains("cycle"), "{err:#}");
    assert!(
        f.host
            .storage()
            .course("course-v1:x+cycle+1")
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_page_of_loopers_shares_the_deadline_and_the_rest_of_the_page_renders() {
    let f = Fixture::with_config(
        &["html", "vertical", "looper", "split_test", "problem"],
        deadline_config(),
    );
    let mut blocks = vec![json!({"usage_id": "page", "type": "vertical",
        "children": ["l1", "l2", "l3", "l4", "l5", "l6", "ok"]})];
    for i in 1..=6 {
        blocks.push(json!({"usage_id": format!("l{i}"), "type": "looper"}));
    }
    blocks.push(json!({"usage_id": "ok", "type": "html", "fields": {"data": "<p>ok</p>"}}));
    let doc: CourseDoc =
        serde_json::from_value(json!({"course_key": "course-v1:x+loops+1", "blocks": blocks}))
            .unwrap();
    f.host.load_course(doc).unwrap();
    f.host.load_course(demo_course()).unwrap();
    let started = Instant::now();
    let out = f.render(
        "course-v1:x+loops+1",
        "page",
        User::learner("t"),
        View::Student,
    );
    // Six loopers at 500 ms each would outlast the 2000 ms request; each gets its fair
    // share of what the page has left (about 285 ms), fails within it, and the block
    // after them still renders: the page itself does not fail.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.failures.iter().all(|x| x.usage_id != "page"),
        "{:#?}",
        out.failures
    );
    for i in 1..=6 {
        let looper = out
            .failures
            .iter()
            .find(|x| x.usage_id == format!("l{i}"))
            .expect("each looper was interrupted");
        assert_eq!(looper.kind, FailureKind::Timeout);
        assert!(
            looper.error.contains("share of the request's time"),
            "{}",
            looper.error
        );
    }
    assert!(out.html.contains("<p>ok</p>"), "{}", out.html);
    // The next request is served normally.
    assert!(f.learner_unit("after").failures.is_empty());
}

#[test]
fn per_request_caps_on_events_and_tag_writes_return_errors_to_the_block() {
    let f = Fixture::with_plugins(&["spammer"]);
    let doc: CourseDoc = serde_json::from_value(json!({"course_key": "course-v1:x+spam+1",
        "blocks": [{"usage_id": "s", "type": "spammer"}]}))
    .unwrap();
    f.host.load_course(doc).unwrap();
    let out = f.render("course-v1:x+spam+1", "s", User::learner("s"), View::Student);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let r = probe_report(&out.html).unwrap();
    assert_eq!(r["events"]["accepted"], 100);
    assert!(
        r["events"]["error"]
            .as_str()
            .unwrap()
            .contains("at most 100 events")
    );
    assert_eq!(r["tags"]["accepted"], 100);
    assert!(
        r["tags"]["error"]
            .as_str()
            .unwrap()
            .contains("at most 100 tags")
    );
    assert_eq!(
        out.events
            .iter()
            .filter(|e| e.name == "spammer.event")
            .count(),
        100
    );
    assert_eq!(
        f.host
            .storage()
            .course_tags("course-v1:x+spam+1", "s")
            .unwrap()
            .len(),
        100
    );
}

#[test]
fn limits_are_configurable() {
    let limits = SandboxLimits {
        max_memory_bytes: 16 << 20,
        block_time: Duration::from_millis(20),
        max_html_bytes: 64,
        // Long enough that each block's share of the page exceeds its own 20 ms.
        request_deadline: Duration::from_secs(20),
        ..SandboxLimits::default()
    };
    let f = Fixture::with_config(
        ALL_PLUGINS,
        HostConfig {
            limits,
            ..HostConfig::default()
        },
    );
    f.host.load_course(hostile_course()).unwrap();
    let out = f.render(HOSTILE, "page", User::learner("c"), View::Student);
    let error = |usage: &str| {
        out.failures
            .iter()
            .find(|x| x.usage_id == usage)
            .map(|x| x.error.clone())
            .unwrap_or_default()
    };
    assert!(
        error("bomb").contains("the limit is 16 MiB"),
        "{}",
        error("bomb")
    );
    assert!(
        error("loop").contains("limit of 20 ms"),
        "{}",
        error("loop")
    );
    // With a 64-byte HTML limit even the page is too large; the healthy blocks are not.
    assert!(
        error("page").contains("over the limit of 64"),
        "{}",
        error("page")
    );
    assert!(error("a").is_empty());

    // From the environment, through the CLI; a bad value names the variable.
    let data = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli_with_env(
        data.path(),
        &[("XBHOST_MEMORY_MIB", "lots")],
        &["course", "list"],
    );
    assert!(!ok && err.contains("XBHOST_MEMORY_MIB"), "{err}");
    let (ok, _, err) = cli_with_env(
        data.path(),
        &[("XBHOST_POOLING", "sometimes")],
        &["course", "list"],
    );
    assert!(!ok && err.contains("XBHOST_POOLING"), "{err}");
}

fn cli_with_env(
    data: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String, String) {
    let out = std::process::Command::new(xbhost_tests::xbhost_bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn memory_limit_from_the_environment_reaches_the_blocks() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    xbhost_tests::xbhost_ok(
        d,
        &[
            "plugin",
            "add",
            plugin_path("memory_bomb").to_str().unwrap(),
        ],
    );
    let course = d.join("bomb.json");
    std::fs::write(&course, json!({"course_key": "course-v1:x+bomb+1", "blocks": [{"usage_id": "b", "type": "memory_bomb"}]}).to_string()).unwrap();
    xbhost_tests::xbhost_ok(d, &["course", "load", course.to_str().unwrap()]);
    let (ok, out, err) = cli_with_env(
        d,
        &[("XBHOST_MEMORY_MIB", "8"), ("XBHOST_LOG", "off")],
        &[
            "render",
            "--course",
            "course-v1:x+bomb+1",
            "--block",
            "b",
            "--user",
            "u",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["failures"][0]["kind"], "memory");
    assert!(
        line["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("the limit is 8 MiB")
    );
}

#[test]
fn a_stuck_host_call_is_bounded_by_the_outer_timeout() {
    let storage = Arc::new(InstrumentedStorage::temporary());
    let limits = SandboxLimits {
        request_deadline: Duration::from_millis(100),
        outer_grace: Duration::from_millis(200),
        ..SandboxLimits::default()
    };
    let host = Host::new(
        storage.clone(),
        Arc::new(MemorySink::default()),
        HostConfig {
            limits,
            ..HostConfig::default()
        },
    )
    .unwrap();
    host.add_plugin(&plugin_wasm("tag_probe"), None).unwrap();
    host.load_course(
        serde_json::from_value(json!({"course_key": "course-v1:x+stuck+1",
        "blocks": [{"usage_id": "p", "type": "tag_probe"}]}))
        .unwrap(),
    )
    .unwrap();
    let request = RenderRequest {
        course_key: "course-v1:x+stuck+1".into(),
        usage_id: "p".into(),
        user: User::learner("u"),
        view: View::Student,
        user_agent: None,
        masquerade: None,
    };

    *storage.stall.lock().unwrap() = Some(Duration::from_secs(3));
    let started = Instant::now();
    let err = host.render_bounded(&request).unwrap_err().to_string();
    let waited = started.elapsed();
    assert!(err.contains("did not finish within 300 ms"), "{err}");
    assert!(
        waited < Duration::from_millis(2500),
        "the caller waited {waited:?}, as long as the stall"
    );

    // Once storage answers again, the host serves normally.
    *storage.stall.lock().unwrap() = None;
    let out = host.render_bounded(&request).unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
}

/// Collects formatted log lines, for tests about what is logged.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .finish()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
