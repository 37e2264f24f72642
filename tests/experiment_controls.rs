//! Experiment controls through the real host, store and plugins: states, forced users,
//! enrollment windows, bucketing scope, anonymous visitors, bots, masquerade, and the
//! membership every event carries.

use std::collections::BTreeMap;
use std::sync::Arc;

use xbhost::assignment::partition_tag_key;
use xbhost::events::{ASSIGNED_EVENT, CHILD_RENDER_EVENT, MemorySink};
use xbhost::experiment::{Bucketing, ExperimentState};
use xbhost::storage::Storage;
use xbhost::{ExperimentStatus, Host, Masquerade, RenderOutput, RenderRequest, User, View};
use xbhost_tests::{
    DEMO_COURSE, Fixture, InstrumentedStorage, demo_course, patient_config, plugin_wasm,
};

const EXPLANATION: u64 = 0;
const HINTS: u64 = 1;

fn learner(i: usize) -> String {
    format!("learner-{i:04}")
}

fn stored(f: &Fixture, user: &str, partition: u64) -> Option<String> {
    f.host
        .storage()
        .course_tag(DEMO_COURSE, user, &partition_tag_key(partition))
        .unwrap()
}

fn status(out: &RenderOutput, partition: u64) -> Option<ExperimentStatus> {
    out.experiments
        .iter()
        .find(|e| e.partition_id == partition)
        .map(|e| e.status)
}

/// Which explanation condition the page shows: 0 text, 1 video.
fn explanation_shown(out: &RenderOutput) -> u64 {
    let text = out.visible_blocks.iter().any(|b| b == "explanation_a_text");
    let video = out
        .visible_blocks
        .iter()
        .any(|b| b == "explanation_a_video");
    assert!(
        text != video,
        "exactly one condition: {:?}",
        out.visible_blocks
    );
    u64::from(video)
}

fn exposures(out: &RenderOutput) -> usize {
    out.events
        .iter()
        .filter(|e| e.name == CHILD_RENDER_EVENT)
        .count()
}

fn set_state(f: &Fixture, partition: u64, state: ExperimentState) {
    f.host
        .update_experiment(DEMO_COURSE, partition, |p| {
            p.state = state;
            Ok(())
        })
        .unwrap();
}

