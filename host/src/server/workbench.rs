//! The workbench (what the Open edX XBlock SDK workbench is for Python blocks): pick a
//! course and unit, see it rendered as the signed-in learner or staff member with their
//! experiment groups beside it, and (admins) install a plugin from a local file and see
//! the unit re-render with it. Signing in and out is `sign_in`'s; its routes are
//! re-exported here under their old paths.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::auth::{Identity, MaybeIdentity, Role};
use super::blocks::{RenderQuery, check_render, run_render};
use super::csrf;
use super::error::ApiError;
pub use super::launch::{SessionForm, lms_session};
use super::page::{block_html, experiments_table, layout};
pub use super::sign_in::{DevLoginForm, SignOutForm, dev_login, is_local_path, sign_out};
use super::sign_in::{dev_banner, encode_component, sign_in_page};
use super::state::AppState;
use crate::request::View;

#[derive(Debug, Default, Deserialize)]
pub struct WorkbenchQuery {
    pub course: Option<String>,
    pub unit: Option<String>,
    /// `learner` (default for learners) or `staff` / `author` (default for staff: staff).
    pub view: Option<String>,
    /// Staff: the unit exactly as this learner sees it (nothing is recorded).
    pub as_learner: Option<String>,
}

/// `GET /workbench`.
pub async fn page(
    State(state): State<AppState>,
    Query(query): Query<WorkbenchQuery>,
    headers: HeaderMap,
    who: MaybeIdentity,
) -> Response {
    match who.identity {
        Some(identity) => signed_in(&state, &query, &headers, &identity).await,
        None => sign_in_page(
            &state,
            query.course.as_deref(),
            query.unit.as_deref(),
            &headers,
            who.rejected.as_deref(),
        ),
    }
}

struct Unit {
    usage_id: String,
    name: String,
}

