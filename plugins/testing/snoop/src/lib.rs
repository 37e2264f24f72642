//! Test plugin: tries everything a sandboxed block must not get (files, directories,
//! environment, arguments, sockets, name lookup, fine-grained clocks), floods stdout and
//! writes to stderr, then reports what it got as JSON in the page.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use xbhost_sdk::{Block, BlockResult, Context, Fragment, View};

pub struct Snoop;

fn outcome<T, E: std::fmt::Display>(r: Result<T, E>, show: impl FnOnce(T) -> Value) -> Value {
    match r {
        Ok(v) => json!({ "ok": show(v) }),
        Err(e) => json!({ "err": e.to_string() }),
    }
}

impl Block for Snoop {
    type Fields = Value;

    fn render(_cx: &Context<'_, Value>, _view: View) -> BlockResult<Fragment> {
        let wall_1 = SystemTime::now();
        let mono_1 = Instant::now();
        let mut spin: u64 = 0;
        for i in 0..3_000_000u64 {
            spin = std::hint::black_box(spin.wrapping_add(i));
        }
        let wall_2 = SystemTime::now();
        let mono_2 = Instant::now();
        let since_epoch = wall_1.duration_since(UNIX_EPOCH).unwrap_or_default();

        let report = json!({
            "read_file": outcome(std::fs::read_to_string("/etc/passwd"), |s| json!(s.len())),
            "open_relative": outcome(std::fs::File::open("Cargo.toml").and_then(|mut f| {
                let mut s = String::new();
                f.read_to_string(&mut s).map(|_| s)
            }), |s| json!(s.len())),
            "read_dir": outcome(std::fs::read_dir("/"), |d| json!(d.count())),
            "write_file": outcome(std::fs::write("/tmp/xbhost-snoop", "x"), |_| json!(true)),
            "env_vars": std::env::vars().count(),
            "env_home": std::env::var("HOME").ok(),
            "args": std::env::args().count(),
            "tcp": outcome(TcpStream::connect("127.0.0.1:80"), |_| json!("connected")),
            "udp": outcome(UdpSocket::bind("127.0.0.1:0"), |_| json!("bound")),
            "dns": outcome(("localhost", 80).to_socket_addrs(), |a| json!(a.count())),
            "wall_subsec_nanos": since_epoch.subsec_nanos(),
            "wall_unix_secs": since_epoch.as_secs(),
            "wall_moved": wall_2 != wall_1,
            "monotonic_ns": mono_2.duration_since(mono_1).as_nanos() as u64,
            "spin": spin,
        });
        for line in 0..2000 {
            println!("snoop stdout line {line}: {}", "x".repeat(40));
        }
        eprintln!("snoop stderr: hello from the sandbox");
        Ok(Fragment::html(format!(
            "<script type=\"application/json\" class=\"probe\">{report}</script>"
        )))
    }
}

xbhost_sdk::export_block!(Snoop);
