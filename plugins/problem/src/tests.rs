//! Native unit tests of the problem block, through the SDK's in-memory host.

use serde_json::{Value, json};
use xbhost_sdk::View;
use xbhost_sdk::testing::TestHost;

use super::Problem;

fn host(fields: Value) -> TestHost {
    TestHost::new("problem", "p1").fields(fields)
}

fn submit(h: &TestHost, payload: Value) -> Result<Value, String> {
    h.handle::<Problem>("submit", payload).map_err(|e| e.0)
}

fn grade(h: &TestHost) -> Value {
    h.handle::<Problem>("grade", json!(null)).unwrap()
}

/// A problem of one response of the given kind.
fn one(response: Value) -> Value {
    json!({"body": ["<p>Q</p>", {"response": 0}], "responses": [response]})
}

fn checkbox() -> TestHost {
    host(json!({
        "display_name": "Checks",
        "question": "<p>Pick the even numbers</p>",
        "kind": "checkbox",
        "choices": [{"text": "1"}, {"text": "2", "correct": true}, {"text": "4", "correct": true}],
        "weight": 2.0
    }))
}

#[test]
fn older_layout_checkbox_scores_all_or_nothing_and_publishes_problem_check() {
    let h = checkbox();
    let wrong = submit(&h, json!({"answer": [1]})).unwrap();
    assert_eq!(
        wrong,
        json!({"correct": false, "score": 0.0, "max_score": 2.0, "attempts": 1})
    );
    let right = submit(&h, json!({"answer": [2, 1]})).unwrap();
    assert_eq!(
        right,
        json!({"correct": true, "score": 2.0, "max_score": 2.0, "attempts": 2})
    );
    let events = h.events();
    assert_eq!(events.len(), 2);
    let (name, data) = &events[1];
    assert_eq!(name, "problem_check");
    for field in [
        "answers",
        "attempts",
        "correct_map",
        "grade",
        "max_grade",
        "problem_id",
        "state",
        "submission",
        "success",
    ] {
        assert!(
            data.get(field).is_some(),
            "problem_check lacks {field}: {data}"
        );
    }
    assert_eq!(data["correct"], true);
    assert_eq!(data["success"], "correct");
    assert_eq!(data["answers"]["p1_2_1"], json!(["choice_1", "choice_2"]));
    assert_eq!(data["correct_map"]["p1_2_1"]["correctness"], "correct");
    assert_eq!(data["submission"]["p1_2_1"]["answer"], json!(["2", "4"]));
    assert_eq!(
        data["submission"]["p1_2_1"]["response_type"],
        "choiceresponse"
    );
    assert_eq!(
        data["state"]["student_answers"]["p1_2_1"],
        json!(["choice_1"]),
        "the state before"
    );
    assert_eq!(grade(&h)["earned"], 2.0);
    let page = h.render::<Problem>(View::Student).unwrap();
    assert!(page.html.contains("value=\"1\" checked"), "{}", page.html);
    assert!(
        page.html.contains("Correct (2 / 2 points, attempt 2)"),
        "{}",
        page.html
    );
    let stored: Value = serde_json::from_str(&h.stored_state().unwrap()).unwrap();
    assert_eq!(stored["answer"], json!([1, 2]));
}

#[test]
fn grade_follows_the_current_weight() {
    let h = checkbox();
    submit(&h, json!({"answer": [1, 2]})).unwrap();
    let reweighted = TestHost::new("problem", "p1")
        .fields(json!({"kind": "checkbox", "weight": 0.5, "choices": [{"text": "1"}, {"text": "2", "correct": true}, {"text": "4", "correct": true}]}))
        .with_state(h.stored_state().unwrap());
    assert_eq!(
        grade(&reweighted),
        json!({"earned": 0.5, "possible": 0.5, "answered": true})
    );
}

