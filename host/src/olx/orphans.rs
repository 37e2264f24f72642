//! Block files the course outline never reaches ([`unreached_files`]): every `.xml` file
//! under a folder that holds blocks, at any depth (`chapter/secret/magic.xml` is a block
//! file too), and every `.html` body under `html/`, that the import did not read. The
//! folders that hold other things (policies, static files, drafts, about pages, course
//! info and tabs) are not block folders.

use std::collections::HashSet;

use super::source::Source;

/// Top-level folders of an export that hold no blocks of the outline.
const NOT_BLOCK_FOLDERS: &[&str] = &[
    "about",
    "assets",
    "custom_tags",
    "drafts",
    "info",
    "policies",
    "static",
    "tabs",
];

/// The block files of `src` not in `read`, in path order.
pub(super) fn unreached_files(src: &Source, read: &HashSet<String>) -> Vec<String> {
    src.files()
        .filter(|path| {
            let Some((folder, rest)) = path.split_once('/') else {
                return false; // course.xml and other files at the top
            };
            let is_block_file =
                path.ends_with(".xml") || (folder == "html" && rest.ends_with(".html"));
            is_block_file && !NOT_BLOCK_FOLDERS.contains(&folder) && !read.contains(*path)
        })
        .map(str::to_string)
        .collect()
}
