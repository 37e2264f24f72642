//! Every video of the real Open edX exports on a served page in Debian's headless Chromium
//! (through its chromedriver): each video unit of both courses, as a learner, holds each
//! of its videos' player (the `<video>` and every `<source>`, or the YouTube embed of its
//! id) as the browser built the page; in the test course's video experiment the learner
//! gets exactly their group's video and staff all three, marked. A play event the page
//! script posts (dispatched on the `<video>`: no media plays offline) reaches the event
//! log, once however often the player repeats it within a second; so do a YouTube player's
//! play, seek, completion, pause and end, as the player's frame posts them, while messages
//! from any other origin or window are dropped. No network: the embeds and remote sources
//! fail to load, which the checks do not depend on (the player's messages are dispatched).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};
use xbhost::model::BlockDef;
use xbhost::olx::ImportOptions;
use xbhost_tests::browser::{Driver, js, open_unit, sign_in};
use xbhost_tests::exports::data_with_plugins;
use xbhost_tests::olx::{EXPERIMENT, SPLIT_UNIT, TEST_COURSE, olx};
use xbhost_tests::served::Served;
use xbhost_tests::{Fixture, PRODUCT_PLUGINS, artifacts_dir, xbhost_ok};

use crate::video_player as player;
use player::{Player, expected_player};

const DEMO_COURSE: &str = "course-v1:OpenedX+DemoX+DemoCourse";
const VIDEO_SPLIT: &str = "ae94e062721248639bd1543e77d9a0bd";
const JELLYFISH: &str = "2fe12c0703484743a51fe4612a640563";

/// A course's videos as imported, each with the unit (vertical) that holds it.
struct Imported {
    videos: Vec<(BlockDef, String)>,
    /// Group id -> video of the test course's video experiment (empty for the demo).
    conditions: BTreeMap<u64, String>,
}

