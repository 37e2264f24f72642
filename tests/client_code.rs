//! Client-side code (contract 0.1.2 `client`) in Debian's headless Chromium, through the
//! real server and real built plugins: the `thumbs` block's script runs in its own
//! sandboxed frame, votes through its own handler and shows the count it answers, which
//! is stored (a reload shows it) and published; a hostile block's script on the same page
//! gets nothing of the page, its marks or CSRF token, the other block's frame, the
//! learner's cookies or storage, cannot call the other block's handler (by URL, form or a
//! forged message naming it), cannot speak for the page to the other frame, cannot
//! navigate the page or open windows, and cannot send anything out (an image to another
//! site) or run a script the host did not name. The files are served under the plugin's
//! hash, and the page runs only its own script (by a nonce).

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};
use xbhost_tests::browser::{Driver, js, open_unit, sign_in};
use xbhost_tests::exports::data_with_plugins;
use xbhost_tests::served::Served;
use xbhost_tests::{artifacts_dir, plugin_path, xbhost_ok};

const COURSE: &str = "course-v1:xbhost+client+2026";
const LEARNER: &str = "client-learner";

fn course() -> Value {
    json!({
        "course_key": COURSE,
        "display_name": "Client-side code",
        "user_partitions": [],
        "blocks": [
            {"usage_id": "unit", "type": "vertical", "fields": {"display_name": "Thumbs"},
             "children": ["thumbs1", "hostile1"]},
            {"usage_id": "thumbs1", "type": "thumbs", "fields": {"prompt": "Was this helpful?"}},
            {"usage_id": "hostile1", "type": "hostile_client", "fields": {"victim": "thumbs1"}}
        ]
    })
}

/// The learner's events in the server's log named `name`.
fn logged(served: &Served, name: &str) -> Vec<Value> {
    std::fs::read_to_string(served.data.path().join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|e| e.get("event").cloned().unwrap_or(e))
        .filter(|e| e["user_id"] == json!(LEARNER) && e["name"] == json!(name))
        .collect()
}

