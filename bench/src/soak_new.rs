//! The soak with an unbounded stream of new learners (`--soak-new-learners SECONDS`, and
//! part of the full run): every request is a first visit of a learner never seen before,
//! on every core, so stored data grows for the whole run. What it measures is resident
//! memory per stored learner after warm-up, and whether that growth is what the store
//! needs for the data it holds: the same learners' rows (two groups, each with its outbox
//! entry, flushed, the entries removed once logged) are then written straight to a fresh
//! store of the same kind with no render at all, and the host's memory per learner is
//! compared with the store's alone. The host keeps nothing per learner beyond caches with
//! a bound, so the two should match.
//!
//! Each run is a process of its own (this binary with [`CHILD_FLAG`]), so memory freed by
//! earlier rows and kept by the allocator neither hides nor adds growth.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use xbhost::events::{ASSIGNED_EVENT, Event, Experiments, LoggedEvent};
use xbhost::storage::OutboxEntry;

use super::pg::BenchDatabase;
use super::{DEMO, Table, open_host_on, request, rss_kib};

/// The flag this binary runs one soak process with: `--soak-new-child host SECONDS
/// [DATABASE_URL]` or `--soak-new-child store LEARNERS`.
pub const CHILD_FLAG: &str = "--soak-new-child";

/// What a soak process prints (one JSON line): a sample a second of (seconds, VmRSS KiB,
/// learners stored so far), the learners the store holds at the end, errors, and the
/// bytes of the store's files (the event log left out).
#[derive(serde::Serialize, serde::Deserialize)]
struct Outcome {
    samples: Vec<(f64, u64, u64)>,
    stored: u64,
    errors: u64,
    /// Of the errors, pages served with a block failed (a split test out of its time on a
    /// loaded machine): counted, not fatal, as in the PostgreSQL rows.
    failed_pages: u64,
    /// What the first few errors were (a block's failure, or an error of the host).
    first_errors: Vec<String>,
    store_bytes: u64,
}

impl Outcome {
    /// KiB of resident memory per learner stored between the end of warm-up (a sixth of
    /// the run, at least one sample) and the end, and the learners that covers.
    fn per_learner(&self) -> Option<(f64, u64)> {
        let warm = self.samples.get((self.samples.len() / 6).max(1))?;
        let end = self.samples.last()?;
        let learners = end.2.checked_sub(warm.2).filter(|&n| n > 0)?;
        Some(((end.1 as f64 - warm.1 as f64) / learners as f64, learners))
    }

    /// The errors for the table: how many, how many of them were pages with a block
    /// failed, and the first.
    fn describe_errors(&self) -> String {
        if self.errors == 0 {
            return "0".into();
        }
        format!(
            "{} ({} pages with a block failed; the first: {})",
            self.errors,
            self.failed_pages,
            self.first_errors.first().map_or("", String::as_str)
        )
    }

    /// Errors that end the run: the host answered an error (a failed block is counted).
    fn fatal(&self) -> bool {
        self.errors > self.failed_pages
    }

    /// Every `step`th sample of `f`, space-separated.
    fn every(&self, step: usize, f: impl Fn(&(f64, u64, u64)) -> String) -> String {
        let mut picked: Vec<String> = self.samples.iter().step_by(step).map(&f).collect();
        if !(self.samples.len() - 1).is_multiple_of(step)
            && let Some(last) = self.samples.last()
        {
            picked.push(f(last));
        }
        picked.join(" ")
    }
}

pub fn figures(
    table: &mut Table,
    cores: usize,
    seconds: u64,
    database: Option<&BenchDatabase>,
) -> Result<bool> {
    let mut ok = sled_figures(table, cores, seconds)?;
    match database {
        Some(db) => ok &= postgres_figures(table, cores, seconds, db)?,
        None => table.add(
            "soak, new learners on PostgreSQL",
            format!("not measured: no {}", super::pg::URL_VAR),
        ),
    }
    Ok(ok)
}

