//! `xbhost serve --watch DIR`: the live loop of a block developer. Every 200 ms each
//! watched directory's `.wasm` files (directly in it, at most [`MAX_FILES`]) are looked at;
//! a file that was added or changed is read once it has stayed the same (size, mtime,
//! inode) for [`STABLE`], so a component cargo or `cp` is still writing is not read half
//! done. It is read bounded (the server's upload limit), refused unless it is a regular
//! file (no links, FIFOs or devices: opened `O_NOFOLLOW | O_NONBLOCK` and checked with
//! `fstat`), and installed through [`Host::add_plugin`], the checked path of `plugin add`
//! and uploads, under the plugin's own name: a component that does not load stores
//! nothing, so the last good version keeps serving. Each outcome is logged (target
//! `xbhost::watch`) and kept in [`LiveReload`] (`live_reload`), whose generation the workbench polls
//! (`workbench_live`) to re-render without a reload and to show a broken build's error.
//! On a database shared by hosts the add is an ordinary plugin change: the other hosts
//! hear of it as of any upload.

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, bail};

use super::live_reload::{LiveReload, ReloadProblem, Reloaded};
use super::state::AppState;

/// How often the watched directories are looked at.
pub const POLL: Duration = Duration::from_millis(200);
/// How long a file must stay unchanged before it is read.
pub const STABLE: Duration = Duration::from_millis(400);
/// `.wasm` files looked at per directory (more are left out, with a warning).
pub const MAX_FILES: usize = 256;
/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
    pub inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
        }
    }
}

/// One file's standing: what was last seen and since when, and what was last handled.
#[derive(Debug, Default)]
pub struct Seen {
    seen: Option<(Stamp, Instant)>,
    handled: Option<Stamp>,
}

impl Seen {
    /// Whether the file, now `stamp`, is due to be read: changed since it was last
    /// handled and unchanged for [`STABLE`]. A due file is taken as handled.
    pub fn due(&mut self, stamp: Stamp, now: Instant) -> bool {
        if self.handled == Some(stamp) {
            return false;
        }
        match self.seen {
            Some((seen, since)) if seen == stamp => {
                if now.duration_since(since) >= STABLE {
                    self.handled = Some(stamp);
                    true
                } else {
                    false
                }
            }
            _ => {
                self.seen = Some((stamp, now));
                false
            }
        }
    }
}

/// Reads a plugin file: a regular file (not a link, FIFO or device) of at most `limit`
/// bytes.
pub fn read_plugin_file(path: &Path, limit: usize) -> Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => bail!(
            "it is a symbolic link: the watcher reads regular files only (watch the directory \
             the build writes to)"
        ),
        Err(e) => return Err(e).context("cannot open it"),
    };
    let meta = file.metadata().context("cannot stat it")?;
    if !meta.is_file() {
        bail!("it is not a regular file");
    }
    if meta.len() > limit as u64 {
        bail!(
            "it is {} bytes, over the upload limit of {limit} (--max-upload-bytes)",
            meta.len()
        );
    }
    let mut wasm = Vec::with_capacity(meta.len() as usize);
    file.take(limit as u64 + 1)
        .read_to_end(&mut wasm)
        .context("cannot read it")?;
    if wasm.len() > limit {
        bail!("it grew past the upload limit of {limit} bytes (--max-upload-bytes)");
    }
    Ok(wasm)
}

/// The watcher's thread; [`Watcher::stop`] ends it (at the server's shutdown).
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    /// Starts watching `live`'s directories for the server `state`.
    pub fn start(state: AppState, live: Arc<LiveReload>) -> Result<Watcher> {
        for dir in live.dirs() {
            tracing::info!(target: "xbhost::watch", dir = %dir.display(), "watching for plugin builds");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("xbhost-watch".into())
            .spawn(move || {
                let mut files: HashMap<PathBuf, Seen> = HashMap::new();
                let mut warned = HashSet::new();
                while !flag.load(Ordering::Relaxed) {
                    scan(&state, &live, &mut files, &mut warned);
                    std::thread::sleep(POLL);
                }
            })
            .context("starting the --watch thread")?;
        Ok(Watcher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it (an add in progress finishes first).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One look at every watched directory. A directory's trouble (unreadable, too many
/// files) is logged once until it clears (`warned`), not every look.
fn scan(
    state: &AppState,
    live: &LiveReload,
    files: &mut HashMap<PathBuf, Seen>,
    warned: &mut HashSet<PathBuf>,
) {
    let now = Instant::now();
    let mut present = Vec::new();
    for dir in live.dirs() {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                if warned.insert(dir.clone()) {
                    tracing::warn!(target: "xbhost::watch", dir = %dir.display(), error = %e, "cannot read the watched directory");
                }
                continue;
            }
        };
        let mut too_many = false;
        let mut count = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "wasm") {
                continue;
            }
            count += 1;
            if count > MAX_FILES {
                too_many = true;
                if warned.insert(dir.clone()) {
                    tracing::warn!(target: "xbhost::watch", dir = %dir.display(), "more than {MAX_FILES} .wasm files: the rest are not watched");
                }
                break;
            }
            // The entry itself, not what a link points to.
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            present.push(path.clone());
            if files
                .entry(path.clone())
                .or_default()
                .due(Stamp::of(&meta), now)
            {
                reload(state, live, &path);
            }
        }
        if !too_many {
            warned.remove(dir);
        }
    }
    files.retain(|path, _| {
        let keep = present.contains(path);
        if !keep {
            live.forget(path);
        }
        keep
    });
}

