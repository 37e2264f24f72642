//! Shared set-up for the workspace integration tests: real built plugins, a real host on a
//! real sled store in a temporary directory, and the statistics the experiment tests use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use statrs::distribution::{ChiSquared, ContinuousCDF};
use xbhost::events::MemorySink;
use xbhost::model::CourseDoc;
use xbhost::storage::{BlockWrites, CarriedTag, FirstWrite, PluginRecord, SledStorage, Storage};
use xbhost::{Host, HostConfig, RenderOutput, RenderRequest, User, View};

pub mod assignment_events;
pub mod authoring;
pub mod browser;
pub mod db_pages;
pub mod exports;
pub mod http;
pub mod modules;
pub mod olx;
pub mod pg;
mod pg_cluster;
pub mod problem_answers;
pub mod served;
pub mod sign_in;

pub const DEMO_COURSE: &str = "course-v1:xbhost+demo+2026";

/// The plugins shipped to course authors (what the demo and served data directories have):
/// `plugins/*`, which `cargo xtask build` puts in `target/plugins/` (the test-only
/// `plugins/testing/*` in `target/plugins/testing/`).
pub const PRODUCT_PLUGINS: &[&str] = xbhost::SHIPPED_PLUGINS;

/// The first of `names` on the PATH: the browser tests' Debian `chromium` and
/// `chromedriver`, which `.ci/run` installs.
pub fn find_program(names: &[&str]) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    for name in names {
        for dir in path.split(':') {
            let candidate = Path::new(dir).join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{names:?} not found on the PATH: the browser tests need Debian's chromium and \
         chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
    );
}

/// Where tests put screenshots and other artifacts: `test-artifacts` in the target directory.
pub fn artifacts_dir() -> PathBuf {
    let dir = target_dir().join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn workspace_root() -> PathBuf {
    // Cargo sets CARGO_MANIFEST_DIR when it runs us too; prefer that over the path baked
    // in at compile time, which is stale when a clone shares this target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().unwrap().to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn cargo(args: &[&str]) -> Result<()> {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .current_dir(workspace_root())
        .status()?;
    if !status.success() {
        bail!("cargo {args:?} failed");
    }
    Ok(())
}

/// The directory of built plugins: `XBHOST_PLUGIN_DIR` (set by `cargo xtask test`), or
/// `target/plugins` after `cargo xtask build` (run once per test process).
pub fn plugin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("XBHOST_PLUGIN_DIR") {
            return PathBuf::from(dir);
        }
        cargo(&["run", "--quiet", "-p", "xtask", "--", "build"])
            .expect("building the plugins with cargo xtask build");
        target_dir().join("plugins")
    })
    .clone()
}

/// The `xbhost` binary: `XBHOST_BIN`, or the release build (built once per test process).
pub fn xbhost_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("XBHOST_BIN") {
            return PathBuf::from(bin);
        }
        cargo(&["build", "--release", "-p", "xbhost", "--bin", "xbhost"]).expect("building xbhost");
        target_dir().join("release/xbhost")
    })
    .clone()
}

/// A built plugin: a shipped one in the plugin directory, a test-only one in its
/// `testing/` subdirectory.
pub fn plugin_path(name: &str) -> PathBuf {
    plugin_in(&plugin_dir(), name)
}

/// A built plugin in `dir`, laid out as `cargo xtask build` does: a shipped one at the
/// top (in Python under `python/`), a test-only one under `testing/` (in Python under
/// `testing/python/`).
pub fn plugin_in(dir: &Path, name: &str) -> PathBuf {
    let file = format!("{name}.wasm");
    ["", "python", "testing/python"]
        .iter()
        .map(|sub| dir.join(sub).join(&file))
        .find(|path| path.is_file())
        .unwrap_or_else(|| dir.join("testing").join(file))
}

pub fn plugin_wasm(name: &str) -> Vec<u8> {
    let path = plugin_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn demo_course_path() -> PathBuf {
    workspace_root().join("examples/demo-course/course.json")
}

/// Copies a directory tree (a data directory no process has open, a course export).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn demo_course() -> CourseDoc {
    CourseDoc::from_json(&std::fs::read_to_string(demo_course_path()).unwrap()).unwrap()
}

/// A host on a sled store in a temporary directory, with events kept in memory.
pub struct Fixture {
    pub host: Host,
    pub events: Arc<MemorySink>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A fresh host with these plugins installed, under [`patient_config`]: tests that are
    /// not about deadlines must not fail because a shared CI machine stalled a thread.
    pub fn with_plugins(plugins: &[&str]) -> Fixture {
        Fixture::with_config(plugins, patient_config())
    }

