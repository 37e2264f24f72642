//! The experiment report against statistics computed independently with SciPy 1.17.1 and
//! statsmodels 0.15.0 (the snippets are beside each constant), and its HTML page in
//! headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use xbhost::assignment::partition_tag_key;
use xbhost::events::{Event, EventSink, Experiments, JsonlSink};
use xbhost::model::CourseDoc;
use xbhost::report::ExperimentReport;
use xbhost::storage::Storage;
use xbhost::{Host, HostConfig};
use xbhost_tests::{plugin_wasm, xbhost_ok};

const COURSE: &str = "course-v1:xbhost+stats+2026";

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

/// Three experiments: `Ratio` (sizes only), `Solving` (a conversion goal) and `Scores` (a
/// numeric goal).
fn course() -> CourseDoc {
    serde_json::from_value(json!({
        "course_key": COURSE,
        "user_partitions": [
            {"id": 1, "name": "Ratio", "groups": [{"id": 0, "name": "Control"}, {"id": 1, "name": "Treatment"}]},
            {"id": 2, "name": "Solving", "groups": [{"id": 0, "name": "Control <A>"}, {"id": 1, "name": "Treatment"}],
             "forced": {"qa-tester": 1},
             "goals": [{"name": "solved", "event": "problem_check", "match": {"correct": true}, "block_types": ["problem"]}]},
            {"id": 3, "name": "Scores", "groups": [{"id": 0, "name": "Control"}, {"id": 1, "name": "Treatment"}],
             "goals": [{"name": "score", "event": "problem_check", "value": "score", "block_types": ["problem"]}]}
        ],
        "blocks": [{"usage_id": "page", "type": "html", "fields": {"data": "<p>hi</p>"}}]
    }))
    .unwrap()
}

fn event(user: &str, enrolled: &[&str], forced: &[&str], data: serde_json::Value) -> Event {
    Event {
        name: "problem_check".into(),
        time: "2026-11-22T10:00:00.000Z".into(),
        course_key: COURSE.into(),
        user_id: user.into(),
        username: user.into(),
        usage_id: Some("p1".into()),
        plugin: Some("problem".into()),
        data,
        experiments: Experiments {
            enrolled: enrolled.iter().map(|s| s.to_string()).collect(),
            assigned: Default::default(),
            forced: forced.iter().map(|s| (s.to_string(), true)).collect(),
            holdout: false,
        },
        course_tags: Default::default(),
    }
}

/// Stores members and writes their events: known counts, plus events that must not count.
fn populate(storage: &dyn Storage, events_file: &Path) {
    let put = |user: &str, partition: u64, group: u64| {
        storage
            .set_course_tag(
                COURSE,
                user,
                &partition_tag_key(partition),
                &group.to_string(),
            )
            .unwrap()
    };
    // Ratio: 5200 / 4800 of an even split, a sample ratio mismatch.
    for i in 0..10_000 {
        put(&format!("r{i}"), 1, u64::from(i >= 5200));
    }
    // Solving: 1000 per group; 120 and 150 solve it.
    let mut events = Vec::new();
    for group in 0..2u64 {
        let solvers = if group == 0 { 120 } else { 150 };
        for i in 0..1000 {
            let user = format!("s{group}-{i}");
            put(&user, 2, group);
            if i < solvers {
                // Twice: a learner converts once, however often they solve it.
                for _ in 0..2 {
                    events.push(event(&user, &["Solving"], &[], json!({"correct": true})));
                }
            } else if i < 400 {
                events.push(event(&user, &["Solving"], &[], json!({"correct": false})));
            } else if i < 420 {
                // Solved before they were enrolled: not a conversion of the experiment.
                events.push(event(&user, &[], &[], json!({"correct": true})));
            }
        }
    }
    // A forced QA user, stored in a group, solving: left out of every figure.
    put("qa-tester", 2, 1);
    events.push(event(
        "qa-tester",
        &["Solving"],
        &["Solving"],
        json!({"correct": true}),
    ));
    // Scores: 50 per group; control has 20 ones, treatment 30 (zeros without events too).
    for group in 0..2u64 {
        let ones = if group == 0 { 20 } else { 30 };
        for i in 0..50 {
            let user = format!("c{group}-{i}");
            put(&user, 3, group);
            if i < ones {
                events.push(event(&user, &["Scores"], &[], json!({"score": 0.0})));
                events.push(event(&user, &["Scores"], &[], json!({"score": 1.0})));
            } else if i < ones + 10 {
                events.push(event(&user, &["Scores"], &[], json!({"score": 0.0})));
            }
        }
    }
    // Another course's events are not read.
    let mut foreign = event("s1-999", &["Solving"], &[], json!({"correct": true}));
    foreign.course_key = "course-v1:other+course+run".into();
    events.push(foreign);
    JsonlSink::open(events_file).unwrap().emit(&events).unwrap();
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let host = Host::open(&data, HostConfig::default()).unwrap();
        host.add_plugin(&plugin_wasm("html"), None).unwrap();
        host.load_course(course()).unwrap();
        populate(host.storage(), &data.join("events.jsonl"));
    }
    (dir, data)
}

fn report(data: &Path) -> ExperimentReport {
    let host = Host::open(data, HostConfig::default()).unwrap();
    host.report(COURSE, &data.join("events.jsonl")).unwrap()
}

