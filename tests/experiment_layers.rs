//! Layers and the holdout through the real host, plugins and sled: experiments of one
//! layer never share a learner and take their declared shares; layers stay independent;
//! held-out learners see control everywhere, are enrolled nowhere and are reported as
//! their own group; adding an experiment to free range moves nobody, and shrinking a range
//! is previewed and then moves exactly the learners the preview named.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use xbhost::assignment::{HOLDOUT_TAG, partition_tag_key};
use xbhost::events::HOLDOUT_EVENT;
use xbhost::experiment;
use xbhost::model::CourseDoc;
use xbhost::{ExperimentStatus, RenderOutput, User};
use xbhost_tests::{DEMO_COURSE, Fixture, chi_square_gof, chi_square_independence, demo_course};

const EXPLANATION: u64 = 0;
const HINTS: u64 = 1;
const TONE: u64 = 2;
const LEARNERS: usize = 2000;

/// The demo course with its two experiments sharing the layer "pedagogy" (explanation
/// 0..0.5, hints 0.5..0.8, 0.8..1 free), a third experiment alone in the layer "voice"
/// (with a split test of its own in unit_1 and a goal), and a 10% holdout.
pub fn layered_course() -> CourseDoc {
    let mut doc = serde_json::to_value(demo_course()).unwrap();
    doc["holdout"] = json!({"share": 0.1});
    let parts = doc["user_partitions"].as_array_mut().unwrap();
    parts[0]["layer"] = json!({"name": "pedagogy", "range": [0.0, 0.5]});
    parts[1]["layer"] = json!({"name": "pedagogy", "range": [0.5, 0.8]});
    parts.push(json!({
        "id": TONE, "name": "Tone",
        "groups": [{"id": 0, "name": "Plain"}, {"id": 1, "name": "Friendly"}],
        "layer": {"name": "voice", "range": [0.0, 1.0]},
        "goals": [{"name": "solved", "event": "problem_check", "match": {"correct": true},
                   "block_types": ["problem"]}]
    }));
    let blocks = doc["blocks"].as_array_mut().unwrap();
    let unit = blocks
        .iter_mut()
        .find(|b| b["usage_id"] == "unit_1")
        .unwrap();
    unit["children"]
        .as_array_mut()
        .unwrap()
        .push(json!("split_tone"));
    blocks.extend([
        json!({"usage_id": "split_tone", "type": "split_test",
               "fields": {"user_partition_id": TONE,
                          "group_id_to_child": {"0": "tone_plain", "1": "tone_friendly"}},
               "children": ["tone_plain", "tone_friendly"]}),
        json!({"usage_id": "tone_plain", "type": "html", "fields": {"data": "<p>Well done.</p>"}}),
        json!({"usage_id": "tone_friendly", "type": "html", "fields": {"data": "<p>Great job!</p>"}}),
    ]);
    serde_json::from_value(doc).unwrap()
}

fn learner(i: usize) -> String {
    format!("layered-{i:05}")
}

fn status(out: &RenderOutput, partition: u64) -> ExperimentStatus {
    out.experiments
        .iter()
        .find(|e| e.partition_id == partition)
        .unwrap_or_else(|| panic!("no view of partition {partition}: {:?}", out.experiments))
        .status
}

fn stored(f: &Fixture, user: &str, key: &str) -> Option<String> {
    f.host.storage().course_tag(DEMO_COURSE, user, key).unwrap()
}

/// Where a learner is in the pedagogy layer: 0 explanation, 1 hints, 2 free.
fn pedagogy_slot(out: &RenderOutput) -> usize {
    match (status(out, EXPLANATION), status(out, HINTS)) {
        (ExperimentStatus::Enrolled, ExperimentStatus::OutsideLayerRange) => 0,
        (ExperimentStatus::OutsideLayerRange, ExperimentStatus::Enrolled) => 1,
        (ExperimentStatus::OutsideLayerRange, ExperimentStatus::OutsideLayerRange) => 2,
        other => panic!("in two experiments of one layer, or neither by rule: {other:?}"),
    }
}

