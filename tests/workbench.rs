//! The workbench end to end in Debian's headless Chromium (driven through its
//! chromedriver): a learner sees exactly their group's condition of each split test and
//! submits a problem; staff see every condition side by side, labelled, their own group
//! highlighted; an admin loads a plugin from a local file and the unit re-renders with it.
//! Screenshots go to `target/test-artifacts/workbench-*.png`.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use xbhost_tests::served::Served;
use xbhost_tests::{artifacts_dir, demo_course, find_program, plugin_path};

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(find_program(&["chromedriver"]))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        .connect(&driver.url)
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
