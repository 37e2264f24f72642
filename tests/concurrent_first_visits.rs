//! Concurrent first visits share their store syncs (`storage::group_commit`): a flush that
//! finds a sync running waits for the next one, which one of the waiting threads leads for
//! all of them. Whatever was acknowledged must still survive SIGKILL. A writer process
//! (`concurrent_first_visits_writer`) renders first visits of new learners on eight threads
//! at once through the real host on sled, printing each page the host returned; it is
//! killed at random moments. After every kill the store must open and hold the groups of
//! every acknowledged page, unchanged, and every stored group's assignment event must be in
//! the event log exactly once or pending in the store's outbox; after a last start, in the
//! log exactly once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use xbhost::storage::{SledStorage, Storage};
use xbhost_tests::{DEMO_COURSE, assignment_events, demo_course_path, plugin_dir};

const THREADS: usize = 8;
const CYCLES: u64 = 12;

fn spawn_writer(data: &Path, run: u64, threads: usize) -> Child {
    Command::new(env!("CARGO_BIN_EXE_concurrent_first_visits_writer"))
        .args([
            data.to_str().unwrap(),
            plugin_dir().to_str().unwrap(),
            demo_course_path().to_str().unwrap(),
            &run.to_string(),
            &threads.to_string(),
        ])
        .env("XBHOST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// (user, partition) to the groups of its assignment events in the data directory's event
/// log, in log order.
fn logged_assignments(data: &Path) -> BTreeMap<(String, u64), Vec<String>> {
    let bytes = std::fs::read(data.join("events.jsonl")).unwrap_or_default();
    assignment_events::in_log(bytes.split(|&b| b == b'\n'))
}

/// The stored groups of partitions 0 and 1: user to group.
fn stored_groups(storage: &dyn Storage) -> [BTreeMap<String, String>; 2] {
    [0, 1].map(|partition| {
        let key = xbhost::assignment::partition_tag_key(partition);
        storage
            .users_with_course_tag(DEMO_COURSE, &key)
            .unwrap()
            .into_iter()
            .collect()
    })
}

#[test]
fn concurrent_first_visits_keep_every_acknowledged_group_through_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    // The first start installs the plugins and the course.
    let mut child = spawn_writer(data, 1_000_000, 0);
    assert!(child.wait().unwrap().success(), "the first start failed");
    let mut acknowledged: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for cycle in 0..CYCLES {
        let mut child = spawn_writer(data, cycle, THREADS);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        stdout.read_line(&mut ready).unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "cycle {cycle}: the writer did not start"
        );
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(100 + seed % 400));
        child.kill().unwrap(); // SIGKILL, while eight threads are mid-visit
        let status = child.wait().unwrap();
        // Killed, not ended on its own: a writer whose visits fail exits with an error.
        assert!(
            status.code().is_none(),
            "cycle {cycle}: the writer ended: {status}"
        );
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        let mut this_cycle = 0;
        for line in out
            .lines()
            .filter(|l| l.ends_with(|c: char| c.is_ascii_digit()))
        {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts[0], "assign", "{line}");
            let prev = acknowledged.insert(parts[1].into(), (parts[2].into(), parts[3].into()));
            assert!(prev.is_none(), "{} acknowledged twice", parts[1]);
            this_cycle += 1;
        }

        let storage = SledStorage::open(&data.join("db")).unwrap_or_else(|e| {
            panic!("cycle {cycle}: the store does not open after a kill: {e:#}")
        });
        let groups = stored_groups(&storage);
        for (user, (g0, g1)) in &acknowledged {
            for (partition, group) in [(0, g0), (1, g1)] {
                assert_eq!(
                    groups[partition].get(user),
                    Some(group),
                    "cycle {cycle} ({this_cycle} pages acknowledged in it): {user}'s \
                     acknowledged group in partition {partition}"
                );
            }
        }
        // Groups read before the events, as in tests/durability.rs.
        let logged = logged_assignments(data);
        let pending = assignment_events::pending(&storage);
        for (partition, stored) in groups.iter().enumerate() {
            let partition = partition as u64;
            for (user, group) in stored {
                let in_log = logged
                    .get(&(user.clone(), partition))
                    .cloned()
                    .unwrap_or_default();
                let waiting = pending.contains(&(user.clone(), partition, group.clone()));
                assert!(
                    in_log == [group.clone()] || (in_log.is_empty() && waiting),
                    "cycle {cycle}: {user}'s group {group} in partition {partition}: the \
                     log holds {in_log:?}, pending in the store: {waiting}"
                );
            }
        }
        drop(storage);
    }
    assert!(
        acknowledged.len() >= 100,
        "the writer made progress: {} first visits acknowledged",
        acknowledged.len()
    );

    // A last start writes what the killed writers left pending: then every stored group
    // has its event in the log exactly once.
    let mut child = spawn_writer(data, 2_000_000, 0);
    assert!(child.wait().unwrap().success(), "the last start failed");
    let storage = SledStorage::open(&data.join("db")).unwrap();
    let groups = stored_groups(&storage);
    let logged = logged_assignments(data);
    assert_eq!(
        assignment_events::pending(&storage),
        [],
        "all written at start"
    );
    for (partition, stored) in groups.iter().enumerate() {
        for (user, group) in stored {
            assert_eq!(
                logged.get(&(user.clone(), partition as u64)),
                Some(&vec![group.clone()]),
                "{user}'s group {group} in partition {partition}"
            );
        }
    }
    println!(
        "{} first visits acknowledged over {CYCLES} kills, {} groups stored",
        acknowledged.len(),
        groups[0].len()
    );
}
