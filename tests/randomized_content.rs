//! Randomized content (`library_content`) in the Open edX test course, through the real
//! host, the real built plugins and a sled store: each learner gets `max_count` of the pool,
//! picked by the host's sampling authority (sticky, uniform, independent between blocks),
//! learners see and can reach only their picks, staff see the whole pool with the host's
//! marks, a changed pool keeps the picks still in it, grading follows the picks, and the
//! host alone sends the selection events.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use xbhost::olx::ImportOptions;
use xbhost::{User, View};
use xbhost_tests::authoring::fixture;
use xbhost_tests::olx::{TEST_COURSE, olx};
use xbhost_tests::{Fixture, chi_square_gof, chi_square_independence};

/// "Two Random Check Boxes": 2 of 4 problems.
const TWO_OF_FOUR: &str = "b940ac754160478188dd7e7358061e0c";
/// "Six Random Problems": 6 of 12.
const SIX_OF_TWELVE: &str = "c8f3a166def84b8696d25df4e18c0a76";
/// The unit holding both.
const UNIT: &str = "c473b53f47c54773a6f6776557b87827";

fn imported() -> Fixture {
    let f = fixture();
    f.host
        .import_course(&olx("openedx-test-course"), &ImportOptions::default())
        .unwrap();
    f
}

fn pool(f: &Fixture, block: &str) -> Vec<String> {
    f.host
        .course(TEST_COURSE)
        .unwrap()
        .block(block)
        .unwrap()
        .def
        .children
        .clone()
}

/// The children of `block` a learner's page shows.
fn shown(f: &Fixture, block: &str, learner: &str) -> BTreeSet<String> {
    let out = f.render(TEST_COURSE, block, User::learner(learner), View::Student);
    assert!(out.failures.is_empty(), "{learner}: {:?}", out.failures);
    let pool = pool(f, block);
    out.visible_blocks
        .into_iter()
        .filter(|b| pool.contains(b))
        .collect()
}

#[test]
fn each_learner_gets_max_count_of_the_pool_sticky_uniform_and_independent() {
    let f = imported();
    let (four, twelve) = (pool(&f, TWO_OF_FOUR), pool(&f, SIX_OF_TWELVE));
    assert_eq!((four.len(), twelve.len()), (4, 12), "the export's pools");
    let learners: Vec<String> = (0..360).map(|i| format!("lib-{i}")).collect();
    let mut pairs: BTreeMap<BTreeSet<String>, u64> = BTreeMap::new();
    // Whether the first child of each pool was picked, per learner: independence.
    let mut table = vec![vec![0u64; 2]; 2];
    for l in &learners {
        let a = shown(&f, TWO_OF_FOUR, l);
        let b = shown(&f, SIX_OF_TWELVE, l);
        assert_eq!(a.len(), 2, "{l}: {a:?}");
        assert_eq!(b.len(), 6, "{l}: {b:?}");
        *pairs.entry(a.clone()).or_default() += 1;
        table[usize::from(a.contains(&four[0]))][usize::from(b.contains(&twelve[0]))] += 1;
        // Sticky: the same picks on every visit, and through the whole unit.
        assert_eq!(shown(&f, TWO_OF_FOUR, l), a, "{l}: picks moved");
        let unit = f.render(TEST_COURSE, UNIT, User::learner(l), View::Student);
        let on_unit: BTreeSet<String> = unit
            .visible_blocks
            .iter()
            .filter(|b| four.contains(b))
            .cloned()
            .collect();
        assert_eq!(on_unit, a, "{l}: the unit shows other picks");
    }
    // Every one of the 6 pairs of the 4-pool, equally likely.
    assert_eq!(pairs.len(), 6, "{pairs:?}");
    let observed: Vec<u64> = pairs.values().copied().collect();
    let (stat, p) = chi_square_gof(&observed, &[1.0; 6]);
    assert!(
        p > 0.001,
        "pairs not uniform: chi2 {stat}, p {p}, {pairs:?}"
    );
    let (stat, p) = chi_square_independence(&table);
    assert!(
        p > 0.001,
        "blocks not independent: chi2 {stat}, p {p}, {table:?}"
    );
}

