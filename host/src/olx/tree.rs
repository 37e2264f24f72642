//! A directory export: the walk that finds its paths ([`walk`]) and the read of one file
//! ([`read_file`]), neither following a symbolic link.
//!
//! The walk looks at each entry's own type (`DirEntry::file_type` does not follow links)
//! and descends only into real directories, so a link to `.` or `..` is listed as a link
//! and never walked: the walk is linear in the tree, bounded by `--max-import-entries`.
//! A read opens with `O_NOFOLLOW | O_NONBLOCK` and checks what it opened (`fstat`), so a
//! link planted after the walk is refused and a FIFO never blocks the import.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use super::entries::{Entries, Entry, kind_of};
use super::limits::Budget;

/// Every path under `root` (which may itself be reached through a link: the caller named
/// it), without following any link inside it.
pub(super) fn walk(root: &Path, budget: &Budget) -> Result<Entries> {
    let max = budget.limits.max_entries;
    let mut entries = Entries::new();
    let mut seen = 0usize;
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        budget.check_deadline("walking the export directory")?;
        let shown = if rel.is_empty() { "." } else { rel.as_str() };
        let listing = std::fs::read_dir(&dir).with_context(|| format!("cannot list {shown}"))?;
        for item in listing {
            let item = item.with_context(|| format!("cannot list {shown}"))?;
            seen += 1;
            if seen > max {
                bail!(
                    "the export has more than {max} files and directories, the limit \
                     (--max-import-entries)"
                );
            }
            let name = item.file_name();
            let (name, utf8) = match name.into_string() {
                Ok(n) => (n, true),
                Err(raw) => (raw.to_string_lossy().into_owned(), false),
            };
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let file_type = item
                .file_type()
                .with_context(|| format!("cannot look at {path}"))?;
            let entry = if !utf8 {
                Entry::Refused("a name that is not UTF-8")
            } else if file_type.is_dir() {
                stack.push((item.path(), path));
                continue;
            } else if file_type.is_file() {
                Entry::OnDisk
            } else {
                Entry::Refused(kind_of(file_type))
            };
            entries.insert(path, entry);
        }
    }
    Ok(entries)
}

/// Reads `rel` under `root` as text: a regular file (no link, FIFO, device or socket),
/// within the per-file limit; returns its bytes counted against the import's total.
pub(super) fn read_file(root: &Path, rel: &str, budget: &Budget) -> Result<String> {
    let max = budget.limits.max_file_bytes;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(root.join(rel));
    let file = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            bail!("{rel} is a symbolic link: the import follows no links")
        }
        Err(e) => bail!("cannot read {rel}: {e}"),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {rel}"))?;
    if !meta.is_file() {
        bail!(
            "{rel} is {}: the import reads only regular files",
            kind_of(meta.file_type())
        );
    }
    if meta.len() > max {
        bail!(
            "{rel} is {} bytes, over the limit of {max} per file (--max-import-file-bytes)",
            meta.len()
        );
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {rel}"))?;
    if bytes.len() as u64 > max {
        bail!("{rel} is over the limit of {max} bytes per file (--max-import-file-bytes)");
    }
    budget.spend_bytes(bytes.len() as u64)?;
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{rel} is not UTF-8 text"))
}