#[test]
fn bad_payloads_are_refused_and_store_nothing() {
    let h = checkbox();
    assert!(
        submit(&h, json!({"answer": [7]}))
            .unwrap_err()
            .contains("choice 7 does not exist")
    );
    assert!(submit(&h, json!({"nope": 1})).is_err());
    assert!(submit(&h, json!({"answer": []})).is_err());
    assert!(submit(&h, json!("text")).is_err());
    assert!(
        submit(&h, json!({"answers": {"p1_9_1": [1]}}))
            .unwrap_err()
            .contains("does not exist")
    );
    assert!(submit(&h, json!({"answers": [1]})).is_err());
    assert!(h.stored_state().is_none());
    assert!(h.events().is_empty());
    assert_eq!(
        grade(&h),
        json!({"earned": 0.0, "possible": 2.0, "answered": false})
    );

    let n = host(one(json!({"type": "numerical", "answer": "600"})));
    assert!(
        submit(&n, json!({"answer": "six hundred"}))
            .unwrap_err()
            .contains("Could not interpret")
    );
    assert!(submit(&n, json!({"answer": "1+".repeat(600)})).is_err());
    assert!(submit(&n, json!({"answer": {"x": 1}})).is_err());
    let mut two = one(json!({"type": "numerical", "answer": "1"}));
    two["responses"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "numerical", "answer": "2"}));
    let t = host(two);
    assert!(
        submit(&t, json!({"answer": "1"}))
            .unwrap_err()
            .contains("2 inputs")
    );
    assert!(n.stored_state().is_none() && t.stored_state().is_none());
}

#[test]
fn multiple_choice_takes_one_answer_limits_attempts_and_shows_its_hint() {
    let h = host(json!({
        "question": "2+2?",
        "choices": [{"text": "3", "hint": "Count again."}, {"text": "4", "correct": true}],
        "max_attempts": 2
    }));
    assert!(submit(&h, json!({"answer": [0, 1]})).is_err());
    assert_eq!(
        submit(&h, json!({"answer": "choice_0"})).unwrap()["correct"],
        false
    );
    assert!(
        h.render::<Problem>(View::Student)
            .unwrap()
            .html
            .contains("Count again.")
    );
    assert_eq!(submit(&h, json!({"answer": 1})).unwrap()["correct"], true);
    assert!(
        submit(&h, json!({"answer": 1}))
            .unwrap_err()
            .contains("no attempts left")
    );
    assert!(
        h.render::<Problem>(View::Student)
            .unwrap()
            .html
            .contains("<button type=\"submit\" disabled>")
    );
}

#[test]
fn dropdowns_grade_the_option_text_and_refuse_other_text() {
    let h = host(one(json!({"type": "option", "options": [
        {"text": "Sydney", "hint": "Not the capital."}, {"text": "Canberra", "correct": true}]})));
    assert!(
        submit(&h, json!({"answer": "Paris"}))
            .unwrap_err()
            .contains("not one of the options")
    );
    assert_eq!(
        submit(&h, json!({"answer": "Sydney"})).unwrap()["correct"],
        false
    );
    let page = h.render::<Problem>(View::Student).unwrap().html;
    assert!(
        page.contains("<select name=\"p1_2_1\">")
            && page.contains("<option value=\"Sydney\" selected>"),
        "{page}"
    );
    assert!(page.contains("Not the capital."));
    assert_eq!(
        submit(&h, json!({"answers": {"p1_2_1": "Canberra"}})).unwrap()["correct"],
        true
    );
}