#[test]
fn enabled_paused_and_off_with_learners_before_and_after_each_change() {
    let f = Fixture::demo();
    let before: BTreeMap<String, u64> = (0..200)
        .map(|i| {
            let out = f.learner_unit(&learner(i));
            assert_eq!(status(&out, EXPLANATION), Some(ExperimentStatus::Enrolled));
            (learner(i), out.assignments[&EXPLANATION])
        })
        .collect();
    assert!(
        before.values().any(|&g| g == 1),
        "someone is in the video group"
    );

    // Paused: members keep their group and stay enrolled; newcomers see control, unenrolled.
    set_state(&f, EXPLANATION, ExperimentState::Paused);
    for (id, group) in before.iter().step_by(5) {
        let out = f.learner_unit(id);
        assert_eq!(explanation_shown(&out), *group, "{id} moved when paused");
        assert_eq!(out.assignments[&EXPLANATION], *group);
        assert!(out.events.iter().all(|e| {
            e.experiments
                .enrolled
                .contains(&"Explanation style".to_string())
        }));
    }
    for i in 500..600 {
        let id = learner(i);
        let out = f.learner_unit(&id);
        assert_eq!(
            explanation_shown(&out),
            0,
            "{id} must see control while paused"
        );
        assert_eq!(status(&out, EXPLANATION), Some(ExperimentStatus::Paused));
        assert!(!out.assignments.contains_key(&EXPLANATION));
        assert_eq!(
            stored(&f, &id, EXPLANATION),
            None,
            "{id} was enrolled while paused"
        );
        for e in &out.events {
            assert!(
                !e.experiments
                    .enrolled
                    .contains(&"Explanation style".to_string())
            );
            assert!(
                !(e.name == ASSIGNED_EVENT && e.data["partition_id"] == EXPLANATION),
                "assignment event while paused"
            );
            assert!(
                !(e.name == CHILD_RENDER_EVENT && e.data["user_partition_id"] == EXPLANATION),
                "exposure of an unenrolled learner"
            );
        }
    }

    // Off: everyone sees control, nothing is recorded about the experiment, nothing moves.
    set_state(&f, EXPLANATION, ExperimentState::Off);
    for (id, group) in before.iter().step_by(5) {
        let out = f.learner_unit(id);
        assert_eq!(explanation_shown(&out), 0, "{id} must see control when off");
        assert_eq!(status(&out, EXPLANATION), Some(ExperimentStatus::Off));
        assert_eq!(stored(&f, id, EXPLANATION), Some(group.to_string()));
        for e in &out.events {
            assert!(
                !e.experiments
                    .enrolled
                    .contains(&"Explanation style".to_string())
            );
            assert!(!e.experiments.assigned.contains_key("Explanation style"));
            assert!(!(e.name == CHILD_RENDER_EVENT && e.data["user_partition_id"] == EXPLANATION));
        }
    }
    let out = f.learner_unit("newcomer-off");
    assert_eq!(explanation_shown(&out), 0);
    assert_eq!(stored(&f, "newcomer-off", EXPLANATION), None);
    // The other experiment goes on as before.
    assert_eq!(status(&out, HINTS), Some(ExperimentStatus::Enrolled));

    // Enabled again: members are back in their groups; newcomers are assigned now.
    set_state(&f, EXPLANATION, ExperimentState::Enabled);
    for (id, group) in before.iter().step_by(5) {
        assert_eq!(explanation_shown(&f.learner_unit(id)), *group, "{id}");
    }
    let out = f.learner_unit(&learner(500));
    assert_eq!(status(&out, EXPLANATION), Some(ExperimentStatus::Enrolled));
    assert!(stored(&f, &learner(500), EXPLANATION).is_some());
    assert!(
        out.events
            .iter()
            .any(|e| e.name == ASSIGNED_EVENT && e.data["partition_id"] == EXPLANATION)
    );
}

#[test]
fn forced_users_see_their_group_flagged_and_are_not_stored() {
    let f = Fixture::demo();
    // qa-1's own draw, so forcing can be seen to override it.
    let drawn = f
        .host
        .assignment(DEMO_COURSE, EXPLANATION, "qa-1")
        .unwrap()
        .group
        .unwrap()
        .id;
    let forced_group = 1 - drawn;
    f.host
        .update_experiment(DEMO_COURSE, EXPLANATION, |p| {
            p.forced.insert("qa-1".into(), forced_group);
            Ok(())
        })
        .unwrap();
    // Pausing does not stop QA from seeing the forced group.
    set_state(&f, EXPLANATION, ExperimentState::Paused);
    let out = f.learner_unit("qa-1");
    assert_eq!(explanation_shown(&out), forced_group);
    assert_eq!(status(&out, EXPLANATION), Some(ExperimentStatus::Forced));
    assert_eq!(
        stored(&f, "qa-1", EXPLANATION),
        None,
        "a forced group is not stored"
    );
    assert!(!out.events.is_empty());
    for e in &out.events {
        assert_eq!(
            e.experiments.forced.get("Explanation style"),
            Some(&true),
            "{}",
            e.name
        );
        assert!(
            e.experiments
                .enrolled
                .contains(&"Explanation style".to_string())
        );
    }
    // An unforced learner's events carry no forced flag.
    let out = f.learner_unit("not-qa");
    assert!(out.events.iter().all(|e| e.experiments.forced.is_empty()));
    // Off beats forcing: the kill switch is for everyone.
    set_state(&f, EXPLANATION, ExperimentState::Off);
    assert_eq!(explanation_shown(&f.learner_unit("qa-1")), 0);
    // Forcing into a group the partition does not have is refused at load.
    let err = f
        .host
        .update_experiment(DEMO_COURSE, EXPLANATION, |p| {
            p.forced.insert("qa-2".into(), 9);
            Ok(())
        })
        .unwrap_err();
    assert!(format!("{err:#}").contains("group 9"), "{err:#}");
    assert!(
        !f.host
            .course(DEMO_COURSE)
            .unwrap()
            .partition(EXPLANATION)
            .unwrap()
            .forced
            .contains_key("qa-2")
    );
}

