//! Real courses render (#14's first "done when"): in both Open edX exports, imported with
//! every shipped plugin into a real host on sled, at least 95% of the leaf blocks (content,
//! not structure) render through a real plugin for a viewer allowed to see them, counted
//! here by rendering each one, not by trusting the import report (which must agree).

use xbhost::model::CourseDoc;
use xbhost::olx::{ImportOptions, UNSUPPORTED_TYPE};
use xbhost::{User, View};
use xbhost_tests::authoring::fixture;
use xbhost_tests::olx::olx;

/// Types that structure a course: never leaves.
const STRUCTURE: &[&str] = &["course", "chapter", "sequential", "vertical", "split_test"];

/// Renders every leaf of the export as staff (who may see every block, every condition
/// and every content group): (leaves, rendered by a real plugin, the unsupported ones).
fn leaf_coverage(export: &str) -> (usize, usize, Vec<String>) {
    let f = fixture();
    let (report, _) = f
        .host
        .import_course(&olx(export), &ImportOptions::default())
        .unwrap();
    let course = f.host.course(&report.course_key).unwrap();
    let doc: &CourseDoc = &course.doc;
    let leaves: Vec<_> = doc
        .blocks
        .iter()
        .filter(|b| b.children.is_empty() && !STRUCTURE.contains(&b.block_type.as_str()))
        .collect();
    let mut rendered = 0;
    let mut missing = Vec::new();
    for b in &leaves {
        let out = f.render(
            &report.course_key,
            &b.usage_id,
            User::staff("staff"),
            View::Staff,
        );
        assert!(
            out.failures.is_empty(),
            "{export}: {} ({}) failed: {:?}",
            b.usage_id,
            b.block_type,
            out.failures
        );
        if b.block_type == UNSUPPORTED_TYPE {
            missing.push(format!(
                "{} ({})",
                b.usage_id,
                b.fields["original_type"].as_str().unwrap_or("?")
            ));
            continue;
        }
        assert!(
            out.html
                .contains(&format!("data-block-type=\"{}\"", b.block_type)),
            "{export}: {} did not render as {}",
            b.usage_id,
            b.block_type
        );
        rendered += 1;
    }
    // The import report tells the author the same.
    assert_eq!(report.learners.leaf_blocks, leaves.len(), "{export}");
    assert_eq!(report.learners.visible_leaf_blocks, rendered, "{export}");
    (leaves.len(), rendered, missing)
}

#[test]
fn at_least_95_percent_of_the_demo_course_s_leaves_render() {
    let (leaves, rendered, missing) = leaf_coverage("openedx-demo-course");
    let share = rendered as f64 / leaves as f64;
    assert!(
        share >= 0.95,
        "{rendered} of {leaves}; unsupported: {missing:?}"
    );
}

#[test]
fn at_least_95_percent_of_the_test_course_s_leaves_render() {
    let (leaves, rendered, missing) = leaf_coverage("openedx-test-course");
    let share = rendered as f64 / leaves as f64;
    assert!(
        share >= 0.95,
        "{rendered} of {leaves}; unsupported: {missing:?}"
    );
}
