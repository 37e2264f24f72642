//! Writer for the durability test: opens a data directory (installing plugins and courses
//! on the first run), then writes through the real host until it is killed, printing a line
//! for every write the host acknowledged:
//!
//! - `assign USER G0 G1`: a first visit stored the learner's groups in partitions 0 and 1;
//! - `probe N`: a tag_probe render stored course and global `visits` = N in one commit;
//! - `state USER N`: a problem submission stored state with N attempts.
//!
//! Usage: durability_writer DATA_DIR PLUGIN_DIR COURSE_JSON RUN_ID [--database URL]
//! (with `--database`, the host keeps its data and events in that PostgreSQL database).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;
use xbhost::model::CourseDoc;
use xbhost::{Host, HostConfig, RenderRequest, User, View};

const DEMO: &str = "course-v1:xbhost+demo+2026";
const PROBE: &str = "course-v1:xbhost+durable+1";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (data, plugins, course, run, database) = match args.as_slice() {
        [data, plugins, course, run] => (data, plugins, course, run, None),
        [data, plugins, course, run, flag, url] if flag == "--database" => {
            (data, plugins, course, run, Some(url.clone()))
        }
        _ => anyhow::bail!(
            "usage: durability_writer DATA_DIR PLUGIN_DIR COURSE_JSON RUN_ID [--database URL]"
        ),
    };
    let config = HostConfig {
        database,
        ..HostConfig::default()
    };
    let host = Host::open(Path::new(data), config)?;
    if host.course_keys()?.len() < 2 {
        for p in ["html", "vertical", "split_test", "tag_probe", "problem"] {
            host.add_plugin(
                &std::fs::read(xbhost_tests::plugin_in(Path::new(plugins), p))?,
                None,
            )?;
        }
        host.load_course(CourseDoc::from_json(&std::fs::read_to_string(course)?)?)?;
        host.load_course(serde_json::from_value(json!({
            "course_key": PROBE,
            "blocks": [
                {"usage_id": "t", "type": "tag_probe"},
                {"usage_id": "p", "type": "problem", "fields": {"question": "?", "choices": [{"text": "a", "correct": true}, {"text": "b"}]}}
            ]
        }))?)?;
    }
    // Ready means ready to write: the plugins are loaded (from the compiled cache), so the
    // kills after `ready` land among writes, not in the first render's plugin loading.
    for p in ["html", "vertical", "split_test", "tag_probe", "problem"] {
        host.load_plugin(p)?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for i in 0.. {
        let learner = format!("w{run}-{i}");
        let page = host.render(&RenderRequest {
            course_key: DEMO.into(),
            usage_id: "unit_1".into(),
            user: User::learner(&learner),
            view: View::Student,
            user_agent: None,
            masquerade: None,
        })?;
        writeln!(
            out,
            "assign {learner} {} {}",
            page.assignments[&0], page.assignments[&1]
        )?;
        out.flush()?;

        let probe = host.render(&RenderRequest {
            course_key: PROBE.into(),
            usage_id: "t".into(),
            user: User::learner("counter"),
            view: View::Student,
            user_agent: None,
            masquerade: None,
        })?;
        let html = probe.html;
        let start =
            html.find("class=\"probe\">").context("probe output")? + "class=\"probe\">".len();
        let report: serde_json::Value = serde_json::from_str(
            &html[start..start + html[start..].find("</script>").context("probe end")?],
        )?;
        let before: u64 = report["course_visits"]["before"]
            .as_str()
            .map_or(Ok(0), str::parse)?;
        writeln!(out, "probe {}", before + 1)?;
        out.flush()?;

        let answer = host.handle(
            PROBE,
            "p",
            &User::learner(&learner),
            "submit",
            &json!({"answer": 0}),
        )?;
        writeln!(out, "state {learner} {}", answer["attempts"])?;
        out.flush()?;
    }
    Ok(())
}
