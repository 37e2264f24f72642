//! What each path of an export is ([`Entry`]), as the archive reader and the directory
//! walk find it, and names for what the import refuses to read ([`kind_of`]). A leaf:
//! `archive`, `tree` and `source` all use it.

use std::collections::BTreeMap;
use std::fs::FileType;
use std::os::unix::fs::FileTypeExt;

/// One path of an export.
#[derive(Debug)]
pub(super) enum Entry {
    /// A regular file of a directory export, read (within limits) when asked for.
    OnDisk,
    /// A file of an archive, kept as text (UTF-8).
    Text(String),
    /// A file of an archive the import would read that is not UTF-8 text.
    NotText,
    /// A file of an archive of a kind the import never reads (not `.xml`, `.html` or
    /// `.json`: images, videos): counted, not kept.
    NotKept,
    /// A symbolic link of an archive, as read (its target, not yet resolved).
    Link(String),
    /// A symbolic link of an archive resolved to the regular file it leads to (the path
    /// of that file): reading it reads that file.
    Alias(String),
    /// What the import does not read or follow: a link it does not follow, a FIFO, a
    /// device, a socket, a name that is not UTF-8 (what it is).
    Refused(&'static str),
}

impl Entry {
    /// A regular file (whatever became of its bytes), or a link resolved to one.
    pub(super) fn is_file(&self) -> bool {
        !matches!(self, Entry::Refused(_) | Entry::Link(_))
    }
}

/// Every path of an export, by its name relative to the export's top.
pub(super) type Entries = BTreeMap<String, Entry>;

/// What a file that is not a regular file is, as errors name it.
pub(super) fn kind_of(file_type: FileType) -> &'static str {
    if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Files the import reads: kept from archives (all else is counted and dropped).
pub(super) fn is_read_by_import(name: &str) -> bool {
    name.ends_with(".xml")
        || name.ends_with(".html")
        || name.ends_with(".json")
        // Video transcripts (`static/*.srt`, `static/subs_*.srt.sjson`).
        || name.ends_with(".srt")
        || name.ends_with(".sjson")
}