#[test]
fn the_host_sends_the_selection_event_once_and_blocks_cannot_forge_it() {
    let f = imported();
    let before = f.events.events().len();
    let picks = shown(&f, TWO_OF_FOUR, "eve");
    let assigned: Vec<_> = f.events.events()[before..]
        .iter()
        .filter(|e| e.name == "edx.librarycontentblock.content.assigned")
        .cloned()
        .collect();
    assert_eq!(assigned.len(), 1, "{assigned:?}");
    let e = &assigned[0];
    assert_eq!(e.usage_id.as_deref(), Some(TWO_OF_FOUR));
    assert_eq!(e.plugin, None, "the host's own event");
    let result: BTreeSet<String> = serde_json::from_value(e.data["result"].clone()).unwrap();
    assert_eq!(result, picks);
    assert_eq!(e.data["previous_count"], 0);
    assert_eq!(e.data["max_count"], 2);
    let again = f.events.events().len();
    shown(&f, TWO_OF_FOUR, "eve");
    assert!(
        !f.events.events()[again..]
            .iter()
            .any(|e| e.name.starts_with("edx.librarycontentblock.")),
        "a repeat visit selects nothing"
    );
}

#[test]
fn learners_reach_only_their_picks_and_grading_follows_them() {
    let f = imported();
    let picks = shown(&f, TWO_OF_FOUR, "gus");
    let pool = pool(&f, TWO_OF_FOUR);
    let learner = User::learner("gus");
    let answer = json!({"answer": [0, 3]});
    for p in &pool {
        let result = f.host.handle(TEST_COURSE, p, &learner, "submit", &answer);
        if picks.contains(p) {
            let answer = result.unwrap();
            assert!(
                answer.get("correct").is_some_and(|c| c.is_boolean()),
                "{p}: {answer}"
            );
        } else {
            let err = format!("{:#}", result.unwrap_err());
            assert!(
                err.contains("is not available to user \"gus\""),
                "{p}: {err}"
            );
        }
    }
    let grades = f.host.grades(TEST_COURSE, Some("gus")).unwrap();
    let graded: BTreeSet<String> = grades.learners[0]
        .problems
        .keys()
        .filter(|p| pool.contains(p))
        .cloned()
        .collect();
    assert_eq!(graded, picks, "graded over the picks only");
    // A learner who never visited is graded on the picks they would get, stored for
    // nobody: their first visit gets those same picks.
    let would = f.host.grades(TEST_COURSE, Some("hal")).unwrap();
    let would: BTreeSet<String> = would.learners[0]
        .problems
        .keys()
        .filter(|p| pool.contains(p))
        .cloned()
        .collect();
    assert_eq!(would.len(), 2);
    assert_eq!(shown(&f, TWO_OF_FOUR, "hal"), would);
}

#[test]
fn staff_see_the_whole_pool_marked_by_the_host() {
    let f = imported();
    let out = f.render(TEST_COURSE, TWO_OF_FOUR, User::staff("sam"), View::Staff);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let pool = pool(&f, TWO_OF_FOUR);
    for p in &pool {
        assert!(out.visible_blocks.contains(p), "{p} not shown to staff");
    }
    let marked = |v: &str| {
        out.html
            .matches(&format!("data-xbhost-selected=\"{v}\""))
            .count()
    };
    assert_eq!((marked("true"), marked("false")), (2, 2), "{}", out.html);
    assert!(out.html.contains("each learner gets 2 of these 4 blocks"));
    // Staff are never part of the randomization: nothing is stored or sent for them.
    assert!(
        !f.events
            .events()
            .iter()
            .any(|e| e.name.starts_with("edx.librarycontentblock.")),
        "no selection event for staff"
    );
}

