//! The workbench end to end in Debian's headless Chromium (driven through its
//! chromedriver): a learner sees exactly their group's condition of each split test and
//! submits a problem; staff see every condition side by side, labelled, their own group
//! highlighted; an admin loads a plugin from a local file and the unit re-renders with it.
//! Screenshots go to `target/test-artifacts/workbench-*.png`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use xbhost_tests::browser::Driver;
use xbhost_tests::served::Served;
use xbhost_tests::{artifacts_dir, demo_course, find_program, plugin_path};

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": find_program(&["chromium", "chromium-browser"]),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1200", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver.url())
        .await
        .expect("a chromium session through chromedriver")
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    std::fs::write(artifacts_dir().join(format!("workbench-{name}.png")), png).unwrap();
}

async fn js(client: &Client, script: &str) -> Value {
    client.execute(script, vec![]).await.unwrap()
}

/// Each split test of the demo unit: its usage id and group id -> child usage id.
fn split_tests() -> Vec<(String, BTreeMap<u64, String>)> {
    demo_course()
        .blocks
        .iter()
        .filter(|b| b.block_type == "split_test")
        .map(|b| {
            let mapping = b.fields["group_id_to_child"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(g, c)| (g.parse().unwrap(), c.as_str().unwrap().to_string()))
                .collect();
            (b.usage_id.clone(), mapping)
        })
        .collect()
}

/// The partition each split test uses.
fn partition_of(split: &str) -> u64 {
    demo_course()
        .blocks
        .iter()
        .find(|b| b.usage_id == split)
        .unwrap()
        .fields["user_partition_id"]
        .as_u64()
        .unwrap()
}

/// Usage ids of the blocks rendered inside a split test, in the live DOM.
async fn rendered_inside(client: &Client, split: &str) -> Vec<String> {
    let found = js(
        client,
        &format!(
            "return Array.from(document.querySelectorAll('#render [data-usage-id=\"{split}\"] [data-usage-id]')).map(e => e.dataset.usageId);"
        ),
    )
    .await;
    serde_json::from_value(found).unwrap()
}

