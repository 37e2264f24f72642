//! `xbhost serve` as a separate process on a copy of a prepared data directory, and the
//! tokens to talk to it: what the HTTP and browser tests run against.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use xbhost::server::auth::{Claims, Role, TokenKeys};

use crate::{
    DEMO_COURSE, PRODUCT_PLUGINS, copy_dir, demo_course_path, plugin_path, xbhost_bin, xbhost_ok,
};

/// The key the test servers run with.
pub const TEST_SECRET: &str = "xbhost-integration-tests-0123456789abcdef";

pub fn keys() -> TokenKeys {
    TokenKeys::from_secret(TEST_SECRET.as_bytes()).unwrap()
}

/// A token for `user` with these roles, valid for an hour.
pub fn token(user: &str, roles: &[(&str, Role)]) -> String {
    token_named(user, user, roles)
}

pub fn token_named(user: &str, name: &str, roles: &[(&str, Role)]) -> String {
    let roles: BTreeMap<String, Role> = roles.iter().map(|(c, r)| (c.to_string(), *r)).collect();
    keys().issue(&Claims::new(user, name, roles, 3600)).unwrap()
}

pub fn learner_token(user: &str) -> String {
    token(user, &[(DEMO_COURSE, Role::Learner)])
}

pub fn staff_token(user: &str) -> String {
    token(user, &[(DEMO_COURSE, Role::Staff)])
}

pub fn admin_token(user: &str) -> String {
    token(user, &[("*", Role::Admin)])
}

/// A data directory with the shipped plugins and the demo course, made once per test
/// process through the CLI (plugins compiled into its cache); servers get copies.
pub fn demo_template() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("xbhost-served-template")
            .tempdir()
            .unwrap()
            .keep();
        // One command, as an operator adds them (the scenarios load once, after all).
        let files: Vec<String> = PRODUCT_PLUGINS
            .iter()
            .map(|p| plugin_path(p).to_string_lossy().into_owned())
            .collect();
        let mut args = vec!["plugin", "add"];
        args.extend(files.iter().map(String::as_str));
        xbhost_ok(&dir, &args);
        xbhost_ok(
            &dir,
            &["course", "load", demo_course_path().to_str().unwrap()],
        );
        dir
    })
}

/// A running `xbhost serve`.
pub struct Served {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub data: tempfile::TempDir,
}

impl Served {
    /// A server on a copy of the demo data directory, with these extra `serve` arguments.
    pub fn demo(args: &[&str]) -> Served {
        let data = tempfile::tempdir().unwrap();
        copy_dir(demo_template(), data.path());
        Served::start(data, args)
    }

    /// A server on a copy of the demo data directory, with extra environment (for example
    /// sandbox budgets) and `serve` arguments.
    pub fn demo_with_env(envs: &[(&str, &str)], args: &[&str]) -> Served {
        let data = tempfile::tempdir().unwrap();
        copy_dir(demo_template(), data.path());
        Served::start_with_env(data, envs, args)
    }

    /// A server on the PostgreSQL database at `database` (`--database URL`), with its own
    /// empty data directory (the compiled-component cache and its log) and these extra
    /// `serve` arguments. [`crate::pg::TestDatabase::load_demo`] puts the demo in a database.
    pub fn on_database(database: &str, args: &[&str]) -> Served {
        Served::on_database_with_env(database, &[], args)
    }

    /// Like [`Served::on_database`], with extra environment.
    pub fn on_database_with_env(database: &str, envs: &[(&str, &str)], args: &[&str]) -> Served {
        let data = tempfile::tempdir().unwrap();
        crate::pg::copy_compiled_for(database, data.path());
        let mut all = vec!["--database", database];
        all.extend_from_slice(args);
        Served::start_with(data, envs, &all, None)
    }

    /// A server on this data directory.
    pub fn start(data: tempfile::TempDir, args: &[&str]) -> Served {
        Served::start_with_env(data, &[], args)
    }

    fn start_with_env(data: tempfile::TempDir, envs: &[(&str, &str)], args: &[&str]) -> Served {
        Served::start_with(data, envs, args, None)
    }

    /// A server on a copy of the demo data directory that may open at most `files` file
    /// descriptors (soft and hard limit), as on a machine with a low `ulimit -n`.
    pub fn demo_with_open_file_limit(files: u64, args: &[&str]) -> Served {
        let data = tempfile::tempdir().unwrap();
        copy_dir(demo_template(), data.path());
        Served::start_with(data, &[], args, Some(files))
    }

    fn start_with(
        data: tempfile::TempDir,
        envs: &[(&str, &str)],
        args: &[&str],
        open_files: Option<u64>,
    ) -> Served {
        let log = std::fs::File::create(data.path().join("serve.log")).unwrap();
        let mut command = Command::new(xbhost_bin());
        if let Some(files) = open_files {
            use std::os::unix::process::CommandExt as _;
            // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: files,
                        rlim_max: files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = command
            .arg("--data")
            .arg(data.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("XBHOST_TOKEN_SECRET", TEST_SECRET)
            .env("XBHOST_LOG", "xbhost=info")
            // Patient budgets: these tests are about HTTP, not deadlines.
            .env("XBHOST_REQUEST_DEADLINE_MS", "20000")
            .env("XBHOST_BLOCK_TIME_MS", "10000")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting xbhost serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let log =
                    std::fs::read_to_string(data.path().join("serve.log")).unwrap_or_default();
                panic!("xbhost serve did not start ({other:?}): {log}");
            }
        };
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Served {
            child: Some(child),
            url,
            data,
        }
    }

    /// The demo course's block URL.
    pub fn block_url(&self, usage_id: &str) -> String {
        format!("{}/courses/{DEMO_COURSE}/blocks/{usage_id}", self.url)
    }

    /// The server's process id (for signals: SIGHUP reopens the event log).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("serve.log")).unwrap_or_default()
    }

    /// Stops the server as an operator would (SIGTERM: requests in flight finish, the
    /// store is flushed) and returns its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "xbhost serve exited with {status}: {}",
            self.log()
        );
        std::mem::replace(&mut self.data, tempfile::tempdir().unwrap())
    }
}

impl Served {
    /// Sends SIGTERM and waits at most `limit` for the server to exit; returns how long it
    /// took, or `None` if it was still running (it is then killed).
    pub fn terminate_within(mut self, limit: Duration) -> Option<Duration> {
        let mut child = self.child.take().unwrap();
        let started = std::time::Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        while started.elapsed() < limit {
            if child.try_wait().unwrap().is_some() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
