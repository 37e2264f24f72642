//! Reading a `.tar.gz` export into memory within the import's limits ([`read_archive`]).
//!
//! Every byte out of the gzip decoder is counted (headers and padding too), so no archive
//! unpacks to more than `--max-import-bytes` however it is built. tar is read raw: GNU
//! long names and links (`L`, `K`) and PAX headers (`x`, `g`) arrive as entries of their
//! own, whose size is checked against `--max-import-header-bytes` before a byte of them is
//! read; a long name or a PAX `path` is then applied to the member it describes here. A
//! PAX `size` that disagrees with the member's header is refused (tools would read the
//! member differently). Names are normalised (`./` and empty parts dropped); `..` and a
//! name used twice are errors, since the export would mean two things. A symbolic link's
//! target (its header's, a GNU long link's or a PAX `linkpath`) is kept, and `links`
//! decides once the whole archive is read whether it leads to a regular file inside.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use anyhow::{Result, anyhow, bail};
use tar::EntryType;

use super::entries::{Entries, Entry, is_read_by_import};
use super::limits::Budget;
use super::links::resolve_links;

/// A reader that counts what passes through it and fails past `max`.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    max: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Never ask for more than one byte past the limit.
        let room = (self.max - self.count.get().min(self.max)).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.count.set(self.count.get() + n as u64);
        if self.count.get() > self.max {
            return Err(std::io::Error::other("over the decompressed size limit"));
        }
        Ok(n)
    }
}

/// Extension headers waiting for the member they describe.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

