//! Acknowledged writes survive SIGKILL. A writer process (`durability_writer`) renders
//! first visits (assignments), tag_probe pages (a course tag and a global tag in one
//! commit) and problem submissions (user state) through the real host, printing each write
//! the host acknowledged; it is killed at random moments, sometimes while still starting up
//! and recovering the store. After every kill the store must open, hold every acknowledged
//! write, keep multi-key commits all-or-nothing, and never change a stored assignment; and
//! the event log must hold the assignment event of every stored assignment exactly once, or
//! the store must hold it pending (written, without a duplicate, at the next start).
//!
//! The same body runs on sled (the data directory's store and `events.jsonl`) and on
//! PostgreSQL (the writer's host on `--database` of a fresh database, events in its `events`
//! table, committed with the writes: there nothing is ever pending).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xbhost::storage::{PgOptions, PgStorage, SledStorage, Storage};
use xbhost_tests::pg::TestDatabase;
use xbhost_tests::{DEMO_COURSE, assignment_events, demo_course_path, plugin_dir};

const PROBE: &str = "course-v1:xbhost+durable+1";
const CYCLES: u64 = 200;

/// A small deterministic generator, so a failing cycle can be replayed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// Where the writer keeps its data: its data directory's sled store, or a database.
enum Target {
    Sled,
    Pg(TestDatabase),
}

impl Target {
    /// The store, opened after a kill, as the next host would open it.
    fn open(&self, data: &std::path::Path) -> anyhow::Result<Box<dyn Storage>> {
        Ok(match self {
            Target::Sled => Box::new(SledStorage::open(&data.join("db"))?),
            Target::Pg(db) => Box::new(PgStorage::connect(&db.url, &PgOptions::default())?),
        })
    }

    /// The demo course's assignment events the store's event log holds (see
    /// [`assignment_events::in_log`]): `events.jsonl` on sled, the `events` table on PostgreSQL.
    fn assignment_events(
        &self,
        data: &std::path::Path,
        storage: &dyn Storage,
    ) -> BTreeMap<(String, u64), Vec<String>> {
        match self {
            Target::Sled => {
                let bytes = std::fs::read(data.join("events.jsonl")).unwrap_or_default();
                assignment_events::in_log(bytes.split(|&b| b == b'\n'))
            }
            Target::Pg(_) => {
                let mut lines = Vec::new();
                storage
                    .course_events(DEMO_COURSE, None, &mut |e| {
                        lines.push(e.line.into_bytes());
                        Ok(())
                    })
                    .unwrap();
                assignment_events::in_log(lines.iter().map(Vec::as_slice))
            }
        }
    }
}

