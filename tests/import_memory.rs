//! Peak memory of an import, measured: `xbhost course import` runs as a child on crafted
//! archives and its peak resident set (`wait4`'s `ru_maxrss`) is read when it exits. An
//! import near its limits stays within a small multiple of the decompressed limit above
//! what a tiny import takes; bombs that claim gigabytes take no more than a tiny import.
//! Its own test binary, so nothing else this process runs shares the figures.

use std::path::Path;
use std::process::{Command, Stdio};

use xbhost_tests::exports::{RawArchive, data_with_plugins, small_course, tgz};
use xbhost_tests::xbhost_bin;

const MIB: u64 = 1 << 20;

/// Runs `xbhost --data DATA ARGS`; returns whether it succeeded, its stderr, and its
/// peak resident memory in bytes.
///
/// A child's `ru_maxrss` starts from its parent's peak at the fork (the kernel carries
/// the old memory's high-water mark over `exec`), so this process keeps its own memory
/// small (archives are streamed to disk) and resets its high-water mark first.
fn peak_of(data: &Path, args: &[&str]) -> (bool, String, u64) {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
    let stderr = tempfile::NamedTempFile::new().unwrap();
    // Reaped by wait4 below, which also reads its peak memory.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(xbhost_bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .env("XBHOST_LOG", "off")
        .env("XBHOST_REQUEST_DEADLINE_MS", "20000")
        .env("XBHOST_BLOCK_TIME_MS", "10000")
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr.reopen().unwrap()))
        .spawn()
        .expect("running xbhost");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid pointers to status and usage.
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(waited, child.id() as i32, "wait4 failed");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let err = std::fs::read_to_string(stderr.path()).unwrap();
    (ok, err, usage.ru_maxrss as u64 * 1024)
}

fn archive_at(data: &Path, name: &str, bytes: Vec<u8>) -> String {
    let path = data.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// A `.tar.gz` of `files` under `c/`, and `bodies` html files made one at a time as they
/// are written, streamed to disk (this process never holds the archive).
fn streamed_archive(data: &Path, name: &str, files: &[(String, Vec<u8>)], bodies: u64) -> String {
    let path = data.join(name);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        tar.append_data(&mut header, format!("c/{name}"), data)
            .unwrap();
    };
    for (name, data) in files {
        add(name, data);
    }
    for i in 0..bodies {
        add(
            &format!("html/big{i}.html"),
            prose(4 * MIB as usize, i + 1).as_bytes(),
        );
    }
    tar.into_inner().unwrap().finish().unwrap();
    path.to_str().unwrap().to_string()
}

/// This process's resident memory now.
fn own_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Text that does not repeat (so no layer can share it), `n` bytes of it.
fn prose(n: usize, seed: u64) -> String {
    let mut x = seed | 1;
    let mut out = String::with_capacity(n + 16);
    out.push_str("<p>");
    while out.len() < n - 4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((b'a' + (x % 26) as u8) as char);
        if x.is_multiple_of(7) {
            out.push(' ');
        }
    }
    out.push_str("</p>");
    out
}

#[test]
fn peak_memory_of_an_import_is_bounded_by_its_limits() {
    let data = data_with_plugins();
    let d = data.path();
    // A tiny import: the host itself, its plugins and a course of four blocks.
    let small = archive_at(d, "small.tar.gz", tgz("c", &small_course("")));
    let (ok, err, baseline) = peak_of(d, &["course", "import", &small]);
    assert!(ok, "{err}");

    // Bombs: a long name claiming 8 GiB, and 1 GiB of zeros under the default 256 MiB
    // limit. Each is refused having kept next to nothing. (They run before the big import:
    // opening the store costs memory in proportion to what it holds.)
    let mut long_name = RawArchive::default();
    long_name
        .entry(b'L', "././@LongLink", 8 << 30, &[])
        .zeros(64 * MIB);
    let bomb = archive_at(d, "bomb1.tar.gz", long_name.finish());
    let (ok, err, bomb_peak) = peak_of(d, &["course", "import", &bomb]);
    assert!(!ok && err.contains("--max-import-header-bytes"), "{err}");
    let mut zeros = RawArchive::default();
    zeros
        .entry(b'0', "c/static/zeros.bin", 1 << 30, &[])
        .zeros(1 << 30);
    let bomb = archive_at(d, "bomb2.tar.gz", zeros.finish());
    let (ok, err, zeros_peak) = peak_of(d, &["course", "import", &bomb]);
    assert!(!ok && err.contains("--max-import-bytes"), "{err}");
    println!(
        "bomb peak memory: 8 GiB long name {} MiB, 1 GiB of zeros {} MiB",
        bomb_peak / MIB,
        zeros_peak / MIB
    );
    for peak in [bomb_peak, zeros_peak] {
        assert!(
            peak <= baseline + 32 * MIB,
            "a bomb took {} MiB, a tiny import {} MiB",
            peak / MIB,
            baseline / MIB
        );
    }

    // Near the limits: 56 MiB of html bodies in 14 files of 4 MiB under a 64 MiB limit,
    // and 400,000 XML nodes under a budget of 500,000.
    let limit = 64 * MIB;
    let mut unit = String::new();
    for i in 0..14 {
        unit.push_str(&format!("<html url_name=\"big{i}\" filename=\"big{i}\"/>"));
    }
    unit.push_str(&format!("<wiki>{}</wiki>", "<a/>".repeat(400_000)));
    let near = streamed_archive(d, "near.tar.gz", &small_course(&unit), 14);
    drop(unit);
    let limits = [
        "--max-import-bytes",
        "67108864",
        "--max-import-xml-nodes",
        "500000",
        "--course-key",
        "course-v1:HostileX+Near+1",
    ];
    let mut args = vec!["course", "import", near.as_str()];
    args.extend_from_slice(&limits);
    let (ok, err, near_peak) = peak_of(d, &args);
    assert!(ok, "the import near its limits failed: {err}");
    let above = near_peak.saturating_sub(baseline);
    println!(
        "this test process: {} MiB resident when it starts each import",
        own_rss() / MIB
    );
    println!(
        "import peak memory: tiny course {} MiB; 56 MiB of html and 400k XML nodes under a \
         64 MiB limit {} MiB ({} MiB above the tiny one, {:.2}x the limit)",
        baseline / MIB,
        near_peak / MIB,
        above / MIB,
        above as f64 / limit as f64
    );
    assert!(
        above <= 6 * limit,
        "an import near a 64 MiB limit took {} MiB above a tiny one",
        above / MIB
    );
}
