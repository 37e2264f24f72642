//! The event log under `xbhost serve` on a bad day, through the real binary and a real
//! store: a log that cannot be written (a full tmpfs) fails no page, and its events are
//! kept in the store and written once space is back, each once (or, past the limit,
//! counted lost); a rotation by move and SIGHUP, and a rotation by size, under concurrent
//! page loads put every event in exactly one file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use xbhost::events::ASSIGNED_EVENT;
use xbhost_tests::DEMO_COURSE;
use xbhost_tests::http::{client, send};
use xbhost_tests::served::{Served, learner_token};

/// The events of a log, as JSON, leaving out lines that are not (the oracle is independent
/// of the host's reader).
fn events_in(path: &Path) -> Vec<Value> {
    let bytes = std::fs::read(path).unwrap_or_default();
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect()
}

/// Every event id of these files, failing on one written twice.
fn unique_ids(files: &[PathBuf]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for file in files {
        for event in events_in(file) {
            let id = event["id"]
                .as_str()
                .expect("every event has an id")
                .to_string();
            assert!(ids.insert(id.clone()), "event {id} written twice: {event}");
        }
    }
    ids
}

/// (user, partition) to the groups of its assignment events, over these files.
fn assignment_events(files: &[PathBuf]) -> BTreeMap<(String, String), Vec<u64>> {
    let mut out: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for file in files {
        for e in events_in(file) {
            if e["name"] == ASSIGNED_EVENT {
                out.entry((
                    e["user_id"].as_str().unwrap().into(),
                    e["data"]["partition_id"].to_string(),
                ))
                .or_default()
                .push(e["data"]["group_id"].as_u64().unwrap());
            }
        }
    }
    out
}

/// Loads `unit_1` as a learner (JSON); returns the groups it shows, by partition.
async fn load(served: &Served, learner: &str) -> BTreeMap<String, u64> {
    let url = format!("{}?format=json", served.block_url("unit_1"));
    let (status, body) = send(client().get(&url).bearer_auth(learner_token(learner))).await;
    assert_eq!(status, 200, "{learner}: {body}");
    assert!(body["failures"].as_array().unwrap().is_empty(), "{body}");
    serde_json::from_value(body["assignments"].clone()).unwrap()
}

/// Each learner's assignments are in the files, exactly once each.
fn assert_assignments_logged(files: &[PathBuf], shown: &BTreeMap<String, BTreeMap<String, u64>>) {
    let logged = assignment_events(files);
    for (learner, groups) in shown {
        assert_eq!(groups.len(), 2, "{learner}: {groups:?}");
        for (partition, group) in groups {
            assert_eq!(
                logged.get(&(learner.clone(), partition.clone())),
                Some(&vec![*group]),
                "{learner}'s assignment in partition {partition}"
            );
        }
    }
}

