//! The live loop (#17 point 7) through a real `xbhost serve --dev-login --watch DIR`
//! process and real built plugins: the `live_probe` block of a loaded course lives in the
//! watched directory; writing another build of it there (the same component with its
//! marker's bytes replaced: same plugin name and fields, other output, another hash) is
//! reloaded through the checked add path and shown in the open workbench page without a
//! manual refresh (headless Chromium: the page reloads itself, a script variable set
//! before is gone, and the test never navigated); a broken build is
//! shown as an error naming the plugin and file while the last good version keeps
//! serving; the blocks' stdout and stderr are shown, escaped, to staff and not to a
//! learner. Over HTTP: the watcher's outcomes in the log, a FIFO in the directory that
//! never blocks it, and `--watch` refused on a public address or a missing directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};
use xbhost::server::auth::Role;
use xbhost_tests::browser::{Driver, js, open_unit, sign_in};
use xbhost_tests::served::{Served, token};
use xbhost_tests::{artifacts_dir, plugin_path, plugin_wasm, xbhost, xbhost_ok};

const COURSE: &str = "course-v1:xbhost+live+2026";
const FIRST: &str = "live-probe-build:first";
const OTHER: &str = "live-probe-build:other";

fn course() -> Value {
    json!({
        "course_key": COURSE,
        "display_name": "Live loop",
        "user_partitions": [],
        "blocks": [
            {"usage_id": "course", "type": "course", "fields": {}, "children": ["chapter"]},
            {"usage_id": "chapter", "type": "chapter", "fields": {}, "children": ["seq"]},
            {"usage_id": "seq", "type": "sequential", "fields": {}, "children": ["unit"]},
            {"usage_id": "unit", "type": "vertical", "fields": {"display_name": "Probe"},
             "children": ["probe"]},
            {"usage_id": "probe", "type": "live_probe", "fields": {}}
        ]
    })
}

/// The probe as built, and as a rebuild that changed its marker: the marker's bytes (a
/// string constant, stored verbatim in a data segment) replaced by others of the same
/// length, so the component stays valid and says the other marker.
fn builds() -> (Vec<u8>, Vec<u8>) {
    let first = plugin_wasm("live_probe");
    let (from, to) = (FIRST.as_bytes(), OTHER.as_bytes());
    let at: Vec<usize> = (0..first.len() - from.len())
        .filter(|&i| &first[i..i + from.len()] == from)
        .collect();
    assert!(!at.is_empty(), "the marker is not in live_probe.wasm");
    let mut other = first.clone();
    for i in at {
        other[i..i + to.len()].copy_from_slice(to);
    }
    (first, other)
}

/// A data directory with the containers, the probe and the course, a watched directory
/// holding the probe's file, and the server watching it.
fn serve_watching() -> (Served, tempfile::TempDir, PathBuf) {
    let data = tempfile::tempdir().unwrap();
    for p in ["course", "chapter", "sequential", "vertical", "live_probe"] {
        xbhost_ok(
            data.path(),
            &["plugin", "add", plugin_path(p).to_str().unwrap()],
        );
    }
    let doc = data.path().join("live-course.json");
    std::fs::write(&doc, course().to_string()).unwrap();
    xbhost_ok(data.path(), &["course", "load", doc.to_str().unwrap()]);
    let watched = tempfile::tempdir().unwrap();
    let file = watched.path().join("live_probe.wasm");
    std::fs::write(&file, plugin_wasm("live_probe")).unwrap();
    let served = Served::start(
        data,
        &["--dev-login", "--watch", watched.path().to_str().unwrap()],
    );
    (served, watched, file)
}

/// Writes `bytes` into `file` in place, in two parts a moment apart, as a build or a copy
/// in progress does (the watcher must wait for the whole).
fn write_slowly(file: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(file).unwrap();
    let half = bytes.len() / 2;
    f.write_all(&bytes[..half]).unwrap();
    f.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    f.write_all(&bytes[half..]).unwrap();
    f.sync_all().unwrap();
}

