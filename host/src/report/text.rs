//! The report as plain text (what `xbhost report` prints), and the p-value formatting
//! the HTML page shares.

use super::types::{ExperimentReport, HoldoutReport, PartitionReport};

/// A p-value as people read it.
pub(super) fn p_text(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}

impl ExperimentReport {
    /// The report as plain text, one block per partition.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "experiment report for {}", self.course_key);
        let _ = writeln!(
            out,
            "{} events of this course read from {}",
            self.events_read, self.events_source
        );
        if let Some(summary) = self.damaged_lines.summary() {
            let _ = writeln!(out, "WARNING: {summary}");
        }
        for p in &self.partitions {
            let _ = writeln!(
                out,
                "\npartition {} {:?} ({}{}): {} learners{}",
                p.id,
                p.name,
                format!("{:?}", p.state).to_lowercase(),
                if p.active { "" } else { ", inactive" },
                p.learners,
                exclusions_text(p)
            );
            if let Some(layer) = &p.layer {
                let _ = writeln!(
                    out,
                    "  layer {:?}: range {}..{} ({:.1}% of the layer)",
                    layer.name,
                    layer.start(),
                    layer.end(),
                    layer.width() * 100.0
                );
            }
            for g in &p.groups {
                let _ = writeln!(
                    out,
                    "  group {} {:?}: {} learners, expected {:.1}%, observed {:.1}%",
                    g.id,
                    g.name,
                    g.learners,
                    g.expected_share * 100.0,
                    g.observed_share * 100.0
                );
            }
            match &p.srm {
                Some(srm) => {
                    let _ = writeln!(
                        out,
                        "  sample ratio: chi-square {:.3}, df {}, p = {}{}",
                        srm.statistic,
                        srm.df,
                        p_text(srm.p_value),
                        if p.srm_flagged {
                            "  SAMPLE RATIO MISMATCH (p < 0.001): check assignment before reading results"
                        } else {
                            ""
                        }
                    );
                }
                None => {
                    let _ = writeln!(out, "  sample ratio: not enough learners to test");
                }
            }
            for goal in &p.goals {
                let _ = writeln!(
                    out,
                    "  goal {:?} ({} of {}):",
                    goal.name, goal.kind, goal.event
                );
                for g in &goal.groups {
                    match goal.kind {
                        "conversion" => {
                            let ci = g.interval.as_ref().map_or("n/a".to_string(), |i| {
                                format!("{:.1}%..{:.1}%", i.low * 100.0, i.high * 100.0)
                            });
                            let _ = writeln!(
                                out,
                                "    {} {:?}: {} / {} = {:.1}% (95% CI {ci})",
                                g.group_id,
                                g.group_name,
                                g.conversions,
                                g.learners,
                                g.rate * 100.0
                            );
                        }
                        _ => {
                            let _ = writeln!(
                                out,
                                "    {} {:?}: mean {:.3} over {} learners",
                                g.group_id, g.group_name, g.mean, g.learners
                            );
                        }
                    }
                }
                if let Some(t) = &goal.test {
                    let _ = writeln!(
                        out,
                        "    chi-square {:.3}, df {}, p = {}",
                        t.statistic,
                        t.df,
                        p_text(t.p_value)
                    );
                }
                for c in &goal.comparisons {
                    let _ = writeln!(
                        out,
                        "    group {} vs control {}: Mann-Whitney U {:.1}, p = {}",
                        c.group_id,
                        c.control_id,
                        c.u,
                        p_text(c.p_value)
                    );
                }
                for c in &goal.sequential {
                    let r = &c.result;
                    let _ = writeln!(
                        out,
                        "    group {} vs control {} (always valid, mSPRT: safe to look at any time): difference {:+.1} points, 95% confidence sequence {:+.1}..{:+.1}, p = {}",
                        c.group_id,
                        c.control_id,
                        r.difference * 100.0,
                        r.low * 100.0,
                        r.high * 100.0,
                        p_text(r.p_value)
                    );
                }
                if goal.test.is_none() && goal.comparisons.is_empty() {
                    let _ = writeln!(out, "    not enough data to test");
                }
            }
        }
        for layer in &self.layers {
            let _ = writeln!(out, "\nlayer {:?}:", layer.name);
            for r in &layer.ranges {
                let _ = writeln!(
                    out,
                    "  {}..{} partition {} {:?} ({:.1}%)",
                    r.start,
                    r.end,
                    r.partition_id,
                    r.partition_name,
                    (r.end - r.start) * 100.0
                );
            }
            let _ = writeln!(
                out,
                "  free: {:.1}% (learners there are in none of its experiments)",
                layer.free_share * 100.0
            );
        }
        if let Some(h) = &self.holdout {
            holdout_text(&mut out, h);
        }
        for s in &self.randomized_content {
            let _ = writeln!(
                out,
                "\nrandomized content {}{}: {} learners, {} of {} each",
                s.usage_id,
                s.display_name
                    .as_deref()
                    .map(|n| format!(" {n:?}"))
                    .unwrap_or_default(),
                s.learners,
                s.max_count,
                s.children.len()
            );
            for c in &s.children {
                let _ = writeln!(
                    out,
                    "  child {}: {} learners, expected {:.1}%, observed {:.1}%",
                    c.usage_id,
                    c.learners,
                    c.expected_share * 100.0,
                    c.observed_share * 100.0
                );
            }
            match &s.uniformity {
                Some(u) => {
                    let _ = writeln!(
                        out,
                        "  uniformity: chi-square {:.3}, df {}, p = {}{}",
                        u.statistic,
                        u.df,
                        p_text(u.p_value),
                        if s.flagged {
                            "  UNEVEN SELECTION (p < 0.001): check the pool and its picks"
                        } else {
                            ""
                        }
                    );
                }
                None => {
                    let _ = writeln!(out, "  uniformity: not enough learners to test");
                }
            }
        }
        out
    }
}

