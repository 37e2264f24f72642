//! The LMS's sign-in, in two steps (OpenID Connect's third-party-initiated login, as LTI
//! 1.3 launches a tool), so that a sign-in happens only in the browser it started in:
//!
//! 1. The LMS sends the browser to `GET /session/login` (optionally with `login_hint`
//!    and `lti_message_hint`, passed on). The host sets a fresh sign-in state in the
//!    browser (a short-lived HttpOnly cookie, `sign_in_state.rs`) and answers the state
//!    and its nonce: by redirecting to the LMS's authorization URL
//!    (`--lms-authorization-url`, with `state`, `nonce` and the OIDC parameters), else
//!    as JSON (or a small page, for a browser that asks for HTML).
//! 2. The LMS signs a token for the user with the nonce as its `nonce` claim and has the
//!    browser post it to `POST /session` (form fields `token` or `id_token`, `state`,
//!    and optionally `next`, a path here). The host checks the state cookie equals the
//!    posted state (made here, not expired), the token (signature, expiry, `nbf`, `iss`,
//!    `aud`, lifetime: `token_policy.rs`), that its nonce is this state's, and that
//!    neither the token nor the state signed in before; then the token becomes the
//!    session cookie and the state cookie is deleted.
//!
//! A refused sign-in sets no session and records nothing: 403 for the state, 401 for
//! the token, each naming the check that failed.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::cookies::same_secret;
use super::error::ApiError;
use super::ledger::TokenId;
use super::page::layout;
use super::sign_in_state::{self, SignInState};
use super::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// Passed on to the authorization URL (who the LMS expects to sign in).
    pub login_hint: Option<String>,
    /// Passed on to the authorization URL (the LMS's own context for the launch).
    pub lti_message_hint: Option<String>,
}

