//! Signing in to a [`Served`](crate::served::Served) xbhost the way a browser and an LMS
//! do: the two-step launch (`GET /session/login` sets the sign-in state cookie and gives
//! the state and nonce; the LMS's token, carrying the nonce, is posted with the state to
//! `POST /session`), with the browser's cookies kept by hand.

use std::collections::BTreeMap;

use reqwest::{Client, Response, header};
use xbhost::server::auth::{Claims, Role};

use crate::served::keys;

/// The plain-HTTP sign-in state cookie.
pub const STATE_COOKIE: &str = "xbhost_sign_in";

/// A sign-in started in one browser.
#[derive(Debug, Clone)]
pub struct Launch {
    pub state: String,
    pub nonce: String,
    /// `name=value` of the state cookie the browser now holds.
    pub cookie: String,
}

/// The `Set-Cookie` values of a response.
pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The `Set-Cookie` value that sets `name`, if any.
pub fn set_cookie_named(response: &Response, name: &str) -> Option<String> {
    set_cookies(response)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// `name=value` of a `Set-Cookie` value (what the browser sends back).
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// Step 1: the host's state for a new sign-in (`state_cookie` is the cookie's name:
/// [`STATE_COOKIE`], or `__Host-xbhost_sign_in` with `--secure-cookies`).
pub async fn start_as(c: &Client, base: &str, state_cookie: &str) -> Launch {
    let response = c.get(format!("{base}/session/login")).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET /session/login");
    let set = set_cookie_named(&response, state_cookie)
        .unwrap_or_else(|| panic!("no {state_cookie} cookie: {:?}", set_cookies(&response)));
    let body: serde_json::Value = response.json().await.unwrap();
    Launch {
        state: body["state"].as_str().unwrap().to_string(),
        nonce: body["nonce"].as_str().unwrap().to_string(),
        cookie: cookie_pair(&set),
    }
}

/// Step 1 over plain HTTP.
pub async fn start(c: &Client, base: &str) -> Launch {
    start_as(c, base, STATE_COOKIE).await
}

/// Claims an LMS signs for a sign-in: `user` with `roles`, for an hour, with `nonce`.
pub fn sign_in_claims(user: &str, roles: &[(&str, Role)], nonce: Option<&str>) -> Claims {
    let roles: BTreeMap<String, Role> = roles.iter().map(|(c, r)| (c.to_string(), *r)).collect();
    let mut claims = Claims::new(user, user, roles, 3600);
    claims.nonce = nonce.map(str::to_string);
    claims
}

/// The LMS's token for this launch.
pub fn sign_in_token(user: &str, roles: &[(&str, Role)], launch: &Launch) -> String {
    keys()
        .issue(&sign_in_claims(user, roles, Some(&launch.nonce)))
        .unwrap()
}

/// Step 2: the browser posts the token with the state (and its state cookie).
pub async fn finish(
    c: &Client,
    base: &str,
    launch: &Launch,
    token: &str,
    next: Option<&str>,
) -> Response {
    let mut form = vec![("token", token), ("state", launch.state.as_str())];
    if let Some(next) = next {
        form.push(("next", next));
    }
    c.post(format!("{base}/session"))
        .header(header::COOKIE, &launch.cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Both steps for `user`; returns the session cookie (`name=value`) the browser got.
pub async fn sign_in(c: &Client, base: &str, user: &str, roles: &[(&str, Role)]) -> String {
    let launch = start(c, base).await;
    let token = sign_in_token(user, roles, &launch);
    let response = finish(c, base, &launch, &token, None).await;
    assert_eq!(response.status(), 303, "sign-in of {user}");
    cookie_pair(&set_cookie_named(&response, "xbhost_session").expect("a session cookie"))
}

/// The sign-in state a sign-in page carries in its forms.
pub fn page_state(html: &str) -> String {
    html.split("name=\"state\" value=\"")
        .nth(1)
        .expect("a sign-in form with a state")
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

/// The CSRF token a signed-in page carries.
pub fn page_csrf(html: &str) -> String {
    html.split("name=\"csrf-token\" content=\"")
        .nth(1)
        .expect("a page with a CSRF token")
        .split('"')
        .next()
        .unwrap()
        .to_string()
}
