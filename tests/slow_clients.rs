//! Slow and silent clients against a real `xbhost serve`: sockets that never finish their
//! headers (slowloris), idle keep-alive sockets, bodies sent a byte at a time. Each costs
//! the server a bounded time and a bounded share of its connections, so `/healthz` and
//! pages keep answering.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use xbhost::server::auth::Role;
use xbhost_tests::DEMO_COURSE;
use xbhost_tests::served::{Served, learner_token, token};

fn address(served: &Served) -> String {
    served.url.trim_start_matches("http://").to_string()
}

/// Opens a socket and sends the first line of a request head, never the rest.
fn half_open(addr: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).expect("connecting");
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n")
        .expect("writing a partial head");
    socket
}

/// Reads until the server closes the socket; returns what it sent, or `None` if it was
/// still open after `limit`.
fn read_until_closed(socket: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match socket.read(&mut buf) {
            Ok(0) => return Some(seen),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => {
                return Some(seen);
            }
            Err(_) => {}
        }
    }
    None
}

/// With a low open-file limit (256) and more half-open sockets than it allows, the
/// server still answers `/healthz` and renders a page: it raised its connection cap only
/// as far as the limit allows, and new connections take the place of the oldest
/// unfinished ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_does_not_stop_healthz_or_pages() {
    let served = Served::demo_with_open_file_limit(256, &[]);
    let addr = address(&served);
    let attackers: Vec<TcpStream> = (0..400).map(|_| half_open(&addr)).collect();
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let health = http
        .get(format!("{}/healthz", served.url))
        .send()
        .await
        .expect("/healthz answers while 400 sockets hold half a request");
    assert_eq!(health.status(), 200);
    let page = http
        .get(format!("{}?format=json", served.block_url("unit_1")))
        .bearer_auth(learner_token("ada"))
        .send()
        .await
        .expect("a page answers while 400 sockets hold half a request");
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());

    let metrics = http
        .get(format!("{}/metrics", served.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let evicted = metrics
        .lines()
        .find(|l| l.starts_with("xbhost_connections_closed_by_server_total{reason=\"evicted\"}"))
        .unwrap_or_else(|| panic!("no evictions counted:\n{metrics}"));
    let count: f64 = evicted.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 100.0, "{evicted}");
    drop(attackers);
}

/// A head that never ends, an idle keep-alive connection and a silent socket are each
/// closed by the server after their timeout.
#[test]
fn header_read_and_idle_timeouts_close_sockets() {
    let served = Served::demo(&[
        "--header-read-timeout-ms",
        "500",
        "--idle-timeout-ms",
        "1500",
    ]);
    let addr = address(&served);

    let mut partial = half_open(&addr);
    let sent = read_until_closed(&mut partial, Duration::from_secs(10))
        .expect("a socket with half a request head is closed after the header-read timeout");
    assert!(sent.is_empty(), "{}", String::from_utf8_lossy(&sent));

    let mut silent = TcpStream::connect(&addr).unwrap();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(10)).is_some(),
        "a socket that sends nothing is closed after the idle timeout"
    );

    let mut keep_alive = TcpStream::connect(&addr).unwrap();
    keep_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: idle\r\n\r\n")
        .unwrap();
    let answered = read_until_closed(&mut keep_alive, Duration::from_secs(10))
        .expect("an idle keep-alive connection is closed after the idle timeout");
    let answered = String::from_utf8_lossy(&answered);
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
}

/// A body sent a byte at a time is answered 408 naming the flag once the body-read
/// timeout passes; nothing was installed.
#[test]
fn slow_body_is_answered_408() {
    let served = Served::demo(&["--body-read-timeout-ms", "700"]);
    let addr = address(&served);
    let admin = token("root", &[("*", Role::Admin)]);
    let mut socket = TcpStream::connect(&addr).unwrap();
    write!(
        socket,
        "POST /admin/plugins?name=slowpoke HTTP/1.1\r\nHost: slow\r\nAuthorization: Bearer {admin}\r\n\
         Content-Length: 100000\r\n\r\n"
    )
    .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(15) && answer.is_empty() {
        if socket.write_all(b"\0").is_err() {
            break;
        }
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        if let Ok(n) = socket.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("--body-read-timeout-ms"), "{answer}");

    drop(socket);
    let data = served.stop();
    let plugins = xbhost_tests::xbhost_ok(data.path(), &["plugin", "list"]);
    assert!(!plugins.contains("slowpoke"), "{plugins}");
}