#[test]
fn a_changed_pool_keeps_the_picks_still_in_it() {
    let f = imported();
    let learner = "ivy";
    let picks: Vec<String> = shown(&f, SIX_OF_TWELVE, learner).into_iter().collect();
    // The author removes one picked problem from the pool and raises nothing else.
    let mut doc = f.host.course(TEST_COURSE).unwrap().doc.clone();
    let gone = picks[0].clone();
    let block = doc
        .blocks
        .iter_mut()
        .find(|b| b.usage_id == SIX_OF_TWELVE)
        .unwrap();
    block.children.retain(|c| *c != gone);
    f.host.load_course(doc).unwrap();
    let before = f.events.events().len();
    let now = shown(&f, SIX_OF_TWELVE, learner);
    assert_eq!(now.len(), 6);
    assert!(!now.contains(&gone));
    for kept in &picks[1..] {
        assert!(now.contains(kept), "{kept} moved: {now:?}");
    }
    let events = &f.events.events()[before..];
    let removed = events
        .iter()
        .find(|e| e.name == "edx.librarycontentblock.content.removed")
        .expect("removed event");
    assert_eq!(removed.data["reason"], "invalid");
    assert_eq!(removed.data["removed"], json!([gone]));
    let added = events
        .iter()
        .find(|e| e.name == "edx.librarycontentblock.content.assigned")
        .expect("assigned event");
    assert_eq!(added.data["added"].as_array().unwrap().len(), 1);
    assert_eq!(added.data["previous_count"], 6);
}

/// The experiment report counts learners per child of each pool from the host's selection
/// events in the real event log, against the equal share, with its uniformity test.
#[test]
fn the_report_shows_learners_per_child_of_each_pool() {
    use xbhost::{Host, HostConfig, RenderRequest};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = Host::open(&data, xbhost_tests::patient_config()).unwrap();
    for p in xbhost_tests::PRODUCT_PLUGINS {
        host.add_plugin(&xbhost_tests::plugin_wasm(p), None)
            .unwrap();
    }
    host.import_course(&olx("openedx-test-course"), &ImportOptions::default())
        .unwrap();
    let learners = 120;
    for i in 0..learners {
        let out = host
            .render(&RenderRequest::new(
                TEST_COURSE,
                TWO_OF_FOUR,
                User::learner(&format!("r{i}")),
                View::Student,
            ))
            .unwrap();
        assert!(out.failures.is_empty(), "{:?}", out.failures);
    }
    drop(host);
    let host = Host::open(&data, HostConfig::default()).unwrap();
    let report = host
        .report(TEST_COURSE, &data.join("events.jsonl"))
        .unwrap();
    let lib = report
        .randomized_content
        .iter()
        .find(|s| s.usage_id == TWO_OF_FOUR)
        .expect("the block is reported");
    assert_eq!(lib.learners, learners);
    assert_eq!(lib.max_count, 2);
    assert_eq!(lib.children.len(), 4);
    let picks: u64 = lib.children.iter().map(|c| c.learners).sum();
    assert_eq!(
        picks,
        learners * 2,
        "every learner's two picks counted once"
    );
    for c in &lib.children {
        assert_eq!(c.expected_share, 0.5);
        assert!((c.observed_share - c.learners as f64 / learners as f64).abs() < 1e-12);
    }
    let u = lib.uniformity.as_ref().expect("tested");
    assert_eq!(u.df, 3);
    assert!(
        !lib.flagged,
        "an even draw is not flagged: p = {}",
        u.p_value
    );
    let text = report.to_text();
    assert!(
        text.contains(&format!(
            "randomized content {TWO_OF_FOUR} \"Two Random Check Boxes\": {learners} learners, 2 of 4 each"
        )),
        "{text}"
    );
    assert!(
        report
            .to_html()
            .contains("Randomized content: Two Random Check Boxes")
    );
    // The block nobody visited is not in the report.
    assert!(
        !report
            .randomized_content
            .iter()
            .any(|s| s.usage_id == SIX_OF_TWELVE)
    );
}