/// Evaluates `script` (returning a value) until it returns `expected`, for up to 30 s;
/// the last value.
async fn until(client: &Client, script: &str, expected: Value) -> Value {
    let started = Instant::now();
    loop {
        let value = js(client, script).await;
        if value == expected || started.elapsed() > Duration::from_secs(30) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const PROBE_TEXT: &str = "const p = document.querySelector('#render [data-usage-id=probe] p.live-probe'); \
    return p ? p.textContent : null;";
const PROBLEM: &str = "const e = document.querySelector('#xbhost-live .reload-problem[data-plugin=live_probe]'); \
    return e ? e.textContent : null;";
const STDOUT: &str = "const e = document.querySelector('#guest-output .guest-print[data-usage-id=probe][data-stream=stdout] pre'); \
    return e ? e.textContent : null;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workbench_follows_each_build_without_a_reload_and_keeps_the_last_good_one() {
    let (served, _watched, file) = serve_watching();
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let client = driver.chromium(profile.path()).await;
    let result = run(&client, &served, &file).await;
    if result.is_err()
        && let Ok(png) = client.screenshot().await
    {
        let _ = std::fs::write(artifacts_dir().join("live-loop-failure.png"), png);
    }
    client.close().await.unwrap();
    result.unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", served.log()));
}

async fn run(client: &Client, served: &Served, file: &Path) -> Result<(), String> {
    let base = &served.url;
    let (first, other) = builds();
    sign_in(client, base, "developer", "staff").await;
    open_unit(client, base, COURSE, "unit").await;
    let text = js(client, PROBE_TEXT).await;
    if text != json!(FIRST) {
        return Err(format!("the first build renders {text}"));
    }
    // The block's stdout, for staff, as text: its markup-looking output is not markup.
    let printed = js(client, STDOUT).await;
    let printed = printed.as_str().unwrap_or_default();
    if !printed.contains(&format!("rendering for developer: {FIRST}"))
        || !printed.contains("<b id=\"printed-markup\">not markup</b>")
    {
        return Err(format!("stdout shown: {printed:?}"));
    }
    let stderr = js(
        client,
        "const e = document.querySelector('#guest-output .guest-print[data-usage-id=probe][data-stream=stderr] pre'); \
         return [e ? e.textContent : null, document.getElementById('printed-markup') === null];",
    )
    .await;
    if stderr != json!([format!("stderr of {FIRST}\n"), true]) {
        return Err(format!(
            "stderr shown, and no element made of stdout: {stderr}"
        ));
    }

    // A rebuild, written while the page is open: the page reloads itself (a mark set in
    // this document is gone, and the test never navigated).
    js(
        client,
        "window.liveLoopMark = 'before the rebuild'; return null;",
    )
    .await;
    write_slowly(file, &other);
    let text = until(client, PROBE_TEXT, json!(OTHER)).await;
    if text != json!(OTHER) {
        return Err(format!("after the rebuild the page shows {text}"));
    }
    let kept = js(client, "return window.liveLoopMark || null;").await;
    if kept != json!(null) {
        return Err(format!(
            "the page kept its old document (its variable is {kept})"
        ));
    }
    let printed = js(client, STDOUT).await;
    if !printed.as_str().unwrap_or_default().contains(OTHER) {
        return Err(format!("the new build's stdout is not shown: {printed}"));
    }

    // A broken build: its error, naming the plugin and the file, beside the last good
    // version, which keeps rendering.
    std::fs::write(file, &first[..first.len() / 3]).unwrap();
    let shown = "return document.querySelector('#xbhost-live .reload-problem[data-plugin=live_probe]') !== null;";
    if until(client, shown, json!(true)).await != json!(true) {
        return Err("the broken build's error is not shown".into());
    }
    let problem = js(client, PROBLEM).await;
    let problem = problem.as_str().unwrap_or_default();
    let other_hash = blake3::hash(&other).to_hex().to_string();
    if !problem.contains("live_probe")
        || !problem.contains(&file.display().to_string())
        || !problem.contains("was not reloaded")
        || !problem.contains(&format!(
            "keeps serving: live_probe 0.1.0 (blake3 {}",
            &other_hash[..12]
        ))
    {
        return Err(format!("the error shown: {problem:?}"));
    }
    let text = js(client, PROBE_TEXT).await;
    if text != json!(OTHER) {
        return Err(format!("beside the error: {text}"));
    }

    // A learner sees the block, neither the blocks' output nor the developer's errors, and
    // their page follows the next build too.
    sign_in(client, base, "a-learner", "learner").await;
    open_unit(client, base, COURSE, "unit").await;
    let seen = js(
        client,
        "return [document.querySelector('#render p.live-probe').textContent, \
         document.getElementById('guest-output') === null, \
         document.querySelector('.reload-problem') === null, \
         document.getElementById('xbhost-live') !== null, \
         document.body.textContent.includes('not markup')];",
    )
    .await;
    if seen != json!([OTHER, true, true, true, false]) {
        return Err(format!("the learner's page: {seen}"));
    }
    js(client, "window.liveLoopMark = 'learner page'; return null;").await;
    write_slowly(file, &first);
    let text = until(client, PROBE_TEXT, json!(FIRST)).await;
    let kept = js(client, "return window.liveLoopMark || null;").await;
    if text != json!(FIRST) || kept != json!(null) {
        return Err(format!(
            "the learner's page after the fix: {text}, variable {kept}"
        ));
    }
    Ok(())
}

/// Renders the unit over HTTP as staff; its HTML.
async fn unit_html(served: &Served) -> String {
    let staff = token("operator", &[(COURSE, Role::Staff)]);
    reqwest::Client::new()
        .get(format!("{}/courses/{COURSE}/blocks/unit", served.url))
        .bearer_auth(staff)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits up to 30 s for a line of the server's log holding each of `needles`; the line.
fn log_line(served: &Served, needles: &[&str]) -> String {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let log = served.log();
        if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no line of the log holds {needles:?}: {}", served.log())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_logs_each_outcome_and_never_reads_what_is_not_a_regular_file() {
    let (served, watched, file) = serve_watching();
    let (first, other) = builds();
    assert!(unit_html(&served).await.contains(FIRST));
    // A FIFO dressed as a plugin: the watcher neither blocks on it nor stops watching.
    let fifo = watched.path().join("pipe.wasm");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    log_line(&served, &["pipe.wasm", "it is not a regular file"]);
    write_slowly(&file, &other);
    let other_hash = blake3::hash(&other).to_hex().to_string();
    let line = log_line(&served, &["plugin reloaded", &other_hash]);
    assert!(
        line.contains("plugin=live_probe")
            && line.contains("version=0.1.0")
            && line.contains(&file.display().to_string()),
        "{line}"
    );
    assert!(unit_html(&served).await.contains(OTHER));
    // Broken: logged with its error; the rebuild before it keeps serving.
    std::fs::write(&file, b"not a component").unwrap();
    let line = log_line(&served, &["plugin not reloaded", "live_probe.wasm"]);
    assert!(
        line.contains("plugin=live_probe")
            && line.contains("not a WebAssembly component")
            && line.contains(&format!("serving=\"{other_hash}\"")),
        "{line}"
    );
    let html = unit_html(&served).await;
    assert!(html.contains(OTHER), "{html}");
    // The generation the workbench polls moved with each outcome.
    let staff = token("operator", &[(COURSE, Role::Staff)]);
    let live: Value = reqwest::Client::new()
        .get(format!("{}/workbench/live", served.url))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(live["generation"].as_u64().unwrap() >= 3, "{live}");
    drop(first);
    let status = reqwest::get(format!("{}/workbench/live", served.url))
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    served.stop();
}

#[test]
fn watch_is_refused_on_a_public_address_or_a_missing_directory() {
    let data = tempfile::tempdir().unwrap();
    let watched = tempfile::tempdir().unwrap();
    let dir = watched.path().to_str().unwrap();
    let (ok, _, err) = xbhost(
        data.path(),
        &["serve", "--listen", "0.0.0.0:0", "--watch", dir],
    );
    assert!(
        !ok && err.contains("--watch") && err.contains("loopback"),
        "{err}"
    );
    let missing = watched.path().join("missing");
    let (ok, _, err) = xbhost(
        data.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--watch",
            missing.to_str().unwrap(),
        ],
    );
    assert!(
        !ok && err.contains("not a directory") && err.contains("missing"),
        "{err}"
    );
}
