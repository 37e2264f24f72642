//! The SDKs' walk-throughs (`guest-sdk/README.md` for Rust, `guest-sdk/python/README.md`
//! for Python, each a "Walk-through" section) work as written: their shell blocks are
//! taken from the README and run in order, in a fresh directory, with the real `xbhost`
//! (and for Python the pinned tools `cargo xtask build` installs) on the PATH and the real
//! shipped plugins, as a newcomer would type them: `xbhost new-block`, the project's own
//! native tests, its component build, `plugin add`, `course load`, `render` and `handle`,
//! then `serve --dev-login`, signed in to over HTTP as the workbench's "new learner"
//! button does. After each block, every line of the `text` block that follows it (if any)
//! must be in what it printed. So the READMEs cannot drift from what works.
//!
//! Blocks by info string: `sh` is run (`sh -e`, in the directory the previous block left);
//! `sh setup` is what the reader does once in their checkout (build, PATH, XBHOST_PLUGINS)
//! and is provided by the test instead (`XBHOST_BIN`'s directory on the PATH,
//! `XBHOST_PLUGINS` the built plugins); `sh serve` is started in the background and the
//! workbench page is its output; `text` is expected output.
//!
//! The project builds in this workspace's target directory (`CARGO_TARGET_DIR`, passed
//! on), so it reuses what is compiled there; being its own workspace, it builds its own
//! copy of the SDK, once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xbhost_tests::{plugin_dir, workspace_root, xbhost_bin};

/// The longest one block may take: a cold build of the project's dependencies on a busy
/// two-core machine, with margin; a block past it is killed and the test fails.
const BLOCK_LIMIT: Duration = Duration::from_secs(30 * 60);

/// One fenced block of the walk-through: its info string and its text.
#[derive(Debug)]
struct Fence {
    info: String,
    body: String,
}

