//! Writer for the concurrent first-visits crash test (`tests/concurrent_first_visits.rs`):
//! opens a data directory (installing the plugins and the demo course on the first run),
//! then renders first visits of new learners on THREADS threads at once through the real
//! host until it is killed, printing `assign USER G0 G1` for every page the host returned
//! (its groups in partitions 0 and 1 acknowledged). Concurrent first visits share their
//! store syncs (`storage::group_commit`), so this is what a shared sync must keep durable.
//!
//! Usage: concurrent_first_visits_writer DATA_DIR PLUGIN_DIR COURSE_JSON RUN_ID THREADS

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Result, bail};
use xbhost::model::CourseDoc;
use xbhost::{Host, RenderRequest, User, View};
use xbhost_tests::{DEMO_COURSE, patient_config};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, plugins, course, run, threads] = args.as_slice() else {
        bail!(
            "usage: concurrent_first_visits_writer DATA_DIR PLUGIN_DIR COURSE_JSON RUN_ID THREADS"
        );
    };
    let threads: usize = threads.parse()?;
    let host = Host::open(Path::new(data), patient_config())?;
    if host.course_keys()?.is_empty() {
        for p in ["html", "vertical", "split_test", "problem"] {
            host.add_plugin(
                &std::fs::read(xbhost_tests::plugin_in(Path::new(plugins), p))?,
                None,
            )?;
        }
        host.load_course(CourseDoc::from_json(&std::fs::read_to_string(course)?)?)?;
    }
    let out = Mutex::new(std::io::stdout());
    {
        let mut out = out.lock().unwrap();
        writeln!(out, "ready")?;
        out.flush()?;
    }
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (host, out) = (host.clone(), &out);
            scope.spawn(move || {
                if let Err(e) = visit_forever(&host, out, run, t) {
                    // Not a silent shrink of the test: the test sees the exit.
                    eprintln!("writer thread {t}: {e:#}");
                    std::process::exit(1);
                }
            });
        }
    });
    Ok(())
}

/// First visits of new learners until the process is killed, each printed once acknowledged.
fn visit_forever(host: &Host, out: &Mutex<std::io::Stdout>, run: &str, t: usize) -> Result<()> {
    for i in 0.. {
        let learner = format!("c{run}-{t}-{i}");
        let page = host.render(&RenderRequest::new(
            DEMO_COURSE,
            "unit_1",
            User::learner(&learner),
            View::Student,
        ))?;
        let mut out = out.lock().unwrap();
        writeln!(
            out,
            "assign {learner} {} {}",
            page.assignments[&0], page.assignments[&1]
        )?;
        out.flush()?;
    }
    Ok(())
}