/// On PostgreSQL the store is another process, so whatever this host's memory does with
/// every new learner is the host's own: it should level off.
fn postgres_figures(
    table: &mut Table,
    cores: usize,
    seconds: u64,
    db: &BenchDatabase,
) -> Result<bool> {
    let host = spawn(&["host".into(), seconds.to_string(), db.url()])?;
    let elapsed = host.samples.last().map_or(0.0, |s| s.0);
    table.add(
        &format!("soak, new learners on PostgreSQL: {seconds}s on {cores} threads"),
        format!(
            "{} first visits ({:.0}/s), errors: {}",
            host.stored,
            host.stored as f64 / elapsed.max(1e-9),
            host.describe_errors()
        ),
    );
    table.add(
        "soak, new learners on PostgreSQL: resident memory every 10 s (MiB)",
        host.every(10, |s| format!("{}", s.1 / 1024)),
    );
    let Some((kib, n)) = host.per_learner() else {
        table.add(
            "soak, new learners on PostgreSQL: resident memory per stored learner",
            "not measured: the run was too short".into(),
        );
        return Ok(!host.fatal());
    };
    let flat = kib <= 0.25;
    table.check(
        "soak, new learners on PostgreSQL: resident memory per stored learner",
        format!("{kib:.3} KiB (over {n} learners after warm-up)"),
        "≤ 0.25 KiB (the host keeps nothing per learner)",
        flat,
    );
    Ok(flat && !host.fatal())
}

/// On sled, beside the same learners' rows written straight to a store of its own.
fn sled_figures(table: &mut Table, cores: usize, seconds: u64) -> Result<bool> {
    let host = spawn(&["host".into(), seconds.to_string()])?;
    let store = spawn(&["store".into(), host.stored.to_string()])?;
    let elapsed = host.samples.last().map_or(0.0, |s| s.0);
    table.add(
        &format!("soak, new learners only: {seconds}s on {cores} threads"),
        format!(
            "{} first visits ({:.0}/s), each a learner never seen before",
            host.stored,
            host.stored as f64 / elapsed.max(1e-9)
        ),
    );
    table.check(
        "soak, new learners: errors",
        host.describe_errors(),
        "0",
        host.errors == 0,
    );
    let step = 10;
    table.add(
        "soak, new learners: resident memory every 10 s (MiB)",
        host.every(step, |s| format!("{}", s.1 / 1024)),
    );
    table.add(
        "soak, new learners: stored learners every 10 s",
        host.every(step, |s| s.2.to_string()),
    );
    let (Some((host_kib, host_n)), Some((store_kib, store_n))) =
        (host.per_learner(), store.per_learner())
    else {
        table.add(
            "soak, new learners: resident memory per stored learner",
            "not measured: the run was too short".into(),
        );
        return Ok(!host.fatal());
    };
    table.add(
        "soak, new learners: resident memory per stored learner",
        format!(
            "{host_kib:.2} KiB (over {host_n} learners after warm-up; the store's files: {:.2} KiB per learner)",
            host.store_bytes as f64 / 1024.0 / host.stored.max(1) as f64
        ),
    );
    table.add(
        "the same learners' rows written straight to the store (no render)",
        format!(
            "{store_kib:.2} KiB per stored learner (over {store_n}; {} learners in {:.0} s)",
            store.stored,
            store.samples.last().map_or(0.0, |s| s.0)
        ),
    );
    // Allowance for noise: resident memory moves in pages and the allocator's arenas.
    let bounded = host_kib <= store_kib * 1.5 + 0.25;
    table.check(
        "soak, new learners: host / store alone, memory per learner",
        format!("{host_kib:.2} / {store_kib:.2} KiB"),
        "host ≤ 1.5 × store + 0.25 KiB (bounded by what is stored)",
        bounded,
    );
    Ok(!host.fatal() && bounded)
}