#[test]
fn the_enrollment_window_includes_its_start_and_excludes_its_end() {
    let f = Fixture::demo();
    f.host
        .update_experiment(DEMO_COURSE, EXPLANATION, |p| {
            p.enrollment_start = Some("2026-01-01T00:00:00Z".into());
            p.enrollment_end = Some("2026-02-01T00:00:00Z".into());
            Ok(())
        })
        .unwrap();
    let dates = [
        ("at-start", "2026-01-01T00:00:00Z", true),
        ("before-start", "2025-12-31T23:59:59Z", false),
        ("inside", "2026-01-15", true),
        ("just-before-end", "2026-01-31T23:59:59.999Z", true),
        ("at-end", "2026-02-01T00:00:00Z", false),
    ];
    let records: Vec<(String, String)> = dates
        .iter()
        .map(|(u, d, _)| (u.to_string(), d.to_string()))
        .collect();
    assert_eq!(f.host.set_enrollments(DEMO_COURSE, &records).unwrap(), 5);
    for (user, _, inside) in dates {
        let out = f.learner_unit(user);
        if inside {
            assert_eq!(
                status(&out, EXPLANATION),
                Some(ExperimentStatus::Enrolled),
                "{user}"
            );
            assert!(stored(&f, user, EXPLANATION).is_some(), "{user}");
        } else {
            assert_eq!(explanation_shown(&out), 0, "{user}");
            assert_eq!(
                status(&out, EXPLANATION),
                Some(ExperimentStatus::OutsideEnrollmentWindow),
                "{user}"
            );
            assert_eq!(stored(&f, user, EXPLANATION), None, "{user}");
        }
    }
    // No enrollment record: treated as enrolling now (2026-11 and later), after the window.
    let out = f.learner_unit("never-enrolled");
    assert_eq!(
        status(&out, EXPLANATION),
        Some(ExperimentStatus::OutsideEnrollmentWindow)
    );

    // A bad date is refused with the user named, and nothing of the batch is stored.
    let err = f
        .host
        .set_enrollments(
            DEMO_COURSE,
            &[
                ("ok-user".into(), "2026-01-10".into()),
                ("bad-user".into(), "2026-01-32".into()),
            ],
        )
        .unwrap_err();
    assert!(format!("{err:#}").contains("bad-user"), "{err:#}");
    assert_eq!(
        f.host.storage().enrollment(DEMO_COURSE, "ok-user").unwrap(),
        None
    );

    // An invalid window date is an error when the course is loaded; the old one stays.
    let mut doc = demo_course();
    doc.user_partitions[0].enrollment_start = Some("next tuesday".into());
    let err = f.host.load_course(doc).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("user partition 0")
            && msg.contains("enrollment_start")
            && msg.contains("next tuesday"),
        "{msg}"
    );
    let kept = f.host.course(DEMO_COURSE).unwrap();
    assert_eq!(
        kept.partition(0).unwrap().enrollment_start.as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
}