#[test]
fn a_layer_shares_no_learner_layers_are_independent_and_the_holdout_sees_control() {
    let f = Fixture::demo();
    f.host.load_course(layered_course()).unwrap();
    let (mut held_out, mut slots) = (Vec::new(), [0u64; 3]);
    let mut explanation_groups = [0u64; 2];
    // Pedagogy slot against the tone group: independent layers.
    let mut table = vec![vec![0u64; 2]; 3];
    for i in 0..LEARNERS {
        let id = learner(i);
        let out = f.learner_unit(&id);
        let tags = |p: u64| stored(&f, &id, &partition_tag_key(p));
        if status(&out, TONE) == ExperimentStatus::Holdout {
            // Held out of the experiment of the layer whose range they are in (if any):
            // outside the others' ranges, as anybody.
            let pedagogy = [status(&out, EXPLANATION), status(&out, HINTS)];
            assert!(
                pedagogy.iter().all(|s| matches!(
                    s,
                    ExperimentStatus::Holdout | ExperimentStatus::OutsideLayerRange
                )) && pedagogy[0] != pedagogy[1]
                    || pedagogy == [ExperimentStatus::OutsideLayerRange; 2],
                "{id}: {pedagogy:?}"
            );
            for p in [EXPLANATION, HINTS, TONE] {
                assert_eq!(out.assignments.get(&p), None, "{id} is enrolled in {p}");
                assert_eq!(tags(p), None, "{id} has a stored group in {p}");
            }
            // Control everywhere: the first group's conditions, nothing of the others.
            for (shown, hidden) in [
                ("explanation_a_text", "explanation_a_video"),
                ("tone_plain", "tone_friendly"),
            ] {
                assert!(
                    out.visible_blocks.iter().any(|b| b == shown),
                    "{id}: {:?}",
                    out.visible_blocks
                );
                assert!(!out.visible_blocks.iter().any(|b| b == hidden), "{id}");
            }
            assert!(
                !out.visible_blocks.iter().any(|b| b.starts_with("hints_")),
                "{id}"
            );
            assert_eq!(
                stored(&f, &id, HOLDOUT_TAG).as_deref(),
                Some("held_out"),
                "{id}"
            );
            held_out.push(id);
            continue;
        }
        assert_eq!(stored(&f, &id, HOLDOUT_TAG), None, "{id}");
        let slot = pedagogy_slot(&out);
        slots[slot] += 1;
        // Stored only where enrolled: the layer never stores a group outside its range.
        assert_eq!(tags(EXPLANATION).is_some(), slot == 0, "{id}");
        assert_eq!(tags(HINTS).is_some(), slot == 1, "{id}");
        assert_eq!(status(&out, TONE), ExperimentStatus::Enrolled, "{id}");
        let tone = out.assignments[&TONE];
        table[slot][tone as usize] += 1;
        if slot == 0 {
            explanation_groups[out.assignments[&EXPLANATION] as usize] += 1;
        } else {
            // Outside the explanation's range: its control, text.
            assert!(
                out.visible_blocks.iter().any(|b| b == "explanation_a_text"),
                "{id}"
            );
            assert!(
                !out.visible_blocks
                    .iter()
                    .any(|b| b == "explanation_a_video"),
                "{id}"
            );
        }
    }
    let n_held = held_out.len() as u64;
    let (_, p) = chi_square_gof(&[n_held, LEARNERS as u64 - n_held], &[0.1, 0.9]);
    assert!(
        p > 0.001,
        "{n_held} of {LEARNERS} held out, against 10%: p {p}"
    );
    let (_, p) = chi_square_gof(&slots, &[0.5, 0.3, 0.2]);
    assert!(
        p > 0.001,
        "pedagogy slots {slots:?} against 50/30/20%: p {p}"
    );
    let (_, p) = chi_square_gof(&explanation_groups, &[1.0, 1.0]);
    assert!(
        p > 0.001,
        "explanation groups {explanation_groups:?}: p {p}"
    );
    let (_, p) = chi_square_independence(&table);
    assert!(
        p > 0.001,
        "pedagogy slot against tone group {table:?}: p {p}"
    );
    assert!(table.iter().flatten().all(|&c| c > 0), "{table:?}");

    // Every event of a held-out learner says so and enrolls them nowhere; one holdout
    // event each, and none for anybody else.
    let held: BTreeSet<&String> = held_out.iter().collect();
    let events = f.events.events();
    for e in &events {
        assert_eq!(e.experiments.holdout, held.contains(&e.user_id), "{e:?}");
        if e.experiments.holdout {
            assert!(e.experiments.enrolled.is_empty(), "{e:?}");
        }
    }
    let holdout_events: Vec<&String> = events
        .iter()
        .filter(|e| e.name == HOLDOUT_EVENT)
        .map(|e| &e.user_id)
        .collect();
    assert_eq!(holdout_events.len(), held_out.len());
    assert_eq!(holdout_events.into_iter().collect::<BTreeSet<_>>(), held);
    // Sticky: again, nobody moves and no second holdout event.
    for id in held_out.iter().take(20) {
        let again = f.learner_unit(id);
        assert_eq!(status(&again, TONE), ExperimentStatus::Holdout);
    }
    let again = f
        .events
        .events()
        .iter()
        .filter(|e| e.name == HOLDOUT_EVENT)
        .count();
    assert_eq!(again, held_out.len());
    // Staff see what they would get, and are recorded in nothing: a held-out id that has
    // never visited gets no record and no event.
    let doc = layered_course();
    let fresh = (LEARNERS..)
        .map(learner)
        .find(|id| {
            experiment::held_out(doc.holdout.as_ref(), &doc.user_partitions, DEMO_COURSE, id)
        })
        .unwrap();
    let staff = f.render(
        DEMO_COURSE,
        "unit_1",
        User::staff(&fresh),
        xbhost::View::Student,
    );
    assert_eq!(status(&staff, TONE), ExperimentStatus::Holdout);
    assert_eq!(stored(&f, &fresh, HOLDOUT_TAG), None);
    assert!(
        f.events.events().iter().all(|e| e.user_id != fresh),
        "a staff view sends no holdout event"
    );
}