/// Runs one soak process and reads its outcome.
fn spawn(args: &[String]) -> Result<Outcome> {
    let mode = &args[0];
    let output = Command::new(super::linear::this_binary())
        .arg(CHILD_FLAG)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting the {mode} soak process"))?;
    if !output.status.success() {
        bail!("the {mode} soak process failed ({})", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .last()
        .context("the soak process printed nothing")?;
    Ok(serde_json::from_str(line)?)
}

/// The soak process: `args` are what follows [`CHILD_FLAG`].
pub fn child(args: &[String]) -> Result<()> {
    let (mode, amount, database) = match args {
        [mode, amount, rest @ ..] => (mode.as_str(), amount.parse::<u64>()?, rest.first()),
        _ => bail!("{CHILD_FLAG} host SECONDS | store LEARNERS"),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir()?;
    let host = open_host_on(dir.path(), false, database.cloned())?;
    // This run's learners only (a database may hold other runs' learners of the course).
    let prefix = format!("new-{}-", std::process::id());
    let course = host.course(DEMO)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let first_errors = std::sync::Mutex::new(Vec::new());
    let failed_pages = AtomicU64::new(0);
    let mut samples = Vec::new();
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let mut workers = Vec::new();
        for t in 0..cores {
            let (first_errors, prefix, failed_pages) = (&first_errors, &prefix, &failed_pages);
            let (host, course, stop, stored, errors, next) = (
                host.clone(),
                course.clone(),
                stop.clone(),
                stored.clone(),
                errors.clone(),
                next.clone(),
            );
            workers.push(scope.spawn(move || -> Result<()> {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let error = match mode {
                        "host" => {
                            i += 1;
                            match host.render(&request(&format!("{prefix}{t}-{i}"))) {
                                Ok(o) if o.failures.is_empty() && o.assignments.len() == 2 => None,
                                Ok(o) => {
                                    failed_pages.fetch_add(1, Ordering::Relaxed);
                                    let failures: Vec<String> = o
                                        .failures
                                        .iter()
                                        .map(|f| format!("{}: {}", f.usage_id, f.error))
                                        .collect();
                                    Some(format!(
                                        "{} groups stored, {}",
                                        o.assignments.len(),
                                        failures.join(", ")
                                    ))
                                }
                                Err(e) => Some(format!("{e:#}")),
                            }
                        }
                        _ => {
                            let n = next.fetch_add(1, Ordering::Relaxed);
                            if n >= amount {
                                break;
                            }
                            write_rows(host.storage(), &course, &format!("{prefix}{n}"))?;
                            None
                        }
                    };
                    match error {
                        None => {
                            stored.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            let mut first = first_errors.lock().expect("errors");
                            if first.len() < 3 {
                                first.push(e);
                            }
                        }
                    }
                }
                Ok(())
            }));
        }
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let elapsed = started.elapsed().as_secs_f64();
            samples.push((elapsed, rss_kib("VmRSS:"), stored.load(Ordering::Relaxed)));
            let done = match mode {
                "host" => elapsed >= amount as f64,
                _ => workers.iter().all(|w| w.is_finished()),
            };
            if done {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("soak thread")?;
        }
        Ok(())
    })?;
    let partition = xbhost::assignment::partition_tag_key(0);
    let outcome = Outcome {
        samples,
        stored: host
            .storage()
            .users_with_course_tag(DEMO, &partition)?
            .iter()
            .filter(|(user, _)| user.starts_with(&prefix))
            .count() as u64,
        errors: errors.load(Ordering::Relaxed),
        failed_pages: failed_pages.load(Ordering::Relaxed),
        first_errors: first_errors.into_inner().expect("errors"),
        store_bytes: store_bytes(dir.path())?,
    };
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

/// What a first visit of unit_1 stores for a new learner, written straight to the store:
/// the tags read, each of the two groups with its assignment event in the outbox, the
/// flush that makes them durable, and the entries removed once the log holds them.
fn write_rows(
    storage: &dyn xbhost::storage::Storage,
    course: &xbhost::model::Course,
    user: &str,
) -> Result<()> {
    std::hint::black_box(storage.learner_tags(DEMO, user)?);
    let mut ids = Vec::new();
    for partition in course.partitions() {
        let group = xbhost::assignment::assign(DEMO, partition, user).context("a group")?;
        let event = LoggedEvent::new(Event {
            name: ASSIGNED_EVENT.into(),
            time: xbhost::events::now(),
            course_key: DEMO.into(),
            user_id: user.into(),
            username: user.into(),
            usage_id: None,
            plugin: None,
            data: json!({"group_id": group.id, "group_name": group.name,
                         "partition_id": partition.id, "partition_name": partition.name}),
            experiments: Experiments::default(),
            course_tags: Default::default(),
        });
        let entry = OutboxEntry {
            id: event.id.clone(),
            line: serde_json::to_vec(&event)?,
        };
        storage.assign_course_tag(
            DEMO,
            user,
            &xbhost::assignment::partition_tag_key(partition.id),
            None,
            &group.id.to_string(),
            &entry,
        )?;
        ids.push(entry.id);
    }
    storage.flush()?;
    storage.remove_from_outbox(&ids)?;
    Ok(())
}

/// Bytes of the files under `dir`, the event log (and its rotations) left out.
fn store_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += store_bytes(&entry.path())?;
        } else if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("events.jsonl")
        {
            total += meta.len();
        }
    }
    Ok(total)
}