#[test]
fn numerical_tolerance_absolute_percent_and_default_edges() {
    let abs = host(one(
        json!({"type": "numerical", "answer": "600", "tolerance": "5"}),
    ));
    assert_eq!(
        submit(&abs, json!({"answer": 605})).unwrap()["correct"],
        true
    );
    assert_eq!(
        submit(&abs, json!({"answer": "595"})).unwrap()["correct"],
        true
    );
    assert_eq!(
        submit(&abs, json!({"answer": "605.01"})).unwrap()["correct"],
        false
    );
    assert_eq!(
        submit(&abs, json!({"answer": "120*5"})).unwrap()["correct"],
        true,
        "an expression"
    );
    let pct = host(one(
        json!({"type": "numerical", "answer": "200", "tolerance": "5%"}),
    ));
    assert_eq!(
        submit(&pct, json!({"answer": "210"})).unwrap()["correct"],
        true
    );
    assert_eq!(
        submit(&pct, json!({"answer": "210.5"})).unwrap()["correct"],
        false
    );
    let exact = host(one(json!({"type": "numerical", "answer": "12"})));
    assert_eq!(
        submit(&exact, json!({"answer": "12.00001"})).unwrap()["correct"],
        true,
        "0.001% default"
    );
    assert_eq!(
        submit(&exact, json!({"answer": "12.01"})).unwrap()["correct"],
        false
    );
}

#[test]
fn numerical_ranges_partial_credit_and_additional_answers() {
    let r = host(one(json!({"type": "numerical", "answer": "[1, 5)"})));
    assert_eq!(
        submit(&r, json!({"answer": "1"})).unwrap()["correct"],
        true,
        "[ includes"
    );
    assert_eq!(
        submit(&r, json!({"answer": "4.99"})).unwrap()["correct"],
        true
    );
    assert_eq!(
        submit(&r, json!({"answer": "5"})).unwrap()["correct"],
        false,
        ") excludes"
    );
    assert_eq!(
        submit(&r, json!({"answer": "0.5"})).unwrap()["correct"],
        false
    );
    let list = host(
        json!({"body": [{"response": 0}], "weight": 2, "responses": [
        {"type": "numerical", "answer": "2", "partial_credit": ["list"], "partial_answers": ["1"]}]}),
    );
    let half = submit(&list, json!({"answer": "1"})).unwrap();
    assert_eq!(
        (half["correct"].clone(), half["score"].clone()),
        (json!(false), json!(1.0))
    );
    let stored: Value = serde_json::from_str(&list.stored_state().unwrap()).unwrap();
    assert_eq!(
        stored["correct_map"]["p1_2_1"]["correctness"],
        "partially-correct"
    );
    assert!(
        list.render::<Problem>(View::Student)
            .unwrap()
            .html
            .contains("Partially correct (1 / 2 points")
    );
    let close = host(one(
        json!({"type": "numerical", "answer": "10", "tolerance": "1", "partial_credit": ["close"]}),
    ));
    assert_eq!(
        submit(&close, json!({"answer": "11.5"})).unwrap()["score"],
        0.5
    );
    let extra = host(one(
        json!({"type": "numerical", "answer": "3", "additional_answers": ["7"]}),
    ));
    assert_eq!(
        submit(&extra, json!({"answer": "7"})).unwrap()["correct"],
        true
    );
}

#[test]
fn text_answers_case_additional_answers_and_regexp() {
    let ci = host(one(
        json!({"type": "string", "answers": ["Doc", "Sleepy"], "case_insensitive": true}),
    ));
    assert_eq!(
        submit(&ci, json!({"answer": "  sleepy "})).unwrap()["correct"],
        true
    );
    assert_eq!(
        submit(&ci, json!({"answer": "Grumpy"})).unwrap()["correct"],
        false
    );
    let cs = host(one(json!({"type": "string", "answers": ["Doc"]})));
    assert_eq!(
        submit(&cs, json!({"answer": "doc"})).unwrap()["correct"],
        false
    );
    assert_eq!(
        submit(&cs, json!({"answer": "Doc"})).unwrap()["correct"],
        true
    );
    let re = host(one(
        json!({"type": "string", "answers": ["..bble"], "case_insensitive": true, "regexp": true}),
    ));
    assert_eq!(
        submit(&re, json!({"answer": "BUBBLE"})).unwrap()["correct"],
        true
    );
    assert_eq!(
        submit(&re, json!({"answer": "bubbles"})).unwrap()["correct"],
        false,
        "anchored"
    );
    assert_eq!(
        submit(&re, json!({"answer": "x".repeat(1000)})).unwrap()["correct"],
        false
    );
    assert!(
        submit(&re, json!({"answer": "x".repeat(1001)}))
            .unwrap_err()
            .contains("longer than")
    );
    let bad = host(one(
        json!({"type": "string", "answers": ["(unclosed"], "regexp": true}),
    ));
    assert!(
        bad.validate::<Problem>()
            .iter()
            .any(|m| m.text.contains("does not compile"))
    );
    assert!(
        submit(&bad, json!({"answer": "x"}))
            .unwrap_err()
            .contains("does not compile")
    );
    let huge = host(one(
        json!({"type": "string", "answers": ["(a{1000}){1000}"], "regexp": true}),
    ));
    assert!(
        submit(&huge, json!({"answer": "a"})).is_err(),
        "over the size limit"
    );
    assert!(bad.stored_state().is_none() && huge.stored_state().is_none());
}