/// The first learner ids (from `from`) the course's holdout does (or does not) hold out.
fn ids_held_out(doc: &CourseDoc, inside: bool, from: usize, n: usize) -> Vec<String> {
    (from..)
        .map(learner)
        .filter(|id| experiment::held_out(doc.holdout.as_ref(), &[], DEMO_COURSE, id) == inside)
        .take(n)
        .collect()
}

/// The fixture's events so far, written as the event log `name` for the report.
fn event_log(f: &Fixture, name: &str) -> std::path::PathBuf {
    let path = f.dir.path().join(name);
    let lines: String = f
        .events
        .events()
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(&path, lines).unwrap();
    path
}

/// A visitor's session id the holdout does (or does not) hold out, and their first view.
fn visitor(f: &Fixture, doc: &CourseDoc, held: bool) -> (String, RenderOutput) {
    let session = (0..)
        .map(|i| format!("layered-visit-{held}-{i}"))
        .find(|s| {
            let id = format!("anon:{s}");
            experiment::held_out(doc.holdout.as_ref(), &[], DEMO_COURSE, &id) == held
        })
        .unwrap();
    let view = f.render(
        DEMO_COURSE,
        "unit_1",
        User::anonymous(&session),
        xbhost::View::Student,
    );
    (session, view)
}

