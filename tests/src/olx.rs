//! The real Open edX exports in `shared/olx/` (next to the workspace), and what the test
//! course export holds: its key, its partitions and the split tests the tests look at.

use std::path::PathBuf;

/// The test course export's course key.
pub const TEST_COURSE: &str = "course-v1:TestX+Course+1";
/// The test course's random experiment ("Test Group Config 1").
pub const EXPERIMENT: u64 = 1617092182;
/// The test course's cohort partition ("Content Groups").
pub const CONTENT_GROUPS: u64 = 2084052488;
/// The test course's unit holding the question split test.
pub const SPLIT_UNIT: &str = "19bb0e826d014c15b3b4178ab9725c22";
/// The test course's split test of questions, one per group of [`EXPERIMENT`].
pub const QUESTION_SPLIT: &str = "17c9c74e7f4f4af887d3611bee41337b";

/// The export directory `shared/olx/<name>`.
pub fn olx(name: &str) -> PathBuf {
    crate::workspace_root()
        .parent()
        .unwrap()
        .join("shared/olx")
        .join(name)
}

/// The Open edX test course export as a `.tar.gz`, in memory.
pub fn test_course_archive() -> Vec<u8> {
    let dir = olx("openedx-test-course");
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    tar.append_dir_all("course", &dir)
        .unwrap_or_else(|e| panic!("packing {}: {e}", dir.display()));
    tar.into_inner().unwrap().finish().unwrap()
}