#[test]
fn formulas_are_compared_at_the_samples() {
    let f = json!({"type": "formula", "answer": "(rho*omega^2)/E*(L^3/3 + (R*L^2)/2)",
        "samples": "R,omega,E,rho,L@0.1,0.1,0.1,0.1,0.1:10,10,10,10,10#10", "tolerance": "1%", "case_sensitive": true});
    let h = host(one(f.clone()));
    assert_eq!(
        submit(&h, json!({"answer": "rho*omega^2*L^2*(2*L+3*R)/(6*E)"})).unwrap()["correct"],
        true
    );
    assert_eq!(
        submit(&h, json!({"answer": "rho*omega^2*L^3/(3*E)"})).unwrap()["correct"],
        false
    );
    assert!(
        submit(&h, json!({"answer": "rho*omega^2*x"}))
            .unwrap_err()
            .contains("unknown variable")
    );
    assert_eq!(
        h.stored_state()
            .map(|s| serde_json::from_str::<Value>(&s).unwrap()["attempts"].clone()),
        Some(json!(2))
    );
    // Case: a case-insensitive formula folds names; a case-sensitive one does not.
    let ci = host(one(
        json!({"type": "formula", "answer": "x^2", "samples": "x@1:5#5"}),
    ));
    assert_eq!(
        submit(&ci, json!({"answer": "X*X"})).unwrap()["correct"],
        true
    );
    let cs = host(one(
        json!({"type": "formula", "answer": "x^2", "samples": "x@1:5#5", "case_sensitive": true}),
    ));
    assert!(submit(&cs, json!({"answer": "X*X"})).is_err());
    let bad = host(one(
        json!({"type": "formula", "answer": "x", "samples": "x@1:5#100000"}),
    ));
    assert!(
        bad.validate::<Problem>()
            .iter()
            .any(|m| m.text.contains("samples"))
    );
}

#[test]
fn formula_samples_are_deterministic_per_seed_and_in_range() {
    let samples = crate::responses::formula::parse_samples("x,y@1,10:5,20#10").unwrap();
    let a = crate::responses::formula::points(&samples, 7);
    assert_eq!(a, crate::responses::formula::points(&samples, 7));
    assert_ne!(a, crate::responses::formula::points(&samples, 8));
    assert!(
        a.iter()
            .all(|p| (1.0..=5.0).contains(&p["x"]) && (10.0..=20.0).contains(&p["y"]))
    );
}