#[test]
fn forced_paused_and_carried_over_learners_meet_the_holdout_and_layers_by_one_rule() {
    let f = Fixture::demo();
    let mut doc = layered_course();
    // A QA account the holdout would hold out, forced into the hints experiment.
    let qa = ids_held_out(&doc, true, 0, 1).remove(0);
    doc.user_partitions[HINTS as usize]
        .forced
        .insert(qa.clone(), 1);
    f.host.load_course(doc.clone()).unwrap();
    let out = f.learner_unit(&qa);
    assert_eq!(status(&out, HINTS), ExperimentStatus::Forced);
    assert_eq!(
        status(&out, EXPLANATION),
        ExperimentStatus::OutsideLayerRange,
        "forced into one experiment of the layer, so in no other"
    );
    assert_eq!(
        status(&out, TONE),
        ExperimentStatus::Enrolled,
        "a QA account is never held out"
    );
    assert_eq!(stored(&f, &qa, HOLDOUT_TAG), None);
    assert_eq!(stored(&f, &qa, &partition_tag_key(EXPLANATION)), None);

    // With every experiment paused, nobody new is taken, so nobody is held out of them.
    let mut paused = doc.clone();
    for p in &mut paused.user_partitions {
        p.state = xbhost::experiment::ExperimentState::Paused;
    }
    f.host.load_course(paused).unwrap();
    let newcomers = ids_held_out(&doc, true, 100, 10);
    for id in &newcomers {
        let out = f.learner_unit(id);
        for p in [EXPLANATION, HINTS, TONE] {
            assert_eq!(status(&out, p), ExperimentStatus::Paused, "{id} in {p}");
        }
        assert_eq!(stored(&f, id, HOLDOUT_TAG), None, "{id}");
    }
    assert!(
        f.events
            .events()
            .iter()
            .all(|e| !newcomers.contains(&e.user_id) || !e.experiments.holdout),
        "not flagged before they are held out of anything"
    );
    // Enabled again, the same learners reach the experiments and are held out then.
    f.host.load_course(doc.clone()).unwrap();
    let before = f.events.events().len();
    for id in &newcomers {
        assert_eq!(status(&f.learner_unit(id), TONE), ExperimentStatus::Holdout);
        assert_eq!(stored(&f, id, HOLDOUT_TAG).as_deref(), Some("held_out"));
    }
    let events = f.events.events();
    let flagged: BTreeSet<&String> = events[before..]
        .iter()
        .filter(|e| e.experiments.holdout)
        .map(|e| &e.user_id)
        .collect();
    assert_eq!(flagged, newcomers.iter().collect());

    // A visitor's groups carry over to a held-out user as kept groups with no assignment
    // event; the user sees control and the visitor is counted nowhere.
    let user = ids_held_out(&doc, true, 1000, 1).remove(0);
    let (session, visit) = visitor(&f, &doc, false);
    let visitor_id = format!("anon:{session}");
    assert_eq!(status(&visit, TONE), ExperimentStatus::Enrolled);
    let tone = stored(&f, &visitor_id, &partition_tag_key(TONE)).expect("the visitor's group");
    let before = f.events.events().len();
    f.host.refresh_identifier(&session, &user).unwrap();
    assert_eq!(stored(&f, &visitor_id, &partition_tag_key(TONE)), None);
    assert_eq!(stored(&f, &user, &partition_tag_key(TONE)), Some(tone));
    assert!(
        f.events.events()[before..]
            .iter()
            .all(|e| e.name != xbhost::events::ASSIGNED_EVENT),
        "no assignment event for a group that does not enroll the user"
    );
    let out = f.learner_unit(&user);
    assert_eq!(status(&out, TONE), ExperimentStatus::Holdout);
    assert!(out.assignments.is_empty(), "{:?}", out.assignments);

    // And the other way: a held-out visitor's record does not make a user held out.
    let free = ids_held_out(&doc, false, 2000, 1).remove(0);
    let (session, visit) = visitor(&f, &doc, true);
    assert_eq!(status(&visit, TONE), ExperimentStatus::Holdout);
    f.host.refresh_identifier(&session, &free).unwrap();
    assert_eq!(stored(&f, &format!("anon:{session}"), HOLDOUT_TAG), None);
    let out = f.learner_unit(&free);
    assert_eq!(status(&out, TONE), ExperimentStatus::Enrolled);
    let report = f
        .host
        .report(DEMO_COURSE, &event_log(&f, "traffic-events.jsonl"))
        .unwrap();
    let holdout = report.holdout.expect("the course has a holdout");
    assert_eq!(
        holdout.learners,
        newcomers.len() as u64 + 1,
        "the newcomers and the held-out user: not the QA account, the visitors or {free}"
    );
}

