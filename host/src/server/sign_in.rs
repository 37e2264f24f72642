//! Signing in and out of the workbench: the sign-in page (what `GET /workbench` shows
//! without a session) and the development banner, the development sign-in
//! (`POST /dev-login`, only with `--dev-login`), and `POST /sign-out`, which revokes the
//! session on this host. The LMS's sign-in is `launch.rs`. Like the LMS's, the dev
//! sign-in is bound to the sign-in state the page set in the browser
//! (`sign_in_state.rs`): a post from anywhere else signs nobody in.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{ALL_COURSES, Audience, Claims, Role, Via};
use super::csrf;
use super::error::ApiError;
use super::ledger::TokenId;
use super::page::layout;
use super::sign_in_state::{self, SignInState};
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
    let config = state.config();
    let now = jsonwebtoken::get_current_timestamp();
    // The dev sign-in's forms carry the browser's sign-in state (kept while it is good).
    let current = sign_in_state::current(
        state.keys(),
        headers,
        state.ledger(),
        config.secure_cookies,
        config.sign_in_state_ttl,
        now,
    );
    let new_state =
        (config.dev_login && current.is_none()).then(|| SignInState::new(state.keys(), now));
    let sign_in = current.or(new_state.clone());
    let sign_in = sign_in.as_ref().map(SignInState::value).unwrap_or_default();
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
                    input type="hidden" name=(sign_in_state::FIELD) value=(sign_in);
                    input type="hidden" name="kind" value="new";
                    input type="hidden" name="course" value=(course);
                    input type="hidden" name="unit" value=(unit);
                    h2 { "A new learner" }
                    p { "A learner nobody has seen: they are assigned to groups on their first visit." }
                    button type="submit" { "Sign in as a new learner" }
                }
                form method="post" action="/dev-login" id="named-user" {
                    input type="hidden" name=(sign_in_state::FIELD) value=(sign_in);
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
                    "Sign in through your LMS: it starts the sign-in at " code { "/session/login" }
                    " and posts a signed token to " code { "/session" }
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
            csrf::set_cookie(
                state.keys().session_cookie(),
                "",
                None,
                config.secure_cookies,
            ),
        );
    }
    if let Some(new_state) = new_state {
        response.headers_mut().append(
            header::SET_COOKIE,
            sign_in_state::set_state_cookie(
                &new_state,
                config.sign_in_state_ttl,
                config.secure_cookies,
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
    /// The sign-in state the page set in this browser.
    pub state: Option<String>,
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

/// A redirect to `location` that keeps `token` as the session cookie.
pub(super) fn with_session(
    state: &AppState,
    token: &str,
    ttl_seconds: u64,
    location: &str,
) -> Response {
    let mut response = Redirect::to(location).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        csrf::set_cookie(
            state.keys().session_cookie(),
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
    // Same-site only, and bound to the state this browser's sign-in page holds.
    csrf::refuse_cross_site(&headers).map_err(|e| e.html(true))?;
    let config = state.config();
    let now = jsonwebtoken::get_current_timestamp();
    let sign_in = sign_in_state::check_posted(
        state.keys(),
        &headers,
        form.state.as_deref(),
        config.secure_cookies,
        config.sign_in_state_ttl,
        now,
    )
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
    state
        .ledger()
        .consume_state(
            sign_in.id(),
            sign_in.expires_at(config.sign_in_state_ttl),
            now,
        )
        .map_err(|e| e.html(true))?;
    // A dev session is a token like the LMS's and passes the same checks: no longer
    // than the maximum lifetime, with the issuer and audience demanded.
    let policy = state.keys().policy();
    let ttl = config.dev_session_ttl.min(policy.max_lifetime).as_secs();
    let mut claims = Claims::new(
        &user,
        &user,
        BTreeMap::from([(ALL_COURSES.to_string(), role)]),
        ttl,
    );
    claims.jti = Some(csrf::new_nonce());
    // A browser's session: judged by its User-Agent even if replayed as a bearer token.
    claims.check_user_agent = true;
    claims.iss = policy.issuer.clone();
    claims.aud = policy.audience.clone().map(Audience::One);
    let token = state.keys().issue(&claims).map_err(ApiError::from_host)?;
    tracing::warn!(user = %user, role = ?role, "development sign-in");
    let mut response = with_session(
        &state,
        &token,
        ttl,
        &back_to_workbench(form.course.as_deref(), form.unit.as_deref()),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        sign_in_state::clear_state_cookie(config.secure_cookies),
    );
    Ok(response)
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

/// `POST /sign-out`: revokes the session on this host (a copy of its cookie, or its
/// token as a bearer, is refused from now until it expires) and forgets the cookie.
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
    let keys = state.keys();
    let forget = csrf::set_cookie(
        keys.session_cookie(),
        "",
        None,
        state.config().secure_cookies,
    );
    // A token that no longer verifies (expired, say) cannot be used anyway.
    let session = csrf::cookie(&headers, keys.session_cookie())
        .and_then(|token| keys.verify(&token).ok().map(|claims| (token, claims)));
    if let Some((token, claims)) = session {
        let now = jsonwebtoken::get_current_timestamp();
        let until = claims.exp.saturating_add(keys.policy().leeway.as_secs());
        let revoked = state
            .ledger()
            .revoke(TokenId::of_token(&token, &claims), until, now);
        if let Err(e) = revoked {
            tracing::error!(user = %claims.sub, "sign-out could not revoke the session: {}", e.message);
            let mut response = e.html(true).into_response();
            response.headers_mut().append(header::SET_COOKIE, forget);
            return Ok(response);
        }
        tracing::info!(user = %claims.sub, "signed out; session revoked");
    }
    let mut response = Redirect::to("/workbench").into_response();
    response.headers_mut().append(header::SET_COOKIE, forget);
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
