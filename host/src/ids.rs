//! Validation of the identifiers that reach storage keys: course keys, usage ids, user ids,
//! plugin names and tag keys. Storage keys join components with a NUL byte, so no id may
//! contain control characters; every id has a length cap so a hostile caller cannot make
//! keys of unbounded size.

use anyhow::Result;

use crate::errors::InvalidId;

/// Longest course key, usage id, user id or plugin name, in bytes.
pub const MAX_ID_BYTES: usize = 255;

/// Longest tag key, in bytes (the Open edX limit).
pub const MAX_TAG_KEY_BYTES: usize = 255;

/// Longest tag value, in bytes. Tag values travel with every analytics event of the user,
/// so they are meant to be short.
pub const MAX_TAG_VALUE_BYTES: usize = 1024;

/// The prefix of the course keys the host gives the courses it builds from plugins'
/// scenarios (`xbhost-scenarios:PLUGIN`). A course loaded, imported or uploaded may not
/// use it, so a scenario course never replaces a real one nor the other way round.
pub const SCENARIO_COURSE_PREFIX: &str = "xbhost-scenarios:";

/// Refuses a course key the host reserves for scenario courses ([`SCENARIO_COURSE_PREFIX`]).
pub fn check_not_reserved_course_key(key: &str) -> Result<()> {
    if key.starts_with(SCENARIO_COURSE_PREFIX) {
        return Err(InvalidId(format!(
            "course key {:?} starts with {SCENARIO_COURSE_PREFIX:?}, which the host reserves \
             for the scenarios plugins ship (it builds those courses itself when a plugin is \
             added): give the course another key",
            truncate(key, 80)
        ))
        .into());
    }
    Ok(())
}

/// Checks an identifier; `what` names it in the error ("course key", "user id", ...).
pub fn check_id(what: &str, id: &str) -> Result<()> {
    let problem = if id.is_empty() {
        format!("{what} is empty")
    } else if id.len() > MAX_ID_BYTES {
        format!(
            "{what} {:?}... is {} bytes, over the limit of {MAX_ID_BYTES}",
            truncate(id, 40),
            id.len()
        )
    } else if let Some(c) = id.chars().find(|c| c.is_control()) {
        format!("{what} {id:?} contains the control character {c:?}")
    } else if id.contains('/') || id.contains('\\') {
        format!("{what} {id:?} contains a path separator")
    } else {
        return Ok(());
    };
    Err(InvalidId(problem).into())
}

/// Checks a tag key, returning a message for the block on failure.
pub fn check_tag_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("tag key is empty".into());
    }
    if key.len() > MAX_TAG_KEY_BYTES {
        return Err(format!(
            "tag key {:?}... is {} bytes, over the limit of {MAX_TAG_KEY_BYTES}",
            truncate(key, 40),
            key.len()
        ));
    }
    if key.chars().any(|c| c.is_control()) {
        return Err(format!("tag key {key:?} contains a control character"));
    }
    Ok(())
}

/// Checks a tag value, returning a message for the block on failure.
pub fn check_tag_value(key: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_TAG_VALUE_BYTES {
        return Err(format!(
            "value of tag {key:?} is {} bytes, over the limit of {MAX_TAG_VALUE_BYTES}",
            value.len()
        ));
    }
    if let Some(at) = value.find('\0') {
        // No store can keep it the same way (PostgreSQL's text cannot hold one at all).
        return Err(format!(
            "value of tag {key:?} holds a NUL character at byte {at}; tag values may not"
        ));
    }
    Ok(())
}

/// The first `max` characters of `s`, for error messages about over-long input.
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_for_emptiness_length_controls_and_separators() {
        check_id("user id", "learner-1").unwrap();
        check_id("course key", "course-v1:xbhost+demo+2026").unwrap();
        assert!(
            check_id("user id", "")
                .unwrap_err()
                .to_string()
                .contains("user id is empty")
        );
        assert!(check_id("user id", &"x".repeat(256)).is_err());
        check_id("user id", &"x".repeat(255)).unwrap();
        assert!(check_id("usage id", "a\0b").is_err());
        assert!(check_id("usage id", "../etc").is_err());
    }

    #[test]
    fn tag_keys_and_values_have_limits() {
        assert!(check_tag_key("").is_err());
        assert!(check_tag_key(&"k".repeat(255)).is_ok());
        assert!(check_tag_key(&"k".repeat(256)).is_err());
        assert!(check_tag_value("k", &"v".repeat(MAX_TAG_VALUE_BYTES)).is_ok());
        assert!(check_tag_value("k", &"v".repeat(MAX_TAG_VALUE_BYTES + 1)).is_err());
        assert!(check_tag_value("k", "a\0b").unwrap_err().contains("NUL"));
    }
}
