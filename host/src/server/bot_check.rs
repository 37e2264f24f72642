//! Which requests are judged by their User-Agent against the bot patterns (`bots.rs`).
//!
//! Bot detection is for browsers. A cookie session is a browser's, and its User-Agent
//! says whether a crawler (or a script replaying a learner's cookie) is asking. A bearer
//! token is what an embedding LMS's back end sends when it fetches a page or calls a
//! handler for a named learner: its User-Agent is its own HTTP client's (`curl/`,
//! `python-requests`) and says nothing about the learner, so it is not judged; otherwise
//! every learner of such an LMS would be shown control and enrolled in nothing. An LMS
//! that relays its learners' browsers' User-Agent asks for it to be judged with the
//! token's `"check_user_agent": true`. Renders and handler calls are judged alike.
//!
//! A browser's session token is judged however it is sent: a token carrying a sign-in
//! `nonce` (made for `POST /session`, so a browser's cookie) and the host's own
//! development sessions (minted with `check_user_agent`) are judged on a bearer header
//! too, or a scraper could replay a learner's cookie as `Authorization: Bearer` to dodge
//! the check.

use axum::http::{HeaderMap, header};

use super::tokens::{Identity, Via};

/// The longest User-Agent judged, in bytes: real ones are a few hundred; the header is
/// the client's, so what is matched and logged is bounded.
pub const MAX_USER_AGENT_BYTES: usize = 1024;

/// Whether this caller's User-Agent is judged: always on a cookie session; on a bearer
/// token when the token asks for it or is a browser's sign-in token (it has a `nonce`).
pub fn is_judged(identity: &Identity) -> bool {
    match identity.via {
        Via::Cookie => true,
        Via::Header => identity.claims.check_user_agent || identity.claims.nonce.is_some(),
    }
}

/// The User-Agent the host judges for this request (at most [`MAX_USER_AGENT_BYTES`],
/// cut at a character), or `None` when the caller is not judged or sent none.
pub fn judged_user_agent(identity: &Identity, headers: &HeaderMap) -> Option<String> {
    if !is_judged(identity) {
        return None;
    }
    let value = headers.get(header::USER_AGENT)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let mut end = text.len().min(MAX_USER_AGENT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::http::HeaderValue;

    use super::*;
    use crate::server::tokens::Claims;

    fn caller(via: Via, check_user_agent: bool) -> Identity {
        let mut claims = Claims::new("lena", "Lena", BTreeMap::new(), 60);
        claims.check_user_agent = check_user_agent;
        Identity { claims, via }
    }

    fn headers(user_agent: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_bytes(user_agent).unwrap(),
        );
        headers
    }

    #[test]
    fn cookies_are_judged_bearers_only_when_their_token_asks() {
        let curl = headers(b"curl/8.5.0");
        assert_eq!(
            judged_user_agent(&caller(Via::Cookie, false), &curl).as_deref(),
            Some("curl/8.5.0")
        );
        assert_eq!(judged_user_agent(&caller(Via::Header, false), &curl), None);
        assert_eq!(
            judged_user_agent(&caller(Via::Header, true), &curl).as_deref(),
            Some("curl/8.5.0")
        );
        assert_eq!(
            judged_user_agent(&caller(Via::Cookie, false), &HeaderMap::new()),
            None
        );
    }

    #[test]
    fn a_browser_sign_in_token_replayed_as_a_bearer_is_judged() {
        let mut replayed = caller(Via::Header, false);
        replayed.claims.nonce = Some("n-1".into());
        assert_eq!(
            judged_user_agent(&replayed, &headers(b"curl/8.5.0")).as_deref(),
            Some("curl/8.5.0")
        );
    }

    #[test]
    fn a_long_or_binary_user_agent_is_bounded() {
        let mut long = "é".repeat(MAX_USER_AGENT_BYTES).into_bytes();
        long.extend_from_slice(b" Googlebot/2.1");
        let judged = judged_user_agent(&caller(Via::Cookie, false), &headers(&long)).unwrap();
        assert!(judged.len() <= MAX_USER_AGENT_BYTES, "{}", judged.len());
        assert!(judged.starts_with('é') && !judged.contains("Googlebot"));
        let binary = judged_user_agent(&caller(Via::Cookie, false), &headers(b"bot\xff/1"));
        assert_eq!(binary.as_deref(), Some("bot\u{fffd}/1"));
    }
}