/// The fenced blocks of the section whose heading starts with `## Walk-through`.
fn walkthrough(readme: &str) -> Vec<Fence> {
    let section: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("## Walk-through"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    let mut fences = Vec::new();
    let mut open: Option<Fence> = None;
    for line in section {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Fence {
                    info: info.trim().to_string(),
                    body: String::new(),
                })
            }
            (Some(_), Some(_)) => fences.push(open.take().unwrap()),
            (Some(fence), None) => {
                fence.body.push_str(line);
                fence.body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a fence of the walk-through is not closed");
    fences
}

/// The target directory the project builds in: this workspace's.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Variables cargo sets for a test it runs (and rustup for the toolchain it picked), and
/// xbhost's own settings: none of them is in a reader's shell.
fn set_for_this_test(name: &str) -> bool {
    name == "CARGO"
        || name == "RUSTUP_TOOLCHAIN"
        || name.starts_with("XBHOST_")
        || [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
            "CARGO_MAKEFLAGS",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// The pinned Python tools `cargo xtask build` installs (pytest, componentize-py).
fn python_tools() -> PathBuf {
    let bin = target_dir().join("python-venv/bin");
    assert!(
        bin.join("componentize-py").is_file(),
        "{} has no componentize-py: `cargo xtask build` installs it",
        bin.display()
    );
    bin
}

/// What the reader's shell has: this environment without what cargo set for this test
/// (so the project's `rust-toolchain.toml` picks the toolchain) or any xbhost setting,
/// plus `xbhost` (and `extra_path`) on the PATH, the shipped plugins and the shared target
/// directory.
fn reader_env(bin: &Path, extra_path: Option<&Path>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| !set_for_this_test(k))
        .collect();
    let mut path = std::env::var("PATH").unwrap_or_default();
    if let Some(extra) = extra_path {
        path = format!("{}:{path}", extra.display());
    }
    env.retain(|(k, _)| k != "PATH");
    env.push(("PATH".into(), format!("{}:{path}", bin.display())));
    env.push(("XBHOST_PLUGINS".into(), plugin_dir().display().to_string()));
    env.push((
        "CARGO_TARGET_DIR".into(),
        target_dir().display().to_string(),
    ));
    // Patient budgets, as every CLI test has: these commands are not about deadlines.
    env.push(("XBHOST_REQUEST_DEADLINE_MS".into(), "20000".into()));
    env.push(("XBHOST_BLOCK_TIME_MS".into(), "10000".into()));
    env
}

/// A shell running `body` in `cwd`, in a process group of its own (so the whole of it can
/// be stopped), that writes the directory it ends in to `pwd_file`.
fn shell(body: &str, cwd: &Path, pwd_file: &Path, env: &[(String, String)]) -> Command {
    use std::os::unix::process::CommandExt as _;
    let script = format!("cd \"$WALK_CWD\"\n{body}\npwd > \"$WALK_PWD_FILE\"\n");
    let mut cmd = Command::new("sh");
    cmd.arg("-ec")
        .arg(script)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("WALK_CWD", cwd)
        .env("WALK_PWD_FILE", pwd_file)
        .stdin(Stdio::null())
        .process_group(0);
    cmd
}

fn stop_group(child: &mut Child) {
    // SAFETY: signals the process group this test started (the child leads it).
    unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
    let _ = child.wait();
}

/// The `sh serve` block's process group, stopped when this is dropped: also when an
/// assertion fails, so a failing run leaves no server behind.
struct ServeGroup(Child);

impl Drop for ServeGroup {
    fn drop(&mut self) {
        stop_group(&mut self.0);
    }
}

/// How long the served workbench may take to print its address and to answer each
/// request of the sign-in; past it the test fails instead of hanging.
const SERVE_LIMIT: Duration = Duration::from_secs(120);

/// Runs one `sh` block; returns what it printed (stdout and stderr, interleaved).
fn run_block(body: &str, cwd: &Path, pwd_file: &Path, env: &[(String, String)]) -> String {
    let log = tempfile::NamedTempFile::new().unwrap();
    let out = log.reopen().unwrap();
    let err = out.try_clone().unwrap();
    let mut child = shell(body, cwd, pwd_file, env)
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("running sh");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BLOCK_LIMIT {
            stop_group(&mut child);
            panic!(
                "the walk-through block\n{body}\ntook over {BLOCK_LIMIT:?}; it printed:\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let printed = std::fs::read_to_string(log.path()).unwrap();
    assert!(
        status.success(),
        "the walk-through block\n{body}\nfailed ({status}) in {}; it printed:\n{printed}",
        cwd.display()
    );
    printed
}

/// Starts the `sh serve` block, signs in to its workbench as a new learner (the sign-in
/// page's first form, as a browser posts it, cookies kept by hand) and returns the
/// workbench page the learner then gets.
fn serve_and_open_workbench(
    body: &str,
    cwd: &Path,
    pwd_file: &Path,
    env: &[(String, String)],
) -> String {
    let server_log = tempfile::NamedTempFile::new().unwrap();
    let mut child = ServeGroup(
        shell(body, cwd, pwd_file, env)
            .stdout(Stdio::piped())
            .stderr(server_log.reopen().unwrap())
            .spawn()
            .expect("running sh"),
    );
    let stdout = child.0.stdout.take().unwrap();
    // The first line, read aside so that a server that prints nothing fails the test.
    let (sent, first) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = sent.send(lines.next().and_then(Result::ok));
        // Keep reading (and dropping) so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let first = first
        .recv_timeout(SERVE_LIMIT)
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            panic!(
                "the serve block\n{body}\nprinted no address within {SERVE_LIMIT:?}; its log:\n{}",
                std::fs::read_to_string(server_log.path()).unwrap_or_default()
            )
        });
    let workbench = first
        .split_whitespace()
        .find_map(|w| w.strip_suffix(')').filter(|w| w.ends_with("/workbench")))
        .unwrap_or_else(|| panic!("no workbench address in {first:?}"))
        .to_string();
    let page = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(sign_in_as_new_learner(&workbench));
    drop(child);
    page
}

async fn sign_in_as_new_learner(workbench: &str) -> String {
    use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SERVE_LIMIT)
        .build()
        .unwrap();
    // The browser's cookies: `name=value` of each `Set-Cookie`, the latest of each name.
    let mut jar: Vec<String> = Vec::new();
    fn keep(jar: &mut Vec<String>, response: &reqwest::Response) {
        for set in response.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
            let name = pair.split('=').next().unwrap().to_string();
            jar.retain(|c| !c.starts_with(&format!("{name}=")));
            jar.push(pair);
        }
    }
    let sign_in = client.get(workbench).send().await.unwrap();
    assert_eq!(sign_in.status(), 200, "GET {workbench}");
    keep(&mut jar, &sign_in);
    let html = sign_in.text().await.unwrap();
    let fields: Vec<(String, String)> = {
        let doc = scraper::Html::parse_document(&html);
        let form = doc
            .select(&scraper::Selector::parse("form#new-learner").unwrap())
            .next()
            .unwrap_or_else(|| panic!("no new-learner sign-in on the workbench:\n{html}"));
        form.select(&scraper::Selector::parse("input").unwrap())
            .filter_map(|i| Some((i.attr("name")?.to_string(), i.attr("value")?.to_string())))
            .collect()
    };
    let base = workbench.trim_end_matches("/workbench");
    let posted = client
        .post(format!("{base}/dev-login"))
        .header(COOKIE, jar.join("; "))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert!(
        posted.status().is_redirection(),
        "dev-login answered {}",
        posted.status()
    );
    keep(&mut jar, &posted);
    let next = posted.headers()[LOCATION].to_str().unwrap().to_string();
    let page = client
        .get(format!("{base}{next}"))
        .header(COOKIE, jar.join("; "))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "GET {next} signed in");
    page.text().await.unwrap()
}

