//! Repairs what a sled process killed mid-snapshot leaves behind, before the store opens
//! (`sled_store::SledStorage::open`).

use std::path::Path;

use anyhow::{Context as _, Result};

/// Removes snapshot files sled was still writing when its process died.
///
/// sled 0.34 writes a snapshot to `snap.LSN.generating`, syncs it and renames it to
/// `snap.LSN`; but on open it reads the newest file named `snap.*`, `.generating` ones
/// included, so a process killed mid-write leaves a store that no longer opens
/// ("Read corrupted data at file offset None"; sled issues #1527, #1533). Such a file is
/// never one sled has relied on (the rename comes first), so removing it returns the store
/// to the state of a process killed just before the snapshot began: the previous snapshot
/// and the log. Found by the SIGKILL test in `tests/durability.rs`.
pub(super) fn remove_unfinished(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the store directory {}", dir.display()));
        }
    };
    for entry in entries {
        let entry =
            entry.with_context(|| format!("cannot read the store directory {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            tracing::warn!(file = %entry.path().display(), "removing a snapshot sled did not finish writing");
            std::fs::remove_file(entry.path()).with_context(|| {
                format!(
                    "cannot remove the unfinished snapshot {}",
                    entry.path().display()
                )
            })?;
        }
    }
    Ok(())
}
