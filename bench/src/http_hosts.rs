//! Pages per second over HTTP from outside, with `wrk` on loopback against `xbhost serve`
//! processes: one host on sled, then one, two and three hosts on one PostgreSQL database,
//! in one run. wrk runs one process per host at once (8 connections split between them);
//! a Lua script spreads the requests over learners who have visited before (repeat
//! visits) and sends one in [`FIRST_VISIT_SHARE`] as a learner never seen (a first visit).
//! wrk, the hosts and PostgreSQL share the machine's cores: the table says how many.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use xbhost::server::auth::{Claims, Role, TokenKeys};

use super::pg::BenchDatabase;
use super::{DEMO, Table, open_host};

/// Connections in all, split between the hosts of a run.
const CONNECTIONS: usize = 8;
/// Learners who have visited before, whose tokens the repeat visits cycle through.
const LEARNERS: usize = 500;
/// One request in this many is a learner's first visit.
const FIRST_VISIT_SHARE: usize = 10;
/// The key the hosts run with (`XBHOST_TOKEN_SECRET`).
const SECRET: &str = "xbhost-benchmark-key-0123456789abcdef";

/// The wrk script: tokens from files named in its arguments, a first visit every `share`
/// requests while fresh tokens last, and the number of first visits sent printed at the end.
const SCRIPT: &str = r#"
local repeat_tokens, fresh_tokens = {}, {}
local i, f = 0, 0
fresh = 0
local share = 10
function init(args)
  for line in io.lines(args[1]) do repeat_tokens[#repeat_tokens + 1] = line end
  for line in io.lines(args[2]) do fresh_tokens[#fresh_tokens + 1] = line end
  share = tonumber(args[3])
end
function request()
  i = i + 1
  local t
  if i % share == 0 and f < #fresh_tokens then
    f = f + 1
    fresh = fresh + 1
    t = fresh_tokens[f]
  else
    t = repeat_tokens[(i % #repeat_tokens) + 1]
  end
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. t })
end
local threads = {}
function setup(thread) threads[#threads + 1] = thread end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + (t:get("fresh") or 0) end
  io.write(string.format("first_visits %d\n", n))
end
"#;

fn xbhost_bin() -> PathBuf {
    std::env::var_os("XBHOST_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("xbhost")))
        })
        .unwrap_or_else(|| PathBuf::from("xbhost"))
}

/// A running `xbhost serve`, killed when dropped.
struct Served {
    child: Child,
    /// `127.0.0.1:PORT`.
    address: String,
}

impl Served {
    fn start(data: &Path, database: Option<&str>) -> Result<Served> {
        let log = std::fs::File::create(data.join("serve.log"))?;
        let mut cmd = Command::new(xbhost_bin());
        cmd.arg("--data").arg(data);
        match database {
            Some(url) => cmd.arg("--database").arg(url),
            None => cmd.env_remove("XBHOST_DATABASE_URL"),
        };
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("XBHOST_TOKEN_SECRET", SECRET)
            .env("XBHOST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {} serve", xbhost_bin().display()))?;
        let stdout = child.stdout.take().expect("piped");
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
                let _ = child.wait();
                let log = std::fs::read_to_string(data.join("serve.log")).unwrap_or_default();
                bail!("xbhost serve did not start ({other:?}): {log}");
            }
        };
        let address = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("http://"))
            .with_context(|| format!("no address in {line:?}"))?
            .trim_end_matches('/')
            .to_string();
        Ok(Served { child, address })
    }

    fn page_url(&self) -> String {
        format!(
            "http://{}/courses/{DEMO}/blocks/unit_1?format=json",
            self.address
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token(keys: &TokenKeys, learner: &str) -> Result<String> {
    let roles = [("*".to_string(), Role::Learner)].into();
    keys.issue(&Claims::new(learner, learner, roles, 3600))
}

/// One wrk process's figures.
#[derive(Debug, Default)]
struct WrkRun {
    rate: f64,
    p50: String,
    p99: String,
    errors: u64,
    first_visits: u64,
}

/// What one run of wrk printed.
fn parse_wrk(out: &str) -> WrkRun {
    let mut run = WrkRun::default();
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rate, ..] => run.rate = rate.parse().unwrap_or(0.0),
            ["50%", v, ..] => run.p50 = v.to_string(),
            ["99%", v, ..] => run.p99 = v.to_string(),
            ["Non-2xx", "or", "3xx", "responses:", n, ..] => run.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            ["first_visits", n] => run.first_visits = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    run
}

/// Runs wrk against every host at once for `seconds`, the connections split between them.
fn wrk_all(
    work: &Path,
    hosts: &[&Served],
    repeat_tokens: &Path,
    keys: &TokenKeys,
    label: &str,
    seconds: u64,
) -> Result<Vec<WrkRun>> {
    let script = work.join("spread.lua");
    std::fs::write(&script, SCRIPT)?;
    let mut children = Vec::new();
    for (h, host) in hosts.iter().enumerate() {
        let connections = CONNECTIONS / hosts.len() + usize::from(h < CONNECTIONS % hosts.len());
        // More fresh learners than a run can use at 4,000 pages/s a host.
        let fresh: Vec<String> = (0..seconds as usize * 4_000 / FIRST_VISIT_SHARE)
            .map(|i| token(keys, &format!("wrk-{label}-{h}-{i}")))
            .collect::<Result<_>>()?;
        let fresh_file = work.join(format!("fresh-{label}-{h}.txt"));
        std::fs::write(&fresh_file, fresh.join("\n") + "\n")?;
        let child = Command::new("wrk")
            .args(["-t1", &format!("-c{connections}")])
            .arg(format!("-d{seconds}s"))
            .args(["--timeout", "10s", "--latency", "-s"])
            .arg(&script)
            .arg(host.page_url())
            .arg("--")
            .arg(repeat_tokens)
            .arg(&fresh_file)
            .arg(FIRST_VISIT_SHARE.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting wrk")?;
        children.push(child);
    }
    let mut runs = Vec::new();
    for child in children {
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains("Requests/sec:") {
            bail!(
                "wrk failed ({}): {text}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        runs.push(parse_wrk(&text));
    }
    Ok(runs)
}

/// First visits for every learner of the runs (sled; on PostgreSQL the in-process rows
/// did them), and the compiled plugins loaded on a host: what wrk then measures is warm.
fn warm(host: &Served, tokens: &[String]) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for t in tokens {
            let response = client.get(host.page_url()).bearer_auth(t).send().await?;
            if !response.status().is_success() {
                bail!(
                    "warming {}: {} {}",
                    host.address,
                    response.status(),
                    response.text().await?
                );
            }
            response.bytes().await?;
        }
        Ok(())
    })
}

fn row(table: &mut Table, what: &str, runs: &[WrkRun], against: Option<f64>) -> Result<f64> {
    let rate: f64 = runs.iter().map(|r| r.rate).sum();
    let errors: u64 = runs.iter().map(|r| r.errors).sum();
    let first: u64 = runs.iter().map(|r| r.first_visits).sum();
    let each = if runs.len() > 1 {
        format!(
            " ({})",
            runs.iter()
                .map(|r| format!("{:.0}", r.rate))
                .collect::<Vec<_>>()
                .join(" + ")
        )
    } else {
        String::new()
    };
    let ratio = against.map_or(String::new(), |s| format!(", {:.2}x sled", rate / s));
    let p50: Vec<&str> = runs.iter().map(|r| r.p50.as_str()).collect();
    let p99: Vec<&str> = runs.iter().map(|r| r.p99.as_str()).collect();
    table.check(
        what,
        format!(
            "{rate:.0}{each}{ratio}; p50 {} p99 {}; {first} first visits; {errors} errors",
            p50.join("/"),
            p99.join("/")
        ),
        "0 errors",
        errors == 0,
    );
    Ok(rate)
}

pub fn figures(
    db: Option<&BenchDatabase>,
    learners: &[String],
    cores: usize,
    quick: bool,
    table: &mut Table,
) -> Result<()> {
    if Command::new("wrk").arg("--version").output().is_err() {
        table.add(
            "HTTP pages/s with wrk",
            "not measured: wrk is not installed (apt-get install wrk)".into(),
        );
        return Ok(());
    }
    let seconds = if quick { 3 } else { 10 };
    let work = tempfile::tempdir()?;
    let keys = TokenKeys::from_secret(SECRET.as_bytes())?;
    let tokens: Vec<String> = learners
        .iter()
        .take(LEARNERS)
        .map(|l| token(&keys, l))
        .collect::<Result<_>>()?;
    let repeat_tokens = work.path().join("repeat.txt");
    std::fs::write(&repeat_tokens, tokens.join("\n") + "\n")?;
    table.add(
        "wrk rows: the machine",
        format!(
            "{cores} cores shared by wrk, the hosts{}; {CONNECTIONS} connections split between \
             the hosts; 1 in {FIRST_VISIT_SHARE} requests a first visit; {seconds} s a run",
            if db.is_some() { " and PostgreSQL" } else { "" }
        ),
    );

    // One host on sled: a data directory of its own with the plugins and the demo.
    let sled_dir = tempfile::tempdir()?;
    drop(open_host(sled_dir.path(), false)?);
    let sled = Served::start(sled_dir.path(), None)?;
    warm(&sled, &tokens)?;
    let runs = wrk_all(
        work.path(),
        &[&sled],
        &repeat_tokens,
        &keys,
        "sled",
        seconds,
    )?;
    let sled_rate = row(
        table,
        &format!("HTTP pages/s (wrk, {CONNECTIONS} connections), sled, 1 host"),
        &runs,
        None,
    )?;
    drop(sled);

    let Some(db) = db else {
        return Ok(());
    };
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let url = db.url();
    let hosts: Vec<Served> = dirs
        .iter()
        .map(|d| Served::start(d.path(), Some(&url)))
        .collect::<Result<_>>()?;
    for host in &hosts {
        warm(host, &tokens[..50])?;
    }
    for n in 1..=3 {
        let on: Vec<&Served> = hosts.iter().take(n).collect();
        let runs = wrk_all(
            work.path(),
            &on,
            &repeat_tokens,
            &keys,
            &format!("pg{n}"),
            seconds,
        )?;
        row(
            table,
            &format!(
                "HTTP pages/s (wrk, {CONNECTIONS} connections), PostgreSQL, {n} host{}",
                if n > 1 { "s" } else { "" }
            ),
            &runs,
            Some(sled_rate),
        )?;
    }
    Ok(())
}
