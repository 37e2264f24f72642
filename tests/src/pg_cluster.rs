//! A private, throwaway PostgreSQL cluster: `initdb` in a temporary directory, `pg_ctl start`
//! on a free loopback port, stopped (and its files removed) when dropped.
//!
//! Standard library only, because two crates compile this one file: the tests (fault tests
//! that must stop and restart PostgreSQL under a running host) and `cargo xtask test`
//! (`xtask/src/pg.rs`, which starts one cluster for the whole suite when
//! `XBHOST_TEST_DATABASE_URL` is not set). PostgreSQL refuses to run as root, so when we are
//! root the cluster's files belong to, and its programs run as, the `postgres` OS user that
//! Debian's `postgresql` package creates.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The superuser every cluster made here has (trust authentication on loopback only).
pub const SUPERUSER: &str = "postgres";

/// How the clusters' temporary directories are named: `PREFIX-PID-...`, PID the process
/// that made it.
const PREFIX: &str = "xbhost-pg";

/// A running (or stopped) private cluster. Dropping it stops the server and deletes its
/// files.
pub struct PgCluster {
    /// The temporary directory holding `data/`, the server log and its socket.
    root: PathBuf,
    bindir: PathBuf,
    port: u16,
    /// The uid and gid the server runs as (`postgres` when we are root), or `None` for us.
    owner: Option<(u32, u32)>,
    running: bool,
}

/// What a cluster is given beyond `initdb`'s defaults before it first starts.
#[derive(Default)]
pub struct ClusterSetup {
    /// Files written into the data directory (certificates and keys, say), readable by
    /// the server alone, as PostgreSQL requires of a private key.
    pub files: Vec<(String, Vec<u8>)>,
    /// Lines added to `postgresql.conf` (`ssl = on`, say).
    pub settings: Vec<String>,
    /// A `pg_hba.conf` to use instead of initdb's (trust on loopback).
    pub hba: Option<String>,
}

impl PgCluster {
    /// Creates a cluster in a new temporary directory and starts it.
    pub fn start_new() -> Result<PgCluster, String> {
        PgCluster::start_with(ClusterSetup::default())
    }

    /// Creates a cluster set up with `setup` in a new temporary directory and starts it.
    pub fn start_with(setup: ClusterSetup) -> Result<PgCluster, String> {
        let bindir = postgres_bindir()?;
        let owner = server_owner()?;
        reap_stale_clusters(&bindir, owner);
        let root = unique_temp_dir(PREFIX)?;
        let mut cluster = PgCluster {
            root,
            bindir,
            port: 0,
            owner,
            running: false,
        };
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&cluster.root, Some(uid), Some(gid))
                .map_err(|e| format!("giving {} to the postgres user: {e}", cluster.display()))?;
        }
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        cluster.apply(setup)?;
        cluster.start()?;
        Ok(cluster)
    }

    /// Writes `setup`'s files and settings into the (stopped) cluster's data directory.
    fn apply(&self, setup: ClusterSetup) -> Result<(), String> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let data = self.data_dir();
        let mut files = setup.files;
        if let Some(hba) = setup.hba {
            files.push(("pg_hba.conf".into(), hba.into_bytes()));
        }
        for (name, bytes) in files {
            let path = data.join(&name);
            let _ = std::fs::remove_file(&path);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(&bytes))
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            if let Some((uid, gid)) = self.owner {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                    .map_err(|e| format!("giving {} to the postgres user: {e}", path.display()))?;
            }
        }
        if !setup.settings.is_empty() {
            let conf = data.join("postgresql.conf");
            std::fs::OpenOptions::new()
                .append(true)
                .open(&conf)
                .and_then(|mut f| writeln!(f, "\n{}", setup.settings.join("\n")))
                .map_err(|e| format!("adding settings to {}: {e}", conf.display()))?;
        }
        Ok(())
    }

    /// Starts the server again after [`PgCluster::stop`] (on the same port when it is still
    /// free, so URLs handed out before stay valid).
    pub fn start(&mut self) -> Result<(), String> {
        if self.running {
            return Ok(());
        }
        let mut last_error = String::new();
        for attempt in 0..5 {
            // Keep the port across restarts; pick a new one only if it was never chosen or
            // someone took it while we were stopped (after the first failure).
            if self.port == 0 || attempt > 0 {
                self.port = free_loopback_port()?;
            }
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                path_str(&self.root)?
            );
            let data = self.data_dir();
            let log = self.log_path();
            match self.run(
                "pg_ctl",
                &[
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    path_str(&data)?,
                    "-l",
                    path_str(&log)?,
                    "-o",
                    &options,
                ],
            ) {
                Ok(()) => {
                    self.running = true;
                    return Ok(());
                }
                Err(e) => last_error = format!("{e}\nserver log:\n{}", self.log()),
            }
        }
        Err(last_error)
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, everything committed is
    /// on disk), keeping its files for [`PgCluster::start`].
    pub fn stop(&mut self) -> Result<(), String> {
        if !self.running {
            return Ok(());
        }
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["stop", "-w", "-m", "fast", "-D", path_str(&data)?],
        )?;
        self.running = false;
        Ok(())
    }

    pub fn is_running(&self) -> bool {
        self.running
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's URL of the cluster's `postgres` database.
    pub fn admin_url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The server's version, as `postgres --version` prints it.
    pub fn version(&self) -> String {
        Command::new(self.bindir.join("postgres"))
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    fn display(&self) -> String {
        self.root.display().to_string()
    }

    /// Runs one of PostgreSQL's programs as the cluster's owner, from the cluster's
    /// directory (the postgres user cannot enter root's working directory).
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        run_as(&self.bindir, self.owner, &self.root, program, args)
    }
}

