//! The host's structure: no import cycle among the modules of `host/src`, and no source
//! file much above 600 lines. Run with `--nocapture` to print the graph (ARCHITECTURE.md
//! shows it).

use std::path::PathBuf;

use xbhost_tests::modules::ModuleGraph;

/// Largest source file of `host/src`, in lines ("about 600").
const MAX_LINES: usize = 650;

fn host_src() -> PathBuf {
    xbhost_tests::workspace_root().join("host/src")
}

#[test]
fn host_modules_import_no_cycle() {
    let graph = ModuleGraph::read(&host_src());
    println!("{}", graph.render());
    assert!(graph.edges.len() > 40, "read {} modules", graph.edges.len());
    // The graph is read, not assumed: the session depends on storage, the runtime not on
    // the session.
    assert!(graph.edges["session::render"].contains("session::tags"));
    assert!(
        !graph.edges["runtime::state"]
            .iter()
            .any(|m| m.starts_with("session"))
    );
    if let Some(cycle) = graph.find_cycle() {
        panic!("import cycle among host modules: {}", cycle.join(" -> "));
    }
}

#[test]
fn no_host_source_file_is_far_above_600_lines() {
    let graph = ModuleGraph::read(&host_src());
    let long: Vec<String> = graph
        .lines
        .iter()
        .filter(|&(_, &n)| n > MAX_LINES)
        .map(|(m, n)| format!("{} ({n} lines)", graph.files[m]))
        .collect();
    assert!(long.is_empty(), "split these files: {}", long.join(", "));
}
