//! Costs that grow linearly (issue #13, point 4): each cost measured at sizes a factor of
//! ten or more apart, a row per size and a row with the ratio of the cost per item at the
//! largest size to the smallest (1.00x is linear; a quadratic cost shows as roughly the
//! factor between the sizes). Peak memory is read from a separate process (the `xbhost`
//! binary run as an operator would, its peak RSS from `wait4`), so nothing this process
//! allocated before or keeps in its allocator's free lists hides or inflates it.
//!
//! - course load at 1k, 10k and 100k blocks (`course_load`);
//! - the experiment report at 10k, 100k and 1M events, from the event log and from the
//!   events table on PostgreSQL (`report_rows`);
//! - grade export at 1k and 10k learners (`grade_rows`).
//!
//! The soak with new learners (`soak_new`) is run beside these by `main`.
//!
//! `--linear` runs only these rows and the soak with new learners (`--quick`: the smaller
//! sizes; which sizes were measured is in each row).

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::Table;
use super::pg::BenchDatabase;

/// Every row of this module, at the sizes `quick` allows.
pub fn figures(table: &mut Table, quick: bool, database: Option<&BenchDatabase>) -> Result<()> {
    super::course_load::figures(table)?;
    super::report_rows::figures(table, quick, database)?;
    super::grade_rows::figures(table, quick)?;
    Ok(())
}

/// What a time ratio row allows: a linear cost's time per item still moves with the
/// machine and with the working set leaving the caches, while a quadratic one shows as the
/// factor between the sizes (10x or 100x). Loading a 100k-block course costs 1.1-1.6x a
/// 1k one per block in quieter runs (2.0-2.5x with the machine's load average above 4):
/// perf puts it in glibc's malloc_consolidate and unlink_chunk, fresh page faults and
/// hash-table misses, a plain `clone` of the same document (no host code) grows alike
/// per block (0.2 µs at 10k, 1.0-1.3 µs at 100k), and the time per block stays flat from
/// 100k to 400k.
pub const TIME_BOUND: f64 = 2.0;

/// The ratio row: the cost per item at the largest size over the smallest, checked
/// against `bound` (what noise and caches leave of "flat").
pub fn ratio_row(table: &mut Table, what: &str, large: f64, small: f64, bound: f64) {
    let ratio = large / small;
    table.check(
        what,
        format!("{ratio:.2}x"),
        &format!("≤ {bound:.2}x (flat: linear)"),
        ratio <= bound,
    );
}

/// `n` with thousands separators: 1,000,000.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size as the rows name it: 10k, 100k, 1M.
pub fn short(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n.is_multiple_of(1_000_000) => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n.is_multiple_of(1_000) => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// The `xbhost` binary: `XBHOST_BIN`, else beside this benchmark's binary (cargo builds
/// both into the same directory).
pub fn xbhost_bin() -> Result<PathBuf> {
    let path = match std::env::var_os("XBHOST_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()?.with_file_name("xbhost"),
    };
    if !path.is_file() {
        bail!(
            "no xbhost binary at {} (build it, or set XBHOST_BIN)",
            path.display()
        );
    }
    Ok(path)
}

/// A finished child process: its wall time and its peak resident memory.
pub struct ChildRun {
    pub wall: Duration,
    pub peak_rss_kib: u64,
}

/// The flag of the small process that runs a measured command for [`run_measured`]:
/// `--peak-rss-of PROGRAM ARGS...`.
pub const PEAK_RSS_FLAG: &str = "--peak-rss-of";

/// Runs `program` with `args` to its end and reads its own peak RSS. Not from this
/// process: Linux carries the peak of the address space a process `exec`s from into the
/// new program's `ru_maxrss`, and std spawns with `vfork`, whose address space is this
/// large benchmark's. So a fresh, small copy of this binary ([`PEAK_RSS_FLAG`],
/// [`peak_rss_helper`]) spawns the command and reads `wait4`'s usage, and its own small
/// peak, carried in, is checked to be below what it reports.
pub fn run_measured(program: &Path, args: &[OsString], envs: &[(&str, &str)]) -> Result<ChildRun> {
    let output = Command::new(this_binary())
        .arg(PEAK_RSS_FLAG)
        .arg(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()?;
    let what = format!("{} {:?}", program.display(), args);
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<u64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("the helper printed {text:?}"))?;
    let [peak, wall_us, helper_peak] = fields[..] else {
        bail!("the helper printed {text:?}");
    };
    if peak <= helper_peak {
        bail!(
            "{what}: its peak RSS ({peak} KiB) is not above the helper's own ({helper_peak} KiB), so it cannot be told apart"
        );
    }
    Ok(ChildRun {
        wall: Duration::from_micros(wall_us),
        peak_rss_kib: peak,
    })
}

/// The helper process of [`run_measured`]: runs `args` (program, then its arguments),
/// stdout discarded, and prints the program's peak RSS in KiB, its wall time in µs and
/// this process's own peak RSS in KiB.
pub fn peak_rss_helper(args: &[String]) -> Result<()> {
    let [program, rest @ ..] = args else {
        bail!("{PEAK_RSS_FLAG} PROGRAM ARGS...");
    };
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read as _;
        pipe.read_to_string(&mut stderr)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // Safe: `usage` is a plain C struct that wait4 fills in; the pid is our own child,
    // which std has not waited for (its `Child` is dropped below without waiting).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = loop {
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break r;
    };
    let wall = started.elapsed();
    drop(child);
    if waited != pid {
        bail!("waiting for {program}: {}", std::io::Error::last_os_error());
    }
    let status = std::process::ExitStatus::from_raw(status);
    if !status.success() {
        bail!("{program} failed ({status}): {}", stderr.trim());
    }
    // Linux reports ru_maxrss in KiB.
    println!(
        "{} {} {}",
        usage.ru_maxrss,
        wall.as_micros(),
        super::rss_kib("VmHWM:")
    );
    Ok(())
}

/// This process's own binary, to run copies of it: `/proc/self/exe`, which stays the
/// running program even when cargo replaces the file on disk meanwhile (the path
/// `current_exe` gives then names a deleted file).
pub fn this_binary() -> PathBuf {
    PathBuf::from("/proc/self/exe")
}

/// The median of a few timed runs of `f`.
pub fn median_time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Mebibytes from KiB, one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The demo course with every block (the problem included) under another course key, as
/// JSON, for rows that need a course of their own.
pub fn demo_course_as(key: &str) -> Result<serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/demo-course/course.json");
    let mut doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("reading {}", path.display()))?;
    doc["course_key"] = key.into();
    Ok(doc)
}