#[test]
fn image_rectangles_and_regions() {
    let h = host(one(
        json!({"type": "image", "images": [{"src": "a.png", "rectangle": "(338,98)-(412,168);(0,0)-(10,10)"}]}),
    ));
    assert_eq!(
        submit(&h, json!({"answer": "[338,98]"})).unwrap()["correct"],
        true,
        "edges count"
    );
    assert_eq!(
        submit(&h, json!({"answer": "5,5"})).unwrap()["correct"],
        true,
        "second rectangle"
    );
    assert_eq!(
        submit(&h, json!({"answer": [413, 100]})).unwrap()["correct"],
        false
    );
    assert!(submit(&h, json!({"answer": "here"})).is_err());
    let page = h.render::<Problem>(View::Student).unwrap().html;
    assert!(
        page.contains("data-point-input=\"p1_2_1\"") && page.contains("value=\"[413,100]\""),
        "{page}"
    );
    let r = host(one(
        json!({"type": "image", "images": [{"src": "a.png", "regions": "[[[0,0],[100,0],[0,100]],[[200,200],[300,200],[300,300],[200,300]]]"}]}),
    ));
    assert_eq!(
        submit(&r, json!({"answer": "[10,10]"})).unwrap()["correct"],
        true
    );
    assert_eq!(
        submit(&r, json!({"answer": "[60,60]"})).unwrap()["correct"],
        false,
        "outside the triangle"
    );
    assert_eq!(
        submit(&r, json!({"answer": "[250,250]"})).unwrap()["correct"],
        true
    );
    let single = host(one(
        json!({"type": "image", "images": [{"src": "a.png", "regions": "[[0,0],[10,0],[10,10],[0,10]]"}]}),
    ));
    assert_eq!(
        submit(&single, json!({"answer": "[5,5]"})).unwrap()["correct"],
        true
    );
}

fn multi() -> TestHost {
    host(json!({
        "body": ["<table><tr><td>", {"response": 0}, "</td><td>", {"response": 1}, "</td></tr></table>", {"response": 2}],
        "responses": [
            {"type": "option", "options": [{"text": "Einstein", "correct": true}, {"text": "Newton"}]},
            {"type": "option", "options": [{"text": "Germany", "correct": true}, {"text": "England"}]},
            {"type": "numerical", "answer": "4"}
        ]
    }))
}

#[test]
fn several_inputs_earn_partial_credit_with_a_correct_map_per_input() {
    let h = multi();
    let r = submit(
        &h,
        json!({"answers": {"p1_2_1": "Einstein", "p1_3_1": "England", "p1_4_1": "4"}}),
    )
    .unwrap();
    assert_eq!(r["correct"], false);
    assert_eq!(r["score"], 2.0, "2 of 3 inputs, no weight: one point each");
    assert_eq!(r["max_score"], 3.0);
    let (_, event) = h.events().pop().unwrap();
    assert_eq!(event["correct_map"]["p1_3_1"]["correctness"], "incorrect");
    assert_eq!(event["correct_map"]["p1_2_1"]["correctness"], "correct");
    assert_eq!(
        (event["grade"].clone(), event["max_grade"].clone()),
        (json!(2.0), json!(3.0))
    );
    assert_eq!(
        grade(&h),
        json!({"earned": 2.0, "possible": 3.0, "answered": true})
    );
    // An unanswered input is incorrect; the answered ones are still graded.
    let h2 = multi();
    assert_eq!(
        submit(&h2, json!({"answers": {"p1_4_1": "2*2"}})).unwrap()["score"],
        1.0
    );
    let page = h.render::<Problem>(View::Student).unwrap().html;
    assert!(page.contains("data-answers=\"by-name\"") && page.contains("<select name=\"p1_3_1\">"));
    assert!(page.find("p1_2_1").unwrap() < page.find("p1_3_1").unwrap());
    let weighted = TestHost::new("problem", "p1").fields({
        let mut f = serde_json::to_value(json!({"weight": 6})).unwrap();
        f["body"] = json!([{"response": 0}, {"response": 1}, {"response": 2}]);
        f["responses"] = json!([
                {"type": "option", "options": [{"text": "a", "correct": true}]},
                {"type": "option", "options": [{"text": "a", "correct": true}, {"text": "b"}]},
                {"type": "numerical", "answer": "4"}]);
        f
    });
    assert_eq!(
        submit(
            &weighted,
            json!({"answers": {"p1_2_1": "a", "p1_3_1": "b", "p1_4_1": "4"}})
        )
        .unwrap()["score"],
        4.0
    );
}