/// Each learner's (explanation, hints) statuses and groups.
fn snapshot(
    f: &Fixture,
    learners: &[String],
) -> BTreeMap<String, Vec<(ExperimentStatus, Option<u64>)>> {
    learners
        .iter()
        .map(|id| {
            let out = f.learner_unit(id);
            let row = [EXPLANATION, HINTS]
                .iter()
                .map(|&p| (status(&out, p), out.assignments.get(&p).copied()))
                .collect();
            (id.clone(), row)
        })
        .collect()
}

fn with_ranges(explanation: [f64; 2], hints: [f64; 2], third: Option<[f64; 2]>) -> CourseDoc {
    let mut doc = serde_json::to_value(layered_course()).unwrap();
    doc["holdout"] = Value::Null;
    let parts = doc["user_partitions"].as_array_mut().unwrap();
    parts[0]["layer"]["range"] = json!(explanation);
    parts[1]["layer"]["range"] = json!(hints);
    if let Some(range) = third {
        parts.push(json!({"id": 3, "name": "Pace",
            "groups": [{"id": 0, "name": "Self-paced"}, {"id": 1, "name": "Deadlines"}],
            "layer": {"name": "pedagogy", "range": range}}));
    }
    serde_json::from_value(doc).unwrap()
}

fn preview(f: &Fixture, doc: &CourseDoc, partition: u64) -> xbhost::PartitionChange {
    f.host
        .preview_course_change(doc)
        .unwrap()
        .into_iter()
        .find(|c| c.partition_id == partition)
        .unwrap()
}

#[test]
fn free_range_takes_nobody_from_a_layer_and_a_shrunk_range_moves_what_its_preview_said() {
    let f = Fixture::demo();
    f.host
        .load_course(with_ranges([0.0, 0.5], [0.5, 0.8], None))
        .unwrap();
    let learners: Vec<String> = (0..600).map(learner).collect();
    let before = snapshot(&f, &learners);

    // A third experiment in the free 0.8..1: previewed as added, the others untouched.
    let added = with_ranges([0.0, 0.5], [0.5, 0.8], Some([0.8, 1.0]));
    assert_eq!(preview(&f, &added, 3).status, "added");
    for p in [EXPLANATION, HINTS] {
        let c = preview(&f, &added, p);
        assert_eq!((c.status, c.learners_leaving), ("unchanged", 0), "{c:?}");
    }
    f.host.load_course(added.clone()).unwrap();
    assert_eq!(
        snapshot(&f, &learners),
        before,
        "adding to free range moved learners"
    );

    // An overlapping range is refused, by name, and the course stays as it was.
    let overlapping = with_ranges([0.0, 0.6], [0.5, 0.8], Some([0.8, 1.0]));
    let err = format!("{:#}", f.host.load_course(overlapping).unwrap_err());
    assert!(
        err.contains("\"pedagogy\"") && err.contains("partition 0") && err.contains("partition 1"),
        "{err}"
    );
    assert_eq!(
        f.host.storage().course(DEMO_COURSE).unwrap().unwrap(),
        added
    );

    // Shrinking the explanation to 0..0.3: the preview counts who leaves, and exactly
    // those members see control afterwards, their group kept.
    let shrunk = with_ranges([0.0, 0.3], [0.5, 0.8], Some([0.8, 1.0]));
    let change = preview(&f, &shrunk, EXPLANATION);
    assert_eq!(change.status, "changed");
    f.host.load_course(shrunk).unwrap();
    let after = snapshot(&f, &learners);
    let left: Vec<&String> = learners
        .iter()
        .filter(|id| {
            before[*id][0].0 == ExperimentStatus::Enrolled
                && after[*id][0].0 == ExperimentStatus::OutsideLayerRange
        })
        .collect();
    assert!(!left.is_empty(), "0.3..0.5 of the layer held members");
    assert_eq!(change.learners_leaving, left.len(), "{change:?}");
    for id in &learners {
        let moved = left.contains(&id);
        assert_eq!(after[id][1], before[id][1], "{id}: hints moved");
        if !moved {
            assert_eq!(after[id][0], before[id][0], "{id}");
        }
    }
    for id in &left {
        assert!(
            stored(&f, id, &partition_tag_key(EXPLANATION)).is_some(),
            "{id}: group lost"
        );
    }
    // Widened back, they return to their own group.
    let widened = with_ranges([0.0, 0.5], [0.5, 0.8], Some([0.8, 1.0]));
    assert_eq!(
        preview(&f, &widened, EXPLANATION).learners_returning,
        left.len()
    );
    f.host.load_course(widened).unwrap();
    assert_eq!(snapshot(&f, &learners), before);
}

