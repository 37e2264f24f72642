//! Pathological course documents: a 100,000-block course loads (under the default
//! one-page deadline of 200 ms, which the whole course's `validate` does not run under)
//! and its pages render; negative weights, `max_attempts` below 0 and usage ids with the
//! reserved `anon:` prefix are refused naming the block, in JSON documents and OLX
//! imports alike (the importer keeps what the export says instead of casting it).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use xbhost_tests::exports::{data_with_plugins, small_course, stored_courses, tgz};
use xbhost_tests::{xbhost, xbhost_bin};

const BIG: &str = "course-v1:HostileX+Big+1";

/// A course of `units` units of `per_unit` problems each under one root vertical. Each
/// problem's `validate` does some work (about 5 µs here), so the whole course's takes
/// far more than one page's 200 ms.
fn wide_course(units: usize, per_unit: usize) -> Value {
    let mut blocks = Vec::with_capacity(1 + units * (per_unit + 1));
    let unit_ids: Vec<String> = (0..units).map(|u| format!("unit_{u}")).collect();
    blocks.push(json!({"usage_id": "root", "type": "vertical", "children": unit_ids}));
    let choices: Vec<Value> = (0..6)
        .map(|c| json!({"text": format!("choice {c}"), "correct": c == 0}))
        .collect();
    for (u, unit) in unit_ids.iter().enumerate() {
        let children: Vec<String> = (0..per_unit).map(|p| format!("p_{u}_{p}")).collect();
        blocks.push(json!({"usage_id": unit, "type": "vertical", "children": children}));
        for p in &children {
            let question = format!(
                "<p>{p}: {}</p>",
                "Which of these is the answer to the question? ".repeat(4)
            );
            blocks.push(json!({"usage_id": p, "type": "problem",
                "fields": {"question": question, "choices": choices}}));
        }
    }
    json!({"course_key": BIG, "display_name": "Big", "blocks": blocks})
}

/// `xbhost course load` with the host's default budgets (a page's deadline of 200 ms).
fn load_with_default_budgets(data: &Path, file: &Path) -> (bool, String, String) {
    let out = Command::new(xbhost_bin())
        .arg("--data")
        .arg(data)
        .args(["course", "load", file.to_str().unwrap()])
        .env("XBHOST_LOG", "off")
        .env_remove("XBHOST_REQUEST_DEADLINE_MS")
        .env_remove("XBHOST_BLOCK_TIME_MS")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_course_of_100_000_blocks_loads_and_its_pages_render() {
    let data = data_with_plugins();
    let d = data.path();
    let file = d.join("big.json");
    // 1 + 1,000 units + 99,000 problems = 100,001 blocks.
    std::fs::write(&file, wide_course(1000, 99).to_string()).unwrap();
    let (ok, out, err) = load_with_default_budgets(d, &file);
    assert!(ok, "the course did not load: {err}");
    assert!(
        out.contains(&format!("loaded course {BIG}: 100001 blocks")),
        "{out}"
    );
    for unit in ["unit_0", "unit_999"] {
        let n = &unit["unit_".len()..];
        let (ok, page, err) = xbhost(
            d,
            &["render", "--course", BIG, "--block", unit, "--user", "lena"],
        );
        assert!(ok, "{unit} did not render: {err}");
        for p in [0, 98] {
            assert!(
                page.contains(&format!("<p>p_{n}_{p}: ")),
                "{unit} lacks problem p_{n}_{p}: {}",
                &page[..page.len().min(2000)]
            );
        }
    }
}

#[test]
fn negative_scores_and_reserved_ids_are_refused_naming_the_block() {
    let data = data_with_plugins();
    let d = data.path();
    let cases = [
        (
            json!({"weight": -1}),
            "block \"p\": weight -1 is not a number of at least 0",
        ),
        (
            json!({"max_attempts": -1}),
            "block \"p\": max_attempts -1 is not a whole number of at least 0",
        ),
        (
            json!({"max_attempts": 2.5}),
            "block \"p\": max_attempts 2.5 is not a whole number",
        ),
    ];
    for (fields, says) in cases {
        let doc = json!({"course_key": "course-v1:HostileX+Doc+1", "blocks": [
            {"usage_id": "p", "type": "problem", "fields": fields}
        ]});
        let file = d.join("doc.json");
        std::fs::write(&file, doc.to_string()).unwrap();
        let (ok, _, err) = xbhost(d, &["course", "load", file.to_str().unwrap()]);
        assert!(!ok && err.contains(says), "{fields}: {err}");
    }
    let doc = json!({"course_key": "course-v1:HostileX+Doc+1", "blocks": [
        {"usage_id": "anon:5f3e", "type": "html"}
    ]});
    let file = d.join("doc.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let (ok, _, err) = xbhost(d, &["course", "load", file.to_str().unwrap()]);
    assert!(
        !ok && err.contains("block \"anon:5f3e\": usage ids may not start with \"anon:\""),
        "{err}"
    );
    // The same in an OLX import: kept as written (-1 was cast to 0 attempts), refused.
    for (attribute, says) in [
        (
            "max_attempts=\"-1\"",
            "max_attempts -1 is not a whole number",
        ),
        (
            "weight=\"-2.5\"",
            "weight -2.5 is not a number of at least 0",
        ),
        (
            "weight=\"heavy\"",
            "problem \"p2\" has weight \"heavy\", which is not a number",
        ),
    ] {
        let problem = format!(
            "<problem url_name=\"p2\" {attribute}><multiplechoiceresponse><choicegroup>\
             <choice correct=\"true\">a</choice></choicegroup></multiplechoiceresponse></problem>"
        );
        let archive = d.join("c.tar.gz");
        std::fs::write(&archive, tgz("c", &small_course(&problem))).unwrap();
        let (ok, _, err) = xbhost(d, &["course", "import", archive.to_str().unwrap()]);
        assert!(
            !ok && err.contains(says) && err.contains("\"p2\""),
            "{attribute}: {err}"
        );
    }
    let anon = "<html url_name=\"anon:x\" display_name=\"A\">hi</html>";
    let archive = d.join("c.tar.gz");
    std::fs::write(&archive, tgz("c", &small_course(anon))).unwrap();
    let (ok, _, err) = xbhost(d, &["course", "import", archive.to_str().unwrap()]);
    assert!(
        !ok && err.contains("block \"anon:x\": usage ids may not start"),
        "{err}"
    );
    assert!(stored_courses(d).is_empty(), "nothing stored");
}
