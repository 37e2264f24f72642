//! The [`Source`] of an export: a course directory (walked once, read in place) or a
//! `.tar.gz` archive (unpacked into memory), with its paths named relative to the
//! directory that holds `course.xml`, and the [`Budget`] the import spends as it reads.
//!
//! Whatever the export holds that is not a regular file (a link, a FIFO, a device, a
//! socket) is never followed or opened: reading it, or a path through it, is an error
//! naming it, and the rest is listed in the import's warnings. The one exception is a
//! symbolic link inside an archive that leads to a regular file inside the course's
//! folder of that archive (`links`): reading it reads that file. An archive with two
//! `course.xml` at its shallowest level is ambiguous, and refused.

use std::borrow::Cow;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};

use super::archive::read_archive;
use super::entries::{Entries, Entry};
use super::limits::Budget;
use super::tree::{read_file, walk};

/// The files of an export, by path relative to the directory that holds `course.xml`.
pub(super) struct Source {
    /// The export directory, for directory exports (files are read when asked for).
    dir: Option<PathBuf>,
    entries: Entries,
    budget: Budget,
}

impl Source {
    /// A directory export, or a `.tar.gz` archive on disk.
    pub(super) fn open(path: &Path, budget: Budget) -> Result<Source> {
        if path.is_dir() {
            let entries = walk(path, &budget)?;
            match entries.get("course.xml") {
                Some(Entry::OnDisk) => {}
                Some(Entry::Refused(what)) => {
                    bail!("course.xml is {what}: the import reads only regular files")
                }
                _ => bail!("it has no course.xml: it is not an OLX course directory"),
            }
            return Ok(Source {
                dir: Some(path.to_path_buf()),
                entries,
                budget,
            });
        }
        let file = std::fs::File::open(path).context("cannot open the archive")?;
        Source::from_archive(file, budget)
    }

    /// A `.tar.gz` archive, read from `reader`.
    pub(super) fn from_archive(reader: impl Read, budget: Budget) -> Result<Source> {
        let all = read_archive(reader, &budget)?;
        // The course is rooted where the shallowest course.xml is, and there must be one.
        let depth = |k: &str| k.matches('/').count();
        let candidates: Vec<&String> = all
            .keys()
            .filter(|k| *k == "course.xml" || k.ends_with("/course.xml"))
            .collect();
        let shallowest = candidates.iter().map(|k| depth(k)).min().ok_or_else(|| {
            anyhow!("the archive has no course.xml: it is not an OLX course export")
        })?;
        let roots: Vec<&str> = candidates
            .iter()
            .filter(|k| depth(k) == shallowest)
            .map(|k| k.as_str())
            .collect();
        if roots.len() > 1 {
            bail!(
                "the archive has {} course.xml at the same depth ({}): which course is meant \
                 is ambiguous",
                roots.len(),
                roots.iter().take(5).copied().collect::<Vec<_>>().join(", ")
            );
        }
        let root = roots[0].trim_end_matches("course.xml").to_string();
        let entries = all
            .into_iter()
            .filter_map(|(k, v)| {
                let v = match v {
                    Entry::Alias(target) => match target.strip_prefix(&root) {
                        Some(inside) => Entry::Alias(inside.to_string()),
                        None => Entry::Refused("a symbolic link out of the course's folder"),
                    },
                    v => v,
                };
                Some((k.strip_prefix(&root)?.to_string(), v))
            })
            .collect();
        Ok(Source {
            dir: None,
            entries,
            budget,
        })
    }

    pub(super) fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The text of `rel`; `None` if there is no such file. A path that is, or goes
    /// through, something other than a regular file or directory is an error naming it.
    pub(super) fn read(&self, rel: &str) -> Option<Result<Cow<'_, str>>> {
        for (at, _) in rel.match_indices('/') {
            if let Some(Entry::Refused(what)) = self.entries.get(&rel[..at]) {
                return Some(Err(anyhow!(
                    "cannot read {rel}: {} is {what}, and the import follows no links",
                    &rel[..at]
                )));
            }
        }
        let entry = match self.entries.get(rel)? {
            // Resolved to a regular file of the archive (never to another link).
            Entry::Alias(target) => self.entries.get(target)?,
            entry => entry,
        };
        let result = match entry {
            Entry::OnDisk => {
                let dir = self
                    .dir
                    .as_deref()
                    .expect("only directory exports are on disk");
                read_file(dir, rel, &self.budget).map(Cow::Owned)
            }
            Entry::Text(text) => Ok(Cow::Borrowed(text.as_str())),
            Entry::NotText => Err(anyhow!("{rel} is not UTF-8 text")),
            Entry::NotKept => Err(anyhow!("{rel} is not a file the import reads")),
            Entry::Refused(what) => Err(anyhow!(
                "{rel} is {what}: the import reads only regular files, and follows only links \
                 inside an archive to regular files in it"
            )),
            Entry::Link(_) | Entry::Alias(_) => Err(anyhow!(
                "{rel} is a symbolic link that leads to another link: the import follows none"
            )),
        };
        Some(result)
    }

    /// The path of the file `rel` is: itself, or the file a followed link leads to.
    pub(super) fn real_path<'a>(&'a self, rel: &'a str) -> &'a str {
        match self.entries.get(rel) {
            Some(Entry::Alias(target)) => target,
            _ => rel,
        }
    }

    /// Every regular file of the export (and link followed to one), in order.
    pub(super) fn files(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, e)| e.is_file())
            .map(|(k, _)| k.as_str())
    }

    /// Regular files anywhere under folder `dir`.
    pub(super) fn count_under(&self, dir: &str) -> usize {
        self.under(&format!("{dir}/"))
            .filter(|(_, e)| e.is_file())
            .count()
    }

    /// What the export holds that the import does not read or follow: (path, what it is).
    pub(super) fn refused(&self) -> Vec<(&str, &'static str)> {
        self.entries
            .iter()
            .filter_map(|(k, e)| match e {
                Entry::Refused(what) => Some((k.as_str(), *what)),
                _ => None,
            })
            .collect()
    }

    fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        self.entries
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }
}
