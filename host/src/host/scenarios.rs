//! Scenarios plugins ship (the SDK's `scenarios!`, like XBlock's `workbench_scenarios`),
//! as ordinary courses: one per plugin, under the reserved key `xbhost-scenarios:PLUGIN`
//! (`ids::SCENARIO_COURSE_PREFIX`, which no loaded, imported or uploaded course may use),
//! built of the shipped containers: course -> chapter -> sequential -> one vertical per
//! scenario, named as the scenario, holding its blocks. Being a course like any other,
//! state, handlers, tallies and client code work in it as anywhere.
//!
//! [`Host::load_scenarios`] (after `plugin add` and `POST /admin/plugins`) rebuilds every
//! installed plugin's course, so a container added after a block makes its scenarios
//! appear, and re-adding a plugin reloads its course (stored only when it changed). A
//! scenario is checked alone first; one using a block type no installed plugin provides, or
//! that would not load, is left out with a message naming the plugin, the scenario and the
//! cause, and the others load. [`Host::scenarios`] says the same for the workbench without
//! storing anything.
//!
//! Who sees them: a scenario course is a course, so the roles of a token decide. Only a
//! role on every course (`*`: the development sign-in's learners and staff, global admins)
//! reaches it; a token an LMS issues for its own courses does not.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use serde::Serialize;
use tracing::warn;

use super::Host;
use crate::ids::SCENARIO_COURSE_PREFIX;
use crate::model::{BlockDef, CourseDoc};
use crate::olx::{DEFAULT_LOAD_DEADLINE, LoadDeadline};
use crate::runtime::scenarios::{Scenario, ScenarioBlock};

/// The shipped containers a scenario course is built of, outermost first.
pub const SCENARIO_CONTAINERS: [&str; 4] = ["course", "chapter", "sequential", "vertical"];

/// The course key of plugin `plugin`'s scenarios.
pub fn scenario_course_key(plugin: &str) -> String {
    format!("{SCENARIO_COURSE_PREFIX}{plugin}")
}

/// One scenario of an installed plugin, and whether it is shown.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioStatus {
    pub plugin: String,
    pub name: String,
    pub title: String,
    pub course_key: String,
    /// Its unit (the vertical's usage id) when its plugin's stored course holds it.
    pub unit: Option<String>,
    /// Why it is not shown, naming the plugin, the scenario and the cause.
    pub problem: Option<String>,
}

/// What [`Host::load_scenarios`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioReport {
    /// The scenario courses stored now: key and how many scenarios it holds.
    pub loaded: Vec<(String, usize)>,
    pub scenarios: Vec<ScenarioStatus>,
}

impl Host {
    /// Rebuilds and stores (when changed) every installed plugin's scenario course.
    pub fn load_scenarios(&self) -> Result<ScenarioReport> {
        self.survey_scenarios(true)
    }

    /// Every installed plugin's scenarios and whether each is shown, storing nothing.
    pub fn scenarios(&self) -> Result<Vec<ScenarioStatus>> {
        Ok(self.survey_scenarios(false)?.scenarios)
    }

