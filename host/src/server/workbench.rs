//! The workbench (what the Open edX XBlock SDK workbench is for Python blocks): pick a
//! course and unit, see it rendered as the signed-in learner or staff member with their
//! experiment groups beside it, and (admins) install a plugin from a local file and see
//! the unit re-render with it. Also the sign-in routes: the LMS's (`POST /session`, a
//! signed token) and the development one (`POST /dev-login`, only with `--dev-login`).

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::AppState;
use super::auth::{ALL_COURSES, Claims, Identity, MaybeIdentity, Role, SESSION_COOKIE, Via};
use super::blocks::{RenderQuery, check_render, run_render};
use super::csrf::{self, NONCE_COOKIE};
use super::error::ApiError;
use super::page::{block_html, experiments_table, layout};
use crate::ids::check_id;
use crate::request::View;

/// Most existing learners offered by the dev sign-in.
const MAX_LEARNERS_LISTED: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct WorkbenchQuery {
    pub course: Option<String>,
    pub unit: Option<String>,
    /// `learner` (default for learners) or `staff` / `author` (default for staff: staff).
    pub view: Option<String>,
    /// Staff: the unit exactly as this learner sees it (nothing is recorded).
    pub as_learner: Option<String>,
}

fn dev_banner(state: &AppState) -> Markup {
    html! {
        @if state.config().dev_login {
            div.dev-banner role="status" {
                "Development sign-in is on (--dev-login): anyone who can reach this server can \
                 sign in as anyone, staff included. Never use it where others can connect."
            }
        }
    }
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
        None => sign_in_page(&state, &query, &headers, who.rejected.as_deref()),
    }
}

fn sign_in_page(
    state: &AppState,
    query: &WorkbenchQuery,
    headers: &HeaderMap,
    rejected: Option<&str>,
) -> Response {
    let nonce = csrf::cookie(headers, NONCE_COOKIE);
    let new_nonce = nonce.is_none().then(csrf::new_nonce);
    let binding = nonce.or(new_nonce.clone()).expect("one of them is set");
    let token = csrf::token_for_nonce(state.keys(), &binding);
    let learners = if state.config().dev_login {
        known_learners(state)
    } else {
        Vec::new()
    };
    let course = query.course.clone().unwrap_or_default();
    let unit = query.unit.clone().unwrap_or_default();
    let body = html! {
        (dev_banner(state))
        main.signin {
            h1 { "xbhost workbench" }
            @if let Some(reason) = rejected {
                p.error-box role="alert" { "Your session was not accepted: " (reason) }
            }
            @if state.config().dev_login {
                form method="post" action="/dev-login" id="new-learner" {
                    input type="hidden" name="csrf_token" value=(token);
                    input type="hidden" name="kind" value="new";
                    input type="hidden" name="course" value=(course);
                    input type="hidden" name="unit" value=(unit);
                    h2 { "A new learner" }
                    p { "A learner nobody has seen: they are assigned to groups on their first visit." }
                    button type="submit" { "Sign in as a new learner" }
                }
                form method="post" action="/dev-login" id="named-user" {
                    input type="hidden" name="csrf_token" value=(token);
                    input type="hidden" name="kind" value="named";
                    input type="hidden" name="course" value=(course);
                    input type="hidden" name="unit" value=(unit);
                    h2 { "An existing learner, or staff" }
                    label for="user" { "User id" }
                    input type="text" id="user" name="user" list="known-learners" required placeholder="alice";
                    datalist id="known-learners" {
                        @for l in &learners { option value=(l) {} }
                    }
                    label for="role" { "Role in every course" }
                    select id="role" name="role" {
                        option value="learner" { "learner" }
                        option value="staff" { "staff" }
                        option value="admin" { "admin (staff, and may install plugins and courses)" }
                    }
                    p { button type="submit" { "Sign in" } }
                }
            } @else {
                p {
                    "Sign in through your LMS: it posts a signed token to " code { "/session" }
                    ". (Start the server with " code { "--dev-login" } " for the development sign-in.)"
                }
            }
        }
    };
    let mut response = layout("xbhost workbench: sign in", None, None, body).into_response();
    if rejected.is_some() {
        // Forget the session that was refused (expired, or signed with an old key).
        response.headers_mut().append(
            header::SET_COOKIE,
            csrf::set_cookie(SESSION_COOKIE, "", None, state.config().secure_cookies),
        );
    }
    if let Some(nonce) = new_nonce {
        response.headers_mut().append(
            header::SET_COOKIE,
            csrf::set_cookie(
                NONCE_COOKIE,
                &nonce,
                Some(86_400),
                state.config().secure_cookies,
            ),
        );
    }
    response
}

/// Learners with data in any course, for the sign-in's suggestions.
fn known_learners(state: &AppState) -> Vec<String> {
    let mut learners = std::collections::BTreeSet::new();
    'courses: for course in state.host().course_keys().unwrap_or_default() {
        for user in state
            .host()
            .storage()
            .course_users(&course)
            .unwrap_or_default()
        {
            if learners.len() >= MAX_LEARNERS_LISTED {
                break 'courses;
            }
            learners.insert(user);
        }
    }
    learners.into_iter().collect()
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
                                    p { "Block " code { (f.usage_id) } " (" (f.block_type) ") failed: " (f.error) }
                                }
                            }
                        }
                        // Viewing as a learner is looking, not acting: the page script does
                        // not submit their forms (a submission would be the staff member's).
                        div.unit data-view=(crate::markup::view_class(*view)) data-read-only[masquerading] { (block_html(output)) }
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