#[test]
fn the_report_shows_layers_the_holdout_as_a_group_and_exclusions_that_add_up() {
    let f = Fixture::demo();
    f.host.load_course(layered_course()).unwrap();
    let learners: Vec<String> = (0..400).map(learner).collect();
    let mut held_out = Vec::new();
    let mut in_tone = Vec::new();
    for id in &learners {
        let out = f.learner_unit(id);
        if status(&out, TONE) == ExperimentStatus::Holdout {
            held_out.push(id.clone());
        } else {
            in_tone.push(id.clone());
        }
    }
    // Every other held-out learner and every fourth learner in experiments solve it.
    let solvers: Vec<&String> = held_out
        .iter()
        .step_by(2)
        .chain(in_tone.iter().step_by(4))
        .collect();
    for id in &solvers {
        f.host
            .handle(
                DEMO_COURSE,
                "check_sum",
                &User::learner(id),
                "submit",
                &json!({"answer": [1]}),
            )
            .unwrap();
    }
    // A holdout grown to 30%: some members of each experiment are held out now.
    let mut grown = layered_course();
    grown.holdout.as_mut().unwrap().share = 0.3;
    let change = preview(&f, &grown, TONE);
    assert!(change.learners_leaving > 0, "{change:?}");
    let events = event_log(&f, "events.jsonl");

    let report = xbhost::report::build(
        f.host.storage(),
        &f.host.course(DEMO_COURSE).unwrap(),
        &events,
    )
    .unwrap();
    let h = report.holdout.as_ref().expect("a holdout section");
    assert_eq!(h.learners, held_out.len() as u64);
    assert_eq!(h.in_experiments, in_tone.len() as u64);
    let solved = &h.goals[0];
    assert_eq!(solved.name, "solved");
    assert_eq!(
        solved.holdout.conversions,
        held_out.len().div_ceil(2) as u64
    );
    assert_eq!(
        solved.in_experiments.conversions,
        in_tone.len().div_ceil(4) as u64
    );
    assert!(solved.test.is_some());
    let pedagogy = report.layers.iter().find(|l| l.name == "pedagogy").unwrap();
    assert_eq!(
        pedagogy
            .ranges
            .iter()
            .map(|r| r.partition_id)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert!((pedagogy.free_share - 0.2).abs() < 1e-9);
    for p in &report.partitions {
        let tagged = f
            .host
            .storage()
            .users_with_course_tag(DEMO_COURSE, &partition_tag_key(p.id))
            .unwrap()
            .len();
        let counted = p.learners as usize
            + p.forced_excluded
            + p.held_out_excluded
            + p.outside_range_excluded;
        assert_eq!(counted, tagged, "partition {}: {p:?}", p.id);
        assert_eq!(p.held_out_excluded, 0, "nobody held out had a group");
    }
    let text = report.to_text();
    assert!(
        text.contains("layer \"pedagogy\"") && text.contains("holdout (10.0%"),
        "{text}"
    );
    let html = report.to_html();
    assert!(html.contains("<h2>Holdout</h2>") && html.contains("data-layer=\"pedagogy\""));

    // After the holdout grows, members now held out are left out of their experiment's
    // figures, and the numbers still add up.
    f.host.load_course(grown).unwrap();
    let report = xbhost::report::build(
        f.host.storage(),
        &f.host.course(DEMO_COURSE).unwrap(),
        &events,
    )
    .unwrap();
    let tone = report.partitions.iter().find(|p| p.id == TONE).unwrap();
    assert_eq!(tone.held_out_excluded, change.learners_leaving);
    assert_eq!(
        tone.learners as usize + tone.held_out_excluded,
        in_tone.len()
    );
    assert!(report.to_text().contains("in the holdout"));
}

/// The unit as JSON over HTTP for a learner: (status per partition, groups enrolled).
async fn served_unit(
    served: &xbhost_tests::served::Served,
    user: &str,
) -> (BTreeMap<u64, String>, BTreeMap<u64, u64>) {
    let url = format!("{}?format=json", served.block_url("unit_1"));
    let token = xbhost_tests::served::learner_token(user);
    let (status, body) =
        xbhost_tests::http::send(xbhost_tests::http::client().get(&url).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["failures"].as_array().unwrap().is_empty(), "{body}");
    let statuses = body["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["partition_id"].as_u64().unwrap(),
                v["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let groups: BTreeMap<String, u64> =
        serde_json::from_value(body["assignments"].clone()).unwrap();
    let groups = groups
        .into_iter()
        .map(|(p, g)| (p.parse().unwrap(), g))
        .collect();
    (statuses, groups)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_layers_stay_exclusive_and_the_holdout_is_enrolled_nowhere() {
    let data = tempfile::tempdir().unwrap();
    xbhost_tests::copy_dir(xbhost_tests::served::demo_template(), data.path());
    let course = data.path().join("layered.json");
    std::fs::write(&course, serde_json::to_string(&layered_course()).unwrap()).unwrap();
    xbhost_tests::xbhost_ok(data.path(), &["course", "load", course.to_str().unwrap()]);
    let served = xbhost_tests::served::Served::start(data, &[]);
    let mut seen = BTreeMap::new();
    let mut held_out = BTreeSet::new();
    for i in 0..150 {
        let id = learner(i);
        let (statuses, groups) = served_unit(&served, &id).await;
        let of = |p: u64| statuses[&p].as_str();
        let slot = if of(TONE) == "holdout" {
            // Held out of the layer's experiment whose range they are in, if any.
            let pedagogy = (of(EXPLANATION), of(HINTS));
            assert!(
                matches!(
                    pedagogy,
                    ("holdout", "outside_layer_range")
                        | ("outside_layer_range", "holdout")
                        | ("outside_layer_range", "outside_layer_range")
                ),
                "{id}: {statuses:?}"
            );
            assert!(groups.is_empty(), "{id} is enrolled: {groups:?}");
            held_out.insert(id.clone());
            "holdout"
        } else {
            assert_eq!(of(TONE), "enrolled", "{id}");
            match (of(EXPLANATION), of(HINTS)) {
                ("enrolled", "outside_layer_range") => "explanation",
                ("outside_layer_range", "enrolled") => "hints",
                ("outside_layer_range", "outside_layer_range") => "free",
                other => {
                    panic!("{id}: two experiments of one layer, or neither by rule: {other:?}")
                }
            }
        };
        *seen.entry(slot).or_insert(0) += 1;
        // A second visit answers the same.
        assert_eq!(served_unit(&served, &id).await.0, statuses, "{id}");
    }
    assert_eq!(
        seen.len(),
        4,
        "every slot of the layer and the holdout occur: {seen:?}"
    );
    let data = served.stop();
    // The server stored what it showed, and every event of a held-out learner says so.
    let events = std::fs::read_to_string(data.path().join("events.jsonl")).unwrap();
    let mut holdout_events = 0;
    for line in events.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        let user = e["user_id"].as_str().unwrap();
        let flagged = e["experiments"]["holdout"] == true;
        assert_eq!(flagged, held_out.contains(user), "{e}");
        holdout_events += usize::from(e["name"] == HOLDOUT_EVENT);
    }
    assert_eq!(holdout_events, held_out.len());
    let host = xbhost::Host::open(data.path(), xbhost::HostConfig::default()).unwrap();
    for id in &held_out {
        assert_eq!(
            host.storage()
                .course_tag(DEMO_COURSE, id, HOLDOUT_TAG)
                .unwrap()
                .as_deref(),
            Some("held_out")
        );
        let view = host.assignment(DEMO_COURSE, TONE, id).unwrap();
        assert_eq!(view.status, Some(ExperimentStatus::Holdout));
        assert!(!view.enrolled);
    }
}