#[test]
fn course_unaware_bucketing_gives_the_same_group_in_every_run() {
    let f = Fixture::demo();
    let run = |key: &str, bucketing: Bucketing| {
        let mut doc = demo_course();
        doc.course_key = key.into();
        doc.user_partitions[0].bucketing = bucketing;
        f.host.load_course(doc).unwrap();
    };
    let group = |key: &str, id: &str| {
        f.render(key, "unit_1", User::learner(id), View::Student)
            .assignments[&EXPLANATION]
    };
    let (aware_a, aware_b) = (
        "course-v1:xbhost+demo+aware_1",
        "course-v1:xbhost+demo+aware_2",
    );
    let (unaware_a, unaware_b) = ("course-v1:xbhost+demo+run_1", "course-v1:xbhost+demo+run_2");
    run(aware_a, Bucketing::CourseAware);
    run(aware_b, Bucketing::CourseAware);
    run(unaware_a, Bucketing::CourseUnaware);
    run(unaware_b, Bucketing::CourseUnaware);
    let n = 300;
    let aware_same = (0..n)
        .filter(|&i| group(aware_a, &learner(i)) == group(aware_b, &learner(i)))
        .count();
    let unaware_same = (0..n)
        .filter(|&i| group(unaware_a, &learner(i)) == group(unaware_b, &learner(i)))
        .count();
    assert_eq!(
        unaware_same, n,
        "course-unaware: the same group in every run"
    );
    // Course-aware runs draw independently: about half agree (binomial(300, 0.5): 150 ± 26
    // at four standard deviations).
    assert!(
        (124..=176).contains(&aware_same),
        "course-aware runs agree for {aware_same} of {n}"
    );
    // Course-unaware groups are still uniform.
    let video = (0..n)
        .filter(|&i| group(unaware_a, &learner(i)) == 1)
        .count();
    assert!(
        (124..=176).contains(&video),
        "{video} of {n} in the video group"
    );
}

#[test]
fn an_anonymous_visitors_groups_carry_over_to_a_user_who_has_none() {
    let f = Fixture::demo();
    let visit = |session: &str| {
        let out = f.render(
            DEMO_COURSE,
            "unit_1",
            User::anonymous(session),
            View::Student,
        );
        assert!(out.failures.is_empty(), "{:?}", out.failures);
        out
    };
    // A visitor is assigned by session id and stored under it.
    let anon = visit("sess-1");
    let anon_group = anon.assignments[&EXPLANATION];
    assert_eq!(
        stored(&f, "anon:sess-1", EXPLANATION),
        Some(anon_group.to_string())
    );

    // Signing in as a user with no groups: the visitor's groups become the user's.
    let events_before = f.events.events().len();
    let carried = f.host.refresh_identifier("sess-1", "new-user").unwrap();
    assert!(
        carried
            .iter()
            .any(|c| c.partition_id == EXPLANATION && c.carried)
    );
    assert_eq!(
        stored(&f, "new-user", EXPLANATION),
        Some(anon_group.to_string())
    );
    assert_eq!(
        stored(&f, "anon:sess-1", EXPLANATION),
        None,
        "counted once, as the user"
    );
    let events = &f.events.events()[events_before..];
    let carried_event = events
        .iter()
        .find(|e| e.name == ASSIGNED_EVENT && e.data["partition_id"] == EXPLANATION)
        .expect("the user's first assignment is an event");
    assert_eq!(carried_event.user_id, "new-user");
    assert_eq!(carried_event.data["carried_over_from"], "anon:sess-1");
    assert_eq!(
        f.learner_unit("new-user").assignments[&EXPLANATION],
        anon_group
    );

    // A user who already has a group keeps it; the visitor's is dropped.
    let mine = f.learner_unit("old-user").assignments[&EXPLANATION];
    let session = (0..100)
        .map(|i| format!("sess-x{i}"))
        .find(|s| visit(s).assignments[&EXPLANATION] != mine)
        .expect("some session draws the other group");
    let events_before = f.events.events().len();
    let carried = f.host.refresh_identifier(&session, "old-user").unwrap();
    let c = carried
        .iter()
        .find(|c| c.partition_id == EXPLANATION)
        .unwrap();
    assert!(!c.carried);
    assert_eq!(c.user_group, mine.to_string());
    assert_eq!(stored(&f, "old-user", EXPLANATION), Some(mine.to_string()));
    assert_eq!(stored(&f, &format!("anon:{session}"), EXPLANATION), None);
    assert!(
        f.events.events()[events_before..]
            .iter()
            .all(|e| !(e.name == ASSIGNED_EVENT && e.data["partition_id"] == EXPLANATION)),
        "no assignment event when the user's own group wins"
    );
}