#[derive(Debug, Deserialize)]
pub struct DevLoginForm {
    pub csrf_token: Option<String>,
    /// `new` (a fresh learner) or `named`.
    pub kind: String,
    pub user: Option<String>,
    pub role: Option<String>,
    pub course: Option<String>,
    pub unit: Option<String>,
}

fn back_to_workbench(course: Option<&str>, unit: Option<&str>) -> String {
    let mut query = Vec::new();
    for (k, v) in [("course", course), ("unit", unit)] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            query.push(format!("{k}={}", encode_component(v)));
        }
    }
    if query.is_empty() {
        "/workbench".into()
    } else {
        format!("/workbench?{}", query.join("&"))
    }
}

/// Percent-encodes everything but unreserved characters.
fn encode_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn with_session(state: &AppState, token: &str, ttl_seconds: u64, location: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        csrf::set_cookie(
            SESSION_COOKIE,
            token,
            Some(ttl_seconds as i64),
            state.config().secure_cookies,
        ),
    );
    response
}

/// `POST /dev-login`: the development sign-in (404 unless `--dev-login`).
pub async fn dev_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<DevLoginForm>, FormRejection>,
) -> Result<Response, ApiError> {
    if !state.config().dev_login {
        return Err(ApiError::not_found(
            "the development sign-in is off (start `xbhost serve` with --dev-login)",
        )
        .html(true));
    }
    let Form(form) =
        form.map_err(|e| ApiError::new(e.status(), format!("bad sign-in form: {e}")).html(true))?;
    csrf::check(state.keys(), &headers, None, form.csrf_token.as_deref())
        .map_err(|e| e.html(true))?;
    let (user, role) = match form.kind.as_str() {
        "new" => (
            format!("learner-{}", &csrf::new_nonce()[..8]),
            Role::Learner,
        ),
        "named" => {
            let user = form.user.clone().unwrap_or_default();
            let user = user.trim().to_string();
            check_id("user id", &user).map_err(|e| ApiError::from_host(e).html(true))?;
            let role: Role = form
                .role
                .as_deref()
                .unwrap_or("learner")
                .parse()
                .map_err(|e: String| ApiError::bad_request(e).html(true))?;
            (user, role)
        }
        other => {
            return Err(
                ApiError::bad_request(format!("unknown sign-in kind {other:?}")).html(true),
            );
        }
    };
    let ttl = state.config().dev_session_ttl.as_secs();
    let claims = Claims::new(
        &user,
        &user,
        BTreeMap::from([(ALL_COURSES.to_string(), role)]),
        ttl,
    );
    let token = state.keys().issue(&claims).map_err(ApiError::from_host)?;
    tracing::warn!(user = %user, role = ?role, "development sign-in");
    Ok(with_session(
        &state,
        &token,
        ttl,
        &back_to_workbench(form.course.as_deref(), form.unit.as_deref()),
    ))
}

#[derive(Debug, Deserialize)]
pub struct SessionForm {
    pub token: String,
    pub next: Option<String>,
}

/// `POST /session`: the LMS's launch, a form with a signed `token` (and where to go
/// `next`, a path on this server). The token is checked and kept as the session cookie.
pub async fn lms_session(
    State(state): State<AppState>,
    form: Result<Form<SessionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) =
        form.map_err(|e| ApiError::new(e.status(), format!("bad session form: {e}")).html(true))?;
    let claims = state
        .keys()
        .verify(&form.token)
        .map_err(|e| ApiError::unauthorized(e).html(true))?;
    let now = jsonwebtoken::get_current_timestamp();
    let next = form
        .next
        .filter(|n| is_local_path(n))
        .unwrap_or_else(|| "/workbench".to_string());
    Ok(with_session(
        &state,
        &form.token,
        claims.exp.saturating_sub(now),
        &next,
    ))
}

/// A path on this server, safe to redirect to: one leading `/` and only characters that
/// cannot turn it into another origin (no `//`, backslash, whitespace or control
/// characters, which browsers drop or reinterpret).
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && next
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~%?=&+:,;@!$'()*".contains(&b))
}

#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    pub csrf_token: Option<String>,
}

/// `POST /sign-out`: forgets the session cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let presented = form.ok().and_then(|Form(f)| f.csrf_token);
    // Signing out needs the token of the session it ends.
    csrf::check(
        state.keys(),
        &headers,
        Some(Via::Cookie),
        presented.as_deref(),
    )
    .map_err(|e| e.html(true))?;
    let mut response = Redirect::to("/workbench").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        csrf::set_cookie(SESSION_COOKIE, "", None, state.config().secure_cookies),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_local_paths_are_redirect_targets() {
        for good in [
            "/workbench",
            "/workbench?course=course-v1%3Aa%2Bb%2Bc&unit=u1",
            "/courses/c/blocks/b",
        ] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/\n/evil",
            "/ /evil",
            "",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
