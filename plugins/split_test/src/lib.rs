//! `split_test`: a content experiment. One child per experimental condition; a learner sees
//! only the child of their group in the experiment's user partition.
//!
//! Fields use the Open edX names: `user_partition_id` (negative or missing: not configured)
//! and `group_id_to_child` (group id, as a string, to the child's usage id).
//!
//! - student view: the learner's group's child, or a hidden fragment when the learner has no
//!   group or the group has no child. The host sends `xblock.split_test.child_render`
//!   when the condition reaches the page (blocks may not send it).
//! - staff view: every child, each marked as its condition (the host writes the group id and
//!   name, and marks children mapped to no current group inactive), in the partition's group
//!   order, then the inactive ones.
//! - author view: the same, under the validation messages.

use std::collections::BTreeMap;

use serde::Deserialize;
use xbhost_sdk::html::escape;
use xbhost_sdk::{
    Block, BlockResult, Condition, Context, Fragment, HostError, UserPartition, ValidationMessage,
    View,
};

pub struct SplitTest;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Fields {
    pub display_name: Option<String>,
    pub user_partition_id: Option<i64>,
    pub group_id_to_child: BTreeMap<String, String>,
}

impl Fields {
    /// The configured partition id; Open edX writes -1 for "not configured".
    pub fn partition_id(&self) -> Option<u64> {
        self.user_partition_id.and_then(|id| u64::try_from(id).ok())
    }

    /// The child mapped to `group_id`, if any.
    pub fn child_for(&self, group_id: u64) -> Option<&str> {
        self.group_id_to_child
            .get(&group_id.to_string())
            .map(String::as_str)
    }

    /// The group that maps to `child`, if any (the first, if several do).
    pub fn group_of(&self, child: &str) -> Option<u64> {
        self.group_id_to_child
            .iter()
            .filter(|(_, c)| c.as_str() == child)
            .find_map(|(g, _)| g.parse().ok())
    }
}

impl Block for SplitTest {
    type Fields = Fields;

    fn render(cx: &Context<'_, Fields>, view: View) -> BlockResult<Fragment> {
        match view {
            View::Student => student_view(cx),
            View::Staff => conditions_view(cx, view, &[]),
            View::Author => conditions_view(cx, view, &Self::validate(cx)),
        }
    }

    fn visible_children(cx: &Context<'_, Fields>) -> BlockResult<Vec<String>> {
        Ok(learner_child(cx)?
            .into_iter()
            .map(|(child, _, _)| child)
            .collect())
    }

    fn validate(cx: &Context<'_, Fields>) -> Vec<ValidationMessage> {
        validate(cx.fields(), cx.partitions(), &cx.children())
    }
}

xbhost_sdk::export_block!(SplitTest);

