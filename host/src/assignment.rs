//! The sampling authority: which group of a partition an identifier belongs to.
//!
//! `group = f(course, partition, identifier)`: a keyed blake3 hash over length-prefixed
//! fields, read as a 64-bit number and mapped onto the partition's groups by weight.
//! Deterministic (the same on every machine and in every version that keeps the golden
//! vectors), uniform (blake3 output is indistinguishable from random), and independent
//! between partitions (the partition id is hashed, so two partitions draw unrelated numbers
//! and every combination of groups is equally likely).
//!
//! This module is pure: stickiness (storing the first assignment as a course tag) lives in
//! the render session, and `xbhost assign` uses this directly with no user session.

use std::sync::LazyLock;

use crate::model::{Group, UserPartition};

/// The Open edX course tag that stores a learner's group in partition `id`.
pub fn partition_tag_key(partition_id: u64) -> String {
    format!("{PARTITION_TAG_PREFIX}{partition_id}")
}

/// Prefix of the partition tags.
pub const PARTITION_TAG_PREFIX: &str = "xblock.partition_service.partition_";

/// Prefix of every course tag the host's partition service keeps (the partition tags
/// and [`HOLDOUT_TAG`]). Blocks may read these tags but not write them.
pub const PARTITION_SERVICE_PREFIX: &str = "xblock.partition_service.";

/// The course tag that records a learner held out of every experiment (see
/// `experiment::held_out`) once they reach one: the holdout's members in the report. Under
/// the partition service's prefix, so blocks and the tag commands cannot write it.
pub const HOLDOUT_TAG: &str = "xblock.partition_service.holdout";

/// The value of [`HOLDOUT_TAG`].
pub const HELD_OUT: &str = "held_out";

/// The partition id a partition tag key names, if it is one.
pub fn partition_of_tag(key: &str) -> Option<u64> {
    key.strip_prefix(PARTITION_TAG_PREFIX)?.parse().ok()
}

/// The hash key. Fixed, so assignments are the same on every machine; changing it moves
/// every learner who has no stored group yet, which the golden-vector test catches.
static ASSIGNMENT_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("xbhost 2026-11 user partition assignment v1", b""));

/// A uniform 64-bit number for (course, partition, identifier).
pub fn draw(course_key: &str, partition_id: u64, identifier: &str) -> u64 {
    let mut hasher = blake3::Hasher::new_keyed(&ASSIGNMENT_KEY);
    // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    for field in [course_key.as_bytes(), identifier.as_bytes()] {
        hasher.update(&(field.len() as u64).to_le_bytes());
        hasher.update(field);
    }
    hasher.update(&partition_id.to_le_bytes());
    let mut out = [0u8; 8];
    hasher.finalize_xof().fill(&mut out);
    u64::from_le_bytes(out)
}

/// The hash key of randomized content (see [`rank`]): its own, so a child's rank never
/// correlates with any partition's draw.
static SELECTION_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("xbhost 2026-12 randomized content selection v1", b""));

/// A uniform 64-bit rank of `child` among the children of `block` for `identifier`: a
/// learner gets a block's lowest-ranked children. Ranks are independent between
/// learners, between blocks (the block's usage id is hashed) and between children, so the
/// lowest `k` of them are a uniform random `k`-subset, and two blocks draw independently.
pub fn rank(course_key: &str, block: &str, identifier: &str, child: &str) -> u64 {
    keyed_draw(&SELECTION_KEY, &[course_key, block, identifier, child])
}

/// The hash key of layers (see [`layer_draw`]): its own, so a learner's place in a layer
/// never correlates with their group in any partition.
static LAYER_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("xbhost 2026-12 experiment layer traffic v1", b""));

/// A uniform 64-bit place of `identifier` in `layer` of `scope` (the layer's bucketing
/// scope). One draw per learner and layer, whichever experiments the layer holds: adding
/// one to free range moves nobody, and experiments of two layers are independent.
pub fn layer_draw(scope: &str, layer: &str, identifier: &str) -> u64 {
    keyed_draw(&LAYER_KEY, &[scope, layer, identifier])
}

/// The hash key of the course's holdout (see [`holdout_draw`]).
static HOLDOUT_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("xbhost 2026-12 course holdout v1", b""));

/// A uniform 64-bit draw of `identifier` for the holdout of `course_key`: held out when
/// it falls below the holdout's share. Growing the share only adds learners to it.
pub fn holdout_draw(course_key: &str, identifier: &str) -> u64 {
    keyed_draw(&HOLDOUT_KEY, &[course_key, identifier])
}

/// A keyed blake3 hash of length-prefixed fields, read as a 64-bit number.
fn keyed_draw(key: &[u8; 32], fields: &[&str]) -> u64 {
    let mut hasher = blake3::Hasher::new_keyed(key);
    for field in fields {
        hasher.update(&(field.len() as u64).to_le_bytes());
        hasher.update(field.as_bytes());
    }
    let mut out = [0u8; 8];
    hasher.finalize_xof().fill(&mut out);
    u64::from_le_bytes(out)
}

/// Maps a uniform 64-bit draw onto groups in proportion to their weights.
pub fn pick(groups: &[Group], draw: u64) -> Option<&Group> {
    let total: u64 = groups.iter().map(|g| u64::from(g.weight)).sum();
    if total == 0 {
        return None;
    }
    // Scale the draw into [0, total): bias at most total / 2^64, far below measurable.
    let mut point = ((u128::from(draw) * u128::from(total)) >> 64) as u64;
    for group in groups {
        let weight = u64::from(group.weight);
        if point < weight {
            return Some(group);
        }
        point -= weight;
    }
    unreachable!("point is below the total weight")
}