/// ", 2 forced users left out, 3 held out, ..." for the learners with a stored group who
/// are not counted.
pub(super) fn exclusions_text(p: &PartitionReport) -> String {
    let parts: Vec<String> = [
        (p.forced_excluded, "forced users"),
        (p.held_out_excluded, "in the holdout"),
        (p.outside_range_excluded, "outside the layer range"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" (left out: {})", parts.join(", "))
    }
}

fn holdout_text(out: &mut String, h: &HoldoutReport) {
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "\nholdout ({:.1}% of learners, control in every experiment): {} learners, against {} learners in experiments",
        h.share * 100.0,
        h.learners,
        h.in_experiments
    );
    for goal in &h.goals {
        let _ = writeln!(
            out,
            "  goal {:?} ({} of {}):",
            goal.name, goal.kind, goal.event
        );
        for (name, arm) in [
            ("holdout", &goal.holdout),
            ("in experiments", &goal.in_experiments),
        ] {
            let ci = arm.interval.as_ref().map_or("n/a".to_string(), |i| {
                format!("{:.1}%..{:.1}%", i.low * 100.0, i.high * 100.0)
            });
            let _ = match goal.kind {
                "conversion" => writeln!(
                    out,
                    "    {name}: {} / {} = {:.1}% (95% CI {ci})",
                    arm.conversions,
                    arm.learners,
                    arm.rate * 100.0
                ),
                _ => writeln!(
                    out,
                    "    {name}: mean {:.3} over {} learners",
                    arm.mean, arm.learners
                ),
            };
        }
        match (&goal.test, goal.mann_whitney_p) {
            (Some(t), _) => {
                let _ = writeln!(
                    out,
                    "    chi-square {:.3}, df {}, p = {}",
                    t.statistic,
                    t.df,
                    p_text(t.p_value)
                );
            }
            (None, Some(p)) => {
                let _ = writeln!(out, "    Mann-Whitney U, p = {}", p_text(p));
            }
            (None, None) => {
                let _ = writeln!(out, "    not enough data to test");
            }
        }
    }
}
