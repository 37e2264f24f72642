//! The report as plain text (what `xbhost report` prints), and the p-value formatting
//! the HTML page shares.

use super::types::ExperimentReport;

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
                if p.forced_excluded > 0 {
                    format!(", {} forced users left out", p.forced_excluded)
                } else {
                    String::new()
                }
            );
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
                if goal.test.is_none() && goal.comparisons.is_empty() {
                    let _ = writeln!(out, "    not enough data to test");
                }
            }
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
