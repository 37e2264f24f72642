//! Traffic above a single experiment, as the course document states it: layers (experiments
//! that share a layer take non-overlapping shares of its traffic, so a learner is in at
//! most one of them, as GrowthBook's namespaces do) and the course's holdout (learners who
//! see control everywhere and are reported as their own group). Plain data, the checks a
//! course load makes, and the mapping of a uniform 64-bit draw onto a share. Imports no
//! sibling: the course model and the decision rule both use it.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// A partition's share of a layer: `range` is `[start, end)` of the layer's traffic, as
/// fractions from 0 to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerShare {
    /// The layer's name: partitions that give the same name share its traffic.
    pub name: String,
    pub range: [f64; 2],
}

impl LayerShare {
    pub fn start(&self) -> f64 {
        self.range[0]
    }

    pub fn end(&self) -> f64 {
        self.range[1]
    }

    /// The share of the layer's traffic the range takes.
    pub fn width(&self) -> f64 {
        self.end() - self.start()
    }
}

/// The course's holdout: a share of learners kept out of every experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holdout {
    /// The fraction of learners held out, at least 0 and below 1.
    pub share: f64,
}

/// Whether a uniform 64-bit draw falls in `[start, end)` of the unit interval. The bounds
/// are scaled to 2^64 exactly as far as an `f64` holds them, so ranges that meet (one's end
/// is the next one's start) split the draws between them with no gap and no overlap.
pub fn share_contains(start: f64, end: f64, draw: u64) -> bool {
    let point = u128::from(draw);
    scaled(start) <= point && point < scaled(end)
}

/// `fraction * 2^64`, clamped to `[0, 2^64]`.
fn scaled(fraction: f64) -> u128 {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if fraction.is_nan() || fraction <= 0.0 {
        0
    } else if fraction >= 1.0 {
        1 << 64
    } else {
        (fraction * TWO_64) as u128
    }
}

/// One partition that takes part in a layer, as the checks need it.
pub struct Member<'a> {
    pub partition_id: u64,
    pub partition_name: &'a str,
    /// Only experiments (the `random` scheme) may take part in a layer.
    pub scheme: &'a str,
    /// The partition's bucketing scope, spelled as the document does.
    pub bucketing: &'a str,
    pub share: &'a LayerShare,
}

