//! Every video of the real Open edX exports on a served page in Debian's headless Chromium
//! (through its chromedriver): each video unit of both courses, as a learner, holds each
//! of its videos' player (the `<video>` and every `<source>`, or the YouTube embed of its
//! id) as the browser built the page; in the test course's video experiment the learner
//! gets exactly their group's video and staff all three, marked. A play event the page
//! script posts (dispatched on the `<video>`: no media plays offline) reaches the event
//! log, once however often the player repeats it within a second. No network: the embeds
//! and remote sources fail to load, which the checks do not depend on.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use xbhost::model::BlockDef;
use xbhost::olx::ImportOptions;
use xbhost_tests::exports::data_with_plugins;
use xbhost_tests::olx::{EXPERIMENT, SPLIT_UNIT, TEST_COURSE, olx};
use xbhost_tests::served::Served;
use xbhost_tests::{Fixture, PRODUCT_PLUGINS, artifacts_dir, find_program, xbhost_ok};

#[path = "video_shared/player.rs"]
mod player;
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
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn chromium(&self, profile: &Path) -> Client {
        let Value::Object(capabilities) = json!({
            "goog:chromeOptions": {
                "binary": find_program(&["chromium", "chromium-browser"]),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--mute-audio",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }) else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn js(client: &Client, script: &str) -> Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
}

/// Signs in through the dev sign-in's named form.
async fn sign_in(client: &Client, base: &str, user: &str, role: &str) {
    client.goto(&format!("{base}/workbench")).await.unwrap();
    if client
        .find(Locator::Css("form[action='/sign-out'] button"))
        .await
        .is_ok()
    {
        client
            .find(Locator::Css("form[action='/sign-out'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    let form = client
        .wait()
        .for_element(Locator::Css("form#named-user"))
        .await
        .unwrap();
    form.find(Locator::Css("input[name='user']"))
        .await
        .unwrap()
        .send_keys(user)
        .await
        .unwrap();
    form.find(Locator::Css(&format!(
        "select[name='role'] option[value='{role}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    form.find(Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .wait()
        .for_element(Locator::Css("form[action='/sign-out']"))
        .await
        .unwrap();
}

/// Opens a unit in the workbench and waits for it to be rendered.
async fn open_unit(client: &Client, base: &str, course: &str, unit: &str) {
    client
        .goto(&format!(
            "{base}/workbench?course={}&unit={unit}",
            course.replace('+', "%2B")
        ))
        .await
        .unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!("#render [data-usage-id='{unit}']")))
        .await
        .unwrap_or_else(|e| panic!("unit {unit} of {course} did not render: {e}"));
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
