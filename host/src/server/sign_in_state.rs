//! The sign-in state: what binds a sign-in to the browser it happens in, so nobody can
//! sign a victim's browser in as themselves (login CSRF).
//!
//! Before a sign-in the host sets a random state in the browser as a short-lived HttpOnly
//! cookie ([`COOKIE`], [`SECURE_COOKIE`] with `--secure-cookies`) and tells it to whoever
//! starts the sign-in (`GET /session/login`, or the dev sign-in page's forms). The
//! sign-in post carries it back as the `state` field, and the host accepts the post only
//! if it equals the cookie (compared in constant time). A hostile page can make a
//! browser post, but can neither read nor set this host's cookies, so it cannot give a
//! victim's browser the state of a sign-in the attacker started.
//!
//! A state is `ISSUED.RANDOM.MAC`: when it was made, 128 random bits, and a keyed hash
//! over both that only this host can make; so the host checks a state's age and origin
//! without storing it, and storing nothing for an unauthenticated request. The LMS's
//! token must carry the state's nonce (its `nonce` claim), a second keyed hash of the
//! state: a token made for one sign-in is refused in any other. A state signs in once
//! (the ledger records it until it expires).
//!
//! With `--secure-cookies` the cookie is `SameSite=None` (and Secure), so the LMS's
//! cross-site post of the token brings it along; over plain HTTP it is `SameSite=Lax`,
//! which browsers send only when the LMS and xbhost are the same site.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use cookie::SameSite;

use super::cookies::{cookie, new_nonce, same_secret, set_cookie};
use super::error::ApiError;
use super::ledger::{TokenId, TokenLedger};
use super::tokens::TokenKeys;

/// The state cookie over plain HTTP.
pub const COOKIE: &str = "xbhost_sign_in";
/// The state cookie with `--secure-cookies` (`__Host-`: Secure, path `/`, no Domain).
pub const SECURE_COOKIE: &str = "__Host-xbhost_sign_in";
/// The form field a sign-in post carries the state in.
pub const FIELD: &str = "state";
/// The default of `--sign-in-state-ttl`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// A state this host made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInState {
    value: String,
    issued: u64,
}

fn mac(keys: &TokenKeys, body: &str) -> String {
    keys.csrf_token(&format!("sign-in state\0{body}"))
}

impl SignInState {
    /// A fresh state, made at `now`.
    pub fn new(keys: &TokenKeys, now: u64) -> SignInState {
        let body = format!("{now}.{}", new_nonce());
        let value = format!("{body}.{}", mac(keys, &body));
        SignInState { value, issued: now }
    }

    /// A state read back, if this host made it.
    fn parse(keys: &TokenKeys, value: &str) -> Option<SignInState> {
        let (body, given) = value.rsplit_once('.')?;
        let (issued, _random) = body.split_once('.')?;
        let issued = issued.parse().ok()?;
        same_secret(&mac(keys, body), given).then(|| SignInState {
            value: value.to_string(),
            issued,
        })
    }

    /// What the browser and the post carry.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The nonce a sign-in token for this state must carry.
    pub fn nonce(&self, keys: &TokenKeys) -> String {
        keys.csrf_token(&format!("sign-in nonce\0{}", self.value))
    }

    /// When it stops being accepted (seconds since the Unix epoch).
    pub fn expires_at(&self, ttl: Duration) -> u64 {
        self.issued.saturating_add(ttl.as_secs())
    }

    /// What the ledger records it under.
    pub fn id(&self) -> TokenId {
        TokenId::of_state(&self.value)
    }
}

/// The cookie's name.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE } else { COOKIE }
}

/// Sets the state in the browser for `ttl`.
pub fn set_state_cookie(state: &SignInState, ttl: Duration, secure: bool) -> HeaderValue {
    set_cookie(
        cookie_name(secure),
        state.value(),
        Some(ttl.as_secs() as i64),
        secure,
        same_site(secure),
    )
}

/// Deletes the state from the browser (after the sign-in it served).
pub fn clear_state_cookie(secure: bool) -> HeaderValue {
    set_cookie(cookie_name(secure), "", None, secure, same_site(secure))
}

fn same_site(secure: bool) -> SameSite {
    if secure {
        SameSite::None
    } else {
        SameSite::Lax
    }
}

