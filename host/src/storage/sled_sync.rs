//! The error of a failed sync of sled's log, as each caller that waited on that sync
//! (`group_commit`) gets it.

/// A failed sync, as every caller that waited on it gets it. sled's own `Clone` rebuilds an
/// I/O error from its debug text, losing the OS error code (a full disk would read
/// `Os { code: 28, ... }` instead of "No space left on device"); this keeps the code.
pub(super) struct SyncError(pub(super) sled::Error);

impl Clone for SyncError {
    fn clone(&self) -> SyncError {
        SyncError(match &self.0 {
            sled::Error::Io(io) => sled::Error::Io(match io.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::new(io.kind(), io.to_string()),
            }),
            other => other.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_sync_reaches_every_waiter_with_its_os_error() {
        let full = SyncError(sled::Error::Io(std::io::Error::from_raw_os_error(28)));
        let copy = full.clone().0.to_string();
        assert_eq!(copy, full.0.to_string());
        assert!(copy.contains("No space left on device"), "{copy}");
    }
}