#[test]
fn the_sdk_walkthrough_works_as_written() {
    run_walkthrough(
        "guest-sdk/README.md",
        &[
            "cargo xtask build",
            "xbhost new-block ",
            "cargo test",
            "cargo build --profile plugin --target wasm32-wasip2",
            " plugin add ",
            " course load ",
            " render ",
            " handle ",
            " serve ",
            "--dev-login",
        ],
        None,
    );
}

#[test]
fn the_python_sdk_walkthrough_works_as_written() {
    run_walkthrough(
        "guest-sdk/python/README.md",
        &[
            "cargo xtask build",
            "xbhost new-block ",
            "--lang python",
            "pytest",
            "xbhost block build",
            " plugin add ",
            " course load ",
            " render ",
            " handle ",
            " serve ",
            "--dev-login",
        ],
        Some(&python_tools()),
    );
}

/// Runs the walk-through of `readme` (relative to the workspace), which must contain each
/// of `steps`, with `extra_path` (the tools its setup block puts on the PATH) before the
/// reader's PATH.
fn run_walkthrough(readme: &str, steps: &[&str], extra_path: Option<&Path>) {
    let readme = std::fs::read_to_string(workspace_root().join(readme)).unwrap();
    let fences = walkthrough(&readme);
    let commands: String = fences
        .iter()
        .filter(|f| f.info.starts_with("sh"))
        .map(|f| f.body.as_str())
        .collect();
    // The walk-through goes the whole way: nothing may be dropped from it unnoticed.
    for step in steps {
        assert!(commands.contains(step), "the walk-through has no {step:?}");
    }
    let setup = fences
        .iter()
        .find(|f| f.info == "sh setup")
        .expect("a setup block");
    for provided in ["PATH=", "XBHOST_PLUGINS="] {
        assert!(
            setup.body.contains(provided),
            "the setup block no longer sets {provided} (the test provides it)"
        );
    }

    let bin_dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(xbhost_bin(), bin_dir.path().join("xbhost")).unwrap();
    let env = reader_env(bin_dir.path(), extra_path);
    let home = tempfile::tempdir().unwrap();
    let pwd_file = home.path().join(".walk-pwd");
    let mut cwd = home.path().to_path_buf();
    let mut printed: Option<(String, String)> = None;
    let mut checked = 0;
    for fence in &fences {
        match fence.info.as_str() {
            "sh setup" => {}
            "sh" => {
                printed = Some((
                    fence.body.clone(),
                    run_block(&fence.body, &cwd, &pwd_file, &env),
                ));
                cwd = PathBuf::from(std::fs::read_to_string(&pwd_file).unwrap().trim());
            }
            "sh serve" => {
                let page = serve_and_open_workbench(&fence.body, &cwd, &pwd_file, &env);
                printed = Some((fence.body.clone(), page));
            }
            "text" => {
                let (block, output) = printed.as_ref().expect("a text block after a command");
                for line in fence.body.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    assert!(
                        output.contains(line),
                        "after\n{block}\nthe walk-through says {line:?} shows, but it printed:\n{output}"
                    );
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    assert!(
        checked >= 5,
        "the walk-through shows only {checked} lines of output"
    );
}
