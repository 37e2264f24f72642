//! The Python side of `cargo xtask`: a virtual environment of the pinned tools
//! (`guest-sdk/python/requirements-dev.txt`, from PyPI) in `target/python-venv`, the Python
//! blocks of `plugins/python/*` built into `target/plugins/python/` (and the test-only ones
//! of `plugins/testing/python/*` into `target/plugins/testing/python/`) with `xbhost block
//! build`, and the shipped blocks' native tests and the SDK's run with pytest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

const REQUIREMENTS: &str = "guest-sdk/python/requirements-dev.txt";

/// The environment's `bin/` with the pinned tools, made (or remade, when the pins changed)
/// as needed.
pub fn venv(root: &Path, target: &Path) -> Result<PathBuf> {
    let dir = target.join("python-venv");
    let bin = dir.join("bin");
    let pins = std::fs::read_to_string(root.join(REQUIREMENTS))
        .with_context(|| format!("reading {REQUIREMENTS}"))?;
    let stamp = dir.join("xbhost-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(pins.as_str())
        && bin.join("componentize-py").is_file()
    {
        return Ok(bin);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("Python 3 (python3) is needed for the Python blocks' tools")?;
    let _ = std::fs::remove_dir_all(&dir);
    crate::run(Command::new(python).args(["-m", "venv"]).arg(&dir))?;
    crate::run(
        Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(root.join(REQUIREMENTS)),
    )?;
    std::fs::write(&stamp, pins)?;
    Ok(bin)
}

/// Where Python block projects are, each with the directory (under the built plugins)
/// its plugins go to: the shipped ones, and the test-only ones.
pub const PROJECT_DIRS: &[(&str, &str)] = &[
    ("plugins/python", "python"),
    ("plugins/testing/python", "testing/python"),
];

/// The Python block projects of `dir` (relative to the root): its subdirectories with a
/// pyproject.toml.
pub fn block_projects(root: &Path, dir: &str) -> Result<Vec<PathBuf>> {
    let dir = root.join(dir);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("pyproject.toml").is_file() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// The newest modification time under `paths`: of files, and of directories (an entry
/// added, removed or renamed) and links themselves.
fn newest(paths: &[PathBuf]) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = pending.pop() {
        if let Ok(link) = std::fs::symlink_metadata(&p)
            && let Ok(m) = link.modified()
        {
            newest = newest.max(m);
        }
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if let Ok(m) = meta.modified() {
            newest = newest.max(m);
        }
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&p)
        {
            pending.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| !p.ends_with("__pycache__") && !p.ends_with(".pytest_cache")),
            );
        }
    }
    newest
}

/// Builds every Python block of `projects` (relative to the root) into `out` (`NAME.wasm`,
/// NAME the project's directory, which is named as its plugin), skipping one whose plugin
/// is newer than its sources, the SDK, the contract, the pinned tools and `xbhost`;
/// removes the plugins of projects gone.
pub fn build_blocks(
    root: &Path,
    xbhost: &Path,
    bin: &Path,
    projects: &str,
    out: &Path,
) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let shared = [
        root.join("guest-sdk/python/xbhost_sdk"),
        root.join("wit"),
        root.join(REQUIREMENTS),
        xbhost.to_path_buf(),
    ];
    let projects = block_projects(root, projects)?;
    let names: Vec<String> = projects
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        if path.extension().is_some_and(|e| e == "wasm")
            && stem.is_some_and(|s| !names.contains(&s))
        {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the stale {}", path.display()))?;
        }
    }
    for project in projects {
        let name = project.file_name().unwrap().to_string_lossy().into_owned();
        let wasm = out.join(format!("{name}.wasm"));
        let built = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
        let mut inputs = shared.to_vec();
        inputs.push(project.clone());
        if built.is_some_and(|b| b >= newest(&inputs)) {
            continue;
        }
        crate::run(
            Command::new(xbhost)
                .args(["block", "build"])
                .arg(&project)
                .arg("--out")
                .arg(&wasm)
                .arg("--componentize-py")
                .arg(bin.join("componentize-py")),
        )?;
    }
    Ok(())
}

/// Runs pytest on the SDK and on each Python block; (passed, failed).
pub fn test(root: &Path, bin: &Path) -> Result<(u64, u64)> {
    let sdk = root.join("guest-sdk/python");
    let mut dirs = vec![sdk.clone()];
    dirs.extend(block_projects(root, PROJECT_DIRS[0].0)?);
    let (mut passed, mut failed) = (0, 0);
    for dir in dirs {
        let mut cmd = Command::new(bin.join("python"));
        cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .current_dir(&dir)
            .env("PYTHONPATH", &sdk)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        eprintln!("xtask: {cmd:?} in {}", dir.display());
        let output = cmd
            .output()
            .with_context(|| format!("cannot start {cmd:?}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        print!("{text}");
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        let summary = text
            .lines()
            .rev()
            .find(|l| {
                l.contains(" in ")
                    && (l.contains("passed") || l.contains("failed") || l.contains("error"))
            })
            .unwrap_or("");
        let count = |word: &str| -> u64 {
            summary
                .split(',')
                .filter_map(|part| {
                    let mut words = part.split_whitespace();
                    let n = words.next()?.parse::<u64>().ok()?;
                    words.next().filter(|w| w.starts_with(word)).map(|_| n)
                })
                .sum()
        };
        let (p, f) = (count("passed"), count("failed") + count("error"));
        if output.status.code() == Some(5) {
            bail!("pytest found no tests in {}", dir.display());
        }
        if !output.status.success() && f == 0 {
            bail!(
                "pytest in {} failed without a summary: {}",
                dir.display(),
                output.status
            );
        }
        passed += p;
        failed += f;
    }
    Ok((passed, failed))
}