/// A metric's value in `/metrics`.
async fn metric(served: &Served, name: &str) -> f64 {
    let (status, body) = send(client().get(format!("{}/metrics", served.url))).await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

/// A small tmpfs this test mounts (tests run as root), unmounted when dropped, whatever
/// happened.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::Builder::new()
            .prefix("xbhost-full-disk")
            .tempdir()
            .unwrap()
            .keep();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs on {} failed: this test needs root",
            dir.display()
        );
        Tmpfs { dir }
    }

    /// Fills the file system: every write after this needs space it does not have.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.dir.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_fails_no_page_and_its_events_are_written_later() {
    let disk = Tmpfs::mount("1m");
    let log = disk.dir.join("events.jsonl");
    let served = Served::demo(&["--events", log.to_str().unwrap()]);
    let filler = disk.fill();

    // New learners (assignments stored, events to send) and a second visit (nothing
    // written, exposures to send): every page answers.
    let mut shown = BTreeMap::new();
    for i in 0..5 {
        let learner = format!("full-{i}");
        shown.insert(learner.clone(), load(&served, &learner).await);
    }
    load(&served, "full-0").await;
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        0,
        "failed writes cut back off"
    );
    assert!(metric(&served, "xbhost_event_log_write_errors_total").await >= 6.0);
    let deferred = metric(&served, "xbhost_events_deferred_total").await;
    assert!(
        deferred >= 10.0,
        "assignment events of five learners and more: {deferred}"
    );
    assert_eq!(metric(&served, "xbhost_events_waiting").await, deferred);
    assert_eq!(metric(&served, "xbhost_events_lost_total").await, 0.0);
    let logged = served.log();
    assert!(
        logged.contains("cannot write to the event log") && logged.contains(log.to_str().unwrap()),
        "the server log names the file: {logged}"
    );

    // Space is back: the next page's delivery writes what waited, then its own events.
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    shown.insert("full-after".into(), load(&served, "full-after").await);
    assert_eq!(metric(&served, "xbhost_events_waiting").await, 0.0);
    assert_eq!(
        metric(&served, "xbhost_events_replayed_total").await,
        deferred
    );
    let files = [log.clone()];
    let ids = unique_ids(&files);
    assert_assignments_logged(&files, &shown);
    // What waited, then the last page's own events (two assignments and more).
    assert!(ids.len() as f64 >= deferred + 2.0, "{} events", ids.len());
    served.stop();

    // Past --event-log-max-deferred, events are lost and counted; an assignment's event
    // still waits in the store (it was stored with the group) and is written later.
    let log = disk.dir.join("events-2.jsonl");
    let served = Served::demo(&[
        "--events",
        log.to_str().unwrap(),
        "--event-log-max-deferred",
        "0",
    ]);
    let filler = disk.fill();
    let groups = load(&served, "lossy").await;
    load(&served, "lossy").await;
    assert!(
        metric(&served, "xbhost_events_lost_total").await >= 2.0,
        "the exposures"
    );
    assert_eq!(metric(&served, "xbhost_events_deferred_total").await, 2.0);
    assert!(served.log().contains("lost"), "{}", served.log());
    std::fs::remove_file(&filler).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    load(&served, "lossy").await;
    let files = [log.clone()];
    unique_ids(&files);
    assert_assignments_logged(&files, &BTreeMap::from([("lossy".to_string(), groups)]));
    served.stop();
}

/// A learner whose page was loaded, when the request started, and the groups it showed.
type Loaded = (String, Instant, BTreeMap<String, u64>);

