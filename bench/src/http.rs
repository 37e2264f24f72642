//! The page over HTTP: `xbhost serve`'s router in this process on a loopback port, the
//! same host and learners (repeat visits), asked for JSON with a bearer token. What HTTP,
//! token checks and JSON add to the in-process render.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use xbhost::Host;
use xbhost::request::View;
use xbhost::server::auth::{Claims, Role, TokenKeys};
use xbhost::server::{AppState, Server, ServerConfig};

use super::{DEMO, Table, percentile, process_cpu, us};

/// Concurrent connections of the throughput run.
const CONNECTIONS: usize = 8;
/// Distinct learners (tokens) the HTTP runs cycle through.
const LEARNERS: usize = 500;

const SECRET: &[u8] = b"xbhost-benchmark-key-0123456789abcdef";

pub fn figures(
    host: &Host,
    data_dir: &Path,
    learners: &[String],
    quick: bool,
    table: &mut Table,
) -> Result<()> {
    let keys = TokenKeys::from_secret(SECRET)?;
    let tokens: Vec<String> = learners
        .iter()
        .take(LEARNERS)
        .map(|l| {
            let roles = [("*".to_string(), Role::Learner)].into();
            keys.issue(&Claims::new(l, l, roles, 3600))
        })
        .collect::<Result<_>>()?;
    let state = AppState::new(
        host.clone(),
        TokenKeys::from_secret(SECRET)?,
        ServerConfig::new(data_dir.to_path_buf(), data_dir.join("events.jsonl")),
    )?;
    parts(host, &state, &tokens, learners, table)?;
    let requests = if quick { 2_000 } else { 10_000 };
    let seconds = Duration::from_secs(if quick { 2 } else { 10 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    blocking_hop(&runtime, table);
    server_render_call(&runtime, &state, learners, requests, table)?;
    let learners: Vec<String> = learners.iter().take(LEARNERS).cloned().collect();
    runtime.block_on(async move {
        let server = Server::bind("127.0.0.1:0".parse()?, state).await?;
        let base = format!("http://{}", server.local_addr()?);
        let url = format!("{base}/courses/{DEMO}/blocks/unit_1?format=json");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let tokens = Arc::new(tokens);

        // Latency: one keep-alive connection, one request at a time, with the process's
        // CPU time over the loop (client and server are both in this process) and the
        // server's own render times (its metrics histogram, before and after).
        let metrics = format!("{base}/metrics");
        let histogram_before = render_histogram(&client.get(&metrics).send().await?.text().await?);
        let cpu_before = process_cpu();
        let wall_before = Instant::now();
        let mut times = Vec::with_capacity(requests);
        for i in 0..requests {
            let started = Instant::now();
            get(&client, &url, &tokens[i % tokens.len()]).await?;
            times.push(started.elapsed());
        }
        let cpu = (process_cpu() - cpu_before) / requests as u32;
        let wall = wall_before.elapsed() / requests as u32;
        let histogram = render_histogram(&client.get(&metrics).send().await?.text().await?);
        times.sort();
        table.add(
            "HTTP repeat visit p50 (JSON, one connection)",
            us(percentile(&times, 0.5)),
        );
        table.add("HTTP repeat visit p99", us(percentile(&times, 0.99)));
        table.add(
            "HTTP one at a time: CPU of the process / wall time, a request",
            format!("{} / {}", us(cpu), us(wall)),
        );
        let shares: Vec<String> = histogram
            .iter()
            .zip(&histogram_before)
            .take(4)
            .map(|((le, after), (_, before))| {
                format!(
                    "≤{:.0} µs {:.0}%",
                    le * 1e6,
                    (after - before) / requests as f64 * 100.0
                )
            })
            .collect();
        table.add(
            "HTTP one at a time: the server's render time (its histogram), share",
            shares.join(", "),
        );

        // The floor: the same client on the same connection asking for the cheapest
        // answers the server has: /healthz (no token; one store check on the blocking pool),
        // and an authenticated read of the learner's groups (token checked, store read on
        // the blocking pool, no render).
        let health = format!("{base}/healthz");
        let mut floor = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let response = client.get(&health).send().await?;
            if !response.status().is_success() {
                bail!("GET {health}: {}", response.status());
            }
            response.bytes().await?;
            floor.push(started.elapsed());
        }
        floor.sort();
        let mut small = Vec::with_capacity(requests);
        for i in 0..requests {
            let learner = &learners[i % learners.len()];
            let assignments = format!("{base}/courses/{DEMO}/users/{learner}/assignments");
            let started = Instant::now();
            get(&client, &assignments, &tokens[i % tokens.len()]).await?;
            small.push(started.elapsed());
        }
        small.sort();
        table.add(
            "HTTP floor p50: GET /healthz / a learner's groups (token, store read)",
            format!(
                "{} / {}",
                us(percentile(&floor, 0.5)),
                us(percentile(&small, 0.5))
            ),
        );

        // Throughput: CONNECTIONS clients in a loop.
        let done = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|c| {
                let (client, url, tokens, done) =
                    (client.clone(), url.clone(), tokens.clone(), done.clone());
                tokio::spawn(async move {
                    let mut i = c;
                    while started.elapsed() < seconds {
                        get(&client, &url, &tokens[i % tokens.len()]).await?;
                        done.fetch_add(1, Ordering::Relaxed);
                        i += CONNECTIONS;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        table.add(
            &format!("HTTP pages/s, {CONNECTIONS} connections"),
            format!("{rate:.0}"),
        );
        let _ = stop.send(());
        serving.await??;
        anyhow::Ok(())
    })
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<()> {
    let response = client.get(url).bearer_auth(token).send().await?;
    if !response.status().is_success() {
        bail!(
            "GET {url}: {} {}",
            response.status(),
            response.text().await?
        );
    }
    let body = response.bytes().await?;
    if body.is_empty() {
        bail!("GET {url}: empty body");
    }
    Ok(())
}

/// The server's own work on a page beside the render, each part timed alone: the token
/// check (signature, claims, revocation lookup) and the JSON of the answer.
fn parts(
    host: &Host,
    state: &AppState,
    tokens: &[String],
    learners: &[String],
    table: &mut Table,
) -> Result<()> {
    let rounds = 2_000;
    let mut times = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let token = &tokens[i % tokens.len()];
        let started = Instant::now();
        let claims = state.keys().verify(token).map_err(anyhow::Error::msg)?;
        let id = xbhost::server::ledger::TokenId::of_token(token, &claims);
        std::hint::black_box(state.ledger().is_revoked(&id, 0));
        times.push(started.elapsed());
    }
    times.sort();
    let check = percentile(&times, 0.5);
    let output = host.render(&super::request(&learners[0]))?;
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let json = serde_json::to_vec(&output.summary(&learners[0], View::Student, false))?;
        std::hint::black_box(json);
        times.push(started.elapsed());
    }
    times.sort();
    table.add(
        "HTTP parts p50: token check / JSON of the page",
        format!("{} / {}", us(check), us(percentile(&times, 0.5))),
    );
    Ok(())
}

/// What handing a render to tokio's blocking pool and back costs (an empty closure).
fn blocking_hop(runtime: &tokio::runtime::Runtime, table: &mut Table) {
    let mut times: Vec<Duration> = runtime.block_on(async {
        let mut times = Vec::with_capacity(2_000);
        for _ in 0..2_000 {
            let started = Instant::now();
            let _ = tokio::task::spawn_blocking(|| std::hint::black_box(1)).await;
            times.push(started.elapsed());
        }
        times
    });
    times.sort();
    table.add(
        "HTTP parts p50: hop to the blocking pool and back",
        us(percentile(&times, 0.5)),
    );
}

/// The server's render call (`blocks::run_render`: a render slot, the hop to the blocking
/// pool, the render, the metrics), awaited from this runtime with no HTTP around it.
fn server_render_call(
    runtime: &tokio::runtime::Runtime,
    state: &AppState,
    learners: &[String],
    requests: usize,
    table: &mut Table,
) -> Result<()> {
    let mut times: Vec<Duration> = runtime.block_on(async {
        let mut times = Vec::with_capacity(requests);
        for i in 0..requests {
            let request = super::request(&learners[i % LEARNERS.min(learners.len())]);
            let started = Instant::now();
            xbhost::server::blocks::run_render(state, request)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            times.push(started.elapsed());
        }
        anyhow::Ok(times)
    })?;
    times.sort();
    table.add(
        "HTTP parts p50: the server's render call, no HTTP",
        us(percentile(&times, 0.5)),
    );
    Ok(())
}

/// The cumulative buckets of the server's render-time histogram: (upper bound in
/// seconds, renders at or under it).
fn render_histogram(metrics: &str) -> Vec<(f64, f64)> {
    metrics
        .lines()
        .filter(|l| l.starts_with("xbhost_render_duration_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?.parse().ok()?;
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}
