//! What `serve --watch` did (`plugin_watch` does it), shared with the workbench
//! (`workbench_live` shows it): a generation that changes with every outcome, the recent
//! reloads and each file's standing problem. Its own module, imported by the server's
//! settings (`ServerConfig::live`) and by the watcher, which imports those settings.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use anyhow::{Result, bail};

/// Recent reloads kept for the workbench.
const MAX_RELOADS: usize = 16;

/// A plugin the watcher installed.
#[derive(Debug, Clone)]
pub struct Reloaded {
    pub plugin: String,
    pub version: String,
    pub hash: String,
    pub file: PathBuf,
    pub at: SystemTime,
}

/// A file the watcher could not install, and the version that keeps serving.
#[derive(Debug, Clone)]
pub struct ReloadProblem {
    /// The plugin's own name, or the file's stem when the file says none.
    pub plugin: String,
    pub file: PathBuf,
    pub error: String,
    /// The installed version (version, blake3 hash) that keeps serving, if any.
    pub serving: Option<(String, String)>,
    pub at: SystemTime,
}

#[derive(Debug, Default)]
struct Outcomes {
    reloads: VecDeque<Reloaded>,
    /// The last failure of each file, until it loads.
    problems: BTreeMap<PathBuf, ReloadProblem>,
}

/// What the watcher did, shared with the workbench: a generation that changes with every
/// outcome, the recent reloads and each file's standing problem.
#[derive(Debug)]
pub struct LiveReload {
    dirs: Vec<PathBuf>,
    generation: AtomicU64,
    outcomes: Mutex<Outcomes>,
}

impl LiveReload {
    /// Watching `dirs`, each of which must be a directory.
    pub fn new(dirs: Vec<PathBuf>) -> Result<LiveReload> {
        for dir in &dirs {
            if !dir.is_dir() {
                bail!(
                    "--watch {}: not a directory (build the plugin once, or create it)",
                    dir.display()
                );
            }
        }
        Ok(LiveReload {
            dirs,
            generation: AtomicU64::new(1),
            outcomes: Mutex::default(),
        })
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Changes whenever a plugin was installed or a file failed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The recent reloads, newest first, and the standing problems.
    pub fn outcomes(&self) -> (Vec<Reloaded>, Vec<ReloadProblem>) {
        let o = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        (
            o.reloads.iter().rev().cloned().collect(),
            o.problems.values().cloned().collect(),
        )
    }

    pub(crate) fn reloaded(&self, reloaded: Reloaded) {
        let mut o = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        o.problems.remove(&reloaded.file);
        if o.reloads.len() == MAX_RELOADS {
            o.reloads.pop_front();
        }
        o.reloads.push_back(reloaded);
        drop(o);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn failed(&self, problem: ReloadProblem) {
        let mut o = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded by the files watched (MAX_FILES per directory).
        o.problems.insert(problem.file.clone(), problem);
        drop(o);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A file that is gone has no standing problem.
    pub(crate) fn forget(&self, file: &Path) {
        let mut o = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        if o.problems.remove(file).is_some() {
            drop(o);
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
    }
}
