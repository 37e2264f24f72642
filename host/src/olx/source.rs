//! The [`Source`] of an export: a course directory read in place, or a `.tar.gz` archive
//! unpacked into memory (within size limits), with files named relative to `course.xml`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};

/// Largest archive we unpack (in bytes, uncompressed) and most entries.
const MAX_ARCHIVE_BYTES: u64 = 1 << 30;
const MAX_ARCHIVE_ENTRIES: usize = 100_000;

/// The files of an export, by path relative to the directory that holds `course.xml`.
pub(super) enum Source {
    Dir(PathBuf),
    Archive(HashMap<String, Vec<u8>>),
}

impl Source {
    pub(super) fn open(path: &Path) -> Result<Source> {
        if path.is_dir() {
            if !path.join("course.xml").is_file() {
                bail!(
                    "{} has no course.xml: it is not an OLX course directory",
                    path.display()
                );
            }
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut files = HashMap::new();
        let mut total = 0u64;
        let entries = archive
            .entries()
            .with_context(|| format!("{} is not a .tar.gz archive", path.display()))?;
        for entry in entries {
            let mut entry = entry
                .with_context(|| format!("{} is not a readable .tar.gz archive", path.display()))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = entry
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            total += entry.size();
            if total > MAX_ARCHIVE_BYTES || files.len() >= MAX_ARCHIVE_ENTRIES {
                bail!(
                    "{} unpacks to more than {MAX_ARCHIVE_BYTES} bytes or {MAX_ARCHIVE_ENTRIES} files",
                    path.display()
                );
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes)?;
            files.insert(name, bytes);
        }
        // The course is rooted where the shallowest course.xml is.
        let root = files
            .keys()
            .filter(|k| *k == "course.xml" || k.ends_with("/course.xml"))
            .min_by_key(|k| k.matches('/').count())
            .ok_or_else(|| {
                anyhow!(
                    "{} has no course.xml: it is not an OLX course export",
                    path.display()
                )
            })?
            .trim_end_matches("course.xml")
            .to_string();
        let files = files
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&root)?.to_string(), v)))
            .collect();
        Ok(Source::Archive(files))
    }

    pub(super) fn read(&self, rel: &str) -> Option<Result<String>> {
        let bytes = match self {
            Source::Dir(dir) => {
                // Names are checked before paths are built; this also refuses a symlink
                // that leads out of the export.
                let path = match dir.join(rel).canonicalize() {
                    Ok(p) => p,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                    Err(e) => return Some(Err(anyhow!("cannot read {rel}: {e}"))),
                };
                let root = match dir.canonicalize() {
                    Ok(r) => r,
                    Err(e) => return Some(Err(anyhow!("cannot read {}: {e}", dir.display()))),
                };
                if !path.starts_with(&root) {
                    return Some(Err(anyhow!("{rel} leads outside the export (a link?)")));
                }
                match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) => return Some(Err(anyhow!("cannot read {rel}: {e}"))),
                }
            }
            Source::Archive(files) => files.get(rel)?.clone(),
        };
        Some(String::from_utf8(bytes).map_err(|_| anyhow!("{rel} is not UTF-8 text")))
    }

    /// Files directly in folder `dir` (relative paths).
    pub(super) fn list(&self, dir: &str) -> Vec<String> {
        let mut out: Vec<String> = match self {
            Source::Dir(root) => std::fs::read_dir(root.join(dir))
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .filter(|e| e.path().is_file())
                        .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
                        .collect()
                })
                .unwrap_or_default(),
            Source::Archive(files) => files
                .keys()
                .filter(|k| {
                    k.strip_prefix(dir)
                        .and_then(|r| r.strip_prefix('/'))
                        .is_some_and(|r| !r.contains('/'))
                })
                .cloned()
                .collect(),
        };
        out.sort();
        out
    }

    /// Files anywhere under folder `dir`.
    pub(super) fn count_under(&self, dir: &str) -> usize {
        match self {
            Source::Dir(root) => walk_count(&root.join(dir)),
            Source::Archive(files) => files
                .keys()
                .filter(|k| k.starts_with(&format!("{dir}/")))
                .count(),
        }
    }
}

fn walk_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| {
                    if e.path().is_dir() {
                        walk_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
