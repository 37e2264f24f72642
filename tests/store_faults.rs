//! The store on a bad day, through a real `xbhost serve` and the CLI: a disk that fills up
//! (a small tmpfs this test mounts; tests run as root, as CI does) and comes back, and
//! damaged store files. Errors are one line naming the data directory (to the operator;
//! clients never see a path), nothing acknowledged is lost, writes resume without a
//! restart, `/healthz` says what state the store is in, and no page shows a group that
//! is not durable.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use xbhost_tests::served::{Served, demo_template, learner_token};
use xbhost_tests::{DEMO_COURSE, copy_dir, plugin_path, xbhost, xbhost_ok};

/// A tmpfs of `megabytes`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(megabytes: u32) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("xbhost-full-disk")
            .tempdir()
            .unwrap()
            .keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "mounting a tmpfs at {} failed: these tests run as root (as .ci/run does)",
            dir.display()
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Fills the file system holding `dir` to the last byte; returns the filler file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        if file.write_all(&chunk).is_err() {
            break;
        }
    }
    for size in [4096usize, 512, 1] {
        while file.write_all(&chunk[..size]).is_ok() {}
    }
    let _ = file.sync_all();
    path
}

/// A learner's JSON render of the demo unit: status and body.
async fn render(served: &Served, learner: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}?format=json", served.block_url("unit_1")))
        .bearer_auth(learner_token(learner))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| panic!("the server did not answer ({e}): {}", served.log()));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn healthz(served: &Served) -> (u16, Value) {
    let response = reqwest::get(format!("{}/healthz", served.url))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The partition tags stored for `learner`, as `{partition: group}`.
fn stored_groups(data: &Path, learner: &str) -> BTreeMap<String, String> {
    let out = xbhost_ok(
        data,
        &["tags", "list", "--course", DEMO_COURSE, "--user", learner],
    );
    out.lines()
        .filter_map(|l| {
            let (key, value) = l.split_once(['=', ' ', '\t'])?;
            let partition = key
                .trim()
                .strip_prefix("xblock.partition_service.partition_")?;
            Some((
                partition.to_string(),
                value.trim().trim_matches('"').to_string(),
            ))
        })
        .collect()
}

fn shown_groups(body: &Value) -> BTreeMap<String, String> {
    body["assignments"]
        .as_object()
        .unwrap_or_else(|| panic!("no assignments in {body}"))
        .iter()
        .map(|(p, g)| (p.clone(), g.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_and_they_resume_when_space_is_back() {
    let disk = Tmpfs::mount(48);
    let data = tempfile::tempdir_in(&disk.0).unwrap();
    copy_dir(demo_template(), data.path());
    let data_path = data.path().to_path_buf();
    // The operator's log lives elsewhere (journald, say): what it says is checked below.
    let log_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        log_dir.path().join("serve.log"),
        data.path().join("serve.log"),
    )
    .unwrap();
    let mut served = Served::start(data, &[]);

    let mut acknowledged = Vec::new();
    let (status, body) = render(&served, "before").await;
    assert_eq!(status, 200, "{body}");
    acknowledged.push(("before".to_string(), shown_groups(&body)));
    assert_eq!(healthz(&served).await.0, 200);

    let filler = fill(&disk.0);
    // sled may still have room in space it holds: new learners until one is refused.
    let mut refused = None;
    for i in 0..5000 {
        let learner = format!("during{i}");
        let (status, body) = render(&served, &learner).await;
        match status {
            200 => acknowledged.push((learner, shown_groups(&body))),
            503 => {
                // Its group may be in the store's memory, never flushed: no page may show
                // it while the disk is full.
                let (again, body_again) = render(&served, &learner).await;
                assert_eq!(
                    again, 503,
                    "learner {learner} was shown a group that is not durable: {body_again}"
                );
                refused = Some(body);
                break;
            }
            other => panic!("learner {learner}: {other} {body}"),
        }
    }
    let refused = refused.expect("a full disk never refused a new learner's assignment");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("store is unavailable"), "{error}");
    assert!(
        !error.contains(&*disk.0.to_string_lossy()),
        "a path leaked: {error}"
    );
    let (status, health) = healthz(&served).await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["store"], "failing", "{health}");
    assert!(
        !health["error"]
            .as_str()
            .unwrap()
            .contains(&*disk.0.to_string_lossy()),
        "{health}"
    );
    // The operator's log names the data directory, on one line.
    let log = served.log();
    assert!(
        log.lines()
            .any(|l| l.contains("the store failed") && l.contains(&*data_path.to_string_lossy())),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    // Space comes back: writes resume, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let started = Instant::now();
    let after = loop {
        let (status, body) = render(&served, "after").await;
        if status == 200 {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "writes did not resume after space came back: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    acknowledged.push(("after".to_string(), shown_groups(&after)));
    let (status, health) = healthz(&served).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["store"], "writable");

    // A crash now loses nothing that was acknowledged.
    let data = std::mem::replace(&mut served.data, tempfile::tempdir().unwrap());
    drop(served); // SIGKILL
    std::thread::sleep(Duration::from_millis(300));
    for (learner, shown) in &acknowledged {
        assert!(!shown.is_empty(), "{learner} was shown no group");
        assert_eq!(
            &stored_groups(data.path(), learner),
            shown,
            "learner {learner}: the groups shown were not stored"
        );
    }
    drop(data);
    drop(disk);
}

/// Flips bytes in the store's files: every command and `serve` give a one-line error
/// naming the data directory; none panics.
#[test]
fn damaged_store_files_are_named_not_panicked_over() {
    for file in ["conf", "snap"] {
        let data = tempfile::tempdir().unwrap();
        copy_dir(demo_template(), data.path());
        let target = std::fs::read_dir(data.path().join("db"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(file))
            .unwrap_or_else(|| panic!("no {file}* in the store"));
        let mut bytes = std::fs::read(&target).unwrap();
        for i in (0..bytes.len()).step_by(7) {
            bytes[i] ^= 0x5a;
        }
        std::fs::write(&target, bytes).unwrap();

        let (ok, _, err) = xbhost(data.path(), &["course", "list"]);
        assert!(!ok, "a damaged {file} was not noticed");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].starts_with("error: "), "{err}");
        assert!(
            lines[0].contains(&*data.path().to_string_lossy()),
            "the error does not name the data directory: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");

        let served = Command::new(xbhost_tests::xbhost_bin())
            .arg("--data")
            .arg(data.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("XBHOST_TOKEN_SECRET", xbhost_tests::served::TEST_SECRET)
            .env("XBHOST_LOG", "off")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&served.stderr);
        assert!(!served.status.success(), "serve started on a damaged store");
        assert!(err.contains(&*data.path().to_string_lossy()), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// A store that silently lost acknowledged writes (here: an older copy put in its place,
/// as sled leaves it when it drops a damaged part of its log) is refused by name.
#[test]
fn a_store_that_lost_acknowledged_writes_is_refused() {
    let data = tempfile::tempdir().unwrap();
    copy_dir(demo_template(), data.path());
    let db = data.path().join("db");
    let older = tempfile::tempdir().unwrap();
    copy_dir(&db, older.path());
    xbhost_ok(
        data.path(),
        &[
            "tags",
            "set",
            "--course",
            DEMO_COURSE,
            "--user",
            "ada",
            "colour",
            "blue",
        ],
    );
    std::fs::remove_dir_all(&db).unwrap();
    copy_dir(older.path(), &db);

    let (ok, _, err) = xbhost(data.path(), &["course", "list"]);
    assert!(!ok, "a store missing acknowledged writes opened");
    assert!(err.contains("is damaged"), "{err}");
    assert!(err.contains(&*db.to_string_lossy()), "{err}");
    assert_eq!(
        err.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{err}"
    );
}

/// The server's own log on the disk that fills up: writing it fails, the server goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_log_does_not_stop_the_server() {
    let disk = Tmpfs::mount(48);
    let data = tempfile::tempdir_in(&disk.0).unwrap();
    copy_dir(demo_template(), data.path());
    let served = Served::start(data, &[]);
    assert_eq!(render(&served, "before").await.0, 200);
    let _filler = fill(&disk.0);
    for i in 0..50 {
        let (status, body) = render(&served, &format!("during{i}")).await;
        assert!(status == 200 || status == 503, "{status} {body}");
    }
    let (status, _) = healthz(&served).await;
    assert!(status == 200 || status == 503);
    drop(served);
    drop(disk);
}

/// Moving a damaged store away, as its error advises, starts an empty one: the generation
/// recorded for the old store does not make the new one "damaged".
#[test]
fn a_new_store_in_place_of_a_moved_one_opens() {
    let data = tempfile::tempdir().unwrap();
    copy_dir(demo_template(), data.path());
    xbhost_ok(
        data.path(),
        &[
            "tags",
            "set",
            "--course",
            DEMO_COURSE,
            "--user",
            "ada",
            "colour",
            "blue",
        ],
    );
    assert!(data.path().join("db.generation").is_file());
    std::fs::rename(data.path().join("db"), data.path().join("db.damaged")).unwrap();
    // A read-only command does not start a store in its place (it would hide a mistyped
    // --data); a command that creates things does, and the new store is not "damaged".
    let (ok, _, err) = xbhost(data.path(), &["course", "list"]);
    assert!(!ok && err.contains("no xbhost store"), "{err}");
    xbhost_ok(
        data.path(),
        &["plugin", "add", plugin_path("html").to_str().unwrap()],
    );
    let (ok, out, err) = xbhost(data.path(), &["course", "list"]);
    assert!(ok, "{err}");
    assert!(!out.contains(DEMO_COURSE), "{out}");
}

/// A page that shows a group another request stored but has not flushed yet makes it
/// durable first: request A assigns the learner's group, then a block sleeps before A
/// flushes; meanwhile request B shows that group; a SIGKILL right after B's answer must
/// leave the group stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_stored_by_another_request_is_durable_before_it_is_shown() {
    const COURSE: &str = "course-v1:xbhost+unflushed+1";
    let data = tempfile::tempdir().unwrap();
    copy_dir(demo_template(), data.path());
    xbhost_ok(
        data.path(),
        &[
            "plugin",
            "add",
            xbhost_tests::plugin_path("sleeper").to_str().unwrap(),
        ],
    );
    let doc = data.path().join("unflushed.json");
    std::fs::write(
        &doc,
        serde_json::json!({
            "course_key": COURSE,
            "user_partitions": [{"id": 0, "name": "P", "groups": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}]}],
            "blocks": [
                {"usage_id": "slow", "type": "vertical", "children": ["exp", "nap"]},
                {"usage_id": "exp", "type": "split_test",
                 "fields": {"user_partition_id": 0, "group_id_to_child": {"0": "a", "1": "b"}},
                 "children": ["a", "b"]},
                {"usage_id": "a", "type": "html", "fields": {"data": "<p>a</p>"}},
                {"usage_id": "b", "type": "html", "fields": {"data": "<p>b</p>"}},
                {"usage_id": "nap", "type": "sleeper", "fields": {"ms": 4000}},
                {"usage_id": "fast", "type": "vertical", "children": ["exp2"]},
                {"usage_id": "exp2", "type": "split_test",
                 "fields": {"user_partition_id": 0, "group_id_to_child": {"0": "c", "1": "d"}},
                 "children": ["c", "d"]},
                {"usage_id": "c", "type": "html", "fields": {"data": "<p>c</p>"}},
                {"usage_id": "d", "type": "html", "fields": {"data": "<p>d</p>"}}
            ]
        })
        .to_string(),
    )
    .unwrap();
    xbhost_ok(data.path(), &["course", "load", doc.to_str().unwrap()]);
    let mut served = Served::start(data, &[]);
    let token =
        xbhost_tests::served::token("racer", &[(COURSE, xbhost::server::auth::Role::Learner)]);
    let url = |unit: &str| format!("{}/courses/{COURSE}/blocks/{unit}?format=json", served.url);

    let slow = {
        let (url, token) = (url("slow"), token.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
        })
    };
    // A has stored the group and sleeps in `nap` before it flushes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shown: Value = reqwest::Client::new()
        .get(url("fast"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let group = shown["assignments"]["0"].clone();
    assert!(group.is_u64(), "B was shown no group: {shown}");
    let data = std::mem::replace(&mut served.data, tempfile::tempdir().unwrap());
    drop(served); // SIGKILL, while A still sleeps
    slow.abort();
    std::thread::sleep(Duration::from_millis(300));
    let out = xbhost_ok(
        data.path(),
        &["tags", "list", "--course", COURSE, "--user", "racer"],
    );
    let stored = format!("xblock.partition_service.partition_0\t{group}");
    assert!(
        out.lines().any(|l| l.trim() == stored),
        "B showed group {group}, but the store holds: {out:?}"
    );
}