#[test]
fn demand_hints_come_one_at_a_time_and_cycle() {
    let mut f = one(json!({"type": "numerical", "answer": "2"}));
    f["hints"] = json!(["first", "second"]);
    let h = host(f);
    let first = h.handle::<Problem>("hint", json!({})).unwrap();
    assert_eq!(
        (
            first["hint_index"].clone(),
            first["should_enable_next_hint"].clone()
        ),
        (json!(0), json!(true))
    );
    assert!(
        h.render::<Problem>(View::Student)
            .unwrap()
            .html
            .contains("Hint (1 of 2): </strong>first")
    );
    let second = h.handle::<Problem>("hint", json!({})).unwrap();
    assert_eq!(second["hint_index"], 1);
    assert!(second["msg"].as_str().unwrap().contains("second"));
    assert_eq!(
        h.handle::<Problem>("hint", json!({})).unwrap()["hint_index"],
        0,
        "cycles as capa"
    );
    let (name, event) = h.events().pop().unwrap();
    assert_eq!(name, "edx.problem.hint.demandhint_displayed");
    assert_eq!(event["hint_len"], 2);
    assert_eq!(grade(&h)["answered"], false, "a hint is not an attempt");
    let none = host(one(json!({"type": "numerical", "answer": "2"})));
    assert!(none.handle::<Problem>("hint", json!({})).is_err());
}

fn with_solution(showanswer: &str, max_attempts: Option<u32>) -> TestHost {
    let mut f = json!({"body": [{"response": 0}, {"solution": 0}], "solutions": ["<p>Because 2.</p>"],
        "responses": [{"type": "numerical", "answer": "2"}], "showanswer": showanswer});
    if let Some(m) = max_attempts {
        f["max_attempts"] = json!(m);
    }
    host(f)
}

fn can_show(h: &TestHost) -> bool {
    h.handle::<Problem>("show_answer", json!({})).is_ok()
}

#[test]
fn showanswer_settings_decide_when_the_solution_shows() {
    let always = with_solution("always", None);
    assert!(
        !always
            .render::<Problem>(View::Student)
            .unwrap()
            .html
            .contains("Because 2.")
    );
    let shown = always.handle::<Problem>("show_answer", json!({})).unwrap();
    assert_eq!(shown["answers"]["p1_2_1"], "2");
    assert!(
        always
            .render::<Problem>(View::Student)
            .unwrap()
            .html
            .contains("Because 2.")
    );
    assert_eq!(always.events().pop().unwrap().0, "showanswer");

    let never = with_solution("never", None);
    submit(&never, json!({"answer": "2"})).unwrap();
    assert!(!can_show(&never));
    assert!(!can_show(&with_solution("never", None)));

    let attempted = with_solution("attempted", None);
    assert!(!can_show(&attempted));
    submit(&attempted, json!({"answer": "3"})).unwrap();
    assert!(can_show(&attempted));

    let answered = with_solution("answered", None);
    submit(&answered, json!({"answer": "3"})).unwrap();
    assert!(!can_show(&answered));
    submit(&answered, json!({"answer": "2"})).unwrap();
    assert!(can_show(&answered));

    let closed = with_solution("closed", Some(1));
    assert!(!can_show(&closed));
    submit(&closed, json!({"answer": "3"})).unwrap();
    assert!(can_show(&closed));

    let finished = with_solution("finished", Some(2));
    submit(&finished, json!({"answer": "3"})).unwrap();
    assert!(!can_show(&finished), "neither correct nor out of attempts");
    submit(&finished, json!({"answer": "2"})).unwrap();
    assert!(can_show(&finished));

    let default = with_solution("", None);
    submit(&default, json!({"answer": "3"})).unwrap();
    assert!(!can_show(&default), "the default is finished");
    let staff = TestHost::new("problem", "p1")
        .staff()
        .fields(json!({"body": [{"response": 0}],
        "responses": [{"type": "numerical", "answer": "2"}], "showanswer": "answered"}));
    assert!(can_show(&staff), "staff see the answer unless it is never");
}