/// `GET /session/login`: step 1, the sign-in state for this browser.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(format!("bad sign-in query: {e}")))?;
    let config = state.config();
    let now = jsonwebtoken::get_current_timestamp();
    let ttl = config.sign_in_state_ttl;
    let sign_in = SignInState::new(state.keys(), now);
    let nonce = sign_in.nonce(state.keys());
    let mut response = match &config.lms_authorization_url {
        Some(url) => {
            let target = authorization_request(
                url,
                &sign_in,
                &nonce,
                &query,
                state.keys().policy().audience.as_deref(),
            );
            Redirect::to(&target).into_response()
        }
        None if wants_html(&headers) => {
            let body = html! {
                main.signin {
                    h1 { "Sign-in started" }
                    p { "This browser holds a sign-in state for " (ttl.as_secs()) " s. Your LMS
                        posts a token whose " code { "nonce" } " claim is the nonce below, with
                        this state, to " code { "POST /session" } "." }
                    dl {
                        dt { "state" } dd { code #state { (sign_in.value()) } }
                        dt { "nonce" } dd { code #nonce { (nonce) } }
                    }
                }
            };
            layout("xbhost: sign-in started", None, None, body).into_response()
        }
        None => axum::Json(serde_json::json!({
            "state": sign_in.value(),
            "nonce": nonce,
            "expires_in": ttl.as_secs(),
            "post_to": "/session",
            "fields": ["token", "state", "next"],
        }))
        .into_response(),
    };
    response.headers_mut().append(
        header::SET_COOKIE,
        sign_in_state::set_state_cookie(&sign_in, ttl, config.secure_cookies),
    );
    tracing::debug!(
        redirect = config.lms_authorization_url.is_some(),
        "sign-in started"
    );
    Ok(response)
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Whether `url` can be the LMS's authorization endpoint: an absolute `https` (or `http`)
/// URL with a host, no fragment, and nothing a `Location` header could not carry.
pub fn check_authorization_url(url: &str) -> Result<(), String> {
    if url
        .bytes()
        .any(|b| b.is_ascii_control() || b == b' ' || !b.is_ascii())
    {
        return Err("it has spaces, control or non-ASCII characters".into());
    }
    let uri: axum::http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err("it must be an absolute https:// (or http://) URL".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("it has no host".into());
    }
    if url.contains('#') {
        return Err("it has a fragment (#...)".into());
    }
    Ok(())
}

/// The OIDC authentication request to the LMS: an implicit-flow `id_token` posted back
/// (`form_post`), with the state and nonce, and what the launch asked to pass on.
fn authorization_request(
    url: &str,
    sign_in: &SignInState,
    nonce: &str,
    query: &LoginQuery,
    client_id: Option<&str>,
) -> String {
    let mut target = url.to_string();
    target.push(if url.contains('?') { '&' } else { '?' });
    target.push_str("scope=openid&response_type=id_token&response_mode=form_post&prompt=none");
    let optional = [
        ("client_id", client_id),
        ("login_hint", query.login_hint.as_deref()),
        ("lti_message_hint", query.lti_message_hint.as_deref()),
    ];
    for (name, value) in [("state", Some(sign_in.value())), ("nonce", Some(nonce))]
        .into_iter()
        .chain(optional)
    {
        if let Some(value) = value {
            let _ = write!(
                target,
                "&{name}={}",
                super::sign_in::encode_component(value)
            );
        }
    }
    target
}

#[derive(Debug, Deserialize)]
pub struct SessionForm {
    /// The LMS's signed token (`id_token`, as OIDC names it, also accepted).
    #[serde(alias = "id_token")]
    pub token: String,
    /// The sign-in state `GET /session/login` gave this browser.
    pub state: Option<String>,
    /// Where to go next: a path on this server (else the workbench).
    pub next: Option<String>,
}

/// `POST /session`: step 2, the LMS's token for this browser's sign-in. The post is
/// cross-site by nature (from the LMS), so no CSRF token: the state binds it.
pub async fn lms_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<SessionForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) =
        form.map_err(|e| ApiError::new(e.status(), format!("bad session form: {e}")).html(true))?;
    let config = state.config();
    let keys = state.keys();
    let now = jsonwebtoken::get_current_timestamp();
    let sign_in = sign_in_state::check_posted(
        keys,
        &headers,
        form.state.as_deref(),
        config.secure_cookies,
        config.sign_in_state_ttl,
        now,
    )
    .map_err(|e| e.html(true))?;
    let claims = keys
        .verify(&form.token)
        .map_err(|e| ApiError::unauthorized(e).html(true))?;
    match &claims.nonce {
        None => {
            return Err(ApiError::unauthorized(
                "the token has no \"nonce\" claim: a sign-in token must carry the nonce \
                 GET /session/login gave for this sign-in",
            )
            .html(true));
        }
        Some(nonce) if !same_secret(nonce, &sign_in.nonce(keys)) => {
            return Err(ApiError::unauthorized(
                "the token's nonce is not the one of this browser's sign-in state (a token \
                 made for another sign-in)",
            )
            .html(true));
        }
        Some(_) => {}
    }
    let id = TokenId::of_token(&form.token, &claims);
    if state.ledger().is_revoked(&id, now) {
        return Err(ApiError::unauthorized(
            "the token's session was signed out on this host (revoked): sign in again",
        )
        .html(true));
    }
    let leeway = keys.policy().leeway.as_secs();
    state
        .ledger()
        .consume_sign_in(
            id,
            claims.exp.saturating_add(leeway),
            sign_in.id(),
            sign_in.expires_at(config.sign_in_state_ttl),
            now,
        )
        .map_err(|e| e.html(true))?;
    let next = form
        .next
        .filter(|n| super::sign_in::is_local_path(n))
        .unwrap_or_else(|| "/workbench".to_string());
    tracing::info!(user = %claims.sub, "signed in through the LMS");
    let mut response =
        super::sign_in::with_session(&state, &form.token, claims.exp.saturating_sub(now), &next);
    response.headers_mut().append(
        header::SET_COOKIE,
        sign_in_state::clear_state_cookie(config.secure_cookies),
    );
    Ok(response)
}