    fn survey_scenarios(&self, store: bool) -> Result<ScenarioReport> {
        let installed: BTreeSet<String> = self.plugins()?.into_iter().map(|p| p.name).collect();
        let mut report = ScenarioReport::default();
        for plugin in &installed {
            let scenarios = match self.inner.handle.plugin(plugin) {
                Ok(loaded) => loaded.scenarios.clone(),
                Err(e) => {
                    warn!(plugin = %plugin, error = %format!("{e:#}"), "cannot read the plugin's scenarios");
                    continue;
                }
            };
            if scenarios.is_empty() {
                continue;
            }
            let key = scenario_course_key(plugin);
            let stored = self.storage().course(&key)?;
            let mut statuses: Vec<ScenarioStatus> = Vec::new();
            let mut good: Vec<&Scenario> = Vec::new();
            for scenario in scenarios.iter() {
                let problem = self.scenario_problem(plugin, scenario, &installed, store, &stored);
                if problem.is_none() {
                    good.push(scenario);
                }
                statuses.push(ScenarioStatus {
                    plugin: plugin.clone(),
                    name: scenario.name.clone(),
                    title: scenario.title.clone(),
                    course_key: key.clone(),
                    unit: None,
                    problem,
                });
            }
            let (doc, clashes) = build_course(plugin, &good);
            for (name, why) in clashes {
                if let Some(s) = statuses.iter_mut().find(|s| s.name == name) {
                    s.problem = Some(why);
                }
            }
            let held = |s: &ScenarioStatus| {
                s.problem.is_none() && doc.blocks.iter().any(|b| b.usage_id == s.name)
            };
            if store && doc.blocks.len() > SCENARIO_CONTAINERS.len() - 1 {
                if stored.as_ref() != Some(&doc) {
                    let count = statuses.iter().filter(|s| held(s)).count();
                    let base = self.course_version(&key)?;
                    let deadline = LoadDeadline::after(DEFAULT_LOAD_DEADLINE);
                    match self.load_scenario_course(doc.clone(), base, deadline) {
                        Ok(_) => report.loaded.push((key.clone(), count)),
                        Err(e) => {
                            for s in statuses.iter_mut().filter(|s| s.problem.is_none()) {
                                s.problem = Some(format!(
                                    "scenario {:?} of plugin {plugin:?} is not shown: its \
                                     course {key:?} did not load: {e:#}",
                                    s.name
                                ));
                            }
                        }
                    }
                }
                for s in statuses.iter_mut() {
                    if held(s) {
                        s.unit = Some(s.name.clone());
                    }
                }
            } else if !store {
                // Listing: shown when the stored course holds it as it would be built.
                let stored_units: Vec<&str> = stored
                    .iter()
                    .flat_map(|d| d.blocks.iter())
                    .filter(|b| b.block_type == "vertical")
                    .map(|b| b.usage_id.as_str())
                    .collect();
                for s in statuses.iter_mut().filter(|s| s.problem.is_none()) {
                    if stored_units.contains(&s.name.as_str()) {
                        s.unit = Some(s.name.clone());
                    } else {
                        s.problem = Some(format!(
                            "scenario {:?} of plugin {plugin:?} is not loaded yet: add the \
                             plugin again (xbhost plugin add) to load it",
                            s.name
                        ));
                    }
                }
            }
            report.scenarios.extend(statuses);
        }
        Ok(report)
    }

    /// Why `scenario` cannot be shown: a block type (its own or a container) no installed
    /// plugin provides, or the error loading it alone would give. When listing (`store`
    /// false), a scenario its stored course already holds is not checked again.
    fn scenario_problem(
        &self,
        plugin: &str,
        scenario: &Scenario,
        installed: &BTreeSet<String>,
        store: bool,
        stored: &Option<CourseDoc>,
    ) -> Option<String> {
        let missing: Vec<&str> = scenario
            .block_types()
            .into_iter()
            .chain(SCENARIO_CONTAINERS)
            .filter(|t| !installed.contains(*t))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            let files = missing
                .iter()
                .map(|t| format!("{t}.wasm"))
                .collect::<Vec<_>>()
                .join(" ");
            return Some(format!(
                "scenario {:?} of plugin {plugin:?} is not shown: it needs block type {list}, \
                 which no installed plugin provides (xbhost plugin add {files})",
                scenario.name
            ));
        }
        let held = stored
            .as_ref()
            .is_some_and(|d| d.blocks.iter().any(|b| b.usage_id == scenario.name));
        if !store && held {
            return None;
        }
        let (doc, clashes) = build_course(plugin, &[scenario]);
        if let Some((_, why)) = clashes.into_iter().next() {
            return Some(why);
        }
        let deadline = LoadDeadline::after(DEFAULT_LOAD_DEADLINE);
        match self.check_scenario_course(doc, deadline) {
            Ok(()) => None,
            Err(e) => Some(format!(
                "scenario {:?} of plugin {plugin:?} is not shown: it does not load: {e:#}",
                scenario.name
            )),
        }
    }
}

/// The course of `plugin`'s `scenarios`, and the scenarios left out because a usage id of
/// theirs is another's (name, message). Ids are stable across rebuilds, so learners keep
/// their state: the containers' are `xbhost.course`, `xbhost.chapter` and
/// `xbhost.sequence`, a scenario's unit is its name, a block without an `id` is
/// `SCENARIO.TYPE.N` (the Nth block of that type in the scenario).
pub fn build_course(plugin: &str, scenarios: &[&Scenario]) -> (CourseDoc, Vec<(String, String)>) {
    let mut blocks = vec![
        container(
            "xbhost.course",
            "course",
            &format!("Scenarios of {plugin}"),
            "xbhost.chapter",
        ),
        container("xbhost.chapter", "chapter", plugin, "xbhost.sequence"),
        container("xbhost.sequence", "sequential", "Scenarios", ""),
    ];
    let mut clashes = Vec::new();
    for scenario in scenarios {
        let mut own = Vec::new();
        let mut counts = HashMap::new();
        let top: Vec<String> = scenario
            .blocks
            .iter()
            .map(|b| flatten(&scenario.name, b, &mut counts, &mut own))
            .collect();
        let mut unit = container(&scenario.name, "vertical", &scenario.title, "");
        unit.children = top;
        own.insert(0, unit);
        match first_clash(&blocks, &own) {
            Err(id) => clashes.push((
                scenario.name.clone(),
                format!(
                    "scenario {:?} of plugin {plugin:?} is not shown: usage id {id:?} is used \
                     twice (give its blocks other ids)",
                    scenario.name
                ),
            )),
            Ok(()) => {
                blocks[2].children.push(scenario.name.clone());
                blocks.extend(own);
            }
        }
    }
    let doc = CourseDoc {
        course_key: scenario_course_key(plugin),
        display_name: Some(format!("Scenarios of the {plugin} plugin")),
        user_partitions: Vec::new(),
        holdout: None,
        blocks,
    };
    (doc, clashes)
}

