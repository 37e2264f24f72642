//! Cross-site request forgery protection for browser posts (signed double submit).
//!
//! A browser sends its session cookie with any request, including one a hostile page
//! makes it send. So every state-changing request whose credential is a cookie (or that
//! signs in) must also carry a CSRF token that only our own pages know: the keyed hash
//! of the session token (signed in) or of a random nonce cookie (the sign-in forms). It
//! comes as the `X-CSRF-Token` header (scripts) or the `csrf_token` form field (forms).
//! Requests authenticated by an `Authorization` header are not ambient and need none.
//! Browsers that say a request is cross-site (`Sec-Fetch-Site`) are refused outright.

use axum::http::{HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};

pub use super::cookies::{cookie, new_nonce};
use super::error::ApiError;
use super::tokens::{SESSION_COOKIE, TokenKeys, Via};

/// The nonce cookie that binds the sign-in forms' CSRF token.
pub const NONCE_COOKIE: &str = "xbhost_csrf";
/// The header scripts send the token in.
pub const HEADER: &str = "x-csrf-token";
/// The form field forms send the token in.
pub const FIELD: &str = "csrf_token";

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, `Secure` when the server is
/// reached over HTTPS (`--secure-cookies`); `max_age` None deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age_seconds: Option<i64>,
    secure: bool,
) -> HeaderValue {
    let mut c = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax);
    c = match max_age_seconds {
        Some(s) => c.max_age(cookie::time::Duration::seconds(s)),
        None => c.max_age(cookie::time::Duration::ZERO),
    };
    HeaderValue::from_str(&c.build().to_string()).expect("cookie values are ASCII")
}

/// What a page's CSRF token must be: bound to the session cookie when there is one, else
/// to the nonce cookie (if any).
pub fn expected(keys: &TokenKeys, headers: &HeaderMap) -> Option<String> {
    session_token(keys, headers).or_else(|| nonce_token(keys, headers))
}

fn session_token(keys: &TokenKeys, headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE).map(|s| keys.csrf_token(&format!("session\0{s}")))
}

/// The token of the sign-in forms: bound to the nonce cookie, whatever session cookie
/// (perhaps an expired one) the browser also has.
pub fn nonce_token(keys: &TokenKeys, headers: &HeaderMap) -> Option<String> {
    cookie(headers, NONCE_COOKIE).map(|nonce| token_for_nonce(keys, &nonce))
}

/// The sign-in forms' token for a nonce (the page that sets the nonce cookie needs it
/// before the browser sends the cookie back).
pub fn token_for_nonce(keys: &TokenKeys, nonce: &str) -> String {
    keys.csrf_token(&format!("nonce\0{nonce}"))
}

/// Checks a state-changing request. `credential` is how the request is authenticated
/// (`None` for the sign-in forms, whose token is bound to the nonce cookie); `presented`
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
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(ApiError::forbidden(
            "cross-site request refused: this action must come from xbhost's own pages",
        ));
    }
    let presented = headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .or(presented)
        .ok_or_else(|| {
            ApiError::forbidden(
                "missing CSRF token: send the page's token as X-CSRF-Token or csrf_token",
            )
        })?;
    let expected = match credential {
        Some(_) => session_token(keys, headers),
        None => nonce_token(keys, headers),
    };
    let expected = expected.ok_or_else(|| {
        ApiError::forbidden("no session or CSRF cookie: reload the page and try again")
    })?;
    // Compare as blake3 hashes: constant time.
    if blake3::hash(expected.as_bytes()) != blake3::hash(presented.as_bytes()) {
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
    fn sign_in_forms_bind_to_the_nonce() {
        let k = keys();
        let h = headers("xbhost_csrf=abc");
        let token = expected(&k, &h).unwrap();
        assert!(check(&k, &h, None, Some(&token)).is_ok());
        assert!(check(&k, &HeaderMap::new(), None, Some(&token)).is_err());
    }
}