/// The child the current learner sees, if any, with its partition and group.
fn learner_child(cx: &Context<'_, Fields>) -> BlockResult<Option<(String, u64, u64)>> {
    let fields = cx.fields();
    let Some(partition_id) = fields.partition_id() else {
        return Ok(None);
    };
    // A deleted partition (not found) hides the experiment; authors see why in validation.
    let group = match cx.group_for(partition_id) {
        Ok(Some(group)) => group,
        Ok(None) | Err(HostError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let children = cx.children();
    Ok(fields
        .child_for(group.id)
        .filter(|child| children.iter().any(|c| c == child))
        .map(|child| (child.to_string(), partition_id, group.id)))
}

fn student_view(cx: &Context<'_, Fields>) -> BlockResult<Fragment> {
    let Some((child, _, _)) = learner_child(cx)? else {
        return Ok(Fragment::hidden());
    };
    // The host sends the exposure (`xblock.split_test.child_render`) itself when the
    // condition reaches the page and shows something; blocks may not send it.
    Ok(cx.render_child(&child, View::Student)?)
}

/// Staff and author views: every condition, marked, plus messages for authors.
fn conditions_view(
    cx: &Context<'_, Fields>,
    view: View,
    messages: &[ValidationMessage],
) -> BlockResult<Fragment> {
    let fields = cx.fields();
    let children = cx.children();
    let mut html = String::from("<div class=\"split-test\">");
    if !messages.is_empty() {
        html.push_str("<ul class=\"validation\">");
        for m in messages {
            html.push_str(&format!(
                "<li class=\"validation-{:?}\">{}</li>",
                m.severity,
                escape(&m.text)
            ));
        }
        html.push_str("</ul>");
    }
    let Some(partition_id) = fields.partition_id() else {
        html.push_str("<p class=\"split-test-heading\">Content experiment (not configured)</p>");
        for child in &children {
            html.push_str(&cx.render_child(child, view)?.html);
        }
        html.push_str("</div>");
        return Ok(Fragment::html(html));
    };
    let partition = cx.partition(partition_id);
    html.push_str(&format!(
        "<p class=\"split-test-heading\">Content experiment: {}</p>",
        match &partition {
            Some(p) => escape(&p.name),
            None => format!("group configuration {partition_id} (deleted)"),
        }
    ));
    // The staff member is a learner too: ask for their group so the host can mark its
    // condition (and so this block can mark the group when it has no content).
    let own_group = match partition {
        Some(_) => cx.group_for(partition_id)?.map(|g| g.id),
        None => None,
    };
    let mut rendered: Vec<&str> = Vec::new();
    for group in partition.iter().flat_map(|p| p.groups.iter()) {
        match fields
            .child_for(group.id)
            .filter(|c| children.iter().any(|child| child == c))
        {
            Some(child) => {
                let condition = Condition {
                    partition_id,
                    group_id: Some(group.id),
                };
                html.push_str(&cx.render_condition(child, view, condition)?.html);
                rendered.push(child);
            }
            None => {
                let own = own_group == Some(group.id);
                html.push_str(&format!(
                    "<div class=\"split-test-empty-group{}\" data-empty-group=\"{}\">Group {} has no content: learners in it see nothing here.{}</div>",
                    if own { " own-group" } else { "" },
                    group.id,
                    escape(&group.name),
                    if own { " This is your group." } else { "" }
                ))
            }
        }
    }
    for child in children.iter().filter(|c| !rendered.contains(&c.as_str())) {
        let condition = Condition {
            partition_id,
            group_id: fields.group_of(child),
        };
        html.push_str(&cx.render_condition(child, view, condition)?.html);
    }
    html.push_str("</div>");
    Ok(Fragment {
        html,
        title: fields.display_name.clone(),
        ..Fragment::default()
    })
}

/// Author-facing checks, as Open edX's split test shows them.
pub fn validate(
    fields: &Fields,
    partitions: Vec<UserPartition>,
    children: &[String],
) -> Vec<ValidationMessage> {
    let mut messages = Vec::new();
    let Some(partition_id) = fields.partition_id() else {
        messages.push(ValidationMessage::error(
            "This content experiment has no group configuration selected.",
        ));
        return messages;
    };
    let Some(partition) = partitions.into_iter().find(|p| p.id == partition_id) else {
        messages.push(ValidationMessage::error(format!(
            "This content experiment uses group configuration {partition_id}, which no longer exists."
        )));
        return messages;
    };
    if partition.scheme != "random" {
        messages.push(ValidationMessage::error(format!(
            "This content experiment uses group configuration \"{}\" with scheme \"{}\"; content experiments need a random scheme.",
            partition.name, partition.scheme
        )));
    }
    if !partition.active {
        messages.push(ValidationMessage::warning(format!(
            "Group configuration \"{}\" is inactive: learners see none of its conditions.",
            partition.name
        )));
    }
    for (group, child) in &fields.group_id_to_child {
        if group.parse::<u64>().is_err() {
            messages.push(ValidationMessage::error(format!(
                "group_id_to_child has key {group:?}, which is not a group id."
            )));
        }
        if !children.contains(child) {
            messages.push(ValidationMessage::error(format!(
                "Group {group} is mapped to {child:?}, which is not a child of this experiment."
            )));
        }
    }
    for group in &partition.groups {
        if fields.child_for(group.id).is_none() {
            messages.push(ValidationMessage::warning(format!(
                "Group \"{}\" (id {}) has no content.",
                group.name, group.id
            )));
        }
    }
    for child in children {
        let active = fields
            .group_id_to_child
            .iter()
            .any(|(g, c)| c == child && g.parse().is_ok_and(|g| partition.group(g).is_some()));
        if !active {
            messages.push(ValidationMessage::warning(format!(
                "Child {child:?} is mapped to no current group (inactive): no learner sees it."
            )));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::SplitTest;
    use serde_json::json;
    use xbhost_sdk::testing::TestHost;
    use xbhost_sdk::{Condition, Fragment, Group, Severity, UserPartition, View};

    fn partition() -> UserPartition {
        UserPartition {
            id: 7,
            name: "Explanation style".into(),
            description: String::new(),
            scheme: "random".into(),
            active: true,
            groups: vec![
                Group {
                    id: 0,
                    name: "Text".into(),
                },
                Group {
                    id: 1,
                    name: "Video".into(),
                },
                Group {
                    id: 2,
                    name: "Audio".into(),
                },
            ],
        }
    }

    fn host() -> TestHost {
        TestHost::new("split_test", "exp")
            .fields(json!({
                "user_partition_id": 7,
                "group_id_to_child": {"0": "text", "1": "video", "9": "old"}
            }))
            .children(["text", "video", "old"])
            .partition(partition())
    }

    #[test]
    fn student_sees_only_their_group_child_and_leaves_the_exposure_to_the_host() {
        let host = host().group(7, 1);
        let f = host.render::<SplitTest>(View::Student).unwrap();
        assert_eq!(f.html, "<p>video</p>");
        let rendered = host.rendered_children();
        assert_eq!(rendered.len(), 1);
        assert_eq!(rendered[0].usage_id, "video");
        // The host derives exposures from what it placed on the page.
        assert!(host.events().is_empty());
        assert_eq!(host.visible_children::<SplitTest>().unwrap(), vec!["video"]);
    }

    #[test]
    fn a_hidden_condition_is_not_an_exposure() {
        let host = host()
            .group(7, 1)
            .child_fragment("video", Fragment::hidden());
        assert!(host.render::<SplitTest>(View::Student).unwrap().hidden);
        assert!(host.events().is_empty());
    }

    #[test]
    fn a_group_with_no_child_is_hidden() {
        let host = host().group(7, 2);
        let f = host.render::<SplitTest>(View::Student).unwrap();
        assert!(f.hidden);
        assert!(host.rendered_children().is_empty());
        assert!(host.visible_children::<SplitTest>().unwrap().is_empty());
    }

    #[test]
    fn unconfigured_experiment_is_hidden_for_learners_and_an_error_for_authors() {
        let host = TestHost::new("split_test", "exp")
            .fields(json!({"user_partition_id": -1}))
            .children(["a"]);
        assert!(host.render::<SplitTest>(View::Student).unwrap().hidden);
        let messages = host.validate::<SplitTest>();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].severity, Severity::Error);
    }

    #[test]
    fn staff_see_every_condition_in_group_order_then_inactive_ones() {
        let host = host().staff().group(7, 0);
        let f = host.render::<SplitTest>(View::Staff).unwrap();
        let rendered = host.rendered_children();
        let ids: Vec<_> = rendered.iter().map(|r| r.usage_id.as_str()).collect();
        assert_eq!(ids, ["text", "video", "old"]);
        assert_eq!(
            rendered[0].condition,
            Some(Condition {
                partition_id: 7,
                group_id: Some(0)
            })
        );
        assert_eq!(
            rendered[2].condition,
            Some(Condition {
                partition_id: 7,
                group_id: Some(9)
            })
        );
        assert!(f.html.contains("Group Audio has no content"));
        assert!(!f.html.contains("own-group"), "the staff member is in Text");
        assert!(host.events().is_empty(), "staff view is not an exposure");
    }

    #[test]
    fn staff_whose_group_has_no_content_see_it_marked() {
        let host = host().staff().group(7, 2);
        let f = host.render::<SplitTest>(View::Staff).unwrap();
        assert!(
            f.html
                .contains("class=\"split-test-empty-group own-group\" data-empty-group=\"2\""),
            "{}",
            f.html
        );
        assert!(f.html.contains("This is your group."));
    }

    #[test]
    fn validation_names_empty_groups_inactive_children_and_bad_schemes() {
        let mut cohort = partition();
        cohort.scheme = "cohort".into();
        let host = TestHost::new("split_test", "exp")
            .fields(json!({"user_partition_id": 7, "group_id_to_child": {"0": "text", "9": "old"}}))
            .children(["text", "old"])
            .partition(cohort);
        let texts: Vec<String> = host
            .validate::<SplitTest>()
            .into_iter()
            .map(|m| m.text)
            .collect();
        assert!(
            texts.iter().any(|t| t.contains("scheme \"cohort\"")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("\"Video\" (id 1) has no content")),
            "{texts:?}"
        );
        assert!(
            texts
                .iter()
                .any(|t| t.contains("\"old\" is mapped to no current group")),
            "{texts:?}"
        );
        assert!(!texts.iter().any(|t| t.contains("\"text\"")), "{texts:?}");
    }

    #[test]
    fn deleted_partition_is_reported_to_authors() {
        let host = TestHost::new("split_test", "exp")
            .fields(json!({"user_partition_id": 3}))
            .children(["a"]);
        let messages = host.validate::<SplitTest>();
        assert!(messages[0].text.contains("no longer exists"));
        let f = host.render::<SplitTest>(View::Author).unwrap();
        assert!(f.html.contains("no longer exists"));
    }
}
