//! Reading a request's cookies, writing `Set-Cookie` values, making random nonces and
//! comparing secrets: small helpers the sign-in, CSRF and error code share, with no
//! dependency on them.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` value: HttpOnly, path `/`, no Domain (so a `__Host-` name is kept),
/// `Secure` when the server is reached over HTTPS (`--secure-cookies`); `max_age` None
/// deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age_seconds: Option<i64>,
    secure: bool,
    same_site: SameSite,
) -> HeaderValue {
    let c = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(same_site)
        .max_age(match max_age_seconds {
            Some(s) => cookie::time::Duration::seconds(s),
            None => cookie::time::Duration::ZERO,
        });
    HeaderValue::from_str(&c.build().to_string()).expect("cookie values are ASCII")
}

/// A fresh random nonce (hex).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets are equal, in time that does not depend on where they differ
/// (blake3 hashes compare in constant time).
pub fn same_secret(a: &str, b: &str) -> bool {
    blake3::hash(a.as_bytes()) == blake3::hash(b.as_bytes())
}
