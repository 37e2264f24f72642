//! The report as a self-contained HTML page: inline CSS and SVG bar charts.

use super::text::{exclusions_text, p_text};
use super::types::ExperimentReport;
use crate::markup::escape;

impl ExperimentReport {
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
        if let Some(summary) = self.damaged_lines.summary() {
            let _ = write!(h, "<p class=\"damaged\">{}</p>", escape(&summary));
        }
        for p in &self.partitions {
            let _ = write!(
                h,
                "<section class=\"partition\" data-partition-id=\"{}\"><h2>{} \
                 <span class=\"state state-{state}\">{state}</span></h2><p>{} learners{}</p>",
                p.id,
                escape(&p.name),
                p.learners,
                exclusions_text(p),
                state = format!("{:?}", p.state).to_lowercase(),
            );
            if let Some(layer) = &p.layer {
                let _ = write!(
                    h,
                    "<p class=\"layer\">Layer <b>{}</b>: range {}&ndash;{} ({:.1}% of its traffic).</p>",
                    escape(&layer.name),
                    layer.start(),
                    layer.end(),
                    layer.width() * 100.0
                );
            }
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
                for c in &goal.sequential {
                    let r = &c.result;
                    let _ = write!(
                        h,
                        "<p class=\"sequential\">Group {} against control {}, <b>always valid \
                         (mSPRT)</b>, safe to read at any time: difference {:+.1} points, 95% \
                         confidence sequence {:+.1} to {:+.1}, p = {}.</p>",
                        c.group_id,
                        c.control_id,
                        r.difference * 100.0,
                        r.low * 100.0,
                        r.high * 100.0,
                        p_text(r.p_value)
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
        for layer in &self.layers {
            let _ = write!(
                h,
                "<section class=\"layer\" data-layer=\"{}\"><h2>Layer {}</h2><table>\
                 <tr><th>range</th><th>experiment</th><th>share</th></tr>",
                escape(&layer.name),
                escape(&layer.name)
            );
            for r in &layer.ranges {
                let _ = write!(
                    h,
                    "<tr><td>{}&ndash;{}</td><td>{} {}</td><td>{:.1}%</td></tr>",
                    r.start,
                    r.end,
                    r.partition_id,
                    escape(&r.partition_name),
                    (r.end - r.start) * 100.0
                );
            }
            let _ = write!(
                h,
                "<tr><td>free</td><td>in none of its experiments</td><td>{:.1}%</td></tr></table></section>",
                layer.free_share * 100.0
            );
        }
        if let Some(ho) = &self.holdout {
            let _ = write!(
                h,
                "<section class=\"holdout\"><h2>Holdout</h2><p>{:.1}% of learners see control \
                 in every experiment: {} held out, against {} learners in experiments.</p>",
                ho.share * 100.0,
                ho.learners,
                ho.in_experiments
            );
            for goal in &ho.goals {
                let _ = write!(
                    h,
                    "<div class=\"goal\"><h3>Goal: {} <small>({} of <code>{}</code>)</small></h3>",
                    escape(&goal.name),
                    goal.kind,
                    escape(&goal.event)
                );
                let arms = [
                    ("holdout", &goal.holdout),
                    ("in experiments", &goal.in_experiments),
                ];
                let bars: Vec<Bar> = arms
                    .iter()
                    .map(|(name, a)| Bar {
                        label: if goal.kind == "conversion" {
                            format!("{name} ({}/{})", a.conversions, a.learners)
                        } else {
                            format!("{name} (mean {:.3})", a.mean)
                        },
                        value: if goal.kind == "conversion" {
                            a.rate
                        } else {
                            a.mean
                        },
                        marker: None,
                        range: (goal.kind == "conversion")
                            .then(|| a.interval.as_ref().map(|i| (i.low, i.high)))
                            .flatten(),
                    })
                    .collect();
                let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
                let max = if goal.kind == "conversion" {
                    1.0
                } else {
                    max.max(f64::MIN_POSITIVE)
                };
                h.push_str(&bar_chart(&bars, max, "value"));
                match (&goal.test, goal.mann_whitney_p) {
                    (Some(t), _) => {
                        let _ = write!(
                            h,
                            "<p>Chi-square {:.3}, p = {}.</p>",
                            t.statistic,
                            p_text(t.p_value)
                        );
                    }
                    (None, Some(p)) => {
                        let _ = write!(h, "<p>Mann-Whitney U, p = {}.</p>", p_text(p));
                    }
                    (None, None) => h.push_str("<p>Not enough data to test.</p>"),
                }
                h.push_str("</div>");
            }
            h.push_str("</section>");
        }
        for s in &self.randomized_content {
            let _ = write!(
                h,
                "<section class=\"randomized-content\" data-usage-id=\"{}\"><h2>Randomized content: {}</h2>\
                 <p>{} learners, {} of {} blocks each</p>",
                escape(&s.usage_id),
                escape(s.display_name.as_deref().unwrap_or(&s.usage_id)),
                s.learners,
                s.max_count,
                s.children.len()
            );
            let bars: Vec<Bar> = s
                .children
                .iter()
                .map(|c| Bar {
                    label: format!("{} ({})", c.usage_id, c.learners),
                    value: c.observed_share,
                    marker: Some(c.expected_share),
                    range: None,
                })
                .collect();
            h.push_str(
                "<h3>Learners per block of the pool (bar: observed share, line: expected)</h3>",
            );
            h.push_str(&bar_chart(&bars, 1.0, "share"));
            match &s.uniformity {
                Some(u) => {
                    let _ = write!(
                        h,
                        "<p class=\"srm{}\">{}: chi-square {:.3}, p = {}.</p>",
                        if s.flagged { " flagged" } else { "" },
                        if s.flagged {
                            "Uneven selection: check the pool and its picks"
                        } else {
                            "Selection as even as expected"
                        },
                        u.statistic,
                        p_text(u.p_value)
                    );
                }
                None => {
                    h.push_str("<p class=\"srm\">Not enough learners to test the selection.</p>")
                }
            }
            h.push_str("</section>");
        }
        h.push_str("</body></html>\n");
        h
    }
}

const STYLE: &str = "body{font:15px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:60em}\
h1{margin-bottom:0}.meta{color:#666}.damaged{background:#fff3cd;border:1px solid #e0b000;padding:.5em}section{border-top:1px solid #ccc;margin-top:2em}\
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
