//! Cross-site request forgery protection for browser posts (signed double submit).
//!
//! A browser sends its session cookie with any request, including one a hostile page
//! makes it send. So every state-changing request whose credential is a cookie must also
//! carry a CSRF token that only our own pages know: the keyed hash of the session token.
//! It comes as the `X-CSRF-Token` header (scripts) or the `csrf_token` form field
//! (forms). Requests authenticated by an `Authorization` header are not ambient and need
//! none. Browsers that say a request is cross-site (`Sec-Fetch-Site`) are refused
//! outright. Sign-in posts, which have no session yet, are bound to the browser by the
//! sign-in state instead (`sign_in_state.rs`).

use axum::http::{HeaderMap, HeaderValue};
use cookie::SameSite;

pub use super::cookies::{cookie, new_nonce};
use super::cookies::{same_secret, set_cookie as cookie_header};
use super::error::ApiError;
use super::tokens::{TokenKeys, Via};

/// The header scripts send the token in.
pub const HEADER: &str = "x-csrf-token";
/// The form field forms send the token in.
pub const FIELD: &str = "csrf_token";

/// A `Set-Cookie` value for the session: HttpOnly, SameSite=Lax, path `/`, `Secure`
/// when the server is reached over HTTPS (`--secure-cookies`); `max_age` None deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age_seconds: Option<i64>,
    secure: bool,
) -> HeaderValue {
    cookie_header(name, value, max_age_seconds, secure, SameSite::Lax)
}

/// What a page's CSRF token must be: bound to the session cookie, when there is one.
pub fn expected(keys: &TokenKeys, headers: &HeaderMap) -> Option<String> {
    session_token(keys, headers)
}

fn session_token(keys: &TokenKeys, headers: &HeaderMap) -> Option<String> {
    cookie(headers, keys.session_cookie()).map(|s| keys.csrf_token(&format!("session\0{s}")))
}

/// 403 when the browser says the request is cross-site.
pub fn refuse_cross_site(headers: &HeaderMap) -> Result<(), ApiError> {
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(ApiError::forbidden(
            "cross-site request refused: this action must come from xbhost's own pages",
        ));
    }
    Ok(())
}

/// Checks a state-changing request. `credential` is how the request is authenticated
/// (a bearer header needs no token; a cookie, or none, needs the session's); `presented`
/// the form field, if the body had one.
pub fn check(
    keys: &TokenKeys,
    headers: &HeaderMap,
    credential: Option<Via>,
    presented: Option<&str>,
) -> Result<(), ApiError> {
    if credential == Some(Via::Header) {
        return Ok(());
    }
    refuse_cross_site(headers)?;
    let presented = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .or(presented)
        .ok_or_else(|| {
            ApiError::forbidden(
                "missing CSRF token: send the page's token as X-CSRF-Token or csrf_token",
            )
        })?;
    let expected = session_token(keys, headers)
        .ok_or_else(|| ApiError::forbidden("no session cookie: reload the page and try again"))?;
    if !same_secret(&expected, presented) {
        return Err(ApiError::forbidden(
            "wrong CSRF token (from another session or page): reload the page and try again",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::http::header;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(&[3u8; 32]).unwrap()
    }

    fn headers(cookies: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookies).unwrap());
        h
    }

    #[test]
    fn cookie_sessions_need_the_bound_token() {
        let k = keys();
        let h = headers("xbhost_session=tok1; other=x");
        let identity = Some(Via::Cookie);
        let good = expected(&k, &h).unwrap();
        assert!(check(&k, &h, identity, Some(&good)).is_ok());
        assert_eq!(
            check(&k, &h, identity, None).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let other = expected(&k, &headers("xbhost_session=tok2")).unwrap();
        assert_eq!(
            check(&k, &h, identity, Some(&other)).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        let mut cross = h.clone();
        cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(
            check(&k, &cross, identity, Some(&good)).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(check(&k, &HeaderMap::new(), Some(Via::Header), None).is_ok());
    }

    #[test]
    fn the_secure_session_cookie_is_read_under_its_own_name() {
        let k = keys().with_policy(Default::default(), true);
        let plain = headers("xbhost_session=tok1");
        assert!(expected(&k, &plain).is_none());
        let secure = headers("__Host-xbhost_session=tok1");
        assert_eq!(expected(&k, &secure), expected(&keys(), &plain));
    }
}