#[test]
fn bots_see_control_are_never_enrolled_and_send_no_events() {
    let f = Fixture::demo();
    let events_before = f.events.events().len();
    let mut request = RenderRequest::new(
        DEMO_COURSE,
        "unit_1",
        User::learner("crawler"),
        View::Student,
    );
    request.user_agent =
        Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)".into());
    let out = f.host.render(&request).unwrap();
    assert!(out.failures.is_empty());
    assert_eq!(explanation_shown(&out), 0);
    assert_eq!(status(&out, EXPLANATION), Some(ExperimentStatus::Bot));
    assert_eq!(status(&out, HINTS), Some(ExperimentStatus::Bot));
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(f.events.events().len(), events_before);
    assert_eq!(stored(&f, "crawler", EXPLANATION), None);
    assert_eq!(stored(&f, "crawler", HINTS), None);
    // The same user with a browser's user agent is an ordinary learner.
    request.user_agent =
        Some("Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0".into());
    let out = f.host.render(&request).unwrap();
    assert_eq!(status(&out, EXPLANATION), Some(ExperimentStatus::Enrolled));
    assert!(exposures(&out) > 0);
}

#[test]
fn masquerade_shows_a_learners_or_a_chosen_group_and_writes_nothing() {
    let f = Fixture::demo();
    let target = "masq-target";
    let own = f.learner_unit(target);
    let group = own.assignments[&EXPLANATION];
    let tags_before = f.host.storage().course_tags(DEMO_COURSE, target).unwrap();
    let events_before = f.events.events().len();

    let as_learner = |who: &str| {
        let mut r =
            RenderRequest::new(DEMO_COURSE, "unit_1", User::staff("staff-1"), View::Student);
        r.masquerade = Some(Masquerade::Learner(who.into()));
        f.host.render(&r).unwrap()
    };
    let out = as_learner(target);
    assert_eq!(
        out.visible_blocks, own.visible_blocks,
        "exactly the learner's view"
    );
    assert_eq!(out.assignments, own.assignments);
    // A learner with no group yet: shown the group they would get, nothing stored.
    let out = as_learner("masq-fresh");
    assert_eq!(
        status(&out, EXPLANATION),
        Some(ExperimentStatus::WouldBeAssigned)
    );
    assert_eq!(
        out.assignments[&EXPLANATION],
        f.host
            .assignment(DEMO_COURSE, EXPLANATION, "masq-fresh")
            .unwrap()
            .group
            .unwrap()
            .id
    );
    assert!(
        f.host
            .storage()
            .course_tags(DEMO_COURSE, "masq-fresh")
            .unwrap()
            .is_empty()
    );

    // Viewing as a chosen group.
    let other = 1 - group;
    let mut r = RenderRequest::new(DEMO_COURSE, "unit_1", User::staff("staff-1"), View::Student);
    r.masquerade = Some(Masquerade::Groups(BTreeMap::from([(EXPLANATION, other)])));
    let out = f.host.render(&r).unwrap();
    assert_eq!(explanation_shown(&out), other);
    assert_eq!(status(&out, EXPLANATION), Some(ExperimentStatus::ViewedAs));

    // Nothing written, no event sent, by any of it.
    assert_eq!(
        f.host.storage().course_tags(DEMO_COURSE, target).unwrap(),
        tags_before
    );
    assert!(
        f.host
            .storage()
            .course_tags(DEMO_COURSE, "staff-1")
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.events.events().len(), events_before);

    // Learners may not masquerade.
    let mut r = RenderRequest::new(
        DEMO_COURSE,
        "unit_1",
        User::learner("sneaky"),
        View::Student,
    );
    r.masquerade = Some(Masquerade::Learner(target.into()));
    let err = f.host.render(&r).unwrap_err();
    assert!(format!("{err:#}").contains("only staff"), "{err:#}");
}

