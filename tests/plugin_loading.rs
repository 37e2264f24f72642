//! Installing and loading plugins: components for another contract and malformed files are
//! refused with nothing stored, the compiled-component cache is used, checked and rebuilt
//! when bad (only what this store compiled is ever loaded from it: not a file forged behind
//! the old unkeyed checksum, nor one copied from another store), pooling is used where
//! possible, and compiling is not charged to a request.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use xbhost::events::MemorySink;
use xbhost::runtime::cache::Origin;
use xbhost::runtime::plugin::CONTRACT_VERSION;
use xbhost::runtime::{Pooling, SandboxLimits};
use xbhost::storage::SledStorage;
use xbhost::{Host, HostConfig, RenderRequest, User, View};
use xbhost_tests::{Fixture, demo_course, plugin_wasm};

#[test]
fn plugins_for_another_contract_and_malformed_files_are_refused_and_nothing_is_stored() {
    let f = Fixture::with_plugins(&["html"]);
    let before = f.host.plugins().unwrap();
    let err = format!(
        "{:#}",
        f.host
            .add_plugin(&plugin_wasm("old_contract"), None)
            .unwrap_err()
    );
    assert!(
        err.contains("built for contract 0.0.1")
            && err.contains(&format!("implements contract {CONTRACT_VERSION}")),
        "{err}"
    );
    let err = format!(
        "{:#}",
        f.host
            .add_plugin(&plugin_wasm("imposter"), None)
            .unwrap_err()
    );
    assert!(
        err.contains("\"imposter\"")
            && err.contains(&format!("xbhost:block/block@{CONTRACT_VERSION}")),
        "{err}"
    );
    let html = plugin_wasm("html");
    for (bytes, expect) in [
        (b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (b"not wasm at all".to_vec(), "not a WebAssembly component"),
        (html[..html.len() / 3].to_vec(), "truncated or malformed"),
        (Vec::new(), "not a WebAssembly component"),
    ] {
        let err = format!(
            "{:#}",
            f.host.add_plugin(&bytes, Some("broken")).unwrap_err()
        );
        assert!(err.contains(expect), "{expect}: {err}");
    }
    assert_eq!(f.host.plugins().unwrap(), before, "nothing stored");
    assert!(f.host.storage().plugin("broken").unwrap().is_none());
    assert!(f.host.storage().plugin("old_contract").unwrap().is_none());
}

/// A plugin built against contract 0.1.0 as it shipped (its own frozen copy of the WIT,
/// no SDK) loads and runs on this host: every later 0.1.x contract only adds.
#[test]
fn a_plugin_built_against_contract_0_1_0_runs_on_this_host() {
    assert!(CONTRACT_VERSION.starts_with("0.1."), "{CONTRACT_VERSION}");
    let f = Fixture::with_plugins(&["contract_0_1_0"]);
    let record = f
        .host
        .plugins()
        .unwrap()
        .into_iter()
        .find(|p| p.name == "contract_0_1_0")
        .unwrap();
    assert_eq!(record.contract, "0.1.0");
    f.host
        .load_course(
            serde_json::from_value(json!({"course_key": "course-v1:x+old+1",
                "blocks": [{"usage_id": "b", "type": "contract_0_1_0"}]}))
            .unwrap(),
        )
        .unwrap();
    let user = User::learner("ada");
    let out = f.render("course-v1:x+old+1", "b", user.clone(), View::Student);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert!(
        out.html
            .contains("0.1.0 block for ada (tag None, state None)"),
        "{}",
        out.html
    );
    let answer = f
        .host
        .handle("course-v1:x+old+1", "b", &user, "go", &json!({}))
        .unwrap();
    assert_eq!(answer, json!({"handled": "go"}));
    let out = f.render("course-v1:x+old+1", "b", user, View::Student);
    assert!(
        out.html
            .contains(r#"tag Some("yes"), state Some("{\"handled\":true}")"#),
        "{}",
        out.html
    );
}

#[test]
fn compiled_components_are_cached_checked_and_recompiled_when_bad() {
    let data = tempfile::tempdir().unwrap();
    let open = || Host::open(data.path(), HostConfig::default()).unwrap();
    let host = open();
    let record = host.add_plugin(&plugin_wasm("html"), None).unwrap();
    host.load_course(
        serde_json::from_value(json!({"course_key": "course-v1:x+c+1",
        "blocks": [{"usage_id": "h", "type": "html", "fields": {"data": "<p>cached</p>"}}]}))
        .unwrap(),
    )
    .unwrap();
    drop(host);

    let cache_file = || {
        let files: Vec<_> = std::fs::read_dir(data.path().join("cache"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(
            files[0]
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&record.hash)
        );
        files[0].clone()
    };
    let renders = |host: &Host| {
        let out = host
            .render(&RenderRequest {
                course_key: "course-v1:x+c+1".into(),
                usage_id: "h".into(),
                user: User::learner("u"),
                view: View::Student,
                user_agent: None,
                masquerade: None,
            })
            .unwrap();
        assert!(out.html.contains("<p>cached</p>"), "{:?}", out.failures);
    };

    // A restart loads from the cache.
    let host = open();
    assert_eq!(host.load_plugin("html").unwrap(), Origin::Cache);
    renders(&host);
    drop(host);

    // Corrupted, truncated and foreign files are detected, recompiled and rewritten.
    let good = std::fs::read(cache_file()).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    let mut foreign = b"xbhost-cwasm-v1\n".to_vec();
    let junk = vec![7u8; 4096];
    foreign.extend_from_slice(blake3::hash(&junk).as_bytes());
    foreign.extend_from_slice(&junk);
    for bad in [
        flipped,
        good[..good.len() / 2].to_vec(),
        foreign,
        b"garbage".to_vec(),
    ] {
        std::fs::write(cache_file(), &bad).unwrap();
        let host = open();
        assert_eq!(host.load_plugin("html").unwrap(), Origin::Compiled);
        renders(&host);
        drop(host);
        assert_eq!(
            std::fs::read(cache_file()).unwrap().len(),
            good.len(),
            "cache rewritten"
        );
        assert_eq!(open().load_plugin("html").unwrap(), Origin::Cache);
    }
}

/// A cache file, in the old format and the new: a 16-byte header, a 32-byte check (an
/// unkeyed blake3 of the payload before, a MAC now), then the payload
/// (`Component::serialize`). What an attacker who knows the old format would write.
const CHECK_AT: usize = 16;
const PAYLOAD_AT: usize = CHECK_AT + 32;

const CACHED_COURSE: &str = "course-v1:x+cache+1";

/// A data directory whose store has the `html` plugin and a course of one html block, and
/// whose compiled cache holds the plugin's file (written when the plugin was added).
fn data_dir_with_html() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    let host = open(data.path());
    host.add_plugin(&plugin_wasm("html"), None).unwrap();
    host.load_course(
        serde_json::from_value(json!({"course_key": CACHED_COURSE,
        "blocks": [{"usage_id": "h", "type": "html", "fields": {"data": "<p>cached</p>"}}]}))
        .unwrap(),
    )
    .unwrap();
    data
}

fn open(data: &std::path::Path) -> Host {
    Host::open(data, HostConfig::default()).unwrap()
}

/// The one file in a data directory's compiled cache.
fn cache_file(data: &std::path::Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(data.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Renders the html block: the page shows what the course says, not what a forger wanted.
fn assert_renders_html(host: &Host) {
    let out = host
        .render(&RenderRequest {
            course_key: CACHED_COURSE.into(),
            usage_id: "h".into(),
            user: User::learner("u"),
            view: View::Student,
            user_agent: None,
            masquerade: None,
        })
        .unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert!(out.html.contains("<p>cached</p>"), "{}", out.html);
}

/// `header`, then the unkeyed blake3 of `payload` the old format checked, then `payload`.
fn with_unkeyed_checksum(header: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut file = header[..CHECK_AT].to_vec();
    file.extend_from_slice(blake3::hash(payload).as_bytes());
    file.extend_from_slice(payload);
    file
}

#[test]
fn a_cache_file_altered_behind_a_valid_unkeyed_checksum_is_not_loaded() {
    let data = data_dir_with_html();
    let file = cache_file(data.path());
    let good = std::fs::read(&file).unwrap();

    // The forger's native code: another plugin, compiled by an engine like ours (in a data
    // directory of the forger's own), put in place of html's.
    let forger = tempfile::tempdir().unwrap();
    let host = open(forger.path());
    host.add_plugin(&plugin_wasm("unsupported"), None).unwrap();
    drop(host);
    let foreign_code = std::fs::read(cache_file(forger.path())).unwrap()[PAYLOAD_AT..].to_vec();
    // html's own artifact with bytes changed here and there.
    let mut altered = good[PAYLOAD_AT..].to_vec();
    for at in [altered.len() / 3, altered.len() / 2, altered.len() - 1] {
        altered[at] ^= 0x01;
    }

    for (what, payload) in [
        ("another plugin's code", foreign_code),
        ("altered bytes", altered),
    ] {
        let forged = with_unkeyed_checksum(&good, &payload);
        std::fs::write(&file, &forged).unwrap();
        let host = open(data.path());
        assert_eq!(
            host.load_plugin("html").unwrap(),
            Origin::Compiled,
            "{what} behind a valid unkeyed checksum must not be loaded"
        );
        assert_renders_html(&host);
        drop(host);
        let rewritten = std::fs::read(&file).unwrap();
        assert_ne!(rewritten, forged, "{what}: the cache file is rewritten");
        assert_eq!(
            rewritten.len(),
            good.len(),
            "{what}: the cache file is rewritten"
        );
        let host = open(data.path());
        assert_eq!(host.load_plugin("html").unwrap(), Origin::Cache, "{what}");
        assert_renders_html(&host);
    }
}

#[test]
fn a_cache_copied_from_another_store_is_recompiled_not_loaded() {
    let ours = data_dir_with_html();
    let theirs = data_dir_with_html();
    // The same wasm for the same engine: the same file name in both caches.
    let file = cache_file(ours.path());
    assert_eq!(
        file.file_name(),
        cache_file(theirs.path()).file_name(),
        "same name"
    );
    let their_bytes = std::fs::read(cache_file(theirs.path())).unwrap();
    std::fs::remove_dir_all(ours.path().join("cache")).unwrap();
    xbhost_tests::copy_dir(&theirs.path().join("cache"), &ours.path().join("cache"));

    let host = open(ours.path());
    assert_eq!(
        host.load_plugin("html").unwrap(),
        Origin::Compiled,
        "a file another store compiled must not be loaded"
    );
    assert_renders_html(&host);
    drop(host);
    assert_ne!(
        std::fs::read(&file).unwrap(),
        their_bytes,
        "rewritten under this store's key"
    );
    assert_eq!(
        open(ours.path()).load_plugin("html").unwrap(),
        Origin::Cache
    );
    // Theirs is untouched and still theirs.
    assert_eq!(
        open(theirs.path()).load_plugin("html").unwrap(),
        Origin::Cache
    );
}

#[test]
fn an_untouched_cache_is_used_across_restarts_and_not_rewritten() {
    let data = data_dir_with_html();
    let file = cache_file(data.path());
    let written = std::fs::read(&file).unwrap();
    for restart in 0..3 {
        let host = open(data.path());
        assert_eq!(
            host.load_plugin("html").unwrap(),
            Origin::Cache,
            "restart {restart}"
        );
        assert_renders_html(&host);
        drop(host);
        assert_eq!(std::fs::read(&file).unwrap(), written, "restart {restart}");
    }
}

#[test]
fn a_cache_file_of_the_old_unkeyed_format_is_stale_and_recompiled() {
    let data = data_dir_with_html();
    let file = cache_file(data.path());
    let good = std::fs::read(&file).unwrap();
    // The genuine artifact, as the previous version of the host wrote it.
    let old = with_unkeyed_checksum(b"xbhost-cwasm-v1\n", &good[PAYLOAD_AT..]);
    std::fs::write(&file, &old).unwrap();
    let host = open(data.path());
    assert_eq!(
        host.load_plugin("html").unwrap(),
        Origin::Compiled,
        "a file with no MAC must not be loaded"
    );
    assert_ne!(
        old[..CHECK_AT],
        good[..CHECK_AT],
        "the format version was bumped"
    );
    assert_renders_html(&host);
    drop(host);
    let rewritten = std::fs::read(&file).unwrap();
    assert_eq!(
        rewritten[..CHECK_AT],
        good[..CHECK_AT],
        "in the current format"
    );
    assert_eq!(
        open(data.path()).load_plugin("html").unwrap(),
        Origin::Cache
    );
}

#[test]
fn pooling_is_used_where_possible_and_can_be_turned_off() {
    let with = |pooling, limits| {
        let f = Fixture::with_config(
            &["html"],
            HostConfig {
                pooling,
                limits,
                ..HostConfig::default()
            },
        );
        f.host
            .load_course(
                serde_json::from_value(json!({"course_key": "course-v1:x+p+1",
            "blocks": [{"usage_id": "h", "type": "html", "fields": {"data": "<p>p</p>"}}]}))
                .unwrap(),
            )
            .unwrap();
        let out = f.render("course-v1:x+p+1", "h", User::learner("u"), View::Student);
        assert!(out.html.contains("<p>p</p>"));
        f.host.pooling()
    };
    assert!(
        with(Pooling::On, SandboxLimits::default()),
        "this machine supports pooling"
    );
    assert!(!with(Pooling::Off, SandboxLimits::default()));
    // A pool too large to reserve: auto falls back (with a warning), on refuses to start.
    let huge = SandboxLimits {
        max_memory_bytes: 1 << 46,
        ..SandboxLimits::default()
    };
    assert!(!with(Pooling::Auto, huge.clone()));
    let storage = Arc::new(SledStorage::temporary().unwrap());
    let err = Host::new(
        storage,
        Arc::new(MemorySink::default()),
        HostConfig {
            pooling: Pooling::On,
            limits: huge,
            ..HostConfig::default()
        },
    )
    .err()
    .expect("pooling=on must fail");
    assert!(format!("{err:#}").contains("XBHOST_POOLING=on"), "{err:#}");
}

#[test]
fn compiling_a_plugin_is_not_charged_to_a_request_deadline() {
    // Host A stores the plugins and the course; host B, on the same storage with no compiled
    // cache, must compile every plugin on its first request, under a deadline far shorter
    // than compilation takes.
    let storage = Arc::new(SledStorage::temporary().unwrap());
    let a = Host::new(
        storage.clone(),
        Arc::new(MemorySink::default()),
        HostConfig::default(),
    )
    .unwrap();
    for p in ["html", "vertical", "split_test", "problem"] {
        a.add_plugin(&plugin_wasm(p), None).unwrap();
    }
    a.load_course(demo_course()).unwrap();
    let limits = SandboxLimits {
        request_deadline: Duration::from_millis(30),
        ..SandboxLimits::default()
    };
    let b = Host::new(
        storage,
        Arc::new(MemorySink::default()),
        HostConfig {
            limits,
            ..HostConfig::default()
        },
    )
    .unwrap();
    let out = b
        .render(&RenderRequest {
            course_key: xbhost_tests::DEMO_COURSE.into(),
            usage_id: "unit_1".into(),
            user: User::learner("first"),
            view: View::Student,
            user_agent: None,
            masquerade: None,
        })
        .unwrap();
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert!(out.visible_blocks.contains(&"outro".to_string()));
}

#[test]
fn a_fifo_planted_in_the_cache_is_not_read_and_the_plugin_is_recompiled() {
    let data = data_dir_with_html();
    let file = cache_file(data.path());
    std::fs::remove_file(&file).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .unwrap();
    assert!(made.success());
    // Reading a FIFO with no writer blocks forever; the host must not even open it.
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = data.path().to_path_buf();
    std::thread::spawn(move || {
        let host = open(&dir);
        let origin = host.load_plugin("html").map_err(|e| format!("{e:#}"));
        drop(host);
        let _ = tx.send(origin);
    });
    let origin = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("loading the plugin did not hang on the FIFO")
        .unwrap();
    assert_eq!(origin, Origin::Compiled);
    assert!(std::fs::symlink_metadata(&file).unwrap().is_file());
    assert_renders_html(&open(data.path()));
}