/// Imports `dir` in process (the same import the server's CLI ran) to know what each
/// page must hold.
fn imported(dir: &str, course: &str) -> Imported {
    let f = Fixture::with_plugins(PRODUCT_PLUGINS);
    f.host
        .import_course(&olx(dir), &ImportOptions::default())
        .unwrap();
    let c = f.host.course(course).unwrap();
    let block = |id: &str| c.doc.blocks.iter().find(|b| b.usage_id == id).unwrap();
    let unit_of = |id: &str| {
        let mut at = id.to_string();
        loop {
            at = c.parent(&at).expect("a video inside a unit").to_string();
            if block(&at).block_type == "vertical"
                && block(c.parent(&at).unwrap()).block_type != "split_test"
            {
                return at;
            }
        }
    };
    let videos = c
        .doc
        .blocks
        .iter()
        .filter(|b| b.block_type == "video")
        .map(|b| (b.clone(), unit_of(&b.usage_id)))
        .collect();
    let conditions = c
        .block(VIDEO_SPLIT)
        .map(|_| {
            block(VIDEO_SPLIT).fields["group_id_to_child"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(g, unit)| {
                    (
                        g.parse().unwrap(),
                        block(unit.as_str().unwrap()).children[0].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Imported { videos, conditions }
}

/// The player of `video` as the browser's DOM holds it: the `<video>`'s source URLs, or
/// the iframe's URL.
async fn dom_player(client: &Client, video: &str) -> Value {
    js(
        client,
        &format!(
            "const b = document.querySelector('#render [data-usage-id=\"{video}\"]');
             if (!b) return null;
             const v = b.querySelector('video');
             const f = b.querySelector('iframe');
             return {{ sources: v ? Array.from(v.querySelectorAll('source')).map(s => s.getAttribute('src')) : null,
                       controls: v ? v.controls : null, handler: v ? v.dataset.handler : null,
                       iframe: f ? f.getAttribute('src') : null }};"
        ),
    )
    .await
}

/// Checks the DOM's player (from [`dom_player`]) is the one `video` calls for.
fn assert_plays(found: &Value, video: &BlockDef) {
    match expected_player(video) {
        Player::YouTube(embed) => {
            let src = found["iframe"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no iframe: {found}", video.usage_id));
            assert!(src.starts_with(&embed), "{}: {src}", video.usage_id);
        }
        Player::Html5(sources) => {
            assert_eq!(
                found["controls"],
                json!(true),
                "{}: {found}",
                video.usage_id
            );
            let got: Vec<&str> = found["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(got.len(), sources.len(), "{found}");
            for (g, s) in got.iter().zip(&sources) {
                assert!(g.starts_with(s.as_str()), "{g} is {s}");
            }
        }
    }
}

/// The `*_video` events of `user` in the server's event log.
fn logged_video_events(served: &Served, user: &str) -> Vec<Value> {
    std::fs::read_to_string(served.data.path().join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| {
            let e = e.get("event").unwrap_or(e);
            e["user_id"] == json!(user) && e["name"].as_str().is_some_and(|n| n.ends_with("_video"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_video_plays_on_a_served_page_in_headless_chromium() {
    let demo = imported("openedx-demo-course", DEMO_COURSE);
    let test = imported("openedx-test-course", TEST_COURSE);
    assert_eq!(demo.videos.len(), 11);
    assert_eq!(test.videos.len(), 3);
    assert_eq!(test.conditions.len(), 3);

    let data = data_with_plugins();
    for dir in ["openedx-demo-course", "openedx-test-course"] {
        xbhost_ok(
            data.path(),
            &["course", "import", olx(dir).to_str().unwrap()],
        );
    }
    let served = Served::start(data, &["--dev-login"]);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.chromium(profile.path()).await;
    let result = run(&client, &served, &demo, &test).await;
    if result.is_err()
        && let Ok(png) = client.screenshot().await
    {
        let _ = std::fs::write(artifacts_dir().join("video-failure.png"), png);
    }
    client.close().await.unwrap();
    result.unwrap();
}

async fn run(
    client: &Client,
    served: &Served,
    demo: &Imported,
    test: &Imported,
) -> Result<(), String> {
    let base = &served.url;
    // The page allows frames of YouTube's privacy-enhanced host, not YouTube's own.
    let page = reqwest::get(format!("{base}/workbench")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let frames = csp
        .split(';')
        .find(|d| d.trim().starts_with("frame-src"))
        .unwrap_or_default();
    assert!(frames.contains("https://www.youtube-nocookie.com"), "{csp}");
    assert!(!frames.contains("https://www.youtube.com"), "{csp}");

    let learner = "video-learner";
    sign_in(client, base, learner, "learner").await;
    for (course, imported) in [(DEMO_COURSE, demo), (TEST_COURSE, test)] {
        let mut units: BTreeMap<&str, Vec<&BlockDef>> = BTreeMap::new();
        for (video, unit) in &imported.videos {
            units.entry(unit.as_str()).or_default().push(video);
        }
        for (unit, videos) in units {
            open_unit(client, base, course, unit).await;
            for video in videos {
                let found = dom_player(client, &video.usage_id).await;
                if unit == SPLIT_UNIT {
                    continue; // checked below: one condition only
                }
                assert_plays(&found, video);
            }
        }
    }

    // The video experiment: exactly one video, the learner's group's.
    open_unit(client, base, TEST_COURSE, SPLIT_UNIT).await;
    let group: u64 = {
        let rows = js(
            client,
            "return Array.from(document.querySelectorAll('table.assignments tr[data-partition-id]')).map(r => [Number(r.dataset.partitionId), Number(r.dataset.groupId)]);",
        )
        .await;
        let rows: Vec<(u64, u64)> = serde_json::from_value(rows).unwrap();
        rows.into_iter()
            .find(|(p, _)| *p == EXPERIMENT)
            .expect("the learner's group")
            .1
    };
    let inside = js(
        client,
        &format!("return Array.from(document.querySelectorAll('#render [data-usage-id=\"{VIDEO_SPLIT}\"] [data-block-type=\"video\"]')).map(e => e.dataset.usageId);"),
    )
    .await;
    assert_eq!(inside, json!([test.conditions[&group]]), "group {group}");
    let mine = &test
        .videos
        .iter()
        .find(|(v, _)| v.usage_id == test.conditions[&group])
        .unwrap()
        .0;
    assert_plays(&dom_player(client, &mine.usage_id).await, mine);
    assert_eq!(
        js(client, &format!("return document.querySelectorAll('#render [data-usage-id=\"{VIDEO_SPLIT}\"] iframe').length;")).await,
        json!(1)
    );

    // A play event from the page script reaches the log, once per second of repeats.
    open_unit(
        client,
        base,
        DEMO_COURSE,
        &demo
            .videos
            .iter()
            .find(|(v, _)| v.usage_id == JELLYFISH)
            .unwrap()
            .1,
    )
    .await;
    let found = dom_player(client, JELLYFISH).await;
    assert_eq!(found["handler"], json!("event"), "{found}");
    js(
        client,
        &format!(
            "const v = document.querySelector('#render [data-usage-id=\"{JELLYFISH}\"] video');
             for (let i = 0; i < 5; i++) v.dispatchEvent(new Event('play'));
             return true;"
        ),
    )
    .await;
    let started = Instant::now();
    let mut events = Vec::new();
    while events.is_empty() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        events = logged_video_events(served, learner);
    }
    // The other four were dropped by the page: give a wrongly sent one time to arrive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = logged_video_events(served, learner);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = events[0].get("event").unwrap_or(&events[0]);
    assert_eq!(e["name"], json!("play_video"), "{e}");
    assert_eq!(e["usage_id"], json!(JELLYFISH), "{e}");
    assert_eq!(e["data"]["id"], json!(JELLYFISH), "{e}");
    assert_eq!(e["data"]["code"], json!("html5"), "{e}");
    assert_eq!(e["data"]["currentTime"], json!(0.0), "{e}");

    // YouTube's player reports its state by postMessage (no network here: the messages
    // are dispatched as the player's frame would send them). Only YouTube's origin and
    // that frame's window count; the five events reach the log with membership.
    open_unit(client, base, TEST_COURSE, SPLIT_UNIT).await;
    youtube_events(client, served, learner, &mine.usage_id).await?;

    // Staff: the three videos of the experiment, each marked with its group.
    sign_in(client, base, "video-staff", "staff").await;
    open_unit(client, base, TEST_COURSE, SPLIT_UNIT).await;
    let marked = js(
        client,
        &format!(
            "return Array.from(document.querySelectorAll('#render [data-usage-id=\"{VIDEO_SPLIT}\"] [data-group-id]')).map(c => [Number(c.dataset.groupId), Array.from(c.querySelectorAll('[data-block-type=\"video\"]')).map(e => e.dataset.usageId)]);"
        ),
    )
    .await;
    let marked: Vec<(u64, Vec<String>)> = serde_json::from_value(marked).unwrap();
    let marked: BTreeMap<u64, Vec<String>> = marked.into_iter().collect();
    let expected: BTreeMap<u64, Vec<String>> = test
        .conditions
        .iter()
        .map(|(g, v)| (*g, vec![v.clone()]))
        .collect();
    assert_eq!(marked, expected);
    for (video, _) in &test.videos {
        assert_plays(&dom_player(client, &video.usage_id).await, video);
    }
    Ok(())
}

/// The YouTube bridge of the page script: `video` (a YouTube-only video on the open page)
/// was set up for the player's messages, forged messages are dropped, and the player's
/// play, seek, completion, pause and end reach the log as `video`'s events.
async fn youtube_events(
    client: &Client,
    served: &Served,
    learner: &str,
    video: &str,
) -> Result<(), String> {
    let frame = format!("document.querySelector('#render [data-usage-id=\"{video}\"] iframe')");
    let src = js(client, &format!("return {frame}.src;")).await;
    let src = src.as_str().unwrap_or_default();
    let origin = served.url.trim_end_matches('/');
    for part in [
        "enablejsapi=1",
        "widgetid=1",
        &format!("origin={}", urlencode(origin)),
    ] {
        if !src.contains(part) {
            return Err(format!("the player's URL {src} lacks {part}"));
        }
    }
    let send = format!(
        "const f = {frame};
         const send = (data, origin, source) => window.dispatchEvent(new MessageEvent('message', {{
             data: typeof data === 'string' ? data : JSON.stringify(data),
             origin: origin || 'https://www.youtube-nocookie.com', source: source || f.contentWindow }}));"
    );
    let of_video = |events: Vec<Value>| -> Vec<Value> {
        events
            .into_iter()
            .map(|e| e.get("event").cloned().unwrap_or(e))
            .filter(|e| e["usage_id"] == json!(video))
            .collect()
    };
    // Forgeries: another origin, the page's own window, a text that is no JSON, a huge one.
    js(
        client,
        &format!(
            "{send}
             send({{event: 'onStateChange', info: 1}}, 'https://www.youtube.com');
             send({{event: 'onStateChange', info: 1}}, null, window);
             send('{{not json');
             send(JSON.stringify({{event: 'onStateChange', info: 1, pad: 'x'.repeat(70000)}}));
             return true;"
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let forged = of_video(logged_video_events(served, learner));
    if !forged.is_empty() {
        return Err(format!("forged player messages were reported: {forged:?}"));
    }
    // The player: ready at 0 of 100 s, plays, jumps to 96 s (a seek, and 95% reached),
    // pauses, ends.
    js(
        client,
        &format!(
            "{send}
             send({{event: 'infoDelivery', info: {{currentTime: 0, duration: 100, playerState: -1}}}});
             send({{event: 'onStateChange', info: 1}});
             send({{event: 'infoDelivery', info: {{currentTime: 96}}}});
             send({{event: 'onStateChange', info: 2}});
             send({{event: 'onStateChange', info: 0}});
             return true;"
        ),
    )
    .await;
    let expected = [
        "complete_video",
        "pause_video",
        "play_video",
        "seek_video",
        "stop_video",
    ];
    let started = Instant::now();
    let mut events = Vec::new();
    while events.len() < expected.len() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        events = of_video(logged_video_events(served, learner));
    }
    let mut names: Vec<&str> = events.iter().filter_map(|e| e["name"].as_str()).collect();
    names.sort_unstable();
    if names != expected {
        return Err(format!("YouTube player events: {events:?}"));
    }
    for e in &events {
        let assigned = e["experiments"]["assigned"].as_object();
        if assigned.is_none_or(|a| a.is_empty()) {
            return Err(format!("{} lacks the learner's membership: {e}", e["name"]));
        }
    }
    let seek = events.iter().find(|e| e["name"] == "seek_video").unwrap();
    if seek["data"]["old_time"] != json!(0.0) || seek["data"]["new_time"] != json!(96.0) {
        return Err(format!("seek: {seek}"));
    }
    let done = events
        .iter()
        .find(|e| e["name"] == "complete_video")
        .unwrap();
    if done["data"]["currentTime"] != json!(96.0) || done["data"]["duration"] != json!(100.0) {
        return Err(format!("complete: {done}"));
    }
    Ok(())
}

/// `s` as a URL query value (what `URLSearchParams` writes for an origin).
fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('/', "%2F")
}
