use serde_json::json;
use xbhost_sdk::View;
use xbhost_sdk::testing::TestHost;

use super::{FREEFORM_EVENT, LIKERT_EVENT, MAX_FREEFORM_BYTES, Rate, State, draw};

fn stored(host: &TestHost) -> Option<State> {
    host.stored_state()
        .map(|s| serde_json::from_str(&s).unwrap())
}

#[test]
fn renders_the_xblocks_default_prompt_and_scale() {
    let host = TestHost::new("rate", "r1");
    let f = host.render::<Rate>(View::Student).unwrap();
    assert!(!f.hidden);
    assert!(
        f.html
            .contains("What could be improved to make this section more clear?")
    );
    assert!(f.html.contains("Was this section clear or confusing?"));
    for (i, level) in ["Excellent", "Good", "Average", "Fair", "Poor"]
        .iter()
        .enumerate()
    {
        assert!(f.html.contains(&format!("value=\"{i}\">")), "{}", f.html);
        assert!(f.html.contains(&format!("title=\"{level}\"")));
    }
    assert!(f.html.contains("😁"));
    assert!(f.html.contains("data-handler=\"feedback\""));
    assert!(!f.html.contains("checked"), "no vote yet");
    // The box comes before the scale, so the page posts [text, vote].
    assert!(f.html.find("<textarea").unwrap() < f.html.find("type=\"radio\"").unwrap());
}

#[test]
fn renders_authored_prompts_and_the_learners_answer_escaped() {
    let host = TestHost::new("rate", "r1")
        .fields(
            json!({"prompts": [{"freeform": "Say <more>", "likert": "Rate it",
            "mouseovers": ["Yes", "No"], "icons": ["+", "-", "unused"]}]}),
        )
        .with_state(json!({"user_vote": 1, "user_freeform": "</textarea><b>"}).to_string());
    let f = host.render::<Rate>(View::Student).unwrap();
    assert!(f.html.contains("Say &lt;more&gt;"));
    assert!(
        f.html.contains(">&lt;/textarea&gt;&lt;b&gt;</textarea>"),
        "{}",
        f.html
    );
    assert!(f.html.contains("value=\"1\" checked>"));
    assert!(
        !f.html.contains("value=\"2\""),
        "the scale is as long as the shorter list"
    );
    assert!(f.html.contains("Thank you"));
}

#[test]
fn p_shows_the_block_to_that_share_of_learners_stickily() {
    let shown = |p: f64, user: &str| {
        let host = TestHost::new("rate", "r1")
            .fields(json!({"p": p}))
            .username(user);
        !host.render::<Rate>(View::Student).unwrap().hidden
    };
    assert!(shown(100.0, "a") && !shown(0.0, "a"));
    let seen = (0..400)
        .filter(|i| {
            let (_, percentile) = draw("course", "r1", &format!("learner-{i}"), 1).unwrap();
            percentile < 50.0
        })
        .count();
    assert!((150..250).contains(&seen), "{seen} of 400 at p=50");
    assert_eq!(draw("c", "r1", "u", 3), draw("c", "r1", "u", 3));
    assert_eq!(draw("c", "r1", "u", 0), None);
    // Staff see a block the learner they render for would not, with a note.
    let host = TestHost::new("rate", "r1").fields(json!({"p": 0}));
    let f = host.render::<Rate>(View::Staff).unwrap();
    assert!(!f.hidden && f.html.contains("probability 0%"), "{}", f.html);
}

#[test]
fn the_page_form_stores_the_answer_and_publishes_the_xblock_events() {
    let host = TestHost::new("rate", "r1");
    let answer = host
        .handle::<Rate>("feedback", json!({"answer": ["Needs examples", 3]}))
        .unwrap();
    assert_eq!(answer["vote"], 3);
    assert_eq!(
        stored(&host),
        Some(State {
            user_vote: 3,
            user_freeform: "Needs examples".into()
        })
    );
    assert_eq!(
        host.events(),
        vec![
            (
                FREEFORM_EVENT.into(),
                json!({"old_freeform": "", "new_freeform": "Needs examples"})
            ),
            (LIKERT_EVENT.into(), json!({"old_vote": -1, "new_vote": 3})),
        ]
    );
    // The same text again with a new vote: only the vote changed.
    host.handle::<Rate>("feedback", json!({"answer": ["Needs examples", 0]}))
        .unwrap();
    assert_eq!(host.events().len(), 3);
    assert_eq!(
        host.events()[2],
        (LIKERT_EVENT.into(), json!({"old_vote": 3, "new_vote": 0}))
    );
    // The XBlock's own payload; a number-only box arrives as a number.
    host.handle::<Rate>("feedback", json!({"freeform": "ok"}))
        .unwrap();
    host.handle::<Rate>("feedback", json!({"answer": [42]}))
        .unwrap();
    assert_eq!(
        stored(&host).unwrap(),
        State {
            user_vote: 0,
            user_freeform: "42".into()
        }
    );
}

#[test]
fn bad_payloads_are_refused_and_store_nothing() {
    let host = TestHost::new("rate", "r1");
    for (bad, why) in [
        (json!({"answer": ["x", 5]}), "not on the scale"),
        (json!({"vote": -1}), "not on the scale"),
        (json!({"answer": ["", 1.5]}), "feedback expects"),
        (json!({"answer": []}), "feedback expects"),
        (json!({"answer": ["a", 1, 2]}), "feedback expects"),
        (json!({"answer": [null]}), "feedback expects"),
        (json!({"answer": ["a"], "vote": 1}), "feedback expects"),
        (json!({"freeform": 3}), "feedback expects"),
        (json!({"vote": "2"}), "feedback expects"),
        (json!({"other": 1}), "feedback expects"),
        (json!("text"), "feedback expects"),
        (json!({"answer": [""]}), "nothing to submit"),
        (json!({}), "nothing to submit"),
        (
            json!({"freeform": "x".repeat(MAX_FREEFORM_BYTES + 1)}),
            "over the limit",
        ),
    ] {
        let err = host.handle::<Rate>("feedback", bad.clone()).unwrap_err();
        assert!(err.0.contains(why), "{bad}: {err}");
    }
    assert!(host.handle::<Rate>("vote", json!({"vote": 1})).is_err());
    assert_eq!(host.stored_state(), None);
    assert!(host.events().is_empty());
}

#[test]
fn no_prompts_is_an_error_naming_the_block() {
    let host = TestHost::new("rate", "r1").fields(json!({"prompts": []}));
    let err = host.render::<Rate>(View::Student).unwrap_err();
    assert!(err.0.contains("\"r1\" has no prompts"), "{err}");
    assert_eq!(host.validate::<Rate>().len(), 1);
}
