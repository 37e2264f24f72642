//! What an import may spend: [`ImportLimits`] (every limit with its default and the flag
//! that sets it), [`LoadDeadline`] (the time a course load or import may take) and
//! [`Budget`], what one import has left as it reads (time and XML nodes). Imports no
//! sibling, so every other file of the import may use it.
//!
//! An export is written by an adversary: every byte out of the gzip decoder, every entry,
//! every extension header, every file, every XML node and every level of nesting is
//! counted against a limit, and each error names the limit, its value and its flag.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// The limits of one import (`xbhost course import` and `xbhost serve` take each as a
/// flag). Peak memory of an import is about the decompressed bytes it keeps (at most
/// `max_bytes`), the course document made of them (about as much again), and the XML
/// tree being walked (about 80 bytes per node, at most `max_xml_nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLimits {
    /// Bytes out of the gzip decoder, tar headers and padding included (or bytes read
    /// from a directory export). `--max-import-bytes`, default 256 MiB.
    pub max_bytes: u64,
    /// Largest file the import reads (XML, HTML, policy JSON). `--max-import-file-bytes`,
    /// default 16 MiB.
    pub max_file_bytes: u64,
    /// Entries of an archive (headers, directories and links included), or files and
    /// directories of a directory export. `--max-import-entries`, default 100,000.
    pub max_entries: usize,
    /// Largest extension header of an archive (a GNU long name or long link, a PAX
    /// header), checked before it is read. `--max-import-header-bytes`, default 64 KiB.
    pub max_header_bytes: u64,
    /// XML nodes parsed in the whole import, all files together.
    /// `--max-import-xml-nodes`, default 2,000,000.
    pub max_xml_nodes: u64,
    /// Deepest nesting of XML elements in one file. `--max-import-xml-depth`, default 256.
    pub max_xml_depth: usize,
    /// Most attributes of one XML element, and most namespace declarations in one file
    /// (the parser checks each attribute against the element's others, so their number
    /// must be small). `--max-import-xml-attributes`, default 256.
    pub max_xml_attributes: usize,
    /// The longest reading a course and checking every block may take (an import, an
    /// upload or `course load`). `--load-deadline-ms`, default 120 s.
    pub deadline: Duration,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_bytes: 256 << 20,
            max_file_bytes: 16 << 20,
            max_entries: 100_000,
            max_header_bytes: 64 << 10,
            max_xml_nodes: 2_000_000,
            max_xml_depth: 256,
            max_xml_attributes: 256,
            deadline: DEFAULT_LOAD_DEADLINE,
        }
    }
}

/// The default of `--load-deadline-ms`.
pub const DEFAULT_LOAD_DEADLINE: Duration = Duration::from_secs(120);

/// When a course load (or the import that leads to it) must be done: checked as the
/// import walks and before each block's `validate`, so a huge or slow course stops itself
/// instead of holding a server slot without end.
#[derive(Debug, Clone, Copy)]
pub struct LoadDeadline {
    pub at: Instant,
    /// The whole budget, as errors name it.
    pub budget: Duration,
}

impl LoadDeadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> LoadDeadline {
        LoadDeadline {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// An error if the deadline has passed; `doing` says what was under way.
    pub fn check(&self, doing: &str) -> Result<()> {
        if Instant::now() >= self.at {
            bail!(
                "{doing}: the load deadline of {} ms has passed (--load-deadline-ms)",
                self.budget.as_millis()
            );
        }
        Ok(())
    }

    /// How long is left.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
}

/// What one import has left: its deadline and the XML nodes it may still parse.
pub(super) struct Budget {
    pub(super) limits: ImportLimits,
    pub(super) deadline: LoadDeadline,
    nodes_left: Cell<u64>,
    /// Bytes read from a directory export so far (archives count in their reader).
    bytes_read: Cell<u64>,
}

impl Budget {
    pub(super) fn new(limits: ImportLimits, deadline: LoadDeadline) -> Budget {
        let nodes_left = Cell::new(limits.max_xml_nodes);
        Budget {
            limits,
            deadline,
            nodes_left,
            bytes_read: Cell::new(0),
        }
    }

    /// Counts `n` bytes read from a directory export against `--max-import-bytes`.
    pub(super) fn spend_bytes(&self, n: u64) -> Result<()> {
        let total = self.bytes_read.get() + n;
        self.bytes_read.set(total);
        if total > self.limits.max_bytes {
            bail!(
                "the export's files are more than {} bytes, the limit (--max-import-bytes)",
                self.limits.max_bytes
            );
        }
        Ok(())
    }

    pub(super) fn nodes_left(&self) -> u64 {
        self.nodes_left.get()
    }

    /// Counts `n` nodes parsed against the whole import's budget.
    pub(super) fn spend_nodes(&self, n: u64) {
        self.nodes_left.set(self.nodes_left.get().saturating_sub(n));
    }

    pub(super) fn check_deadline(&self, doing: &str) -> Result<()> {
        self.deadline.check(doing)
    }
}
