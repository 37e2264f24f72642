//! The experiment report: per partition, who is in which group against what the weights
//! promise (a sample-ratio-mismatch test), and each goal per group with its test.
//!
//! Members are the learners with a stored group (forced QA users left out). A goal event
//! counts for a member when the event itself says they were enrolled in the partition at
//! the time, and not forced: the membership every event carries is what makes the
//! analysis possible without joining anything else.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::assignment::partition_tag_key;
use crate::events::{Event, JsonlSink};
use crate::experiment::{ExperimentState, Goal};
use crate::markup::escape;
use crate::model::{Course, UserPartition};
use crate::stats::{self, ChiSquare, Interval};
use crate::storage::Storage;

/// Below this p-value the group sizes are flagged as a sample ratio mismatch.
pub const SRM_THRESHOLD: f64 = 0.001;

/// Confidence of the intervals the report shows.
pub const CONFIDENCE: f64 = 0.95;

#[derive(Debug, Clone, Serialize)]
pub struct ExperimentReport {
    pub course_key: String,
    pub generated_at: String,
    /// How many events were read, from where.
    pub events_read: usize,
    pub events_source: String,
    pub partitions: Vec<PartitionReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartitionReport {
    pub id: u64,
    pub name: String,
    pub state: ExperimentState,
    pub active: bool,
    pub groups: Vec<GroupRow>,
    pub learners: u64,
    /// Forced users with a stored group, left out of every figure.
    pub forced_excluded: usize,
    /// Goodness of fit of group sizes to the weights; `None` below two groups or learners.
    pub srm: Option<ChiSquare>,
    pub srm_flagged: bool,
    pub goals: Vec<GoalReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupRow {
    pub id: u64,
    pub name: String,
    pub weight: u32,
    pub learners: u64,
    pub expected_share: f64,
    pub observed_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct GoalReport {
    pub name: String,
    pub event: String,
    /// `conversion` or `numeric`.
    pub kind: &'static str,
    pub groups: Vec<GoalGroup>,
    /// Conversion goals: chi-square test of independence of conversion and group.
    pub test: Option<ChiSquare>,
    /// Numeric goals: each group against the control group (the first).
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GoalGroup {
    pub group_id: u64,
    pub group_name: String,
    pub learners: u64,
    /// Conversion goals: learners with at least one matching event.
    pub conversions: u64,
    pub rate: f64,
    /// Wilson score interval of the rate.
    pub interval: Option<Interval>,
    /// Numeric goals: the mean per-learner value (0 for learners without an event).
    pub mean: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub group_id: u64,
    pub control_id: u64,
    /// Mann-Whitney U of the group against control, two-sided.
    pub u: f64,
    pub p_value: f64,
}

/// Builds the report of a course from storage and the event log at `events`.
pub fn build(storage: &dyn Storage, course: &Course, events: &Path) -> Result<ExperimentReport> {
    let all = JsonlSink::read_all(events)?;
    let course_events: Vec<&Event> = all
        .iter()
        .filter(|e| e.course_key == course.key())
        .collect();
    let partitions = course
        .partitions()
        .iter()
        .filter(|p| p.is_random())
        .map(|p| partition_report(storage, course.key(), p, &course_events))
        .collect::<Result<Vec<_>>>()?;
    Ok(ExperimentReport {
        course_key: course.key().to_string(),
        generated_at: crate::events::now(),
        events_read: course_events.len(),
        events_source: events.display().to_string(),
        partitions,
    })
}

fn partition_report(
    storage: &dyn Storage,
    course_key: &str,
    p: &UserPartition,
    events: &[&Event],
) -> Result<PartitionReport> {
    let mut members: HashMap<String, u64> = HashMap::new();
    let mut forced_excluded = 0;
    for (user, value) in storage.users_with_course_tag(course_key, &partition_tag_key(p.id))? {
        let Some(group) = value.parse::<u64>().ok().filter(|g| p.group(*g).is_some()) else {
            continue;
        };
        if p.forced.contains_key(&user) {
            forced_excluded += 1;
            continue;
        }
        members.insert(user, group);
    }
    let count = |g: u64| members.values().filter(|&&m| m == g).count() as u64;
    let total_weight: f64 = p.groups.iter().map(|g| f64::from(g.weight)).sum();
    let learners = members.len() as u64;
    let groups: Vec<GroupRow> = p
        .groups
        .iter()
        .map(|g| {
            let n = count(g.id);
            GroupRow {
                id: g.id,
                name: g.name.clone(),
                weight: g.weight,
                learners: n,
                expected_share: if total_weight > 0.0 {
                    f64::from(g.weight) / total_weight
                } else {
                    0.0
                },
                observed_share: if learners > 0 {
                    n as f64 / learners as f64
                } else {
                    0.0
                },
            }
        })
        .collect();
    let observed: Vec<u64> = groups.iter().map(|g| g.learners).collect();
    let shares: Vec<f64> = groups.iter().map(|g| g.expected_share).collect();
    let srm = stats::goodness_of_fit(&observed, &shares);
    let srm_flagged = srm.as_ref().is_some_and(|s| s.p_value < SRM_THRESHOLD);
    let goals = p
        .goals
        .iter()
        .map(|goal| goal_report(p, goal, &members, events))
        .collect();
    Ok(PartitionReport {
        id: p.id,
        name: p.name.clone(),
        state: p.state,
        active: p.active,
        groups,
        learners,
        forced_excluded,
        srm,
        srm_flagged,
        goals,
    })
}

fn goal_report(
    p: &UserPartition,
    goal: &Goal,
    members: &HashMap<String, u64>,
    events: &[&Event],
) -> GoalReport {
    // Per member: the largest value of the goal's field (1 for a conversion).
    let mut best: HashMap<&str, f64> = HashMap::new();
    for e in events {
        let counts = members.contains_key(&e.user_id)
            && e.experiments.enrolled.iter().any(|n| n == &p.name)
            && !e.experiments.forced.contains_key(&p.name)
            && goal.matches(&e.name, &e.data);
        if !counts {
            continue;
        }
        let value = match &goal.value {
            None => 1.0,
            Some(field) => match e.data.get(field).and_then(serde_json::Value::as_f64) {
                Some(v) if v.is_finite() => v,
                _ => continue,
            },
        };
        let slot = best.entry(e.user_id.as_str()).or_insert(f64::NEG_INFINITY);
        *slot = slot.max(value);
    }
    let values_of = |group: u64| -> Vec<f64> {
        let mut v: Vec<f64> = members
            .iter()
            .filter(|(_, g)| **g == group)
            .map(|(u, _)| best.get(u.as_str()).copied().unwrap_or(0.0))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let groups: Vec<GoalGroup> = p
        .groups
        .iter()
        .map(|g| {
            let values = values_of(g.id);
            let learners = values.len() as u64;
            let conversions = members
                .iter()
                .filter(|(u, m)| **m == g.id && best.contains_key(u.as_str()))
                .count() as u64;
            GoalGroup {
                group_id: g.id,
                group_name: g.name.clone(),
                learners,
                conversions,
                rate: if learners > 0 {
                    conversions as f64 / learners as f64
                } else {
                    0.0
                },
                interval: stats::wilson_interval(conversions, learners, CONFIDENCE),
                mean: if learners > 0 {
                    values.iter().sum::<f64>() / learners as f64
                } else {
                    0.0
                },
            }
        })
        .collect();
    match &goal.value {
        None => {
            let table: Vec<Vec<u64>> = groups
                .iter()
                .map(|g| vec![g.conversions, g.learners - g.conversions])
                .collect();
            GoalReport {
                name: goal.name.clone(),
                event: goal.event.clone(),
                kind: "conversion",
                test: stats::independence(&table),
                groups,
                comparisons: Vec::new(),
            }
        }
        Some(_) => {
            let control = p.groups[0].id;
            let control_values = values_of(control);
            let comparisons = p.groups[1..]
                .iter()
                .filter_map(|g| {
                    let r = stats::mann_whitney_u(&values_of(g.id), &control_values)?;
                    Some(Comparison {
                        group_id: g.id,
                        control_id: control,
                        u: r.u,
                        p_value: r.p_value,
                    })
                })
                .collect();
            GoalReport {
                name: goal.name.clone(),
                event: goal.event.clone(),
                kind: "numeric",
                test: None,
                groups,
                comparisons,
            }
        }
    }
}

/// A p-value as people read it.
fn p_text(p: f64) -> String {
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
        out
    }

    /// A self-contained HTML page: inline CSS and SVG bar charts, no script and nothing
    /// fetched, so it opens from a file without a network. Every name is escaped.
    pub fn to_html(&self) -> String {
        use std::fmt::Write as _;
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Experiment report: {key}</title><style>{STYLE}</style></head><body>\
             <h1>Experiment report</h1><p class=\"meta\">{key} &middot; generated {at} \
             &middot; {n} events from {src}</p>",
            key = escape(&self.course_key),
            at = escape(&self.generated_at),
            n = self.events_read,
            src = escape(&self.events_source),
        );
        for p in &self.partitions {
            let _ = write!(
                h,
                "<section class=\"partition\" data-partition-id=\"{}\"><h2>{} \
                 <span class=\"state state-{state}\">{state}</span></h2><p>{} learners{}</p>",
                p.id,
                escape(&p.name),
                p.learners,
                if p.forced_excluded > 0 {
                    format!(" ({} forced users left out)", p.forced_excluded)
                } else {
                    String::new()
                },
                state = format!("{:?}", p.state).to_lowercase(),
            );
            let bars: Vec<Bar> = p
                .groups
                .iter()
                .map(|g| Bar {
                    label: format!("{} ({})", g.name, g.learners),
                    value: g.observed_share,
                    marker: Some(g.expected_share),
                    range: None,
                })
                .collect();
            h.push_str("<h3>Learners per group (bar: observed share, line: expected)</h3>");
            h.push_str(&bar_chart(&bars, 1.0, "share"));
            match &p.srm {
                Some(srm) if p.srm_flagged => {
                    let _ = write!(
                        h,
                        "<p class=\"srm flagged\">Sample ratio mismatch: chi-square {:.3}, \
                         p = {}. Check assignment before reading any result.</p>",
                        srm.statistic,
                        p_text(srm.p_value)
                    );
                }
                Some(srm) => {
                    let _ = write!(
                        h,
                        "<p class=\"srm\">Sample ratio as expected: chi-square {:.3}, p = {}.</p>",
                        srm.statistic,
                        p_text(srm.p_value)
                    );
                }
                None => {
                    h.push_str("<p class=\"srm\">Not enough learners to test the sample ratio.</p>")
                }
            }
            for goal in &p.goals {
                let _ = write!(
                    h,
                    "<div class=\"goal\"><h3>Goal: {} <small>({} of <code>{}</code>)</small></h3>",
                    escape(&goal.name),
                    goal.kind,
                    escape(&goal.event)
                );
                if goal.kind == "conversion" {
                    let bars: Vec<Bar> = goal
                        .groups
                        .iter()
                        .map(|g| Bar {
                            label: format!("{} ({}/{})", g.group_name, g.conversions, g.learners),
                            value: g.rate,
                            marker: None,
                            range: g.interval.as_ref().map(|i| (i.low, i.high)),
                        })
                        .collect();
                    h.push_str(&bar_chart(&bars, 1.0, "rate"));
                } else {
                    let max = goal
                        .groups
                        .iter()
                        .map(|g| g.mean)
                        .fold(0.0_f64, f64::max)
                        .max(f64::MIN_POSITIVE);
                    let bars: Vec<Bar> = goal
                        .groups
                        .iter()
                        .map(|g| Bar {
                            label: format!("{} (mean {:.3})", g.group_name, g.mean),
                            value: g.mean,
                            marker: None,
                            range: None,
                        })
                        .collect();
                    h.push_str(&bar_chart(&bars, max, "mean"));
                }
                if let Some(t) = &goal.test {
                    let _ = write!(
                        h,
                        "<p>Chi-square {:.3}, df {}, p = {} (95% Wilson intervals shown).</p>",
                        t.statistic,
                        t.df,
                        p_text(t.p_value)
                    );
                }
                for c in &goal.comparisons {
                    let _ = write!(
                        h,
                        "<p>Group {} against control {}: Mann-Whitney U {:.1}, p = {}.</p>",
                        c.group_id,
                        c.control_id,
                        c.u,
                        p_text(c.p_value)
                    );
                }
                h.push_str("</div>");
            }
            h.push_str("</section>");
        }
        h.push_str("</body></html>\n");
        h
    }
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:60em}\
h1{margin-bottom:0}.meta{color:#666}section{border-top:1px solid #ccc;margin-top:2em}\
.state{font-size:.6em;padding:.1em .5em;border-radius:.3em;background:#e0e8f0}\
.state-off{background:#f5d0d0}.state-paused{background:#f5ecc0}\
.srm.flagged{background:#fbe3e3;border-left:4px solid #c00;padding:.5em;font-weight:bold}\
svg text{font:12px system-ui,sans-serif}";

struct Bar {
    label: String,
    value: f64,
    /// A vertical line, for example the expected share.
    marker: Option<f64>,
    /// A whisker, for example a confidence interval.
    range: Option<(f64, f64)>,
}

/// A horizontal bar chart as inline SVG: one row per bar, scaled to `max`.
fn bar_chart(bars: &[Bar], max: f64, what: &str) -> String {
    use std::fmt::Write as _;
    const LABEL: f64 = 220.0;
    const WIDTH: f64 = 360.0;
    const ROW: f64 = 28.0;
    let height = ROW * bars.len() as f64 + 8.0;
    let x = |v: f64| LABEL + (v / max).clamp(0.0, 1.0) * WIDTH;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" role=\"img\" aria-label=\"{what} per group\" width=\"{w}\" \
         height=\"{height}\" viewBox=\"0 0 {w} {height}\" xmlns=\"http://www.w3.org/2000/svg\">",
        w = LABEL + WIDTH + 70.0
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let _ = write!(
            s,
            "<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"bar\" x=\"{LABEL}\" y=\"{y}\" width=\"{bw:.1}\" height=\"18\" fill=\"#4a7ab5\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{value}</text>",
            tx = LABEL - 8.0,
            ty = y + 14.0,
            label = escape(&bar.label),
            bw = x(bar.value) - LABEL,
            vx = x(bar.value) + 6.0,
            value = if max == 1.0 {
                format!("{:.1}%", bar.value * 100.0)
            } else {
                format!("{:.3}", bar.value)
            },
        );
        if let Some(m) = bar.marker {
            let _ = write!(
                s,
                "<line class=\"expected\" x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{y1}\" y2=\"{y2}\" \
                 stroke=\"#c00\" stroke-width=\"2\"/>",
                mx = x(m),
                y1 = y - 2.0,
                y2 = y + 20.0
            );
        }
        if let Some((lo, hi)) = bar.range {
            let _ = write!(
                s,
                "<line class=\"interval\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{my}\" y2=\"{my}\" \
                 stroke=\"#222\" stroke-width=\"2\"/>",
                x(lo),
                x(hi),
                my = y + 9.0
            );
        }
    }
    s.push_str("</svg>");
    s
}
