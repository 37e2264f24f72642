//! Grade export (`xbhost grades export`: `Host::grades` over every learner of the course,
//! then the CSV written to a file) at 1k and 10k learners, on sled. Each learner is stored
//! as one who visited the demo unit and answered its problem: their two groups as the
//! sampling authority draws them and the problem's state exactly as the problem plugin
//! stored it for a real submission. Grading walks the course per learner in the sandbox
//! (each split test's visible children, the problem's `grade` handler), so the time per
//! learner should stay flat.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use xbhost::model::CourseDoc;
use xbhost::{RenderRequest, User, View};

use super::linear::{TIME_BOUND, demo_course_as, median_time, ratio_row, short, thousands};
use super::{Table, open_host};

const COURSE: &str = "course-v1:bench+grades+1";

pub fn figures(table: &mut Table, quick: bool) -> Result<()> {
    let _ = quick; // 10k learners grade in seconds: the same sizes in both runs.
    let sizes = [1_000, 10_000];
    let dir = tempfile::tempdir()?;
    let host = open_host(dir.path(), false)?;
    host.load_course(CourseDoc::from_json(&demo_course_as(COURSE)?.to_string())?)?;
    let course = host.course(COURSE)?;
    let learner = |i: usize| format!("grades-{i:06}");

    // One real visit and submission, whose stored problem state every learner gets.
    let first = learner(0);
    host.render(&RenderRequest {
        course_key: COURSE.into(),
        usage_id: "unit_1".into(),
        user: User::learner(&first),
        view: View::Student,
        user_agent: None,
        masquerade: None,
    })?;
    host.handle(
        COURSE,
        "check_sum",
        &User::learner(&first),
        "submit",
        &json!({"answer": 1}),
    )?;
    let storage = host.storage();
    let state = storage
        .user_state(COURSE, &first, "check_sum")?
        .context("the problem stored no state for its submission")?;

    let csv = dir.path().join("grades.csv");
    let mut stored = 1;
    let mut per_learner = Vec::new();
    for n in sizes {
        for i in stored..n {
            let id = learner(i);
            for partition in course.partitions() {
                let group =
                    xbhost::assignment::assign(COURSE, partition, &id).context("a group")?;
                storage.set_course_tag(
                    COURSE,
                    &id,
                    &xbhost::assignment::partition_tag_key(partition.id),
                    &group.id.to_string(),
                )?;
            }
            storage.set_user_state(COURSE, &id, "check_sum", &state)?;
        }
        storage.flush()?;
        stored = n;
        // Learners with a block that could not be graded (a call out of its time on a
        // loaded machine): counted in the row, as the CSV marks them, not fatal.
        let mut ungradable = 0;
        let mut first_error = None;
        let time: Duration = median_time(if n <= 1_000 { 3 } else { 1 }, || {
            let report = host.grades(COURSE, None)?;
            if report.learners.len() != n {
                bail!("graded {} learners, expected {n}", report.learners.len());
            }
            let failed = report
                .learners
                .iter()
                .filter(|l| !l.ungradable.is_empty() || l.possible == 0.0)
                .count();
            ungradable = ungradable.max(failed);
            if let Some(u) = report.learners.iter().find_map(|l| l.ungradable.first()) {
                first_error.get_or_insert_with(|| format!("{}: {}", u.usage_id, u.error));
            }
            std::fs::write(&csv, report.to_csv())?;
            Ok(())
        })?;
        per_learner.push(time.as_secs_f64() / n as f64);
        table.add(
            &format!("grade export, {} learners", short(n)),
            format!(
                "{:.0} ms, {:.0} µs/learner ({} CSV rows{})",
                time.as_secs_f64() * 1e3,
                time.as_secs_f64() * 1e6 / n as f64,
                thousands(n),
                if ungradable == 0 {
                    String::new()
                } else {
                    format!(
                        "; {ungradable} with a block not graded, the first: {}",
                        first_error.as_deref().unwrap_or("no problem visible")
                    )
                }
            ),
        );
    }
    ratio_row(
        table,
        &format!(
            "grade export: time per learner {} / {}",
            short(sizes[1]),
            short(sizes[0])
        ),
        per_learner[1],
        per_learner[0],
        TIME_BOUND,
    );
    Ok(())
}
