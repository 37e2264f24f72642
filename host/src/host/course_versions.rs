//! Course versions: every change to a course (a load or import, an experiment's controls,
//! added split-test groups) reads the course with its stored version and stores the result
//! only if the store still holds that version, so two changes made at once, on one host or
//! on several sharing a database, never silently overwrite each other: the second gets a
//! [`VersionConflict`] naming the course and both versions.

use anyhow::Result;

use super::Host;
use crate::errors::{NotFound, VersionConflict};
use crate::ids::check_id;
use crate::model::CourseDoc;
use crate::storage::{CourseWrite, Storage};

impl Host {
    /// The version of the course the store holds now (`None`: no such course).
    pub fn course_version(&self, key: &str) -> Result<Option<u64>> {
        check_id("course key", key)?;
        Ok(self.storage().course_with_version(key)?.map(|(_, v)| v))
    }

    /// The stored course document and its version, read from the store (never memory):
    /// what a change starts from.
    pub fn course_for_change(&self, key: &str) -> Result<(CourseDoc, u64)> {
        check_id("course key", key)?;
        self.storage().course_with_version(key)?.ok_or_else(|| {
            NotFound {
                what: "course",
                id: key.to_string(),
                within: None,
            }
            .into()
        })
    }
}

/// Stores `doc` as the next version if the store holds `base`; the version stored, or a
/// [`VersionConflict`].
pub(super) fn store(storage: &dyn Storage, doc: &CourseDoc, base: Option<u64>) -> Result<u64> {
    match storage.put_course_if_version(doc, base)? {
        CourseWrite::Stored(version) => Ok(version),
        CourseWrite::Conflict(found) => Err(VersionConflict {
            course: doc.course_key.clone(),
            expected: base,
            found,
        }
        .into()),
    }
}