#[test]
fn rerandomize_seeds_per_student_and_on_reset() {
    let f = |r: &str| {
        json!({"body": [{"response": 0}], "rerandomize": r,
        "responses": [{"type": "formula", "answer": "x", "samples": "x@1:5#3"}]})
    };
    let seed = |h: &TestHost| {
        serde_json::from_str::<Value>(&h.stored_state().unwrap()).unwrap()["seed"].clone()
    };
    let never = host(f("never"));
    submit(&never, json!({"answer": "x"})).unwrap();
    assert_eq!(seed(&never), 1);
    assert!(
        never.handle::<Problem>("reset", json!({})).is_err(),
        "no reset button, not randomized"
    );
    let per = seed(&{
        let h = host(f("per_student"));
        submit(&h, json!({"answer": "x"})).unwrap();
        h
    });
    assert!(per.as_u64().unwrap() < 20, "one of capa's 20 bins");
    let again = host(f("per_student"));
    submit(&again, json!({"answer": "x"})).unwrap();
    assert_eq!(
        seed(&again),
        per,
        "the same learner and problem keep one seed"
    );

    let onreset = host(f("onreset"));
    submit(&onreset, json!({"answer": "x"})).unwrap();
    let first = seed(&onreset);
    assert!(onreset.handle::<Problem>("reset", json!({})).is_ok());
    let after: Value = serde_json::from_str(&onreset.stored_state().unwrap()).unwrap();
    assert_ne!(after["seed"], first, "a new seed");
    assert_eq!(after["attempts"], 1, "attempts stay");
    assert!(after["student_answers"].as_object().unwrap().is_empty());
    assert_eq!(onreset.events().pop().unwrap().0, "reset_problem");
    assert!(
        onreset.handle::<Problem>("reset", json!({})).is_err(),
        "nothing submitted since"
    );

    let always = host(f("always"));
    submit(&always, json!({"answer": "x"})).unwrap();
    assert!(
        submit(&always, json!({"answer": "x"}))
            .unwrap_err()
            .contains("must be reset")
    );
    always.handle::<Problem>("reset", json!({})).unwrap();
    assert!(submit(&always, json!({"answer": "x"})).is_ok());
}

#[test]
fn reset_button_follows_show_reset_button_and_max_attempts() {
    let f = json!({"body": [{"response": 0}], "show_reset_button": true, "max_attempts": 2,
        "responses": [{"type": "numerical", "answer": "2"}]});
    let h = host(f);
    assert!(
        h.handle::<Problem>("reset", json!({}))
            .unwrap_err()
            .0
            .contains("submit")
    );
    submit(&h, json!({"answer": "3"})).unwrap();
    assert!(
        h.render::<Problem>(View::Student)
            .unwrap()
            .html
            .contains("data-handler=\"reset\"")
    );
    h.handle::<Problem>("reset", json!({})).unwrap();
    assert_eq!(grade(&h)["earned"], 0.0);
    submit(&h, json!({"answer": "3"})).unwrap();
    assert!(
        h.handle::<Problem>("reset", json!({}))
            .unwrap_err()
            .0
            .contains("closed")
    );
}

#[test]
fn a_state_of_the_older_layout_still_grades() {
    let old =
        json!({"answer": [1], "correct": true, "score": 1.0, "max_score": 1.0, "attempts": 1})
            .to_string();
    let h = TestHost::new("problem", "p1")
        .fields(
            json!({"question": "?", "choices": [{"text": "a"}, {"text": "b", "correct": true}]}),
        )
        .with_state(old);
    assert_eq!(
        grade(&h),
        json!({"earned": 1.0, "possible": 1.0, "answered": true})
    );
    assert!(
        h.render::<Problem>(View::Student)
            .unwrap()
            .html
            .contains("Correct (1 / 1 points, attempt 1)")
    );
}