/// Loads pages for new learners on `tasks` concurrent tasks until `stop`.
fn load_until(
    served: &Arc<Served>,
    stop: &Arc<AtomicBool>,
    tasks: usize,
    prefix: &str,
) -> Vec<tokio::task::JoinHandle<Vec<Loaded>>> {
    (0..tasks)
        .map(|t| {
            let (served, stop, prefix) = (served.clone(), stop.clone(), prefix.to_string());
            tokio::spawn(async move {
                let mut done = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let learner = format!("{prefix}-{t}-{i}");
                    let started = Instant::now();
                    let groups = load(&served, &learner).await;
                    done.push((learner, started, groups));
                    i += 1;
                }
                done
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_by_move_and_sighup_under_load_puts_every_event_in_one_file() {
    let served = Arc::new(Served::demo(&[]));
    let log = served.data.path().join("events.jsonl");
    let moved = served.data.path().join("events.jsonl.rotated");
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load_until(&served, &stop, 4, "hup");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    std::fs::rename(&log, &moved).unwrap();
    let status = Command::new("kill")
        .args(["-HUP", &served.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Once the server says so, every event goes to the new file.
    let waited = Instant::now();
    while !served.log().contains("SIGHUP: the event log is reopened") {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reopened = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut shown = BTreeMap::new();
    let mut after = Vec::new();
    for task in tasks {
        for (learner, started, groups) in task.await.unwrap() {
            if started > reopened {
                after.push(learner.clone());
            }
            shown.insert(learner, groups);
        }
    }
    let served = Arc::into_inner(served).unwrap();
    let _data = served.stop();

    let files = [moved.clone(), log.clone()];
    unique_ids(&files);
    assert_assignments_logged(&files, &shown);
    let (before_files, new_file) = (assignment_events(&[moved]), assignment_events(&[log]));
    assert!(
        !before_files.is_empty() && !after.is_empty(),
        "pages loaded on both sides"
    );
    for learner in &after {
        assert!(
            new_file.contains_key(&(learner.clone(), "0".into())),
            "{learner} loaded after the reopen: its events are in the new file"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_by_size_under_load_keeps_every_event_once() {
    let served = Arc::new(Served::demo(&[
        "--event-log-max-bytes",
        "30000",
        "--event-log-keep",
        "1000",
    ]));
    let log = served.data.path().join("events.jsonl");
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load_until(&served, &stop, 4, "size");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::SeqCst);
    let mut shown = BTreeMap::new();
    for task in tasks {
        for (learner, _, groups) in task.await.unwrap() {
            shown.insert(learner, groups);
        }
    }
    let served = Arc::into_inner(served).unwrap();
    let data = served.stop();
    let mut files = vec![log.clone()];
    for n in 1.. {
        let rotated = data.path().join(format!("events.jsonl.{n}"));
        if !rotated.exists() {
            break;
        }
        files.push(rotated);
    }
    assert!(files.len() >= 3, "rotated {} times", files.len() - 1);
    for file in &files {
        let len = std::fs::metadata(file).unwrap().len();
        assert!(len <= 30_000, "{} is {len} bytes", file.display());
    }
    unique_ids(&files);
    assert_assignments_logged(&files, &shown);
}

#[test]
fn commands_on_a_full_log_succeed_and_the_next_start_writes_their_assignment_events() {
    let disk = Tmpfs::mount("1m");
    let log = disk.dir.join("events.jsonl");
    let events = log.to_str().unwrap();
    let data = tempfile::tempdir().unwrap();
    xbhost_tests::copy_dir(xbhost_tests::served::demo_template(), data.path());
    let elsewhere = data.path().join("visitor.jsonl");
    let render = |events: &str, who: &[&str]| {
        let mut args = vec!["--events", events, "render", "--course", DEMO_COURSE];
        args.extend(["--block", "unit_1", "--json"]);
        args.extend(who);
        xbhost_tests::xbhost_ok(data.path(), &args)
    };
    render(elsewhere.to_str().unwrap(), &["--session", "visitor-1"]);
    let filler = disk.fill();

    // A new learner's first visit, and a visitor's groups carried over at sign-in: the
    // commands succeed, their events wait in the store.
    let first: Value = serde_json::from_str(&render(events, &["--user", "cli-new"])).unwrap();
    let (ok, _, err) = xbhost_tests::xbhost(
        data.path(),
        &[
            "--events",
            events,
            "refresh-identifier",
            "--session",
            "visitor-1",
            "--user",
            "cli-carried",
        ],
    );
    assert!(ok, "refresh-identifier failed on a full log: {err}");
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        0,
        "nothing written yet"
    );

    // Space is back: the next start writes them, each once.
    std::fs::remove_file(&filler).unwrap();
    xbhost_tests::xbhost_ok(data.path(), &["--events", events, "plugin", "list"]);
    let logged = assignment_events(std::slice::from_ref(&log));
    let groups: BTreeMap<String, u64> =
        serde_json::from_value(first["assignments"].clone()).unwrap();
    for (partition, group) in &groups {
        assert_eq!(
            logged[&("cli-new".to_string(), partition.clone())],
            [*group]
        );
        assert_eq!(
            logged[&("cli-carried".to_string(), partition.clone())].len(),
            1
        );
    }
    let carried: Vec<Value> = events_in(&log)
        .into_iter()
        .filter(|e| e["user_id"] == "cli-carried" && e["name"] == ASSIGNED_EVENT)
        .collect();
    assert!(
        carried
            .iter()
            .all(|e| e["data"]["carried_over_from"] == "anon:visitor-1"),
        "{carried:?}"
    );
    unique_ids(std::slice::from_ref(&log));
}
