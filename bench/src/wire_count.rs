//! Counting what a host asks PostgreSQL, on the wire: a loopback proxy between the host and
//! the database that reads the protocol's messages as they pass and counts, for every
//! connection through it,
//!
//! - round trips: a request (Sync or simple Query) sent while no earlier one is still
//!   unanswered starts one; requests pipelined behind it (sent before its ReadyForQuery
//!   came back) ride on it, since the client did not wait for them;
//! - statements by command tag (`SELECT`, `INSERT`, `BEGIN`, `COMMIT`, ...), from the
//!   server's CommandComplete messages, so a `COMMIT` counted is one the server ran;
//! - statements the client prepared (Parse messages).
//!
//! The proxy is only for counting (it adds a hop): timings are taken without it. It reads
//! the stream, never changes it.
//!
//! Two crates compile this one file: the benchmark (its PostgreSQL rows) and the tests
//! (`tests/pg_costs.rs`, which fails when a visit's statements grow), so what the table
//! prints and what the tests assert are counted the same way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What passed through the proxy so far.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub round_trips: u64,
    pub parses: u64,
    /// CommandComplete tags by their first word.
    pub tags: BTreeMap<String, u64>,
}

impl Counts {
    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Counts) -> Counts {
        let mut tags = BTreeMap::new();
        for (tag, n) in &self.tags {
            let d = n - before.tags.get(tag).copied().unwrap_or(0);
            if d > 0 {
                tags.insert(tag.clone(), d);
            }
        }
        Counts {
            round_trips: self.round_trips - before.round_trips,
            parses: self.parses - before.parses,
            tags,
        }
    }

    pub fn tag(&self, tag: &str) -> u64 {
        self.tags.get(tag).copied().unwrap_or(0)
    }

    /// The statements, per `per` visits: "1.00 SELECT, 2.00 INSERT".
    pub fn describe(&self, per: u64) -> String {
        let per = per.max(1) as f64;
        self.tags
            .iter()
            .map(|(tag, n)| format!("{:.2} {tag}", *n as f64 / per))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A running proxy: connect to `port` instead of the database.
pub struct WireCount {
    pub port: u16,
    counts: Arc<Mutex<Counts>>,
    _runtime: tokio::runtime::Runtime,
}

impl WireCount {
    /// Listens on a loopback port and forwards every connection to `upstream`
    /// (`host:port`).
    pub fn start(upstream: String) -> Result<WireCount> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-wire-count")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let counts = Arc::new(Mutex::new(Counts::default()));
        let shared = counts.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (counts, upstream) = (shared.clone(), upstream.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        relay(client, server, counts).await;
                    }
                });
            }
        });
        Ok(WireCount {
            port,
            counts,
            _runtime: runtime,
        })
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap().clone()
    }
}

/// Requests of one connection not yet answered by a ReadyForQuery.
#[derive(Default)]
struct Outstanding(u64);

async fn relay(client: TcpStream, server: TcpStream, counts: Arc<Mutex<Counts>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let outstanding = Arc::new(Mutex::new(Outstanding::default()));
    let (up_counts, up_outstanding) = (counts.clone(), outstanding.clone());
    let up = async move {
        // The client's first message (startup) has no type byte.
        let mut frames = Frames::new(true);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Counted before it is forwarded, so its answer cannot come back first.
            for (kind, _) in frames.push(&buf[..n]) {
                let mut c = up_counts.lock().unwrap();
                match kind {
                    b'P' => c.parses += 1,
                    b'S' | b'Q' => {
                        let mut o = up_outstanding.lock().unwrap();
                        if o.0 == 0 {
                            c.round_trips += 1;
                        }
                        o.0 += 1;
                    }
                    _ => {}
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut frames = Frames::new(false);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for (kind, body) in frames.push(&buf[..n]) {
                match kind {
                    b'Z' => {
                        let mut o = outstanding.lock().unwrap();
                        o.0 = o.0.saturating_sub(1);
                    }
                    b'C' => {
                        let tag = String::from_utf8_lossy(&body);
                        let word = tag
                            .trim_end_matches('\0')
                            .split(' ')
                            .next()
                            .unwrap_or("")
                            .to_string();
                        *counts.lock().unwrap().tags.entry(word).or_default() += 1;
                    }
                    _ => {}
                }
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Splits one direction of the stream into protocol messages (type byte, then a length
/// that counts itself, then the body).
///
/// A client that may use TLS (`sslmode=prefer`, the host's default) first sends an
/// SSLRequest (untyped, like the startup message that follows it), which the server
/// answers with one byte, `N` here (the proxy counts only servers without TLS).
struct Frames {
    pending: Vec<u8>,
    /// Untyped messages still to come first (the startup message).
    untyped: bool,
    /// At the very start of the server's side: a lone `N` answers an SSLRequest (no
    /// message of the server's starts with it).
    at_start: bool,
}

/// The request codes of SSLRequest and GSSENCRequest, which a startup message follows.
const ENCRYPTION_REQUESTS: [u32; 2] = [80877103, 80877104];

impl Frames {
    fn new(untyped_first: bool) -> Frames {
        Frames {
            pending: Vec::new(),
            untyped: untyped_first,
            at_start: !untyped_first,
        }
    }

    /// Takes in bytes; returns the messages they complete.
    fn push(&mut self, bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let rest = &self.pending[at..];
            if self.at_start {
                let Some(&first) = rest.first() else { break };
                self.at_start = false;
                if first == b'N' {
                    at += 1;
                    continue;
                }
            }
            if self.untyped {
                if rest.len() < 4 {
                    break;
                }
                let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                if rest.len() < len.max(8) {
                    break;
                }
                let code = u32::from_be_bytes(rest[4..8].try_into().unwrap());
                at += len;
                // An encryption request is answered, then the startup message comes.
                self.untyped = len == 8 && ENCRYPTION_REQUESTS.contains(&code);
                continue;
            }
            if rest.len() < 5 {
                break;
            }
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            if rest.len() < 1 + len {
                break;
            }
            out.push((rest[0], rest[5..1 + len].to_vec()));
            at += 1 + len;
        }
        self.pending.drain(..at);
        out
    }
}