#[test]
fn every_event_of_a_page_carries_membership_and_tags_read_once() {
    let storage = Arc::new(InstrumentedStorage::temporary());
    let events = Arc::new(MemorySink::default());
    let host = Host::new(storage.clone(), events.clone(), patient_config()).unwrap();
    for p in ["html", "vertical", "split_test", "problem"] {
        host.add_plugin(&plugin_wasm(p), None).unwrap();
    }
    host.load_course(demo_course()).unwrap();
    storage
        .inner
        .set_course_tag(DEMO_COURSE, "tagged", "cohort_hint", "evening")
        .unwrap();
    let reads = storage
        .course_tag_reads
        .load(std::sync::atomic::Ordering::SeqCst);
    let out = host
        .render(&RenderRequest::new(
            DEMO_COURSE,
            "unit_1",
            User::learner("tagged"),
            View::Student,
        ))
        .unwrap();
    assert!(out.failures.is_empty());
    // Three split tests and the event decoration: one read of the learner's course tags.
    assert_eq!(
        storage
            .course_tag_reads
            .load(std::sync::atomic::Ordering::SeqCst)
            - reads,
        1
    );
    let explanation = out.assignments[&EXPLANATION];
    let hints = out.assignments[&HINTS];
    // Two assignments (one per partition) and the exposures of the visible conditions.
    assert_eq!(
        out.events
            .iter()
            .filter(|e| e.name == ASSIGNED_EVENT)
            .count(),
        2
    );
    assert!(exposures(&out) >= 2);
    let names = ["Explanation style", "Hints"];
    for e in &out.events {
        assert_eq!(e.experiments.enrolled, names, "{}", e.name);
        let course = host.course(DEMO_COURSE).unwrap();
        assert_eq!(
            e.experiments.assigned["Explanation style"],
            course
                .partition(EXPLANATION)
                .unwrap()
                .group(explanation)
                .unwrap()
                .name
        );
        assert_eq!(
            e.experiments.assigned["Hints"],
            course.partition(HINTS).unwrap().group(hints).unwrap().name
        );
        // The tags are the request's view, including its own assignments.
        assert_eq!(e.course_tags["cohort_hint"], "evening");
        assert_eq!(
            e.course_tags[&partition_tag_key(EXPLANATION)],
            explanation.to_string()
        );
        assert_eq!(e.course_tags[&partition_tag_key(HINTS)], hints.to_string());
        assert_eq!(e.user_id, "tagged");
    }
    assert_eq!(
        events.events(),
        out.events,
        "what the sink got is what the page sent"
    );
    // A second visit sends exposures again but no assignment.
    let again = host
        .render(&RenderRequest::new(
            DEMO_COURSE,
            "unit_1",
            User::learner("tagged"),
            View::Student,
        ))
        .unwrap();
    assert_eq!(
        again
            .events
            .iter()
            .filter(|e| e.name == ASSIGNED_EVENT)
            .count(),
        0
    );
    assert_eq!(exposures(&again), exposures(&out));
}

#[test]
fn a_condition_that_fails_is_not_an_exposure() {
    let f = Fixture::with_plugins(&["html", "vertical", "split_test", "panicker"]);
    let doc: xbhost::model::CourseDoc = serde_json::from_value(serde_json::json!({
        "course_key": "course-v1:x+fails+1",
        "user_partitions": [{"id": 0, "name": "P", "groups": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}]}],
        "blocks": [
            {"usage_id": "page", "type": "vertical", "children": ["exp", "ok"]},
            {"usage_id": "exp", "type": "split_test",
             "fields": {"user_partition_id": 0, "group_id_to_child": {"0": "broken_a", "1": "broken_b"}},
             "children": ["broken_a", "broken_b"]},
            {"usage_id": "broken_a", "type": "panicker"},
            {"usage_id": "broken_b", "type": "panicker"},
            {"usage_id": "ok", "type": "html", "fields": {"data": "<p>ok</p>"}}
        ]
    }))
    .unwrap();
    f.host.load_course(doc).unwrap();
    let out = f.render(
        "course-v1:x+fails+1",
        "page",
        User::learner("l"),
        View::Student,
    );
    assert_eq!(out.failures.len(), 1, "{:?}", out.failures);
    assert!(out.failures[0].usage_id.starts_with("broken_"));
    assert!(
        out.events.iter().any(|e| e.name == ASSIGNED_EVENT),
        "still assigned"
    );
    assert_eq!(
        exposures(&out),
        0,
        "the learner saw a placeholder, not the condition"
    );
    assert!(out.visible_blocks.contains(&"ok".to_string()));
}