/// The group `identifier` belongs to in `partition` of `course_key`, or `None` when the
/// partition has no group to give (no groups, or all weights 0).
pub fn assign<'p>(
    course_key: &str,
    partition: &'p UserPartition,
    identifier: &str,
) -> Option<&'p Group> {
    pick(
        &partition.groups,
        draw(course_key, partition.id, identifier),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(weights: &[u32]) -> Vec<Group> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| Group {
                id: i as u64,
                name: format!("g{i}"),
                weight,
            })
            .collect()
    }

    #[test]
    fn pick_respects_weights_at_the_edges() {
        let g = groups(&[1, 3]);
        assert_eq!(pick(&g, 0).unwrap().id, 0);
        assert_eq!(pick(&g, u64::MAX / 4 - 1).unwrap().id, 0);
        assert_eq!(pick(&g, u64::MAX / 4 + 1).unwrap().id, 1);
        assert_eq!(pick(&g, u64::MAX).unwrap().id, 1);
        assert!(pick(&groups(&[0, 0]), 5).is_none());
        assert!(pick(&[], 5).is_none());
        assert_eq!(
            pick(&groups(&[0, 1]), 0).unwrap().id,
            1,
            "weight 0 is never picked"
        );
    }

    #[test]
    fn fields_are_length_prefixed() {
        assert_ne!(draw("ab", 1, "c"), draw("a", 1, "bc"));
        assert_ne!(draw("a", 1, "b"), draw("a", 2, "b"));
    }

    #[test]
    fn partition_tags_round_trip() {
        assert_eq!(partition_tag_key(7), "xblock.partition_service.partition_7");
        assert_eq!(
            partition_of_tag("xblock.partition_service.partition_7"),
            Some(7)
        );
        assert_eq!(partition_of_tag("other"), None);
        assert!(HOLDOUT_TAG.starts_with(PARTITION_SERVICE_PREFIX));
        assert!(PARTITION_TAG_PREFIX.starts_with(PARTITION_SERVICE_PREFIX));
        assert_eq!(partition_of_tag(HOLDOUT_TAG), None);
    }
}

#[cfg(test)]
mod golden {
    use super::draw;

    /// Frozen draws. A change here moves every learner who has no stored group yet: never
    /// update these to make a change pass.
    #[test]
    fn draws_are_frozen() {
        let cases = [
            (
                ("course-v1:xbhost+demo+2026", 0, "alice"),
                0x022984a0f106893c_u64,
            ),
            (
                ("course-v1:xbhost+demo+2026", 1, "alice"),
                0x9cf66f99a98f7784,
            ),
            (("c", 0, ""), 0x849e1fbbfd766926),
            (
                ("course-v1:x+y+z", 1617092182, "\u{e9}l\u{e8}ve"),
                0x83686afd4c38819c,
            ),
        ];
        for ((course, partition, identifier), want) in cases {
            assert_eq!(
                draw(course, partition, identifier),
                want,
                "draw({course:?}, {partition}, {identifier:?})"
            );
        }
    }
}

#[cfg(test)]
mod golden_ranks {
    use super::rank;

    /// Frozen ranks. A change here moves every learner's randomized content that is not
    /// stored yet: never update these to make a change pass.
    #[test]
    fn ranks_are_frozen() {
        let cases = [
            (
                ("course-v1:TestX+Course+1", "lib", "alice", "p1"),
                0x6a44ef75cc493a52_u64,
            ),
            (
                ("course-v1:TestX+Course+1", "lib", "alice", "p2"),
                0xb663806f745b51f6,
            ),
            (("c", "", "", ""), 0xba01134fcca2e209),
        ];
        for ((course, block, identifier, child), want) in cases {
            assert_eq!(
                rank(course, block, identifier, child),
                want,
                "rank({course:?}, {block:?}, {identifier:?}, {child:?}) = {:#x}",
                rank(course, block, identifier, child)
            );
        }
    }

    #[test]
    fn fields_are_length_prefixed() {
        assert_ne!(rank("ab", "c", "u", "x"), rank("a", "bc", "u", "x"));
        assert_ne!(rank("a", "b", "uc", "x"), rank("a", "b", "u", "cx"));
    }
}

#[cfg(test)]
mod golden_traffic {
    use super::{holdout_draw, layer_draw};

    /// Frozen layer and holdout draws. A change here moves learners between the
    /// experiments of every layer and in or out of every holdout: never update these to
    /// make a change pass.
    #[test]
    fn layer_and_holdout_draws_are_frozen() {
        let layers = [
            (
                ("course-v1:xbhost+demo+2026", "pedagogy", "alice"),
                0xa4d52d920c226f05_u64,
            ),
            (
                ("course-v1:xbhost+demo+2026", "voice", "alice"),
                0x08c265be8e3683ed,
            ),
            (("c", "", ""), 0x901f400751c41404),
        ];
        for ((scope, layer, identifier), want) in layers {
            let got = layer_draw(scope, layer, identifier);
            assert_eq!(
                got, want,
                "layer_draw({scope:?}, {layer:?}, {identifier:?}) = {got:#x}"
            );
        }
        let holdouts = [
            (
                ("course-v1:xbhost+demo+2026", "alice"),
                0x05813a7897cd1ba9_u64,
            ),
            (("c", ""), 0xc5b2c2472a7ef823),
        ];
        for ((course, identifier), want) in holdouts {
            let got = holdout_draw(course, identifier);
            assert_eq!(
                got, want,
                "holdout_draw({course:?}, {identifier:?}) = {got:#x}"
            );
        }
        // Keyed apart: the same fields give a partition draw, a layer draw and a
        // holdout draw that are unrelated.
        assert_ne!(layer_draw("c", "", ""), holdout_draw("c", ""));
    }
}