/// The state a sign-in post may use: the browser's cookie, equal to the `posted` field,
/// made by this host less than `ttl` ago. 403 naming the check that failed. (Whether it
/// was used before is the ledger's to say, when the sign-in is recorded.)
pub fn check_posted(
    keys: &TokenKeys,
    headers: &HeaderMap,
    posted: Option<&str>,
    secure: bool,
    ttl: Duration,
    now: u64,
) -> Result<SignInState, ApiError> {
    let name = cookie_name(secure);
    let posted = posted.filter(|p| !p.is_empty()).ok_or_else(|| {
        ApiError::forbidden(
            "the sign-in post has no state: a sign-in starts at GET /session/login (or the \
             sign-in page), and the state it gives goes back as the `state` field",
        )
    })?;
    let ours = cookie(headers, name).ok_or_else(|| {
        ApiError::forbidden(format!(
            "no sign-in state in this browser (cookie {name}): the sign-in was not started \
             in this browser, or its state expired; start the sign-in again"
        ))
    })?;
    if !same_secret(&ours, posted) {
        return Err(ApiError::forbidden(
            "the posted sign-in state is not the one this host gave this browser (a sign-in \
             started somewhere else): start the sign-in again",
        ));
    }
    let state = SignInState::parse(keys, &ours).ok_or_else(|| {
        ApiError::forbidden("the sign-in state was not made by this host: start the sign-in again")
    })?;
    if now > state.expires_at(ttl) {
        return Err(ApiError::forbidden(format!(
            "the sign-in state has expired (it is valid for {} s, --sign-in-state-ttl): \
             start the sign-in again",
            ttl.as_secs()
        )));
    }
    Ok(state)
}

/// The browser's state, if it can still sign in (made here, not expired, not used): a
/// sign-in page shown again keeps it, so an earlier copy of the page still works.
pub fn current(
    keys: &TokenKeys,
    headers: &HeaderMap,
    ledger: &TokenLedger,
    secure: bool,
    ttl: Duration,
    now: u64,
) -> Option<SignInState> {
    let state = SignInState::parse(keys, &cookie(headers, cookie_name(secure))?)?;
    // Keep it only while it has a useful while left.
    let fresh = now.saturating_add(ttl.as_secs() / 2) <= state.expires_at(ttl);
    (fresh && !ledger.state_used(&state.id(), now)).then_some(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(&[5u8; 32]).unwrap()
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={value}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_state_is_accepted_only_from_its_own_browser_and_in_time() {
        let k = keys();
        let ttl = Duration::from_secs(600);
        let s = SignInState::new(&k, 1000);
        let h = with_cookie(s.value());
        assert_eq!(
            check_posted(&k, &h, Some(s.value()), false, ttl, 1001).unwrap(),
            s
        );
        let other = SignInState::new(&k, 1000);
        let says = |r: Result<SignInState, ApiError>| r.unwrap_err().message;
        assert!(
            says(check_posted(&k, &h, Some(other.value()), false, ttl, 1001))
                .contains("not the one")
        );
        assert!(
            says(check_posted(
                &k,
                &HeaderMap::new(),
                Some(s.value()),
                false,
                ttl,
                1001
            ))
            .contains("no sign-in state")
        );
        assert!(says(check_posted(&k, &h, None, false, ttl, 1001)).contains("has no state"));
        assert!(says(check_posted(&k, &h, Some(s.value()), false, ttl, 1601)).contains("expired"));
        // A state from another key, or with its time changed, is not ours.
        let foreign = SignInState::new(&TokenKeys::from_secret(&[6u8; 32]).unwrap(), 1000);
        let h2 = with_cookie(foreign.value());
        assert!(
            says(check_posted(
                &k,
                &h2,
                Some(foreign.value()),
                false,
                ttl,
                1001
            ))
            .contains("not made by this host")
        );
        let moved = s.value().replacen("1000", "9000", 1);
        let h3 = with_cookie(&moved);
        assert!(
            says(check_posted(&k, &h3, Some(&moved), false, ttl, 1001))
                .contains("not made by this host")
        );
        assert_ne!(s.nonce(&k), other.nonce(&k));
    }
}