/// Checks a course's layers and holdout when it is loaded: each range lies within
/// `[0, 1]` and is not empty, only experiments take one, a layer's ranges do not overlap, and the partitions of a
/// layer share their bucketing (the layer is drawn once per learner, so its scope must be
/// one). The error names the partitions and the layer at fault.
pub fn check(holdout: Option<&Holdout>, members: &[Member<'_>]) -> Result<()> {
    if let Some(h) = holdout
        && !(h.share.is_finite() && (0.0..1.0).contains(&h.share))
    {
        bail!(
            "holdout: share {} is not a fraction of at least 0 and below 1",
            h.share
        );
    }
    let mut layers: BTreeMap<&str, Vec<&Member<'_>>> = BTreeMap::new();
    for m in members {
        let name = || format!("user partition {} ({:?})", m.partition_id, m.partition_name);
        let layer = m.share.name.as_str();
        if m.scheme != "random" {
            bail!(
                "{}: a {} partition cannot take a layer; only experiments (random) can",
                name(),
                m.scheme
            );
        }
        if layer.trim().is_empty() || layer.len() > 200 || layer.chars().any(char::is_control) {
            bail!(
                "{}: layer name {layer:?} is empty, over 200 bytes or holds a control character",
                name()
            );
        }
        let [start, end] = m.share.range;
        if !(start.is_finite() && end.is_finite() && 0.0 <= start && start < end && end <= 1.0) {
            bail!(
                "{}: layer {layer:?} range [{start}, {end}] is not a range within [0, 1] with its start below its end",
                name()
            );
        }
        layers.entry(layer).or_default().push(m);
    }
    for (layer, mut members) in layers {
        if let Some(other) = members.iter().find(|m| m.bucketing != members[0].bucketing) {
            bail!(
                "layer {layer:?}: user partition {} is {} but user partition {} is {}; the partitions of a layer must share their bucketing",
                members[0].partition_id,
                members[0].bucketing,
                other.partition_id,
                other.bucketing
            );
        }
        members.sort_by(|a, b| a.share.start().total_cmp(&b.share.start()));
        for pair in members.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.share.start() < a.share.end() {
                bail!(
                    "layer {layer:?}: the ranges of user partition {} ([{}, {}]) and user partition {} ([{}, {}]) overlap",
                    a.partition_id,
                    a.share.start(),
                    a.share.end(),
                    b.partition_id,
                    b.share.start(),
                    b.share.end()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(name: &str, start: f64, end: f64) -> LayerShare {
        LayerShare {
            name: name.into(),
            range: [start, end],
        }
    }

    fn member<'a>(id: u64, bucketing: &'a str, s: &'a LayerShare) -> Member<'a> {
        Member {
            partition_id: id,
            partition_name: "P",
            scheme: "random",
            bucketing,
            share: s,
        }
    }

    #[test]
    fn ranges_that_meet_split_every_draw_once() {
        let cuts = [0.0, 0.1, 0.3, 1.0 / 3.0, 0.7, 1.0];
        for draw in [
            0,
            1,
            u64::MAX / 10,
            u64::MAX / 3,
            u64::MAX / 3 + 1,
            u64::MAX,
        ] {
            let holders = cuts
                .windows(2)
                .filter(|w| share_contains(w[0], w[1], draw))
                .count();
            assert_eq!(holders, 1, "draw {draw:#x}");
        }
        // At every inner cut: the draw on it belongs to the range that starts there, the
        // draw just below to the range that ends there.
        for (i, &cut) in cuts.iter().enumerate().take(cuts.len() - 1).skip(1) {
            let on = u64::try_from(scaled(cut)).unwrap();
            assert!(share_contains(cut, cuts[i + 1], on), "cut {cut}");
            assert!(!share_contains(cuts[i - 1], cut, on), "cut {cut}");
            assert!(share_contains(cuts[i - 1], cut, on - 1), "below cut {cut}");
            assert!(!share_contains(cut, cuts[i + 1], on - 1), "below cut {cut}");
        }
        assert!(share_contains(0.0, 1.0, u64::MAX));
        assert!(!share_contains(0.5, 0.5, u64::MAX / 2));
        assert!(!share_contains(0.0, 0.0, 0), "an empty share holds nothing");
    }

    #[test]
    fn overlaps_bounds_and_mixed_bucketing_are_refused_by_name() {
        let (a, b) = (share("home", 0.0, 0.5), share("home", 0.4, 0.9));
        let err = check(
            None,
            &[member(1, "course-aware", &a), member(2, "course-aware", &b)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"home\"") && err.contains("partition 1") && err.contains("partition 2"),
            "{err}"
        );
        let c = share("home", 0.5, 1.0);
        assert!(
            check(
                None,
                &[member(1, "course-aware", &a), member(3, "course-aware", &c)]
            )
            .is_ok()
        );
        let err = check(
            None,
            &[
                member(1, "course-aware", &a),
                member(3, "course-unaware", &c),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bucketing"), "{err}");
        for bad in [
            share("home", 0.5, 0.5),
            share("home", -0.1, 0.5),
            share("home", 0.2, 1.5),
            share("", 0.0, 0.1),
            share("x", f64::NAN, 0.1),
        ] {
            assert!(
                check(None, &[member(4, "course-aware", &bad)]).is_err(),
                "{bad:?}"
            );
        }
        let cohort = Member {
            scheme: "cohort",
            ..member(6, "course-aware", &a)
        };
        let err = check(None, &[cohort]).unwrap_err().to_string();
        assert!(
            err.contains("partition 6") && err.contains("cohort"),
            "{err}"
        );
        // Different layers may overlap.
        let other = share("quiz", 0.0, 1.0);
        assert!(
            check(
                None,
                &[
                    member(1, "course-aware", &a),
                    member(5, "course-unaware", &other)
                ]
            )
            .is_ok()
        );
        for bad in [1.0, -0.01, f64::INFINITY] {
            assert!(check(Some(&Holdout { share: bad }), &[]).is_err(), "{bad}");
        }
        assert!(check(Some(&Holdout { share: 0.0 }), &[]).is_ok());
    }
}
