//! Course documents in sled with their versions: the document in the `courses` tree and its
//! version (a big-endian u64) under the same key in `course_versions`, read and written
//! together in one transaction, so a store of a course can be made conditional on the
//! version it started from ([`Storage::put_course_if_version`](super::Storage)).
//!
//! A course stored before versions existed has a document and no version: it counts as
//! version 1, as its first store would have made it.

use anyhow::{Context as _, Result, anyhow};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::contract::CourseWrite;
use crate::model::CourseDoc;

/// The two trees a course lives in.
pub(super) struct CourseTrees<'a> {
    pub docs: &'a sled::Tree,
    pub versions: &'a sled::Tree,
}

/// The version stored for `key` inside a transaction, counting a document stored before
/// versions existed as version 1.
fn stored_version(
    docs: &TransactionalTree,
    versions: &TransactionalTree,
    key: &[u8],
) -> Result<Option<u64>, ConflictableTransactionError<Option<u64>>> {
    if let Some(bytes) = versions.get(key)? {
        let bytes: [u8; 8] = bytes.as_ref().try_into().map_err(|_| {
            ConflictableTransactionError::Storage(sled::Error::Unsupported(
                "a stored course version is not 8 bytes".into(),
            ))
        })?;
        return Ok(Some(u64::from_be_bytes(bytes)));
    }
    Ok(docs.get(key)?.map(|_| 1))
}

impl CourseTrees<'_> {
    /// The document and version stored under `key` (the course's key), read together.
    pub fn read(&self, key: &[u8], course: &str) -> Result<Option<(CourseDoc, u64)>> {
        let found = (self.docs, self.versions)
            .transaction(|(docs, versions)| {
                let version = stored_version(docs, versions, key)?;
                Ok(docs.get(key)?.zip(version))
            })
            .map_err(|e| transaction_error(e, course))?;
        found
            .map(|(bytes, version)| {
                let doc = serde_json::from_slice(&bytes)
                    .with_context(|| format!("stored course {course:?} does not parse"))?;
                Ok((doc, version))
            })
            .transpose()
    }

    /// Stores `doc` under `key` as the next version if the stored version is `expected`
    /// (any version when `expected` is `Any`).
    pub fn write(&self, key: &[u8], doc: &CourseDoc, expected: Expect) -> Result<CourseWrite> {
        let json = serde_json::to_vec(doc)?;
        let course = doc.course_key.as_str();
        let outcome = (self.docs, self.versions).transaction(|(docs, versions)| {
            let current = stored_version(docs, versions, key)?;
            if let Expect::Version(expected) = expected
                && current != expected
            {
                return Err(ConflictableTransactionError::Abort(current));
            }
            let next = current.map_or(1, |v| v + 1);
            docs.insert(key, json.as_slice())?;
            versions.insert(key, &next.to_be_bytes())?;
            Ok(next)
        });
        match outcome {
            Ok(version) => Ok(CourseWrite::Stored(version)),
            Err(TransactionError::Abort(current)) => Ok(CourseWrite::Conflict(current)),
            Err(TransactionError::Storage(e)) => {
                Err(anyhow::Error::new(e).context(format!("storing course {course:?}")))
            }
        }
    }
}

/// Which stored version a write requires.
#[derive(Debug, Clone, Copy)]
pub(super) enum Expect {
    /// Whatever is stored (an unconditional store).
    Any,
    /// Exactly this one (`None`: no course stored).
    Version(Option<u64>),
}

fn transaction_error(e: TransactionError<Option<u64>>, course: &str) -> anyhow::Error {
    match e {
        TransactionError::Storage(e) => {
            anyhow::Error::new(e).context(format!("reading course {course:?}"))
        }
        TransactionError::Abort(_) => anyhow!("reading course {course:?} was aborted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(key: &str, name: &str) -> CourseDoc {
        CourseDoc {
            course_key: key.into(),
            display_name: Some(name.into()),
            user_partitions: vec![],
            holdout: None,
            blocks: vec![],
        }
    }

    #[test]
    fn a_course_stored_before_versions_existed_is_version_one_and_swaps_from_there() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (docs, versions) = (
            db.open_tree("courses").unwrap(),
            db.open_tree("course_versions").unwrap(),
        );
        let trees = CourseTrees {
            docs: &docs,
            versions: &versions,
        };
        // As an older binary stored it: the document alone.
        let old = doc("c", "old");
        docs.insert(b"c", serde_json::to_vec(&old).unwrap())
            .unwrap();
        assert_eq!(trees.read(b"c", "c").unwrap(), Some((old, 1)));
        let new = doc("c", "new");
        let none = Expect::Version(None);
        assert_eq!(
            trees.write(b"c", &new, none).unwrap(),
            CourseWrite::Conflict(Some(1))
        );
        let two = Expect::Version(Some(2));
        assert_eq!(
            trees.write(b"c", &new, two).unwrap(),
            CourseWrite::Conflict(Some(1))
        );
        let one = Expect::Version(Some(1));
        assert_eq!(
            trees.write(b"c", &new, one).unwrap(),
            CourseWrite::Stored(2)
        );
        assert_eq!(
            trees.write(b"c", &new, Expect::Any).unwrap(),
            CourseWrite::Stored(3)
        );
        assert_eq!(trees.read(b"c", "c").unwrap(), Some((new, 3)));
        assert_eq!(trees.read(b"d", "d").unwrap(), None);
        // A damaged version is an error, not a guess.
        versions.insert(b"c", &b"xyz"[..]).unwrap();
        assert!(trees.read(b"c", "c").is_err());
    }
}