async fn wait_for(served: &Served, name: &str, count: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let found = logged(served, name);
        if found.len() >= count || started.elapsed() > Duration::from_secs(30) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Text of `css` inside the thumbs frame, waiting up to 10 s for it to be `expected`.
async fn frame_text(client: &Client, css: &str, expected: &str) -> String {
    let started = Instant::now();
    loop {
        let text = match client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text == expected || started.elapsed() > Duration::from_secs(10) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_scripts_run_in_their_own_frames_and_reach_only_their_own_handlers() {
    let data = data_with_plugins();
    xbhost_ok(
        data.path(),
        &[
            "plugin",
            "add",
            plugin_path("hostile_client").to_str().unwrap(),
        ],
    );
    let doc = data.path().join("client-course.json");
    std::fs::write(&doc, course().to_string()).unwrap();
    xbhost_ok(data.path(), &["course", "load", doc.to_str().unwrap()]);
    let served = Served::start(data, &["--dev-login"]);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.chromium(profile.path()).await;
    let result = run(&client, &served).await;
    if result.is_err()
        && let Ok(png) = client.screenshot().await
    {
        let _ = std::fs::write(artifacts_dir().join("client-code-failure.png"), png);
    }
    client.close().await.unwrap();
    result.unwrap();
}

async fn run(client: &Client, served: &Served) -> Result<(), String> {
    let base = &served.url;
    sign_in(client, base, LEARNER, "learner").await;
    open_unit(client, base, COURSE, "unit").await;
    let page_url = client.current_url().await.unwrap();
    // The page runs its own script by a nonce: no other script of the host's origin (a
    // plugin's client file) can run in it.
    let page = reqwest::get(format!("{base}/workbench")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    if !csp.contains("script-src 'nonce-") || csp.contains("script-src 'self'") {
        return Err(format!("page policy: {csp}"));
    }

    // The hostile block's findings: every attempt failed.
    let reports = wait_for(served, "xblock.hostile_client.report", 1).await;
    let report = reports
        .first()
        .ok_or("the hostile block never reported")?
        .get("data")
        .cloned()
        .unwrap_or_default();
    let attempts = report.as_object().ok_or(format!("report: {report}"))?;
    for name in [
        "page_dom",
        "top_dom",
        "host_marks",
        "csrf_token",
        "cookie",
        "local_storage",
        "sibling_dom",
        "navigate_page",
        "popup",
        "fetch_handler",
        "fetch_page",
        "form_post",
        "forged_call",
        "exfiltrate_image",
        "foreign_script",
    ] {
        let found = attempts[name].as_str().unwrap_or("missing");
        if !found.starts_with("blocked") {
            return Err(format!("hostile attempt {name}: {found} (report {report})"));
        }
    }
    // The forged call naming the thumbs block reached the hostile block's own handlers.
    let forged = attempts["forged_call"].as_str().unwrap();
    if !forged.contains("hostile_client has no handler \\\"vote\\\"")
        && !forged.contains("hostile_client has no handler \"vote\"")
    {
        return Err(format!("forged call: {forged}"));
    }
    if client.current_url().await.unwrap() != page_url {
        return Err("the hostile block navigated the page".into());
    }

    // Each block with client code is a frame of its own, sandboxed to scripts only (the
    // findings above are what that does; this is how).
    let frames = js(
        client,
        "return Array.from(document.querySelectorAll('#render iframe.xbhost-client-frame')).map(f => [f.closest('[data-usage-id]').dataset.usageId, f.getAttribute('sandbox')]);",
    )
    .await;
    if frames != json!([["thumbs1", "allow-scripts"], ["hostile1", "allow-scripts"]]) {
        return Err(format!("client frames: {frames}"));
    }

    // The thumbs block, untouched by the hostile one (no made-up counts, no vote).
    client
        .find(Locator::Css("[data-usage-id='thumbs1'] iframe"))
        .await
        .map_err(|e| e.to_string())?
        .enter_frame()
        .await
        .map_err(|e| e.to_string())?;
    let up = frame_text(client, ".upvote .count", "0").await;
    let down = frame_text(client, ".downvote .count", "0").await;
    if (up.as_str(), down.as_str()) != ("0", "0") {
        return Err(format!("thumbs before voting: up {up}, down {down}"));
    }
    // Its script votes through its own handler and shows the answer.
    client
        .find(Locator::Css("button.upvote"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    let up = frame_text(client, ".upvote .count", "1").await;
    let note = frame_text(client, ".thumbs-note", "Thank you for voting.").await;
    if up != "1" || note != "Thank you for voting." {
        return Err(format!("after voting: up {up}, note {note:?}"));
    }
    client
        .enter_parent_frame()
        .await
        .map_err(|e| e.to_string())?;
    let votes = wait_for(served, "xblock.thumbs.voted", 1).await;
    if votes.len() != 1
        || votes[0]["usage_id"] != json!("thumbs1")
        || votes[0]["data"]["direction"] != json!("up")
    {
        return Err(format!("vote events: {votes:?}"));
    }

    // Stored: a reload shows the count and the learner's vote, and no down vote came from
    // the hostile block.
    open_unit(client, base, COURSE, "unit").await;
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("[data-usage-id='thumbs1'] iframe"))
        .await
        .map_err(|e| e.to_string())?
        .enter_frame()
        .await
        .map_err(|e| e.to_string())?;
    let up = frame_text(client, ".upvote .count", "1").await;
    let down = frame_text(client, ".downvote .count", "0").await;
    let pressed = client
        .find(Locator::Css("button.upvote"))
        .await
        .map_err(|e| e.to_string())?
        .attr("aria-pressed")
        .await
        .map_err(|e| e.to_string())?;
    if (up.as_str(), down.as_str(), pressed.as_deref()) != ("1", "0", Some("true")) {
        return Err(format!(
            "after reload: up {up}, down {down}, pressed {pressed:?}"
        ));
    }
    client
        .enter_parent_frame()
        .await
        .map_err(|e| e.to_string())?;
    served_files(served).await
}

/// The plugin's files under its hash: immutable, typed; another hash or name is not found.
async fn served_files(served: &Served) -> Result<(), String> {
    let hash = blake3::hash(&std::fs::read(plugin_path("thumbs")).unwrap())
        .to_hex()
        .to_string();
    let base = &served.url;
    let ok = reqwest::get(format!("{base}/plugins/thumbs/{hash}/static/thumbs.js"))
        .await
        .unwrap();
    let headers = ok.headers().clone();
    let body = ok.text().await.unwrap();
    if !body.contains("function ThumbsBlock")
        || headers["content-type"] != "text/javascript; charset=utf-8"
        || !headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    {
        return Err(format!("thumbs.js: {headers:?}"));
    }
    let other = "0".repeat(64);
    for path in [
        format!("/plugins/thumbs/{other}/static/thumbs.js"),
        format!("/plugins/thumbs/{hash}/static/missing.js"),
        format!("/plugins/thumbs/{hash}/static/thumbs.wasm"),
        format!("/plugins/thumbs/{hash}/static/..%2F..%2Fcourse.json"),
        format!("/plugins/nope/{hash}/static/thumbs.js"),
    ] {
        let status = reqwest::get(format!("{base}{path}"))
            .await
            .unwrap()
            .status();
        if status != reqwest::StatusCode::NOT_FOUND {
            return Err(format!("{path}: {status}"));
        }
    }
    Ok(())
}
