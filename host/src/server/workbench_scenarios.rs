//! The workbench's "Scenarios" section: the scenarios installed plugins ship
//! (`host::scenarios`), each a link to its unit in its plugin's scenario course, or the
//! message saying why it is not shown (a block type not installed, a scenario that does
//! not load). Listed for whoever has a role in the scenario course, which only a role on
//! every course gives (the development sign-in's users, global admins): an LMS's token
//! for its own courses sees none.

use maud::{Markup, html};

use super::auth::Identity;
use super::sign_in::encode_component;
use super::state::AppState;
use crate::host::scenarios::ScenarioStatus;

/// The scenarios `identity` may open, with their status (none when listing fails: the
/// workbench still renders, and the failure is logged).
pub async fn visible(state: &AppState, identity: &Identity) -> Vec<ScenarioStatus> {
    // Only a role on every course opens scenario courses: anyone else's page does not pay
    // for the survey (it takes a render slot and checks every plugin's scenarios).
    if identity
        .claims
        .role_in(crate::server::auth::ALL_COURSES)
        .is_none()
    {
        return Vec::new();
    }
    let listed = state
        .run_blocking(
            "listing the plugins' scenarios",
            state.render_limit(),
            |host| host.scenarios(),
        )
        .await;
    match listed {
        Ok(all) => all
            .into_iter()
            .filter(|s| identity.claims.role_in(&s.course_key).is_some())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e.message, "the workbench could not list scenarios");
            Vec::new()
        }
    }
}

/// The nav section: per plugin, its scenarios, the one shown now marked.
pub fn nav(scenarios: &[ScenarioStatus], course: Option<&str>, shown: Option<&str>) -> Markup {
    if scenarios.is_empty() {
        return html! {};
    }
    html! {
        section id="scenarios" {
            h3 { "Scenarios" }
            ul {
                @for s in scenarios {
                    li data-plugin=(s.plugin) data-scenario=(s.name) {
                        @match (&s.unit, &s.problem) {
                            (Some(unit), None) => {
                                @let current = course == Some(s.course_key.as_str()) && shown == Some(unit.as_str());
                                a href=(link(&s.course_key, unit)) aria-current=[current.then_some("page")] {
                                    (s.title)
                                }
                                " " small { "(" (s.plugin) ")" }
                            }
                            _ => {
                                span.scenario-missing { (s.title) " (" (s.plugin) ")" }
                                p.error-box role="note" { small { (s.problem.clone().unwrap_or_default()) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The workbench address of a scenario's unit.
pub fn link(course_key: &str, unit: &str) -> String {
    format!(
        "/workbench?course={}&unit={}",
        encode_component(course_key),
        encode_component(unit)
    )
}
