//! The page over HTTP: `xbhost serve`'s router in this process on a loopback port, the
//! same host and learners (repeat visits), asked for JSON with a bearer token. What HTTP,
//! token checks and JSON add to the in-process render.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use xbhost::Host;
use xbhost::server::auth::{Claims, Role, TokenKeys};
use xbhost::server::{AppState, Server, ServerConfig};

use super::{DEMO, Table, percentile, us};

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
    let requests = if quick { 2_000 } else { 10_000 };
    let seconds = Duration::from_secs(if quick { 2 } else { 10 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = Server::bind("127.0.0.1:0".parse()?, state).await?;
        let url = format!(
            "http://{}/courses/{DEMO}/blocks/unit_1?format=json",
            server.local_addr()?
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let tokens = Arc::new(tokens);

        // Latency: one keep-alive connection, one request at a time.
        let mut times = Vec::with_capacity(requests);
        for i in 0..requests {
            let started = Instant::now();
            get(&client, &url, &tokens[i % tokens.len()]).await?;
            times.push(started.elapsed());
        }
        times.sort();
        table.add(
            "HTTP repeat visit p50 (JSON, one connection)",
            us(percentile(&times, 0.5)),
        );
        table.add("HTTP repeat visit p99", us(percentile(&times, 0.99)));

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