#[test]
fn report_figures_match_scipy_and_statsmodels() {
    let (_dir, data) = data_dir();
    let r = report(&data);
    assert_eq!(r.partitions.len(), 3);

    // scipy.stats.chisquare([5200, 4800], f_exp=[5000, 5000])
    //   -> statistic 16.0, pvalue 6.334248366623988e-05
    let ratio = &r.partitions[0];
    assert_eq!(ratio.learners, 10_000);
    assert_eq!(
        ratio.groups.iter().map(|g| g.learners).collect::<Vec<_>>(),
        [5200, 4800]
    );
    assert_close(ratio.groups[0].observed_share, 0.52, "observed share");
    assert_close(ratio.groups[0].expected_share, 0.5, "expected share");
    let srm = ratio.srm.unwrap();
    assert_close(srm.statistic, 16.0, "SRM statistic");
    assert_close(srm.p_value, 6.334248366623988e-05, "SRM p");
    assert!(ratio.srm_flagged, "a known mismatch is flagged");

    // Solving: 1000 / 1000, no mismatch (chisquare([1000, 1000]) -> 0.0, p 1.0).
    let solving = &r.partitions[1];
    assert_eq!(solving.learners, 2000, "the forced user is left out");
    assert_eq!(solving.forced_excluded, 1);
    assert!(!solving.srm_flagged);
    assert_close(solving.srm.unwrap().p_value, 1.0, "even split p");
    let goal = &solving.goals[0];
    assert_eq!(goal.kind, "conversion");
    assert_eq!(
        goal.groups
            .iter()
            .map(|g| (g.conversions, g.learners))
            .collect::<Vec<_>>(),
        [(120, 1000), (150, 1000)]
    );
    // scipy.stats.chi2_contingency([[120, 880], [150, 850]], correction=False)
    //   -> statistic 3.8535645472061657, pvalue 0.049640386865368834, dof 1
    let test = goal.test.unwrap();
    assert_close(test.statistic, 3.8535645472061657, "conversion chi-square");
    assert_close(test.p_value, 0.049640386865368834, "conversion p");
    assert_eq!(test.df, 1);
    // statsmodels proportion_confint(120, 1000, alpha=0.05, method='wilson')
    //   -> (0.10129926060130913, 0.14160907584771276)
    let ci = goal.groups[0].interval.unwrap();
    assert_close(ci.low, 0.10129926060130913, "Wilson low");
    assert_close(ci.high, 0.14160907584771276, "Wilson high");
    // proportion_confint(150, 1000, method='wilson') -> (0.1292100725130883, 0.17346865842680032)
    let ci = goal.groups[1].interval.unwrap();
    assert_close(ci.low, 0.1292100725130883, "Wilson low (treatment)");
    assert_close(ci.high, 0.17346865842680032, "Wilson high (treatment)");
    // Beside them, always valid (mSPRT, see host/src/sequential.rs; the formulas
    // evaluated separately): the fixed-horizon p of 0.0496 is below 0.05, but one look
    // among many must not be read as a finding, and the sequential p is 0.47.
    let s = &goal.sequential[0];
    assert_eq!((s.group_id, s.control_id, s.method), (1, 0, "msprt"));
    assert_close(s.result.difference, 0.03, "sequential difference");
    assert_close(s.result.p_value, 0.47069077790838054, "sequential p");
    assert_close(s.result.low, -0.017692649581947925, "sequence low");
    assert_close(s.result.high, 0.07769264958194792, "sequence high");
    assert!(r.to_text().contains("always valid, mSPRT"));
    assert!(r.to_html().contains("always valid"));

    // Scores: scipy.stats.mannwhitneyu([0]*20 + [1]*30, [0]*30 + [1]*20,
    //   alternative='two-sided', use_continuity=True, method='asymptotic')
    //   -> statistic 1500.0, pvalue 0.04703388748847908
    let scores = &r.partitions[2].goals[0];
    assert_eq!(scores.kind, "numeric");
    assert_close(scores.groups[0].mean, 0.4, "control mean");
    assert_close(scores.groups[1].mean, 0.6, "treatment mean");
    let c = &scores.comparisons[0];
    assert_eq!((c.group_id, c.control_id), (1, 0));
    assert_close(c.u, 1500.0, "Mann-Whitney U");
    assert_close(c.p_value, 0.04703388748847908, "Mann-Whitney p");
}

fn headless(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new(xbhost_tests::find_program(&[
        "chromium",
        "chromium-browser",
    ]))
    .args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .output()
    .expect("running chromium")
}

#[test]
fn the_html_report_renders_in_headless_chromium_offline() {
    let (dir, data) = data_dir();
    let html = dir.path().join("report.html");
    let text = xbhost_ok(
        &data,
        &[
            "report",
            "--course",
            COURSE,
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert!(text.contains("SAMPLE RATIO MISMATCH"), "{text}");
    assert!(text.contains("p = 6.33e-5"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing to fetch, names escaped.
    for reference in ["src=", "href=", "<script", "@import", "url("] {
        assert!(
            !page.contains(reference),
            "the report references {reference}"
        );
    }
    assert!(page.contains("Control &lt;A&gt;") && !page.contains("Control <A>"));

    let url = format!("file://{}", html.display());
    let dom = headless(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("Sample ratio mismatch"),
        "Chromium did not render the report: {dom}"
    );
    // Bars: 2 groups x 3 partitions, 2 conversion bars, 2 numeric bars.
    assert_eq!(dom.matches("<rect class=\"bar\"").count(), 10, "{dom}");

    let shot = xbhost_tests::artifacts_dir().join("experiment-report.png");
    let _ = std::fs::remove_file(&shot);
    let out = headless(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1100,1800",
        &url,
    ]);
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}); chromium said: {}",
            shot.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1100, 1800));
    assert!(
        png.len() > 20_000,
        "the screenshot is nearly empty ({} bytes)",
        png.len()
    );
}