/// Reads a gzip-compressed tar archive: every entry by its normalised name.
pub(super) fn read_archive(reader: impl Read, budget: &Budget) -> Result<Entries> {
    let limits = &budget.limits;
    let count = Rc::new(Cell::new(0u64));
    let counted = Counted {
        inner: flate2::read::GzDecoder::new(reader),
        count: count.clone(),
        max: limits.max_bytes,
    };
    let over = || {
        anyhow!(
            "the archive unpacks to more than {} bytes, the limit (--max-import-bytes)",
            limits.max_bytes
        )
    };
    // Any read error past the limit is the limit's.
    let unreadable = |e: std::io::Error, what: &str| {
        if count.get() > limits.max_bytes {
            over()
        } else {
            anyhow!("the archive is not a readable .tar.gz ({what}): {e}")
        }
    };
    let mut archive = tar::Archive::new(counted);
    let mut entries = Entries::new();
    let mut pending = Pending::default();
    let mut seen = 0usize;
    let iter = archive
        .entries()
        .map_err(|e| unreadable(e, "no tar entries"))?
        .raw(true);
    for entry in iter {
        budget.check_deadline("reading the archive")?;
        let mut entry = entry.map_err(|e| unreadable(e, &format!("after entry #{seen}")))?;
        seen += 1;
        if seen > limits.max_entries {
            bail!(
                "the archive has more than {} entries, the limit (--max-import-entries)",
                limits.max_entries
            );
        }
        let kind = entry.header().entry_type();
        let size = entry.size();
        if let Some(what) = extension_name(kind) {
            if size > limits.max_header_bytes {
                bail!(
                    "archive entry #{seen} is a {what} of {size} bytes, over the limit of {} \
                     (--max-import-header-bytes)",
                    limits.max_header_bytes
                );
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| unreadable(e, &format!("the {what} of entry #{seen}")))?;
            let twice = match kind {
                EntryType::GNULongName => pending.long_name.replace(trim_nul(bytes)).is_some(),
                EntryType::GNULongLink => pending.long_link.replace(trim_nul(bytes)).is_some(),
                EntryType::XHeader => pending.pax.replace(bytes).is_some(),
                // Global PAX headers apply to the archive, not to a name: bounded, unused.
                _ => false,
            };
            if twice {
                bail!("archive entry #{seen}: two {what}s describe the same member");
            }
            continue;
        }
        let described = std::mem::take(&mut pending);
        let raw_name = match (&described.long_name, pax_value(&described.pax, "path")?) {
            (_, Some(path)) => path.to_vec(),
            (Some(long), None) => long.clone(),
            (None, None) => entry.path_bytes().into_owned(),
        };
        if let Some(pax_size) = pax_value(&described.pax, "size")? {
            let pax_size: Option<u64> = std::str::from_utf8(pax_size)
                .ok()
                .and_then(|s| s.parse().ok());
            if pax_size != Some(size) {
                bail!(
                    "archive entry #{seen}: its PAX header gives a size other than its own \
                     header's {size} bytes; the archive is ambiguous"
                );
            }
        }
        let Ok(name) = String::from_utf8(raw_name) else {
            let lossy = String::from_utf8_lossy(entry.path_bytes().as_ref()).into_owned();
            insert(
                &mut entries,
                normalise(&lossy, seen)?,
                Entry::Refused("a name that is not UTF-8"),
            )?;
            continue;
        };
        let name = normalise(&name, seen)?;
        let refused = match kind {
            EntryType::Directory => continue,
            EntryType::Regular | EntryType::Continuous => None,
            EntryType::Symlink => {
                let target = match (&described.long_link, pax_value(&described.pax, "linkpath")?) {
                    (_, Some(path)) => Some(path.to_vec()),
                    (Some(long), None) => Some(long.clone()),
                    (None, None) => entry.link_name_bytes().map(|t| t.into_owned()),
                };
                let entry = match target.map(String::from_utf8) {
                    Some(Ok(target)) => Entry::Link(target),
                    Some(Err(_)) => Entry::Refused("a symbolic link to a name that is not UTF-8"),
                    None => Entry::Refused("a symbolic link to nothing (an empty target)"),
                };
                insert(&mut entries, name, entry)?;
                continue;
            }
            EntryType::Link => Some("a hard link"),
            EntryType::Fifo => Some("a FIFO"),
            EntryType::Char => Some("a character device"),
            EntryType::Block => Some("a block device"),
            EntryType::GNUSparse => {
                bail!("archive entry {name:?} is a GNU sparse file, which the import does not read")
            }
            _ => Some("an entry of a type the import does not read"),
        };
        if let Some(what) = refused {
            insert(&mut entries, name, Entry::Refused(what))?;
            continue;
        }
        if name.is_empty() {
            bail!("archive entry #{seen} is a file without a name");
        }
        if !is_read_by_import(&name) {
            // Skipped unread (the decoder still counts its bytes).
            insert(&mut entries, name, Entry::NotKept)?;
            continue;
        }
        if size > limits.max_file_bytes {
            bail!(
                "archive entry {name:?} is {size} bytes, over the limit of {} per file \
                 (--max-import-file-bytes)",
                limits.max_file_bytes
            );
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(e, &format!("entry {name:?}")))?;
        let file = match String::from_utf8(bytes) {
            Ok(text) => Entry::Text(text),
            Err(_) => Entry::NotText,
        };
        insert(&mut entries, name, file)?;
    }
    if pending.long_name.is_some() || pending.long_link.is_some() || pending.pax.is_some() {
        bail!("the archive ends with an extension header that describes no member");
    }
    resolve_links(&mut entries);
    Ok(entries)
}

/// The extension headers, by what errors call them.
fn extension_name(kind: EntryType) -> Option<&'static str> {
    match kind {
        EntryType::GNULongName => Some("GNU long name"),
        EntryType::GNULongLink => Some("GNU long link name"),
        EntryType::XHeader => Some("PAX header"),
        EntryType::XGlobalHeader => Some("PAX global header"),
        _ => None,
    }
}

fn trim_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(end) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(end);
    }
    bytes
}

/// The value of `key` in a PAX header's records, if the header has one.
fn pax_value<'a>(pax: &'a Option<Vec<u8>>, key: &str) -> Result<Option<&'a [u8]>> {
    let Some(pax) = pax else { return Ok(None) };
    let mut found = None;
    for record in tar::PaxExtensions::new(pax) {
        let record = record.map_err(|_| anyhow!("the archive has a malformed PAX header"))?;
        if record.key_bytes() == key.as_bytes() {
            found = Some(record.value_bytes());
        }
    }
    Ok(found)
}

/// A member's name without `./`, leading `/` or empty parts; `..` is refused.
fn normalise(name: &str, seen: usize) -> Result<String> {
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("archive entry #{seen} ({name:?}) climbs out of the archive with \"..\""),
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn insert(entries: &mut Entries, name: String, entry: Entry) -> Result<()> {
    if entries.contains_key(&name) {
        bail!("the archive has two entries named {name:?}: which one is meant is ambiguous");
    }
    entries.insert(name, entry);
    Ok(())
}