/// The groups the side panel lists: partition id -> group id.
async fn panel_groups(client: &Client) -> BTreeMap<u64, u64> {
    let rows = js(
        client,
        "return Array.from(document.querySelectorAll('table.assignments tr[data-partition-id]')).map(r => [Number(r.dataset.partitionId), Number(r.dataset.groupId)]);",
    )
    .await;
    let rows: Vec<(u64, u64)> = serde_json::from_value(rows).unwrap();
    rows.into_iter().collect()
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn type_into(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// The dev sign-in's named form: this user id with this role in every course.
async fn sign_in_as(client: &Client, user: &str, role: &str) {
    type_into(client, "form#named-user input[name='user']", user).await;
    click(
        client,
        &format!("form#named-user select[name='role'] option[value='{role}']"),
    )
    .await;
    click(client, "form#named-user button").await;
}

async fn sign_out(client: &Client) {
    click(client, "form[action='/sign-out'] button").await;
    client
        .wait()
        .for_element(Locator::Css("form#new-learner"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbench_in_headless_chromium() {
    let served = Served::demo(&["--dev-login"]);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;
    let result = run(&client, &served).await;
    if result.is_err() {
        let _ = screenshot(&client, "failure").await;
    }
    client.close().await.unwrap();
    result.unwrap();
}

async fn run(client: &Client, served: &Served) -> Result<(), String> {
    client
        .goto(&format!("{}/workbench", served.url))
        .await
        .unwrap();
    let banner = client
        .find(Locator::Css(".dev-banner"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(banner.contains("--dev-login"), "{banner}");
    screenshot(client, "sign-in").await;

    // A new learner: exactly the condition of their group in each split test.
    click(client, "form#new-learner button").await;
    client
        .wait()
        .for_element(Locator::Css("#render [data-usage-id='unit_1']"))
        .await
        .unwrap();
    let who = client
        .find(Locator::Id("whoami"))
        .await
        .unwrap()
        .attr("data-user")
        .await
        .unwrap()
        .unwrap();
    assert!(who.starts_with("learner-"), "{who}");
    let groups = panel_groups(client).await;
    assert_eq!(
        groups.len(),
        2,
        "both experiments in the side panel: {groups:?}"
    );
    for (split, mapping) in split_tests() {
        let group = groups[&partition_of(&split)];
        let expected: Vec<String> = mapping.get(&group).cloned().into_iter().collect();
        let inside = rendered_inside(client, &split).await;
        assert_eq!(inside, expected, "split test {split}, group {group}");
        let markers = js(
            client,
            "return document.querySelectorAll('#render [data-group-id]').length;",
        )
        .await;
        assert_eq!(markers, 0, "a learner sees no condition markers");
    }
    screenshot(client, "learner").await;

    // Submit the problem on the page: the answer is checked and the unit re-renders.
    click(client, "[data-usage-id='check_sum'] input[value='1']").await;
    click(client, "[data-usage-id='check_sum'] button[type='submit']").await;
    let result = client
        .wait()
        .for_element(Locator::Css("[data-usage-id='check_sum'] .result"))
        .await
        .unwrap();
    let text = result.text().await.unwrap();
    assert!(
        text.contains("Correct") && text.contains("attempt 1"),
        "{text}"
    );
    let score = client.find(Locator::Id("score")).await.unwrap();
    assert_eq!(
        score.attr("data-earned").await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(
        score.attr("data-possible").await.unwrap().as_deref(),
        Some("1")
    );
    // Re-rendered for the same learner: same groups.
    assert_eq!(panel_groups(client).await, groups);
    screenshot(client, "learner-submitted").await;
    sign_out(client).await;

    // Staff: every condition, labelled, side by side, their own group highlighted.
    sign_in_as(client, "staff_sam", "staff").await;
    client
        .wait()
        .for_element(Locator::Css("#render [data-usage-id='unit_1']"))
        .await
        .unwrap();
    let staff_groups = panel_groups(client).await;
    for (split, mapping) in split_tests() {
        let partition = partition_of(&split);
        let conditions = js(
            client,
            &format!(
                "return Array.from(document.querySelectorAll('#render [data-usage-id=\"{split}\"] [data-group-id][data-usage-id]')).map(e => ({{
                    usage: e.dataset.usageId, group: Number(e.dataset.groupId), name: e.dataset.groupName,
                    own: e.dataset.ownGroup === 'true', label: e.querySelector('.xbhost-condition-label').textContent,
                    top: Math.round(e.getBoundingClientRect().top), border: getComputedStyle(e).borderTopColor }}));"
            ),
        )
        .await;
        let conditions = conditions.as_array().unwrap();
        let shown: BTreeMap<u64, String> = conditions
            .iter()
            .map(|c| {
                (
                    c["group"].as_u64().unwrap(),
                    c["usage"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(shown, mapping, "staff see every condition of {split}");
        // A group without content is shown as such, and marked when it is the staff's.
        let own_group = staff_groups[&partition];
        let empty_own = js(
            client,
            &format!(
                "return document.querySelectorAll('#render [data-usage-id=\"{split}\"] .split-test-empty-group.own-group[data-empty-group=\"{own_group}\"]').length;"
            ),
        )
        .await;
        assert_eq!(
            empty_own.as_u64(),
            Some(u64::from(!mapping.contains_key(&own_group))),
            "{split}: own group {own_group} without content is marked"
        );
        for c in conditions {
            let label = c["label"].as_str().unwrap();
            assert!(label.contains(c["name"].as_str().unwrap()), "{c}");
            assert_eq!(
                c["own"],
                c["group"].as_u64() == staff_groups.get(&partition).copied(),
                "{c}"
            );
        }
        let tops: std::collections::BTreeSet<i64> = conditions
            .iter()
            .map(|c| c["top"].as_i64().unwrap())
            .collect();
        assert_eq!(
            tops.len(),
            1,
            "conditions of {split} side by side: {conditions:?}"
        );
        let own: Vec<&Value> = conditions.iter().filter(|c| c["own"] == true).collect();
        let others: Vec<&Value> = conditions.iter().filter(|c| c["own"] != true).collect();
        if let (Some(own), Some(other)) = (own.first(), others.first()) {
            assert_ne!(
                own["border"], other["border"],
                "the own group is highlighted"
            );
        }
    }
    screenshot(client, "staff").await;

    // Staff view the unit as the learner from before: exactly their page and groups.
    type_into(client, "input#as_learner", &who).await;
    click(client, "form#picker button[type='submit']").await;
    client
        .wait()
        .for_element(Locator::Css(".masquerade-note"))
        .await
        .unwrap();
    assert_eq!(panel_groups(client).await, groups, "the learner's groups");
    for (split, mapping) in split_tests() {
        let group = groups[&partition_of(&split)];
        let expected: Vec<String> = mapping.get(&group).cloned().into_iter().collect();
        assert_eq!(
            rendered_inside(client, &split).await,
            expected,
            "as {who}: {split}"
        );
    }
    let answered = client
        .find(Locator::Css("[data-usage-id='check_sum'] .result"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        answered.contains("Correct"),
        "the learner's own state: {answered}"
    );
    // Looking, not acting: submitting as the learner is refused on the page.
    click(client, "[data-usage-id='check_sum'] button[type='submit']").await;
    let refused = client
        .wait()
        .for_element(Locator::Css(
            "[data-usage-id='check_sum'] .xbhost-status.error",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(refused.contains("submissions are off"), "{refused}");
    screenshot(client, "staff-as-learner").await;

    // The experiment report, one link away.
    click(client, "a#report-link").await;
    let heading = client
        .wait()
        .for_element(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "Experiment report");
    let sections = js(
        client,
        "return document.querySelectorAll('section.partition').length;",
    )
    .await;
    assert_eq!(sections, 2, "both experiments of the demo course");
    screenshot(client, "staff-report").await;
    client.back().await.unwrap();
    sign_out(client).await;

    // An admin loads a plugin from a local file: installed as `html`, and the unit
    // re-renders with it (the tag probe shows its report where the html blocks were).
    sign_in_as(client, "dev_dana", "admin").await;
    client
        .wait()
        .for_element(Locator::Css("form#plugin-loader"))
        .await
        .unwrap();
    let probes = js(
        client,
        "return document.querySelectorAll('#render .probe').length;",
    )
    .await;
    assert_eq!(probes, 0);
    let file = plugin_path("tag_probe");
    client
        .find(Locator::Css("form#plugin-loader input[type='file']"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    type_into(client, "form#plugin-loader input[name='name']", "html").await;
    click(client, "form#plugin-loader button").await;
    let started = Instant::now();
    loop {
        let probes = js(
            client,
            "return document.querySelectorAll('#render .probe').length;",
        )
        .await;
        if probes.as_u64().unwrap_or(0) > 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let status = js(client, "const s = document.getElementById('plugin-status'); return s ? s.textContent : '';").await;
            return Err(format!(
                "the unit did not re-render with the loaded plugin; status: {status}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let status = client
        .find(Locator::Id("plugin-status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains("Installed html"), "{status}");
    screenshot(client, "plugin-loaded").await;

    // Course HTML cannot run script with the viewer's session: the host drops its
    // `<script>` elements, and the page's policy keeps what is left inert (the `onerror`
    // attribute): only xbhost's own script runs. (The `html` block type is now the
    // probe; this course uses a block type of its own name for authored HTML.)
    let key = "course-v1:xbhost+hostile+1";
    let course = json!({"course_key": key, "blocks": [
        {"usage_id": "unit", "type": "vertical", "fields": {"display_name": "Hostile"}, "children": ["evil"]},
        {"usage_id": "evil", "type": "authored_html", "fields": {"data":
            "<p id=\"evil-text\">authored</p><script>window.__xbhostPwned = true;</script><img src=x onerror=\"window.__xbhostPwned = true\">"}}
    ]});
    let admin = xbhost_tests::served::admin_token("root");
    let http = reqwest::Client::new();
    let installed = http
        .post(format!("{}/admin/plugins?name=authored_html", served.url))
        .bearer_auth(&admin)
        .body(std::fs::read(xbhost_tests::plugin_path("html")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(installed.status(), 201);
    let loaded = http
        .post(format!("{}/admin/courses", served.url))
        .query(&[("course", key)])
        .bearer_auth(&admin)
        .json(&course)
        .send()
        .await
        .unwrap();
    assert_eq!(loaded.status(), 201, "{}", loaded.text().await.unwrap());
    // Pick it with the course picker: choosing a course shows its first unit.
    client.refresh().await.unwrap();
    click(client, &format!("select#course option[value='{key}']")).await;
    client
        .wait()
        .for_element(Locator::Id("evil-text"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pwned = js(client, "return window.__xbhostPwned === true;").await;
    assert_eq!(pwned, false, "course HTML ran script in the workbench");
    let scripts = js(
        client,
        "return document.querySelectorAll('#render script').length;",
    )
    .await;
    assert_eq!(scripts, 0, "the authored script reached the page");
    let handlers = js(
        client,
        "return document.querySelectorAll('#render img[onerror]').length;",
    )
    .await;
    assert_eq!(handlers, 1, "the authored handler is in the DOM, inert");
    Ok(())
}

/// The course of the forged-forms test: in `forms_unit` a problem and an html block that
/// lays forged handler forms over the page; in `exact_unit` an html block that copies a
/// problem's wrapper exactly and leaves a forged form open before the problem.
const FORMS_COURSE: &str = "course-v1:xbhost+forms+1";

fn forms_course() -> Value {
    let handler = |usage: &str| format!("/courses/{FORMS_COURSE}/blocks/{usage}/handler/submit");
    // A transparent button over the whole page: wherever the learner clicks (the problem's
    // Submit, say), they click this.
    let overlay = |id: &str, z: u32| {
        format!(
            "<button type=\"submit\" id=\"{id}\" style=\"position:fixed;left:0;top:0;width:100vw;\
             height:100vh;margin:0;border:0;opacity:.02;z-index:{z}\">Continue</button>"
        )
    };
    // What a forger puts in a form: the problem's usage id and handler URL, and the
    // correct answer (choice 1) checked but hidden, for the page script and for a native post.
    let forged_form = |id: &str, usage: &str, button: String| {
        format!(
            "<form id=\"{id}\" data-handler=\"submit\" data-usage-id=\"{usage}\" action=\"{}\" \
             method=\"post\"><input type=\"radio\" name=\"{usage}\" value=\"1\" checked hidden>\
             <input type=\"hidden\" name=\"answer\" value=\"1\">{button}</form>",
            handler(usage)
        )
    };
    let forger = [
        "<p>Course notes.</p>".to_string(),
        // A bare forged form.
        forged_form("forged-plain", "quiz", overlay("forged-plain-button", 30)),
        // Inside a look-alike wrapper (the DOM of the host's wrapper, written otherwise),
        // with a made-up wrapper mark.
        format!(
            "<div data-usage-id=\"quiz\" class=\"xblock xblock-student\" data-block-type=\"problem\" \
             data-xbhost-wrapper=\"00000000000000000000000000000000\">{}</div>",
            forged_form("forged-wrapped", "quiz", overlay("forged-wrapped-button", 20))
        ),
        // Inside an exact copy of the wrapper of a problem this page does not show.
        format!(
            "<div class=\"xblock xblock-student\" data-usage-id=\"quiz_elsewhere\" data-block-type=\"problem\" id=\"forged-elsewhere-wrapper\">{}</div>",
            forged_form("forged-elsewhere", "quiz_elsewhere", overlay("forged-elsewhere-button", 10))
        ),
    ]
    .concat();
    let exact_forger = [
        // An exact copy of the wrapper of the problem that follows on the page.
        format!(
            "<div class=\"xblock xblock-student\" data-usage-id=\"quiz_elsewhere\" data-block-type=\"problem\" id=\"forged-exact-wrapper\">{}</div>",
            forged_form("forged-exact", "quiz_elsewhere", overlay("forged-exact-button", 10))
        ),
        // A form left open: the parser ignores the problem's own form after it, so the
        // problem's inputs and Submit button belong to this one.
        format!(
            "<form id=\"forged-open\" data-handler=\"submit\" data-usage-id=\"quiz_elsewhere\" action=\"{}\" \
             method=\"post\"><input type=\"radio\" name=\"x\" value=\"1\" checked hidden>",
            handler("quiz_elsewhere")
        ),
    ]
    .concat();
    let problem = |name: &str| {
        json!({"display_name": name, "question": "<p>Which is two?</p>", "kind": "multiple_choice",
            "choices": [{"text": "one"}, {"text": "two", "correct": true}, {"text": "three"}]})
    };
    json!({"course_key": FORMS_COURSE, "blocks": [
        {"usage_id": "forms_unit", "type": "vertical", "fields": {"display_name": "Forms"},
            "children": ["quiz", "forger"]},
        {"usage_id": "quiz", "type": "problem", "fields": problem("Quiz")},
        {"usage_id": "forger", "type": "html", "fields": {"data": forger}},
        {"usage_id": "exact_unit", "type": "vertical", "fields": {"display_name": "Exact copy"},
            "children": ["exact_forger", "quiz_elsewhere"]},
        {"usage_id": "exact_forger", "type": "html", "fields": {"data": exact_forger}},
        {"usage_id": "quiz_elsewhere", "type": "problem", "fields": problem("Quiz elsewhere")}
    ]})
}

/// What `usage` stored for `user` in the forms course, read over HTTP with the learner's
/// own token (`null` when nothing).
async fn stored_state(served: &Served, user: &str, usage: &str) -> Value {
    let token =
        xbhost_tests::served::token(user, &[(FORMS_COURSE, xbhost::server::auth::Role::Learner)]);
    let (status, body) = xbhost_tests::http::send(
        xbhost_tests::http::client()
            .get(format!(
                "{}/courses/{FORMS_COURSE}/users/{user}/state/{usage}",
                served.url
            ))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["state"].clone()
}

fn attempts(state: &Value) -> u64 {
    state["attempts"].as_u64().unwrap_or(0)
}

/// Clicks `css` and waits until the page script is done with the submission: the page
/// reloaded (the handler answered), or a form's status line shows an error.
async fn click_and_settle(client: &Client, css: &str) -> String {
    js(client, "window.__xbhostSamePage = true; return null;").await;
    click(client, css).await;
    let started = Instant::now();
    loop {
        // While the page reloads, the script may not run: ask again.
        let outcome = client
            .execute(
                "if (window.__xbhostSamePage !== true) return 'reloaded';
                 const e = document.querySelector('.xbhost-status.error');
                 return e ? 'refused: ' + e.textContent : null;",
                vec![],
            )
            .await
            .unwrap_or(Value::Null);
        if let Some(outcome) = outcome.as_str() {
            // A reload may still be loading: let it finish.
            client
                .wait()
                .for_element(Locator::Css("#render"))
                .await
                .unwrap();
            return outcome.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "clicking {css}: neither a reload nor an error"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn remove(client: &Client, css: &str) {
    js(
        client,
        &format!("document.querySelectorAll('{css}').forEach(e => e.remove()); return null;"),
    )
    .await;
}

/// A handler form acts only for the block whose host wrapper holds it. An html block
/// that forges a problem's form (the problem's usage id on the form and on a look-alike
/// wrapper, its handler URL as the action, the correct answer checked in hidden inputs,
/// a transparent button over the whole page) gets nothing stored when a learner clicks
/// it; the problem's own form still submits for the problem. Then a page where an html
/// block copies the problem's wrapper exactly and leaves a forged form open in front of
/// the problem: the learner's click on the problem's own Submit never sends the forger's
/// answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_form_acts_only_for_its_own_block() {
    let served = Served::demo(&["--dev-login"]);
    let admin = xbhost_tests::served::admin_token("root");
    let loaded = reqwest::Client::new()
        .post(format!("{}/admin/courses", served.url))
        .query(&[("course", forms_course()["course_key"].as_str().unwrap())])
        .bearer_auth(&admin)
        .json(&forms_course())
        .send()
        .await
        .unwrap();
    assert_eq!(loaded.status(), 201, "{}", loaded.text().await.unwrap());
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver, profile.path()).await;
    let result = forged_forms(&client, &served).await;
    if result.is_err() {
        let _ = screenshot(&client, "forged-forms-failure").await;
    }
    client.close().await.unwrap();
    result.unwrap();
}

async fn forged_forms(client: &Client, served: &Served) -> Result<(), String> {
    let unit_url = |unit: &str| {
        format!(
            "{}/workbench?course={}&unit={unit}",
            served.url,
            FORMS_COURSE.replace(':', "%3A").replace('+', "%2B")
        )
    };
    client
        .goto(&format!("{}/workbench", served.url))
        .await
        .unwrap();
    sign_in_as(client, "learner_lee", "learner").await;
    let user = client
        .wait()
        .for_element(Locator::Id("whoami"))
        .await
        .unwrap()
        .attr("data-user")
        .await
        .unwrap()
        .unwrap();
    client.goto(&unit_url("forms_unit")).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("#forged-plain-button"))
        .await
        .unwrap();
    screenshot(client, "forged-forms").await;

    // The learner clicks (on the problem's Submit, as they see it; the forger's button
    // is what is under the pointer): each forged form in turn, topmost first.
    let mut breaches = Vec::new();
    let forged = [
        ("forged-plain", "quiz"),
        ("forged-wrapped", "quiz"),
        ("forged-elsewhere", "quiz_elsewhere"),
    ];
    for (i, &(form, target)) in forged.iter().enumerate() {
        // Those clicked already (back if the page reloaded) go, so this one is on top.
        for (done, _) in &forged[..i] {
            remove(client, &format!("#{done}")).await;
        }
        let before = attempts(&stored_state(served, &user, target).await);
        let outcome = click_and_settle(client, &format!("#{form}-button")).await;
        let after = stored_state(served, &user, target).await;
        if attempts(&after) != before {
            breaches.push(format!("{form} submitted to {target} ({outcome}): {after}"));
        }
    }
    for (form, _) in &forged {
        remove(client, &format!("#{form}")).await;
    }
    for target in ["quiz", "quiz_elsewhere"] {
        let state = stored_state(served, &user, target).await;
        if !state.is_null() {
            breaches.push(format!("{target} stored {state}"));
        }
    }
    assert!(
        breaches.is_empty(),
        "forged forms acted for another block: {breaches:?}"
    );

    // The problem's own form still submits for the problem.
    let own = "div.xblock[data-block-type='problem'][data-usage-id='quiz'] form.choices";
    click(client, &format!("{own} input[value='1']")).await;
    let outcome = click_and_settle(client, &format!("{own} button[type='submit']")).await;
    assert_eq!(outcome, "reloaded");
    let result = client
        .wait()
        .for_element(Locator::Css(
            "div.xblock[data-usage-id='quiz'] .problem > .result",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        result.contains("Correct") && result.contains("attempt 1"),
        "{result}"
    );
    let state = stored_state(served, &user, "quiz").await;
    assert_eq!(state["answer"], json!([1]), "{state}");
    assert_eq!(attempts(&state), 1, "{state}");
    screenshot(client, "forged-forms-own-submitted").await;

    // An exact copy of the problem's wrapper, and a forged form left open in front of it.
    client.goto(&unit_url("exact_unit")).await.unwrap();
    client
        .wait()
        .for_element(Locator::Css("#forged-exact-button"))
        .await
        .unwrap();
    let outcome = click_and_settle(client, "#forged-exact-button").await;
    let state = stored_state(served, &user, "quiz_elsewhere").await;
    assert!(
        state.is_null(),
        "the exact copy submitted ({outcome}): {state}"
    );
    remove(client, "#forged-exact-wrapper").await;
    // The learner answers the problem themselves, wrongly: choice 0, and its Submit. What
    // the problem gets, if anything, is their answer, never the forger's hidden one.
    let problem = "div.xblock[data-block-type='problem'][data-usage-id='quiz_elsewhere']";
    click(client, &format!("{problem} input[value='0']")).await;
    let outcome = click_and_settle(client, &format!("{problem} button[type='submit']")).await;
    let state = stored_state(served, &user, "quiz_elsewhere").await;
    assert!(
        state.is_null() || (state["answer"] == json!([0]) && state["correct"] == false),
        "the open forged form sent its answer ({outcome}): {state}"
    );
    Ok(())
}