fn run_as(
    bindir: &Path,
    owner: Option<(u32, u32)>,
    cwd: &Path,
    program: &str,
    args: &[&str],
) -> Result<(), String> {
    let mut command = Command::new(bindir.join(program));
    command
        .args(args)
        .current_dir(cwd)
        .env("LC_ALL", "C")
        .env_remove("PGDATA");
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    let output = command
        .output()
        .map_err(|e| format!("running {program} from {}: {e}", bindir.display()))?;
    check(program, args, &output)
}

/// Stops and deletes the clusters of processes that no longer run (a test or
/// `cargo xtask test` killed before it could stop its own), so they do not pile up.
fn reap_stale_clusters(bindir: &Path, owner: Option<(u32, u32)>) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let root = entry.path();
        let data = root.join("data");
        if data.join("postmaster.pid").exists()
            && let Some(data) = data.to_str()
        {
            let _ = run_as(
                bindir,
                owner,
                &root,
                "pg_ctl",
                &["stop", "-w", "-m", "immediate", "-D", data],
            );
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            // Immediate: the cluster is about to be deleted, nothing in it matters.
            let data = self.data_dir();
            if let Ok(data) = path_str(&data) {
                let _ = self.run("pg_ctl", &["stop", "-w", "-m", "immediate", "-D", data]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Where PostgreSQL's server programs are: `pg_config --bindir` when it has `initdb`, else
/// the newest `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package), else the PATH.
pub fn postgres_bindir() -> Result<PathBuf, String> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in path.split(':') {
        let dir = Path::new(dir);
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    Err(
        "PostgreSQL's initdb and pg_ctl were not found (pg_config --bindir, \
         /usr/lib/postgresql/*/bin, PATH): install Debian's postgresql package \
         (apt-get install postgresql; .ci/run does)"
            .into(),
    )
}

/// `postgres`'s uid and gid when we are root (PostgreSQL will not run as root), else `None`.
fn server_owner() -> Result<Option<(u32, u32)>, String> {
    let me = id(&["-u"])?;
    if me != 0 {
        return Ok(None);
    }
    let uid = id(&["-u", SUPERUSER]).map_err(|e| {
        format!(
            "running as root, the cluster must belong to the {SUPERUSER} OS user, which \
             Debian's postgresql package creates: {e}"
        )
    })?;
    let gid = id(&["-g", SUPERUSER])?;
    Ok(Some((uid, gid)))
}

fn id(args: &[&str]) -> Result<u32, String> {
    let out = Command::new("id")
        .args(args)
        .output()
        .map_err(|e| format!("running id {args:?}: {e}"))?;
    check("id", args, &out)?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("id {args:?} printed no number: {e}"))
}

fn check(program: &str, args: &[&str], output: &Output) -> Result<(), String> {
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{program} {args:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

fn free_loopback_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// A new directory under the system's temporary directory (short: the server's socket path
/// inside it must stay under the kernel's 107 bytes).
fn unique_temp_dir(prefix: &str) -> Result<PathBuf, String> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .subsec_nanos();
    for n in 0..100u32 {
        let dir =
            std::env::temp_dir().join(format!("{prefix}-{}-{nanos:x}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("creating {}: {e}", dir.display())),
        }
    }
    Err("could not create a temporary directory for PostgreSQL".into())
}

fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", path.display()))
}