fn container(id: &str, block_type: &str, name: &str, child: &str) -> BlockDef {
    BlockDef {
        usage_id: id.to_string(),
        block_type: block_type.to_string(),
        fields: serde_json::json!({ "display_name": name }),
        children: if child.is_empty() {
            Vec::new()
        } else {
            vec![child.to_string()]
        },
        group_access: Default::default(),
    }
}

/// Adds `block` and its children to `out` (depth first), returning its usage id.
fn flatten(
    scenario: &str,
    block: &ScenarioBlock,
    counts: &mut HashMap<String, usize>,
    out: &mut Vec<BlockDef>,
) -> String {
    let id = block.id.clone().unwrap_or_else(|| {
        let n = counts.entry(block.block_type.clone()).or_insert(0);
        *n += 1;
        format!("{scenario}.{}.{n}", block.block_type)
    });
    let at = out.len();
    out.push(BlockDef {
        usage_id: id.clone(),
        block_type: block.block_type.clone(),
        fields: block.fields.clone(),
        children: Vec::new(),
        group_access: Default::default(),
    });
    let children = block
        .children
        .iter()
        .map(|c| flatten(scenario, c, counts, out))
        .collect();
    out[at].children = children;
    id
}

/// The first usage id of `new` that `existing` or `new` itself already has.
fn first_clash(existing: &[BlockDef], new: &[BlockDef]) -> Result<(), String> {
    let mut seen: std::collections::HashSet<&str> =
        existing.iter().map(|b| b.usage_id.as_str()).collect();
    for b in new {
        if !seen.insert(b.usage_id.as_str()) {
            return Err(b.usage_id.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Course;

    fn scenarios(json: serde_json::Value) -> Vec<Scenario> {
        xbhost_sdk::scenarios::parse(&serde_json::to_vec(&json).unwrap()).unwrap()
    }

    #[test]
    fn builds_a_course_of_one_unit_per_scenario_with_stable_ids() {
        let s = scenarios(serde_json::json!([
            {"name": "a", "title": "A", "blocks": [{"type": "thumbs"}, {"type": "thumbs"}]},
            {"name": "b", "title": "B", "blocks": [
                {"type": "vertical", "id": "inner", "children": [{"type": "html"}]}]},
            {"name": "c", "title": "C", "blocks": [{"type": "html", "id": "inner"}]}
        ]));
        let (doc, clashes) = build_course("thumbs", &s.iter().collect::<Vec<_>>());
        assert_eq!(doc.course_key, "xbhost-scenarios:thumbs");
        let ids: Vec<&str> = doc.blocks.iter().map(|b| b.usage_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "xbhost.course",
                "xbhost.chapter",
                "xbhost.sequence",
                "a",
                "a.thumbs.1",
                "a.thumbs.2",
                "b",
                "inner",
                "b.html.1"
            ]
        );
        assert_eq!(doc.blocks[2].children, ["a", "b"]);
        assert_eq!(doc.blocks[7].children, ["b.html.1"]);
        assert_eq!(clashes.len(), 1);
        assert!(
            clashes[0].1.contains("scenario \"c\" of plugin \"thumbs\""),
            "{clashes:?}"
        );
        let course = Course::new(doc).unwrap();
        assert_eq!(course.roots().count(), 1);
    }

    #[test]
    fn the_key_is_reserved() {
        let key = scenario_course_key("thumbs");
        let err = crate::ids::check_not_reserved_course_key(&key).unwrap_err();
        assert!(err.to_string().contains("reserves"), "{err}");
        crate::ids::check_not_reserved_course_key("course-v1:a+b+c").unwrap();
    }
}