    /// A fresh host with this configuration and these plugins installed.
    pub fn with_config(plugins: &[&str], config: HostConfig) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(&dir.path().join("db")).unwrap();
        let events = Arc::new(MemorySink::default());
        let host = Host::new(Arc::new(storage), events.clone(), config).unwrap();
        for p in plugins {
            host.add_plugin(&plugin_wasm(p), None).unwrap();
        }
        Fixture { host, events, dir }
    }

    /// A fresh host with the shipped plugins and the demo course.
    pub fn demo() -> Fixture {
        let f = Fixture::with_plugins(&["html", "vertical", "split_test", "problem"]);
        f.host.load_course(demo_course()).unwrap();
        f
    }

    pub fn render(&self, course: &str, block: &str, user: User, view: View) -> RenderOutput {
        self.host
            .render(&RenderRequest {
                course_key: course.into(),
                usage_id: block.into(),
                user,
                view,
                user_agent: None,
                masquerade: None,
            })
            .unwrap()
    }

    /// `unit_1` of the demo course for a learner; every block must render.
    pub fn learner_unit(&self, learner: &str) -> RenderOutput {
        let out = self.render(DEMO_COURSE, "unit_1", User::learner(learner), View::Student);
        assert!(
            out.failures.is_empty(),
            "unit_1 for {learner}: blocks failed: {:?}",
            out.failures
        );
        out
    }
}

/// The host's defaults with wall-clock budgets far above anything a healthy render needs.
/// Deadlines measure wall time, and on a shared 2-core machine running test binaries side by
/// side a thread can be descheduled for longer than a block's 50 ms; the tests that check the
/// deadlines themselves set their own limits.
pub fn patient_config() -> HostConfig {
    let mut config = HostConfig::default();
    config.limits.request_deadline = std::time::Duration::from_secs(20);
    config.limits.block_time = std::time::Duration::from_secs(10);
    config
}