async fn signed_in(
    state: &AppState,
    query: &WorkbenchQuery,
    headers: &HeaderMap,
    identity: &Identity,
) -> Response {
    let courses: Vec<String> = state
        .host()
        .course_keys()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| identity.claims.role_in(c).is_some())
        .collect();
    let course_key = query.course.clone().or_else(|| courses.first().cloned());
    let course = course_key
        .as_deref()
        .map(|k| super::blocks::course_for(state, k))
        .transpose();
    let (course, course_error) = match course {
        Ok(c) => (c, None),
        Err(e) => (None, Some(e.message)),
    };
    let units: Vec<Unit> = course
        .as_ref()
        .map(|c| {
            let verticals: Vec<Unit> = c
                .doc
                .blocks
                .iter()
                .filter(|b| b.block_type == "vertical")
                .map(|b| Unit {
                    usage_id: b.usage_id.clone(),
                    name: b
                        .fields
                        .get("display_name")
                        .and_then(|n| n.as_str())
                        .unwrap_or(&b.usage_id)
                        .to_string(),
                })
                .collect();
            if verticals.is_empty() {
                c.roots()
                    .map(|i| {
                        let b = c.block_at(i);
                        Unit {
                            usage_id: b.def.usage_id.clone(),
                            name: b.def.usage_id.clone(),
                        }
                    })
                    .collect()
            } else {
                verticals
            }
        })
        .unwrap_or_default();
    let unit = query
        .unit
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| units.first().map(|u| u.usage_id.clone()));
    let role = course_key
        .as_deref()
        .and_then(|k| identity.claims.role_in(k));
    let is_staff = role.is_some_and(|r| r >= Role::Staff);
    let view = query
        .view
        .clone()
        .unwrap_or_else(|| if is_staff { "staff" } else { "learner" }.to_string());
    let rendered = match (&course_key, &unit, &course_error) {
        (Some(course_key), Some(unit), None) => {
            let as_learner = query.as_learner.clone().filter(|l| !l.trim().is_empty());
            let render_query = RenderQuery {
                // Viewing as a learner is the learner's view.
                view: Some(if as_learner.is_some() {
                    "learner".into()
                } else {
                    view.clone()
                }),
                as_learner,
                ..RenderQuery::default()
            };
            let result = async {
                let checked =
                    check_render(state, identity, course_key, unit, &render_query, headers)?;
                let view = checked.request.view;
                Ok::<_, ApiError>((view, run_render(state, checked.request).await?))
            }
            .await;
            Some(result)
        }
        _ => None,
    };
    let csrf = csrf::expected(state.keys(), headers);
    let scenarios = super::workbench_scenarios::visible(state, identity).await;
    let score = match (&course_key, &course_error) {
        (Some(key), None) => learner_score(state, key, query, identity).await,
        _ => None,
    };
    let masquerading = is_staff
        && query
            .as_learner
            .as_deref()
            .is_some_and(|l| !l.trim().is_empty());
    let role_text = match role {
        Some(r) => format!("{r:?}").to_lowercase(),
        None => "no role here".to_string(),
    };
    let body = html! {
        (dev_banner(state))
        header.bar {
            strong { "xbhost workbench" }
            span.spacer {}
            span id="whoami" data-user=(identity.user_id()) {
                "Signed in as " strong { (identity.claims.display_name()) }
                " (" (identity.user_id()) ", " (role_text) ")"
            }
            form method="post" action="/sign-out" {
                @if let Some(token) = &csrf { input type="hidden" name="csrf_token" value=(token); }
                button type="submit" { "Sign out" }
            }
        }
        div.wb {
            nav {
                form method="get" action="/workbench" id="picker" {
                    label for="course" { "Course" }
                    select id="course" name="course" data-submit-on-change {
                        @for c in &courses {
                            option value=(c) selected[Some(c) == course_key.as_ref()] { (c) }
                        }
                    }
                    label for="unit" { "Unit" }
                    select id="unit" name="unit" {
                        @for u in &units {
                            option value=(u.usage_id) selected[Some(&u.usage_id) == unit.as_ref()] { (u.name) }
                        }
                    }
                    @if is_staff {
                        label for="as_learner" { "View as learner (optional)" }
                        input type="text" id="as_learner" name="as_learner" placeholder="a learner's id"
                            value=[query.as_learner.as_deref()];
                        label for="view" { "View" }
                        select id="view" name="view" {
                            @for (value, text) in [("staff", "Staff: every condition"), ("learner", "As a learner (my groups)"), ("author", "Author")] {
                                option value=(value) selected[view == value] { (text) }
                            }
                        }
                    }
                    p { button type="submit" { "Show" } }
                }
                @if courses.is_empty() {
                    p { "No course you have a role in is loaded." }
                }
                (super::workbench_scenarios::nav(&scenarios, course_key.as_deref(), unit.as_deref()))
                @if let (true, Some(key)) = (is_staff, &course_key) {
                    p { a id="report-link" href=(format!("/courses/{}/report", encode_component(key))) { "Experiment report" } }
                }
                @if identity.claims.is_global_admin() {
                    form id="plugin-loader" {
                        h3 { "Load a plugin" }
                        p { small { "A block plugin (.wasm component) from this computer: installed, then the unit re-renders with it." } }
                        input type="file" name="file" accept=".wasm,application/wasm";
                        label for="plugin-name" { "Install as (optional)" }
                        input type="text" id="plugin-name" name="name" placeholder="its own name";
                        p { button type="submit" { "Install and re-render" } }
                        p.xbhost-status id="plugin-status" role="status" {}
                    }
                }
            }
            section.render id="render" {
                (super::workbench_live::panel(state, is_staff || identity.claims.is_global_admin()))
                @if let Some(message) = &course_error {
                    div.error-box role="alert" { (message) }
                }
                @match &rendered {
                    Some(Ok((view, output))) => {
                        h2 { (output.title.clone().unwrap_or_else(|| unit.clone().unwrap_or_default())) }
                        @if let Some(learner) = query.as_learner.as_deref().filter(|l| !l.trim().is_empty()) {
                            p.masquerade-note role="status" {
                                "Viewing as learner " strong { (learner) } ": their groups and state; nothing is recorded."
                            }
                        }
                        @if *view == View::Staff {
                            p { small { "Staff view: every condition of each experiment side by side, labelled with its group; yours is highlighted." } }
                        }
                        @if !output.failures.is_empty() {
                            div.error-box role="alert" {
                                @for f in &output.failures {
                                    @if !is_staff {
                                        p { "Block " code { (f.usage_id) } " (" (f.block_type) ") failed (" (super::page::serde_name(&f.kind)) ")." }
                                    } @else {
                                        p { "Block " code { (f.usage_id) } " (" (f.block_type) ") failed: " (f.error) }
                                    }
                                }
                            }
                        }
                        // Viewing as a learner is looking, not acting: the page script does
                        // not submit their forms (a submission would be the staff member's).
                        div.unit data-view=(crate::markup::view_class(*view)) data-read-only[masquerading] { (block_html(output)) }
                        @if is_staff { (super::workbench_live::guest_output(state, &output.printed)) }
                    }
                    Some(Err(e)) => {
                        div.error-box role="alert" { (e.message) }
                    }
                    None => {}
                }
            }
            aside {
                h3 {
                    @if query.as_learner.as_deref().is_some_and(|l| !l.trim().is_empty()) { "Their experiment groups" }
                    @else { "Your experiment groups" }
                }
                @match &rendered {
                    Some(Ok((_, output))) => { (experiments_table(&output.experiments)) }
                    _ => { p { "Pick a unit." } }
                }
                @if let Some((earned, possible)) = score {
                    h3 { "Score in this course" }
                    p id="score" data-earned=(earned) data-possible=(possible) {
                        @if possible > 0.0 {
                            (earned) " of " (possible) " points, over the problems shown to this learner"
                        } @else {
                            "No graded problem is shown to this learner."
                        }
                    }
                }
            }
        }
    };
    layout(
        "xbhost workbench",
        csrf.as_deref(),
        course_key.as_deref(),
        body,
    )
    .into_response()
}

/// The signed-in (or viewed-as) learner's points over the problems they see: what the
/// grade export would say for them. `None` when grading fails (the page still renders).
async fn learner_score(
    state: &AppState,
    course_key: &str,
    query: &WorkbenchQuery,
    identity: &Identity,
) -> Option<(f64, f64)> {
    let user = query
        .as_learner
        .clone()
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| identity.user_id().to_string());
    let key = course_key.to_string();
    let what = format!("grading user {user:?} in course {course_key:?}");
    let report = state
        .run_blocking(&what, state.render_limit(), move |host| {
            host.grades(&key, Some(&user))
        })
        .await
        .ok()?;
    let learner = report.learners.into_iter().next()?;
    Some((learner.earned, learner.possible))
}
