//! Course exports as an attacker writes them, for the hostile import tests: `.tar.gz`
//! archives built entry by entry (raw tar headers included, so an extension header can
//! claim any size), a small OLX course, and `xbhost course import` run with a time bound
//! (an import that hangs or walks without end fails the test instead of stalling it).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::xbhost_bin;

/// A gzip-compressed tar stream written entry by entry.
pub struct RawArchive {
    gz: GzEncoder<Vec<u8>>,
}

impl Default for RawArchive {
    fn default() -> Self {
        RawArchive {
            gz: GzEncoder::new(Vec::new(), Compression::fast()),
        }
    }
}

impl RawArchive {
    /// A header of type `kind` for `name` claiming `size` bytes, followed by `data`
    /// (padded to whole blocks). `data` may be shorter than `size`: the archive then
    /// ends inside the entry, as a bomb's does once it has made its point.
    pub fn entry(&mut self, kind: u8, name: &str, size: u64, data: &[u8]) -> &mut Self {
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        header.set_entry_type(tar::EntryType::new(kind));
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        self.gz.write_all(header.as_bytes()).unwrap();
        self.gz.write_all(data).unwrap();
        let pad = (512 - data.len() % 512) % 512;
        self.gz.write_all(&vec![0u8; pad]).unwrap();
        self
    }

    /// A regular file.
    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.entry(b'0', name, data.len() as u64, data)
    }

    /// A symbolic link `name` to `target` (at most 100 bytes, tar's own field).
    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
        }
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        header.set_mtime(0);
        header.set_cksum();
        self.gz.write_all(header.as_bytes()).unwrap();
        self
    }

    /// `n` zero bytes of an entry's data, written in pieces (a bomb's payload).
    pub fn zeros(&mut self, n: u64) -> &mut Self {
        let block = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(block.len() as u64) as usize;
            self.gz.write_all(&block[..k]).unwrap();
            left -= k as u64;
        }
        self
    }

    /// The finished `.tar.gz` (with tar's end-of-archive blocks).
    pub fn finish(mut self) -> Vec<u8> {
        self.gz.write_all(&[0u8; 1024]).unwrap();
        self.gz.finish().unwrap()
    }
}

/// The files of a small OLX course (`course-v1:HostileX+Imports+r1`): a chapter, a unit,
/// an html block reading `html/h1.html` and a problem; `extra` is added to the unit.
pub fn small_course(extra: &str) -> Vec<(String, Vec<u8>)> {
    let body = format!(
        "<course display_name=\"Hostile\">\n\
         <chapter url_name=\"ch\" display_name=\"C\">\n\
         <vertical url_name=\"u1\" display_name=\"U\">\n\
         <html url_name=\"h1\" filename=\"h1\"/>\n\
         <problem url_name=\"p1\" display_name=\"P\"><multiplechoiceresponse><choicegroup>\
         <choice correct=\"true\">yes</choice><choice correct=\"false\">no</choice>\
         </choicegroup></multiplechoiceresponse></problem>\n\
         {extra}\n\
         </vertical>\n</chapter>\n</course>\n"
    );
    vec![
        (
            "course.xml".into(),
            b"<course url_name=\"r1\" org=\"HostileX\" course=\"Imports\"/>\n".to_vec(),
        ),
        ("course/r1.xml".into(), body.into_bytes()),
        ("html/h1.html".into(), b"<p>hello</p>".to_vec()),
    ]
}

/// The course key [`small_course`] imports as.
pub const SMALL_COURSE: &str = "course-v1:HostileX+Imports+r1";

/// An archive of `files` under `prefix/` (built with tar's own writer).
pub fn tgz(prefix: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        tar.append_data(&mut header, format!("{prefix}/{name}"), data.as_slice())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Writes `files` as a directory export under `dir`.
pub fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, data) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// What a bounded run of `xbhost` gave.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `xbhost --data DATA ARGS`, killed (and the test failed) past `limit`: an import
/// that hangs on a FIFO or walks links without end never finishes on its own.
pub fn xbhost_within(data: &Path, args: &[&str], limit: Duration) -> Run {
    // Output goes to files: a pipe nobody reads would stall a talkative child.
    let (stdout, stderr) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let mut child = Command::new(xbhost_bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .env("XBHOST_LOG", "off")
        .env("XBHOST_REQUEST_DEADLINE_MS", "20000")
        .env("XBHOST_BLOCK_TIME_MS", "10000")
        .stdout(Stdio::from(stdout.try_clone().unwrap()))
        .stderr(Stdio::from(stderr.try_clone().unwrap()))
        .spawn()
        .expect("running xbhost");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "xbhost {args:?} did not finish within {} s (it hangs or walks without end)",
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut text = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut text).unwrap();
        text
    };
    Run {
        ok: status.success(),
        stdout: read(stdout),
        stderr: read(stderr),
    }
}

/// A data directory with the shipped plugins and no course (a copy of one made once per
/// test process, so the plugins are compiled once).
pub fn data_with_plugins() -> tempfile::TempDir {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("xbhost-plugins-template")
            .tempdir()
            .unwrap()
            .keep();
        for p in crate::PRODUCT_PLUGINS {
            let path = crate::plugin_path(p);
            crate::xbhost_ok(&dir, &["plugin", "add", path.to_str().unwrap()]);
        }
        dir
    });
    let data = tempfile::tempdir().unwrap();
    crate::copy_dir(template, data.path());
    data
}

/// The course keys stored in `data`, leaving out the scenario courses the host builds
/// from installed plugins (thumbs ships scenarios): what imports and loads stored.
pub fn stored_courses(data: &Path) -> Vec<String> {
    let run = xbhost_within(data, &["course", "list"], Duration::from_secs(60));
    assert!(run.ok, "course list failed: {}", run.stderr);
    // Each line is `KEY version N`.
    run.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|key| !key.starts_with(xbhost::ids::SCENARIO_COURSE_PREFIX))
        .map(str::to_string)
        .collect()
}
