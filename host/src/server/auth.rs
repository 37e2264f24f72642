//! Who is asking: the verified caller of a request, from an `Authorization: Bearer`
//! header (an LMS calling us) or the session cookie (a browser), as axum extractors. The
//! tokens themselves are `tokens.rs` (their types are re-exported here); a token whose
//! session was signed out on this host is refused (`ledger.rs`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::cookies;
use super::error::ApiError;
use super::ledger::TokenId;
use super::state::AppState;
pub use super::token_policy::TokenPolicy;
pub use super::tokens::{
    ALL_COURSES, Audience, Claims, Identity, MIN_SECRET_BYTES, Role, SECRET_ENV,
    SECURE_SESSION_COOKIE, SESSION_COOKIE, TokenKeys, Via,
};

/// The token of a request, if it carries one, and how: the `Authorization` header, else
/// the session cookie named `session_cookie` (only that name: with `--secure-cookies`, a
/// plain `xbhost_session` cookie, which any site sharing the domain could set, is not
/// read).
pub fn presented_token(
    headers: &HeaderMap,
    session_cookie: &str,
) -> Result<Option<(String, Via)>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        return Ok(Some((token.trim().to_string(), Via::Header)));
    }
    Ok(cookies::cookie(headers, session_cookie).map(|t| (t, Via::Cookie)))
}

impl FromRequestParts<AppState> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, via) = presented_token(&parts.headers, state.keys().session_cookie())?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "no token: send `Authorization: Bearer <token>` or sign in (session cookie)",
                )
            })?;
        let claims = state
            .keys()
            .verify(&token)
            .map_err(ApiError::unauthorized)?;
        let now = jsonwebtoken::get_current_timestamp();
        if state
            .ledger()
            .is_revoked(&TokenId::of_token(&token, &claims), now)
        {
            return Err(ApiError::unauthorized(
                "the session was signed out on this host (revoked): sign in again",
            ));
        }
        Ok(Identity { claims, via })
    }
}

/// A caller who may not be signed in (the workbench's pages): `None` without a token,
/// and also with a bad one (the reason kept for the page to show).
#[derive(Debug, Clone)]
pub struct MaybeIdentity {
    pub identity: Option<Identity>,
    pub rejected: Option<String>,
}

impl FromRequestParts<AppState> for MaybeIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = presented_token(&parts.headers, state.keys().session_cookie())
            .ok()
            .flatten()
            .is_some();
        Ok(match Identity::from_request_parts(parts, state).await {
            Ok(identity) => MaybeIdentity {
                identity: Some(identity),
                rejected: None,
            },
            // No token at all is not a rejection: the page offers sign-in.
            Err(e) => MaybeIdentity {
                identity: None,
                rejected: presented.then_some(e.message),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    #[test]
    fn a_short_key_is_refused() {
        let err = TokenKeys::from_secret(b"short").unwrap_err().to_string();
        assert!(
            err.contains("5 bytes") && err.contains("at least 32"),
            "{err}"
        );
    }

    #[test]
    fn tokens_round_trip_and_roles_combine() {
        let k = keys();
        let roles = BTreeMap::from([
            ("*".to_string(), Role::Learner),
            ("course-v1:a+b+c".to_string(), Role::Staff),
        ]);
        let claims = Claims::new("alice", "Alice", roles, 60);
        let back = k.verify(&k.issue(&claims).unwrap()).unwrap();
        assert_eq!(back, claims);
        assert_eq!(back.role_in("course-v1:a+b+c"), Some(Role::Staff));
        assert_eq!(back.role_in("course-v1:other"), Some(Role::Learner));
        assert!(!back.is_global_admin());
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_are_refused() {
        let k = keys();
        let mut claims = Claims::new("alice", "", BTreeMap::new(), 60);
        claims.exp = jsonwebtoken::get_current_timestamp() - 3600;
        let err = k.verify(&k.issue(&claims).unwrap()).unwrap_err();
        assert!(err.contains("expired"), "{err}");

        let good = k
            .issue(&Claims::new("alice", "", BTreeMap::new(), 60))
            .unwrap();
        let other = TokenKeys::from_secret(&[7u8; 32]).unwrap();
        assert!(other.verify(&good).unwrap_err().contains("signature"));

        // Swap the payload for one that makes alice an admin, keeping the signature.
        let parts: Vec<&str> = good.split('.').collect();
        let admin = Claims::new(
            "alice",
            "",
            BTreeMap::from([("*".to_string(), Role::Admin)]),
            60,
        );
        let forged_payload = k.issue(&admin).unwrap();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            forged_payload.split('.').nth(1).unwrap(),
            parts[2]
        );
        assert!(k.verify(&forged).unwrap_err().contains("signature"));
        assert!(k.verify("not.a.token").unwrap_err().contains("malformed"));
    }

    #[test]
    fn the_policy_checks_issuer_audience_and_nbf() {
        let policy = TokenPolicy {
            issuer: Some("lms".into()),
            audience: Some("xbhost".into()),
            ..TokenPolicy::default()
        };
        let k = keys().with_policy(policy, false);
        let mut claims = Claims::new("alice", "", BTreeMap::new(), 60);
        claims.iss = Some("lms".into());
        claims.aud = Some(Audience::Many(vec!["x".into(), "xbhost".into()]));
        assert!(k.verify(&k.issue(&claims).unwrap()).is_ok());
        let refused = |c: &Claims| k.verify(&k.issue(c).unwrap()).unwrap_err();
        let mut other = claims.clone();
        other.iss = Some("elsewhere".into());
        assert!(refused(&other).contains("--token-issuer"));
        other = claims.clone();
        other.aud = None;
        assert!(refused(&other).contains("no \"aud\""));
        other = claims.clone();
        other.nbf = Some(jsonwebtoken::get_current_timestamp() + 60);
        assert!(refused(&other).contains("not valid yet"));
    }

    #[test]
    fn csrf_tokens_are_bound_and_keyed() {
        let k = keys();
        assert_eq!(k.csrf_token("a"), k.csrf_token("a"));
        assert_ne!(k.csrf_token("a"), k.csrf_token("b"));
        let other = TokenKeys::from_secret(&[7u8; 32]).unwrap();
        assert_ne!(k.csrf_token("a"), other.csrf_token("a"));
    }
}