/// Installs the plugin in `file` (unless that very component is installed already), or
/// records why not.
fn reload(state: &AppState, live: &LiveReload, file: &Path) {
    let host = state.host();
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wasm = match read_plugin_file(file, state.config().max_upload_bytes) {
        Ok(wasm) => wasm,
        Err(e) => return failed(state, live, file, stem, &format!("{e:#}")),
    };
    let name = crate::runtime::plugin::read_metadata(&wasm)
        .map(|m| m.name)
        .unwrap_or(stem);
    let hash = blake3::hash(&wasm).to_hex().to_string();
    if let Ok(Some(installed)) = host.storage().plugin(&name)
        && installed.hash == hash
    {
        tracing::info!(target: "xbhost::watch", plugin = %name, file = %file.display(), %hash, "already installed");
        live.forget(file);
        return;
    }
    match host.add_plugin(&wasm, None) {
        Ok(record) => {
            tracing::info!(
                target: "xbhost::watch",
                plugin = %record.name,
                version = %record.version,
                hash = %record.hash,
                file = %file.display(),
                "plugin reloaded"
            );
            // Its scenarios (changed with it, or made loadable by it) as `plugin add` does.
            if let Err(e) = host.load_scenarios() {
                tracing::warn!(target: "xbhost::watch", plugin = %record.name, error = %format!("{e:#}"), "scenarios not loaded");
            }
            live.reloaded(Reloaded {
                plugin: record.name,
                version: record.version,
                hash: record.hash,
                file: file.to_path_buf(),
                at: SystemTime::now(),
            });
        }
        Err(e) => failed(state, live, file, name, &format!("{e:#}")),
    }
}

fn failed(state: &AppState, live: &LiveReload, file: &Path, plugin: String, error: &str) {
    let serving = state
        .host()
        .storage()
        .plugin(&plugin)
        .ok()
        .flatten()
        .map(|r| (r.version, r.hash));
    tracing::warn!(
        target: "xbhost::watch",
        %plugin,
        file = %file.display(),
        error,
        serving = serving.as_ref().map_or("none", |(_, hash)| hash.as_str()),
        "plugin not reloaded: the last good version keeps serving"
    );
    live.failed(ReloadProblem {
        plugin,
        file: file.to_path_buf(),
        error: crate::ids::truncate(error, 4000).to_string(),
        serving,
        at: SystemTime::now(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(len: u64) -> Stamp {
        Stamp {
            len,
            modified: None,
            inode: 1,
        }
    }

    #[test]
    fn a_file_is_read_once_it_stays_unchanged() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut seen = Seen::default();
        // A build writing: each look sees another size.
        assert!(!seen.due(stamp(10), at(0)));
        assert!(!seen.due(stamp(20), at(200)));
        assert!(!seen.due(stamp(20), at(400)), "unchanged for 200 ms only");
        assert!(seen.due(stamp(20), at(600)), "unchanged for 400 ms");
        assert!(!seen.due(stamp(20), at(800)), "handled once");
        // A new build of the same size: another inode (cargo links a new file).
        let rebuilt = Stamp {
            inode: 2,
            ..stamp(20)
        };
        assert!(!seen.due(rebuilt, at(1000)));
        assert!(seen.due(rebuilt, at(1400)));
    }

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wasm");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_plugin_file(&file, 10).unwrap(), b"0123456789");
        let err = read_plugin_file(&file, 9).unwrap_err().to_string();
        assert!(err.contains("over the upload limit of 9"), "{err}");
        let link = dir.path().join("b.wasm");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let err = read_plugin_file(&link, 10).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let fifo = dir.path().join("c.wasm");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_plugin_file(&fifo, 10).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
