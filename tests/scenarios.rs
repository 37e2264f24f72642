//! Scenarios shipped inside a plugin (`xbhost_sdk::scenarios!`, #17 point 6), through the
//! real `xbhost` and the real built plugins: `plugin add` of the plugin directory installs
//! exactly the shipped plugins (no test-only one) and loads `thumbs`' two scenarios as the
//! course `xbhost-scenarios:thumbs`; the workbench of a real server lists them and renders
//! them with the block's output; a handler call works in one; a scenario whose block type
//! is not installed is named with the missing type, in the CLI's output and the workbench,
//! and appears once the type is added; the reserved key refuses a course load; a real
//! plugin with an ill-formed `xbhost-scenarios` section is refused, naming the plugin and
//! the scenario, storing nothing.

use std::path::Path;

use serde_json::json;
use xbhost::server::auth::Role;
use xbhost_tests::http::{client, send};
use xbhost_tests::served::{Served, token};
use xbhost_tests::{
    DEMO_COURSE, PRODUCT_PLUGINS, plugin_dir, plugin_path, plugin_wasm, xbhost, xbhost_ok,
};

const COURSE: &str = "xbhost-scenarios:thumbs";

/// The plugin names a `plugin add` printed ("added plugin NAME ...").
fn added(out: &str) -> Vec<String> {
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("added plugin "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn plugin_add_of_the_plugin_directory_installs_exactly_the_shipped_plugins_and_their_scenarios() {
    let dir = plugin_dir();
    let testing: Vec<String> = std::fs::read_dir(dir.join("testing"))
        .expect("cargo xtask build puts the test-only plugins in plugins/testing/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(testing.iter().any(|t| t == "hostile_client"), "{testing:?}");
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let out = xbhost_ok(d, &["plugin", "add", dir.to_str().unwrap()]);
    let mut shipped: Vec<String> = PRODUCT_PLUGINS.iter().map(|p| p.to_string()).collect();
    shipped.sort();
    assert_eq!(added(&out), shipped, "{out}");
    assert!(testing.iter().all(|t| !added(&out).contains(t)), "{out}");
    assert!(
        out.contains(&format!("loaded 2 scenarios as course {COURSE}")),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");
    let list = xbhost_ok(d, &["plugin", "list"]);
    assert_eq!(list.lines().count(), PRODUCT_PLUGINS.len(), "{list}");
    assert!(xbhost_ok(d, &["course", "list"]).contains(&format!("{COURSE} version 1")));
    // The scenario course is an ordinary course: it renders through the CLI.
    let unit = xbhost_ok(
        d,
        &[
            "render",
            "--course",
            COURSE,
            "--block",
            "two-blocks",
            "--user",
            "ada",
        ],
    );
    assert!(
        unit.contains("Each thumbs block counts its own votes")
            && unit.contains("Is the first one clear?")
            && unit.contains("And the second?"),
        "{unit}"
    );
    // Adding the same plugins again stores nothing new: the course is unchanged.
    let again = xbhost_ok(
        d,
        &["plugin", "add", plugin_path("thumbs").to_str().unwrap()],
    );
    assert!(!again.contains("loaded"), "{again}");
    assert!(xbhost_ok(d, &["course", "list"]).contains(&format!("{COURSE} version 1")));

    // Its key is the host's: a course document may not take it.
    let doc = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        doc.path(),
        json!({"course_key": COURSE, "blocks": [{"usage_id": "x", "type": "html",
            "fields": {"data": "mine"}}]})
        .to_string(),
    )
    .unwrap();
    let (ok, _, err) = xbhost(d, &["course", "load", doc.path().to_str().unwrap()]);
    assert!(!ok && err.contains("reserves"), "{err}");
}

fn add(d: &Path, plugins: &[&str]) -> String {
    let mut args = vec!["plugin".to_string(), "add".to_string()];
    args.extend(
        plugins
            .iter()
            .map(|p| plugin_path(p).to_string_lossy().into_owned()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    xbhost_ok(d, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbench_lists_and_renders_scenarios_and_names_a_missing_type() {
    let data = tempfile::tempdir().unwrap();
    let out = add(
        data.path(),
        &["thumbs", "course", "chapter", "sequential", "vertical"],
    );
    assert!(
        out.contains(&format!("loaded 1 scenarios as course {COURSE}")),
        "{out}"
    );
    let missing = "scenario \"two-blocks\" of plugin \"thumbs\" is not shown: it needs block \
                   type \"html\", which no installed plugin provides (xbhost plugin add html.wasm)";
    assert!(out.contains(&format!("warning: {missing}")), "{out}");
    assert!(
        added(&out).contains(&"thumbs".to_string()),
        "the plugin is installed: {out}"
    );

    let served = Served::start(data, &[]);
    let c = client();
    let dev = token("dev-learner", &[("*", Role::Learner)]);
    let page = |url: String, who: String| {
        let c = c.clone();
        async move {
            let response = c.get(url).bearer_auth(who).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    let workbench = page(format!("{}/workbench", served.url), dev.clone()).await;
    let html = scraper::Html::parse_document(&workbench);
    let section = html
        .select(&scraper::Selector::parse("section#scenarios").unwrap())
        .next()
        .unwrap_or_else(|| panic!("no Scenarios section:\n{workbench}"));
    let links: Vec<(String, String)> = section
        .select(&scraper::Selector::parse("a").unwrap())
        .map(|a| (a.text().collect(), a.attr("href").unwrap().to_string()))
        .collect();
    assert_eq!(
        links,
        [(
            "Thumbs: vote once, see everyone's count".to_string(),
            "/workbench?course=xbhost-scenarios%3Athumbs&unit=one-vote".to_string()
        )],
        "{workbench}"
    );
    let text: String = section.text().collect();
    assert!(text.contains(missing), "{text}");

    // The link renders the scenario's unit with the block's output (its HTML, in the
    // template its frame is built from, and its client code).
    let unit = page(format!("{}{}", served.url, links[0].1), dev.clone()).await;
    assert!(
        unit.contains("Was this scenario helpful?") && unit.contains("thumbs.js"),
        "{unit}"
    );
    assert!(unit.contains("aria-current=\"page\""), "{unit}");

    // A handler call works in it, as in any course: the tally is shared.
    let handler = format!(
        "{}/courses/{COURSE}/blocks/one-vote.thumbs.1/handler/vote",
        served.url
    );
    let (status, body) = send(
        c.post(&handler)
            .bearer_auth(&dev)
            .json(&json!({"direction": "up"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"up": 1, "down": 0, "voted": "up"}));
    let other = token("dev-other", &[("*", Role::Learner)]);
    let (status, body) = send(
        c.get(format!(
            "{}/courses/{COURSE}/blocks/one-vote?format=json",
            served.url
        ))
        .bearer_auth(&other),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["html"]
            .as_str()
            .unwrap()
            .contains("<span class=\"count\">1</span>"),
        "{body}"
    );

    // A token for one LMS course sees no scenarios and cannot open them.
    let lms = token("lms-learner", &[(DEMO_COURSE, Role::Learner)]);
    let theirs = page(format!("{}/workbench", served.url), lms.clone()).await;
    assert!(!theirs.contains("id=\"scenarios\""), "{theirs}");
    let (status, _) = send(
        c.get(format!("{}/courses/{COURSE}/blocks/one-vote", served.url))
            .bearer_auth(&lms),
    )
    .await;
    assert_eq!(status, 403);

    // Installing the missing type over HTTP loads the other scenario.
    let admin = token("dev-admin", &[("*", Role::Admin)]);
    let (status, body) = send(
        c.post(format!("{}/admin/plugins", served.url))
            .bearer_auth(&admin)
            .body(plugin_wasm("html")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["scenarios"]["loaded"], json!([[COURSE, 2]]), "{body}");
    let workbench = page(format!("{}/workbench", served.url), dev.clone()).await;
    assert!(
        workbench.contains("unit=two-blocks") && !workbench.contains("is not shown"),
        "{workbench}"
    );
    let unit = page(
        format!(
            "{}/workbench?course=xbhost-scenarios%3Athumbs&unit=two-blocks",
            served.url
        ),
        dev,
    )
    .await;
    assert!(
        unit.contains("Each thumbs block counts its own votes") && unit.contains("And the second?"),
        "{unit}"
    );
}

/// Appends a custom section to a component (a custom section may follow the last one).
fn with_section(mut wasm: Vec<u8>, name: &str, data: &[u8]) -> Vec<u8> {
    fn leb(out: &mut Vec<u8>, mut n: usize) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                return out.push(byte);
            }
            out.push(byte | 0x80);
        }
    }
    let mut body = Vec::new();
    leb(&mut body, name.len());
    body.extend(name.as_bytes());
    body.extend(data);
    wasm.push(0);
    leb(&mut wasm, body.len());
    wasm.extend(body);
    wasm
}

#[test]
fn a_plugin_with_an_ill_formed_scenarios_section_is_refused_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let dir = tempfile::tempdir().unwrap();
    let section = xbhost::runtime::scenarios::SCENARIOS_SECTION;
    let big = vec![b' '; xbhost::runtime::scenarios::MAX_SECTION_BYTES + 1];
    let deep = (0..=xbhost::runtime::scenarios::MAX_DEPTH).fold(
        json!({"type": "html"}),
        |inner, _| json!({"type": "vertical", "children": [inner]}),
    );
    for (file, wasm, why) in [
        (
            "oversized.wasm",
            with_section(plugin_wasm("html"), section, &big),
            "bytes, over the limit of 262144",
        ),
        (
            "badname.wasm",
            with_section(
                plugin_wasm("html"),
                section,
                br#"[{"name": "<b>", "title": "T", "blocks": [{"type": "html"}]}]"#,
            ),
            "scenario \"<b>\": a scenario name is",
        ),
        (
            "deep.wasm",
            with_section(
                plugin_wasm("html"),
                section,
                json!([{"name": "deep", "title": "T", "blocks": [deep]}])
                    .to_string()
                    .as_bytes(),
            ),
            "scenario \"deep\": its blocks are nested over 8 deep",
        ),
        (
            "twice.wasm",
            with_section(plugin_wasm("thumbs"), section, b"[]"),
            "it has two xbhost-scenarios sections",
        ),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, wasm).unwrap();
        let (ok, out, err) = xbhost(d, &["plugin", "add", path.to_str().unwrap()]);
        assert!(!ok && out.is_empty(), "{file}: {out}");
        assert!(
            err.contains(why) && err.contains("scenarios"),
            "{file}: {err}"
        );
        let plugin = if file == "twice.wasm" {
            "thumbs"
        } else {
            "html"
        };
        assert!(
            err.contains(&format!("plugin \"{plugin}\"'s scenarios")),
            "{file}: {err}"
        );
    }
    let (_, list, _) = xbhost(d, &["plugin", "list"]);
    assert!(
        list.trim().is_empty(),
        "a refused plugin was stored: {list}"
    );
}
