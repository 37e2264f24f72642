//! Shared by the `authoring_*` tests: a host with the shipped plugins, the learner of a
//! chosen group, and a small graded course with an experiment.

use serde_json::json;
use xbhost::model::CourseDoc;

use crate::{Fixture, PRODUCT_PLUGINS};

pub const PLUGINS: &[&str] = PRODUCT_PLUGINS;

/// A fresh host with the shipped plugins.
pub fn fixture() -> Fixture {
    Fixture::with_plugins(PLUGINS)
}

/// The first of many learners whose group in `partition` of `course` is `group`.
pub fn learner_in(f: &Fixture, course: &str, partition: u64, group: u64) -> String {
    (0..1000)
        .map(|i| format!("olx-{i}"))
        .find(|u| {
            f.host
                .assignment(course, partition, u)
                .unwrap()
                .group
                .map(|g| g.id)
                == Some(group)
        })
        .unwrap()
}

/// A course with one experiment whose two conditions each hold a problem, in a sequence
/// whose second unit is only a split test that shows group 0 nothing.
pub fn graded_course() -> CourseDoc {
    serde_json::from_value(json!({
        "course_key": "course-v1:xbhost+graded+1",
        "user_partitions": [{"id": 5, "name": "Practice style", "groups": [{"id": 0, "name": "A"}, {"id": 1, "name": "B"}]}],
        "blocks": [
            {"usage_id": "root", "type": "course", "fields": {"display_name": "Graded"}, "children": ["ch"]},
            {"usage_id": "ch", "type": "chapter", "children": ["seq"]},
            {"usage_id": "seq", "type": "sequential", "children": ["u1", "u2"]},
            {"usage_id": "u1", "type": "vertical", "fields": {"display_name": "Practice"}, "children": ["split", "common"]},
            {"usage_id": "split", "type": "split_test", "fields": {"user_partition_id": 5, "group_id_to_child": {"0": "pa", "1": "pb"}}, "children": ["pa", "pb"]},
            {"usage_id": "pa", "type": "problem", "fields": {"question": "A?", "choices": [{"text": "yes", "correct": true}, {"text": "no"}]}},
            {"usage_id": "pb", "type": "problem", "fields": {"question": "B?", "kind": "checkbox", "weight": 2, "choices": [{"text": "1", "correct": true}, {"text": "2", "correct": true}, {"text": "3"}]}},
            {"usage_id": "common", "type": "problem", "fields": {"question": "Everyone?", "choices": [{"text": "x"}, {"text": "y", "correct": true}]}},
            {"usage_id": "u2", "type": "vertical", "fields": {"display_name": "Bonus for B"}, "children": ["bonus_split"]},
            {"usage_id": "bonus_split", "type": "split_test", "fields": {"user_partition_id": 5, "group_id_to_child": {"1": "bonus"}}, "children": ["bonus"]},
            {"usage_id": "bonus", "type": "html", "fields": {"data": "<p>bonus</p>"}}
        ]
    }))
    .unwrap()
}