fn spawn_writer(target: &Target, data: &std::path::Path, run: u64) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_durability_writer"));
    command.args([
        data.to_str().unwrap(),
        plugin_dir().to_str().unwrap(),
        demo_course_path().to_str().unwrap(),
        &run.to_string(),
    ]);
    if let Target::Pg(db) = target {
        command.args(["--database", &db.url]);
    }
    command
        .env("XBHOST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Runs a writer until it says `ready`, and returns how long that took.
fn start_up(target: &Target, data: &std::path::Path, run: u64) -> Duration {
    let started = Instant::now();
    let mut child = spawn_writer(target, data, run);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let took = started.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    took
}

#[test]
fn acknowledged_writes_survive_sigkill_and_assignments_never_change() {
    survives_sigkill(Target::Sled);
}

#[test]
fn pg_acknowledged_writes_survive_sigkill_and_assignments_never_change() {
    survives_sigkill(Target::Pg(TestDatabase::fresh()));
}

/// One variant at a time: a writer spawned by one variant's thread can inherit, between fork
/// and exec, the sled lock the other variant's check holds, and kills timed against a start
/// are meaningless on a machine both variants load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn survives_sigkill(target: Target) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let data = tempfile::tempdir().unwrap();
    // Install plugins and courses once; then learn how long a start (and recovery) takes.
    start_up(&target, data.path(), 1_000_000);
    let ready = start_up(&target, data.path(), 1_000_001).as_millis() as u64;
    let mut assignments: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    let mut probe_acked = 0u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut early_kills = 0;
    // Stored assignments whose event a kill left only in the outbox, over all cycles.
    let mut only_pending = 0;
    for cycle in 0..CYCLES {
        let mut child = spawn_writer(&target, data.path(), cycle);
        // One cycle in five is killed before the writer is ready: during start-up and
        // store recovery. The others at a random moment while it writes.
        let delay = if next(&mut seed).is_multiple_of(5) {
            early_kills += 1;
            next(&mut seed) % ready.max(1)
        } else {
            ready + next(&mut seed) % 60
        };
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();

        let opened = target.open(data.path()).unwrap_or_else(|e| {
            panic!("cycle {cycle}: the store does not open after a kill: {e:#}")
        });
        let storage = &*opened;
        for line in out
            .lines()
            .filter(|l| l.ends_with(|c: char| c.is_ascii_digit()))
        {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts[0] {
                "assign" => {
                    let prev =
                        assignments.insert(parts[1].into(), (parts[2].into(), parts[3].into()));
                    assert!(prev.is_none(), "{} assigned twice", parts[1]);
                }
                "probe" => probe_acked = probe_acked.max(parts[1].parse().unwrap()),
                "state" => {
                    states.insert(parts[1].into(), parts[2].parse().unwrap());
                }
                _ => {}
            }
        }
        // Every acknowledged assignment is there, unchanged (all of them, every cycle).
        let stored_groups: Vec<BTreeMap<String, String>> = [0, 1]
            .map(|partition| {
                let key = xbhost::assignment::partition_tag_key(partition);
                let rows = storage.users_with_course_tag(DEMO_COURSE, &key).unwrap();
                rows.into_iter().collect()
            })
            .into();
        for (user, (g0, g1)) in &assignments {
            for (partition, group) in [(0, g0), (1, g1)] {
                let stored = stored_groups[partition].get(user);
                assert_eq!(
                    stored,
                    Some(group),
                    "cycle {cycle}: {user}'s group in partition {partition}"
                );
            }
        }
        // Every stored assignment (acknowledged or not) has its event in the log, once, or
        // pending in the store's outbox, stored in the same atomic write as the group: the
        // next start writes it.
        // The groups are read before the events: a killed writer's last COMMIT may still
        // land meanwhile (the server finishes what the client sent), and a group read
        // after the events could be one whose events came in after they were read.
        let groups_now: Vec<Vec<(String, String)>> = [0, 1]
            .map(|partition| {
                let key = xbhost::assignment::partition_tag_key(partition);
                storage.users_with_course_tag(DEMO_COURSE, &key).unwrap()
            })
            .into();
        let logged = target.assignment_events(data.path(), storage);
        let pending = assignment_events::pending(storage);
        for partition in [0, 1] {
            for (user, group) in groups_now[partition as usize].clone() {
                let in_log = logged
                    .get(&(user.clone(), partition))
                    .cloned()
                    .unwrap_or_default();
                let waiting = pending.contains(&(user.clone(), partition, group.clone()));
                only_pending += usize::from(in_log.is_empty() && waiting);
                assert!(
                    in_log == [group.clone()] || (in_log.is_empty() && waiting),
                    "cycle {cycle}: {user}'s group {group} in partition {partition}: the log \
                     holds {in_log:?}, pending in the store: {waiting}"
                );
            }
        }
        // The probe's course and global counters were committed together, never apart.
        let course = storage.course_tag(PROBE, "counter", "visits").unwrap();
        let global = storage.user_tag("counter", "visits").unwrap();
        assert_eq!(course, global, "cycle {cycle}: a multi-key commit was torn");
        let stored: u64 = course.map_or(0, |v| v.parse().unwrap());
        assert!(
            stored >= probe_acked,
            "cycle {cycle}: acknowledged visit {probe_acked} lost (stored {stored})"
        );
        for (user, attempts) in &states {
            let state = storage
                .user_state(PROBE, user, "p")
                .unwrap()
                .unwrap_or_else(|| panic!("cycle {cycle}: {user}'s state lost"));
            let state: serde_json::Value = serde_json::from_str(&state).unwrap();
            assert!(state["attempts"].as_u64().unwrap() >= *attempts);
        }
        drop(opened);
    }
    // A last start writes what the killed writers left pending; then the log holds the
    // assignment event of every stored assignment (acknowledged or not: a stored group is
    // never assigned again, so an event missing now is missing for good), each once.
    start_up(&target, data.path(), 2_000_000);
    let storage = target.open(data.path()).unwrap();
    let storage = &*storage;
    // Groups before events, as above.
    let groups_now: Vec<Vec<(String, String)>> = [0, 1]
        .map(|partition| {
            let key = xbhost::assignment::partition_tag_key(partition);
            storage.users_with_course_tag(DEMO_COURSE, &key).unwrap()
        })
        .into();
    let logged = target.assignment_events(data.path(), storage);
    assert_eq!(
        assignment_events::pending(storage),
        [],
        "all written at start"
    );
    let mut stored_assignments = 0;
    for partition in [0, 1] {
        for (user, group) in groups_now[partition as usize].clone() {
            stored_assignments += 1;
            let found = logged
                .get(&(user.clone(), partition))
                .cloned()
                .unwrap_or_default();
            assert_eq!(
                found,
                vec![group.clone()],
                "{user}'s assignment to group {group} of partition {partition}: the log holds {found:?}"
            );
        }
    }
    assert!(stored_assignments >= 2 * assignments.len());
    println!("{only_pending} times a kill left an assignment's event pending in the store only");
    assert!(early_kills > 10, "some kills hit start-up and recovery");
    assert!(
        assignments.len() > 100,
        "the writer made progress: {} assignments",
        assignments.len()
    );
    assert!(
        probe_acked > 50,
        "the writer made progress: {probe_acked} probe commits"
    );
}