/// Pearson's chi-square goodness of fit: (statistic, p-value).
pub fn chi_square_gof(observed: &[u64], expected_shares: &[f64]) -> (f64, f64) {
    let n: u64 = observed.iter().sum();
    let total_share: f64 = expected_shares.iter().sum();
    let stat: f64 = observed
        .iter()
        .zip(expected_shares)
        .map(|(&o, &share)| {
            let e = n as f64 * share / total_share;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    let df = (observed.len() - 1) as f64;
    (stat, ChiSquared::new(df).unwrap().sf(stat))
}

/// Pearson's chi-square test of independence on a contingency table: (statistic, p-value).
pub fn chi_square_independence(table: &[Vec<u64>]) -> (f64, f64) {
    let rows: Vec<f64> = table.iter().map(|r| r.iter().sum::<u64>() as f64).collect();
    let cols: Vec<f64> = (0..table[0].len())
        .map(|j| table.iter().map(|r| r[j]).sum::<u64>() as f64)
        .collect();
    let n: f64 = rows.iter().sum();
    let mut stat = 0.0;
    for (i, row) in table.iter().enumerate() {
        for (j, &o) in row.iter().enumerate() {
            let e = rows[i] * cols[j] / n;
            stat += (o as f64 - e).powi(2) / e;
        }
    }
    let df = ((table.len() - 1) * (table[0].len() - 1)) as f64;
    (stat, ChiSquared::new(df).unwrap().sf(stat))
}

/// Runs the `xbhost` binary on a data directory; returns (success, stdout, stderr).
pub fn xbhost(data: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(xbhost_bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .env("XBHOST_LOG", "off")
        // Patient budgets, as in `patient_config`: these tests are not about deadlines.
        .env("XBHOST_REQUEST_DEADLINE_MS", "20000")
        .env("XBHOST_BLOCK_TIME_MS", "10000")
        .output()
        .expect("running xbhost");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Like [`xbhost`], failing the test unless the command succeeds.
pub fn xbhost_ok(data: &Path, args: &[&str]) -> String {
    let (ok, out, err) = xbhost(data, args);
    assert!(ok, "xbhost {args:?} failed: {err}");
    out
}

/// Extracts the JSON a `tag_probe` block embedded in a page.
pub fn probe_report(html: &str) -> Result<serde_json::Value> {
    let start =
        html.find("class=\"probe\">").context("no probe in page")? + "class=\"probe\">".len();
    let end = start
        + html[start..]
            .find("</script>")
            .context("unterminated probe")?;
    Ok(serde_json::from_str(&html[start..end])?)
}

/// The real sled store, watched: counts reads of a user's course tags, and stalls them
/// while `stall` is set (a stuck host call). Everything else goes straight through.
pub struct InstrumentedStorage {
    pub inner: SledStorage,
    pub stall: Mutex<Option<Duration>>,
    pub course_tag_reads: AtomicUsize,
}

impl InstrumentedStorage {
    pub fn temporary() -> InstrumentedStorage {
        InstrumentedStorage {
            inner: SledStorage::temporary().unwrap(),
            stall: Mutex::new(None),
            course_tag_reads: AtomicUsize::new(0),
        }
    }
}

impl Storage for InstrumentedStorage {
    fn course_tags(&self, course: &str, user: &str) -> anyhow::Result<BTreeMap<String, String>> {
        self.course_tag_reads.fetch_add(1, Ordering::SeqCst);
        let stall = *self.stall.lock().unwrap();
        if let Some(d) = stall {
            std::thread::sleep(d);
        }
        self.inner.course_tags(course, user)
    }
    fn course_tag(&self, c: &str, u: &str, k: &str) -> anyhow::Result<Option<String>> {
        self.inner.course_tag(c, u, k)
    }
    fn set_course_tag(&self, c: &str, u: &str, k: &str, v: &str) -> anyhow::Result<()> {
        self.inner.set_course_tag(c, u, k, v)
    }
    fn set_course_tag_if_absent(
        &self,
        c: &str,
        u: &str,
        k: &str,
        v: &str,
    ) -> anyhow::Result<FirstWrite> {
        self.inner.set_course_tag_if_absent(c, u, k, v)
    }
    fn replace_course_tag(
        &self,
        c: &str,
        u: &str,
        k: &str,
        e: &str,
        v: &str,
    ) -> anyhow::Result<FirstWrite> {
        self.inner.replace_course_tag(c, u, k, e, v)
    }
    fn users_with_course_tag(&self, c: &str, k: &str) -> anyhow::Result<Vec<(String, String)>> {
        self.inner.users_with_course_tag(c, k)
    }
    fn course_users(&self, c: &str) -> anyhow::Result<Vec<String>> {
        self.inner.course_users(c)
    }
    fn user_tags(&self, u: &str) -> anyhow::Result<BTreeMap<String, String>> {
        self.inner.user_tags(u)
    }
    fn user_tag(&self, u: &str, k: &str) -> anyhow::Result<Option<String>> {
        self.inner.user_tag(u, k)
    }
    fn set_user_tag(&self, u: &str, k: &str, v: &str) -> anyhow::Result<()> {
        self.inner.set_user_tag(u, k, v)
    }
    fn user_state(&self, c: &str, u: &str, b: &str) -> anyhow::Result<Option<String>> {
        self.inner.user_state(c, u, b)
    }
    fn block_tallies(&self, c: &str, b: &str) -> anyhow::Result<BTreeMap<String, i64>> {
        self.inner.block_tallies(c, b)
    }
    fn set_user_state(&self, c: &str, u: &str, b: &str, j: &str) -> anyhow::Result<()> {
        self.inner.set_user_state(c, u, b, j)
    }
    fn course(&self, k: &str) -> anyhow::Result<Option<CourseDoc>> {
        self.inner.course(k)
    }
    fn put_course(&self, d: &CourseDoc) -> anyhow::Result<()> {
        self.inner.put_course(d)
    }
    fn course_with_version(&self, k: &str) -> anyhow::Result<Option<(CourseDoc, u64)>> {
        self.inner.course_with_version(k)
    }
    fn put_course_if_version(
        &self,
        d: &CourseDoc,
        expected: Option<u64>,
    ) -> anyhow::Result<xbhost::storage::CourseWrite> {
        self.inner.put_course_if_version(d, expected)
    }
    fn course_keys(&self) -> anyhow::Result<Vec<String>> {
        self.inner.course_keys()
    }
    fn plugin(&self, n: &str) -> anyhow::Result<Option<PluginRecord>> {
        self.inner.plugin(n)
    }
    fn plugins(&self) -> anyhow::Result<Vec<PluginRecord>> {
        self.inner.plugins()
    }
    fn plugin_wasm(&self, h: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.inner.plugin_wasm(h)
    }
    fn put_plugin(&self, r: &PluginRecord, w: &[u8]) -> anyhow::Result<()> {
        self.inner.put_plugin(r, w)
    }
    fn enrollment(&self, c: &str, u: &str) -> anyhow::Result<Option<String>> {
        self.inner.enrollment(c, u)
    }
    fn set_enrollments(&self, c: &str, d: &[(String, String)]) -> anyhow::Result<()> {
        self.inner.set_enrollments(c, d)
    }
    fn carry_over_course_tags(
        &self,
        c: &str,
        f: &str,
        t: &str,
        k: &[String],
    ) -> anyhow::Result<Vec<CarriedTag>> {
        self.inner.carry_over_course_tags(c, f, t, k)
    }
    fn commit(&self, c: &str, u: &str, w: &BlockWrites) -> anyhow::Result<()> {
        self.inner.commit(c, u, w)
    }
    fn meta_or_insert(&self, n: &str, v: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.inner.meta_or_insert(n, v)
    }
    fn flush(&self) -> anyhow::Result<()> {
        self.inner.flush()
    }
}
