//! Signing in and out of the workbench: the sign-in page (what `GET /workbench` shows
//! without a session) and the development banner, the LMS's sign-in (`POST /session`, a
//! signed token), the development one (`POST /dev-login`, only with `--dev-login`), and
//! `POST /sign-out`. Each keeps or forgets the session cookie.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{ALL_COURSES, Claims, Role, SESSION_COOKIE, Via};
use super::csrf::{self, NONCE_COOKIE};
use super::error::ApiError;
use super::page::layout;
use super::state::AppState;
use crate::ids::check_id;

/// Most existing learners offered by the dev sign-in.
const MAX_LEARNERS_LISTED: usize = 50;

/// The warning every workbench page carries while the development sign-in is on.
pub(super) fn dev_banner(state: &AppState) -> Markup {
    html! {
        @if state.config().dev_login {
            div.dev-banner role="status" {
                "Development sign-in is on (--dev-login): anyone who can reach this server can \
                 sign in as anyone, staff included. Never use it where others can connect."
            }
        }
    }
}

/// What `GET /workbench` shows without a session: the development sign-in forms (with
/// `--dev-login`) or where to sign in instead, and why a presented session was refused.
pub(super) fn sign_in_page(
    state: &AppState,
    course: Option<&str>,
    unit: Option<&str>,
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
    let course = course.unwrap_or_default();
    let unit = unit.unwrap_or_default();
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
pub(super) fn encode_component(s: &str) -> String {
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