/// SIGTERM is not held up by a client sending its body a byte at a time: the server
/// stops within its shutdown grace.
#[test]
fn sigterm_is_not_held_by_a_slow_body() {
    let served = Served::demo(&["--shutdown-grace-ms", "1000"]);
    let addr = address(&served);
    let mut socket = TcpStream::connect(&addr).unwrap();
    let learner = learner_token("slow");
    write!(
        socket,
        "POST /courses/{DEMO_COURSE}/blocks/check_sum/handler/submit HTTP/1.1\r\nHost: slow\r\n\
         Authorization: Bearer {learner}\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n"
    )
    .unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..300 {
            if socket.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let took = served
        .terminate_within(Duration::from_secs(20))
        .expect("xbhost serve stops after SIGTERM while a body trickles in");
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    let _ = trickle.join();
}

/// A client that pipelines requests and never reads the answers: the server's writes
/// wait on it, and after the idle timeout without progress it is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed() {
    let served = Served::demo(&["--idle-timeout-ms", "1500"]);
    let addr = address(&served);
    let mut socket = TcpStream::connect(&addr).unwrap();
    let writer = std::thread::spawn(move || {
        let request = b"GET /assets/xbhost.js HTTP/1.1\r\nHost: slow\r\n\r\n";
        for _ in 0..20_000 {
            if socket.write_all(request).is_err() {
                return;
            }
        }
        // Hold the socket (never read) until the server closes it.
        std::thread::sleep(Duration::from_secs(30));
    });
    let started = Instant::now();
    loop {
        let text = reqwest::get(format!("{}/metrics", served.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| {
            l.starts_with("xbhost_connections_closed_by_server_total{reason=\"write_stalled\"} 1")
        }) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a connection that never reads was not closed:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(writer);
}

/// Sockets that send a whole head and never the body they announce wait on their client,
/// not on the server: at the cap they are evicted like unfinished heads, and `/healthz`
/// still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_whose_body_never_comes_do_not_fill_the_cap() {
    let served = Served::demo_with_open_file_limit(256, &[]);
    let addr = address(&served);
    let attackers: Vec<TcpStream> = (0..400)
        .map(|_| {
            let mut socket = TcpStream::connect(&addr).unwrap();
            socket
                .write_all(
                    b"POST /session HTTP/1.1\r\nHost: slow\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
                )
                .unwrap();
            socket
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("{}/healthz", served.url))
        .send()
        .await
        .expect("/healthz answers while 400 sockets hold a head without its body");
    assert_eq!(health.status(), 200);
    drop(attackers);
}

/// An upload whose body trickles in holds one of the few places for uploads and reports
/// (`--max-concurrent-heavy`), not the render slots: a report then waits and is told why,
/// and pages still render.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_reports_hold_only_their_own_places() {
    let served = Served::demo(&["--max-concurrent-heavy", "1", "--queue-timeout-ms", "300"]);
    let addr = address(&served);
    let admin = token("root", &[("*", Role::Admin)]);
    let mut upload = TcpStream::connect(&addr).unwrap();
    write!(
        upload,
        "POST /admin/plugins HTTP/1.1\r\nHost: slow\r\nAuthorization: Bearer {admin}\r\n\
         Content-Length: 1000000\r\n\r\nabc"
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let c = reqwest::Client::new();
    let staff = token("sam", &[(DEMO_COURSE, Role::Staff)]);
    let report = c
        .get(format!(
            "{}/courses/{DEMO_COURSE}/report?format=json",
            served.url
        ))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 503);
    let text = report.text().await.unwrap();
    assert!(text.contains("--max-concurrent-heavy"), "{text}");
    let page = c
        .get(format!("{}?format=json", served.block_url("unit_1")))
        .bearer_auth(learner_token("ada"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);

    drop(upload);
    let started = Instant::now();
    loop {
        let report = c
            .get(format!(
                "{}/courses/{DEMO_COURSE}/report?format=json",
                served.url
            ))
            .bearer_auth(&staff)
            .send()
            .await
            .unwrap();
        if report.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the upload's place was not freed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
