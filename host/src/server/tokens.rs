//! Tokens: HS256-signed JWTs issued by the LMS that embeds xbhost, their claims and
//! roles, and the verified caller they make.
//!
//! A token names the user (`sub`, `name`) and their role per course (`roles`, course key
//! or `*` for every course, to `learner`, `staff` or `admin`). It arrives as an
//! `Authorization: Bearer` header (an LMS calling us) or as the session cookie
//! (`xbhost_session`, or `__Host-xbhost_session` with `--secure-cookies`; a browser's,
//! set by `POST /session` or the dev sign-in). The key is shared with the LMS; without
//! one the server does not start. Every token passes the same checks
//! (`token_policy.rs`): signature, `exp`, `nbf`, the configured `iss` and `aud`, and
//! the maximum lifetime.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::token_policy::TokenPolicy;
use crate::ids::check_id;

/// The environment variable holding the signing key.
pub const SECRET_ENV: &str = "XBHOST_TOKEN_SECRET";
/// Shortest key accepted: HS256 wants at least as many key bytes as hash bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The browser's session cookie (an xbhost token), over plain HTTP.
pub const SESSION_COOKIE: &str = "xbhost_session";
/// The session cookie with `--secure-cookies`: the `__Host-` prefix makes browsers keep
/// it only if it is Secure, for path `/` and without a Domain, so no other host (a
/// sibling subdomain, a plain-HTTP page) can set or replace it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-xbhost_session";
/// The course-key wildcard in `roles`: every course.
pub const ALL_COURSES: &str = "*";

/// A role in a course. Each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Learner,
    Staff,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "learner" => Ok(Role::Learner),
            "staff" => Ok(Role::Staff),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (learner, staff or admin)")),
        }
    }
}

/// What an xbhost token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (what tags, groups and state are stored under).
    pub sub: String,
    /// The username shown on pages.
    #[serde(default)]
    pub name: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not valid before, seconds since the Unix epoch (checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Who issued the token (checked against `--token-issuer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Whom the token is for (checked against `--token-audience`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// The token's id: a sign-in records it (else the token's hash) so it signs in once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The sign-in nonce `GET /session/login` gave (a sign-in token must carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Course key (or `*`) to role.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// Judge this token's bearer requests by their User-Agent too, as a browser's (for an
    /// LMS that relays its learners' browsers' User-Agent). Cookie sessions are always
    /// judged; see `bot_check.rs`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_user_agent: bool,
}

/// A token's `aud`: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Claims {
    /// Claims for `user` valid for `ttl_seconds` from now.
    pub fn new(user: &str, name: &str, roles: BTreeMap<String, Role>, ttl_seconds: u64) -> Claims {
        let now = jsonwebtoken::get_current_timestamp();
        Claims {
            sub: user.to_string(),
            name: name.to_string(),
            exp: now + ttl_seconds,
            iat: Some(now),
            nbf: None,
            iss: None,
            aud: None,
            jti: None,
            nonce: None,
            roles,
            check_user_agent: false,
        }
    }

    /// The user's role in a course: the higher of the course's own and the wildcard's.
    pub fn role_in(&self, course_key: &str) -> Option<Role> {
        self.roles
            .get(course_key)
            .copied()
            .max(self.roles.get(ALL_COURSES).copied())
    }

    /// Admin of every course: may install plugins.
    pub fn is_global_admin(&self) -> bool {
        self.roles.get(ALL_COURSES) == Some(&Role::Admin)
    }

    /// The name to show: the username, or the id when there is none.
    pub fn display_name(&self) -> &str {
        if self.name.is_empty() {
            &self.sub
        } else {
            &self.name
        }
    }
}

/// Signs and verifies tokens (under a [`TokenPolicy`]), derives the CSRF key from one
/// secret, and knows the session cookie's name.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    policy: TokenPolicy,
    validation: Validation,
    csrf_key: [u8; 32],
    session_cookie: &'static str,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// Keys from a shared secret of at least [`MIN_SECRET_BYTES`].
    pub fn from_secret(secret: &[u8]) -> Result<TokenKeys> {
        if secret.len() < MIN_SECRET_BYTES {
            bail!(
                "the token signing key is {} bytes; it must be at least {MIN_SECRET_BYTES} \
                 (for example `openssl rand -hex 32`)",
                secret.len()
            );
        }
        let policy = TokenPolicy::default();
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation: policy.validation(),
            policy,
            csrf_key: blake3::derive_key("xbhost 2026 csrf token key", secret),
            session_cookie: SESSION_COOKIE,
        })
    }

    /// These keys checking tokens under `policy`, the session cookie named for
    /// `secure_cookies` ([`SECURE_SESSION_COOKIE`] or [`SESSION_COOKIE`]).
    pub fn with_policy(mut self, policy: TokenPolicy, secure_cookies: bool) -> TokenKeys {
        self.validation = policy.validation();
        self.policy = policy;
        self.session_cookie = if secure_cookies {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        };
        self
    }

    /// The checks tokens pass.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The name the session cookie is set and read under.
    pub fn session_cookie(&self) -> &'static str {
        self.session_cookie
    }

    /// The key named on the command line (a file), else `XBHOST_TOKEN_SECRET`; an error
    /// that says how to provide one when there is neither.
    pub fn load(file: Option<&Path>) -> Result<TokenKeys> {
        let secret = match file {
            Some(path) => {
                let bytes = std::fs::read(path).with_context(|| {
                    format!("cannot read the token signing key file {}", path.display())
                })?;
                // The key is bytes, not text: only a trailing line break is dropped.
                let mut key = bytes;
                while key.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    key.pop();
                }
                key
            }
            None => match std::env::var(SECRET_ENV) {
                Ok(value) if !value.is_empty() => value.into_bytes(),
                _ => bail!(
                    "no token signing key: set {SECRET_ENV} or pass --token-secret-file FILE \
                     (the HS256 key shared with the LMS that issues tokens, at least \
                     {MIN_SECRET_BYTES} bytes). xbhost does not serve without authentication"
                ),
            },
        };
        TokenKeys::from_secret(&secret).with_context(|| match file {
            Some(path) => format!("token signing key file {}", path.display()),
            None => format!("token signing key in {SECRET_ENV}"),
        })
    }

    /// Signs claims into a token.
    pub fn issue(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .context("signing a token")
    }

    /// Checks a token's signature, algorithm, expiry, `nbf`, the configured `iss` and
    /// `aud`, its lifetime and its user id; the error names the check that failed.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_string(),
                ErrorKind::ImmatureSignature => {
                    "the token is not valid yet (its nbf is in the future)".to_string()
                }
                ErrorKind::InvalidIssuer => format!(
                    "the token's issuer (iss) is not {:?}, the one this host accepts \
                     (--token-issuer)",
                    self.policy.issuer.as_deref().unwrap_or_default()
                ),
                ErrorKind::InvalidAudience => format!(
                    "the token's audience (aud) does not name {:?}, this host's \
                     (--token-audience)",
                    self.policy.audience.as_deref().unwrap_or_default()
                ),
                ErrorKind::InvalidSignature => {
                    "the token's signature does not match (tampered, or signed with another key)"
                        .to_string()
                }
                ErrorKind::InvalidAlgorithm => {
                    "the token is not signed with HS256, the only algorithm accepted".to_string()
                }
                ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                    "iss" => "the token has no \"iss\" claim (this host demands one: \
                              --token-issuer)"
                        .to_string(),
                    "aud" => "the token has no \"aud\" claim (this host demands one: \
                              --token-audience)"
                        .to_string(),
                    _ => format!("the token has no {claim:?} claim"),
                },
                ErrorKind::InvalidClaimFormat(claim) => {
                    format!("the token is malformed: its {claim:?} claim is not a number")
                }
                _ => format!("the token is malformed: {e}"),
            })?;
        let claims = data.claims;
        self.policy.check_lifetime(
            claims.exp,
            claims.iat,
            jsonwebtoken::get_current_timestamp(),
        )?;
        check_id("user id", &claims.sub)
            .map_err(|e| format!("the token's user id is not usable: {e}"))?;
        Ok(claims)
    }

    /// The CSRF token for a binding (the session token, or a pre-session nonce): a keyed
    /// hash, so only this server can make one and it is worthless for another session.
    pub fn csrf_token(&self, binding: &str) -> String {
        let hash = blake3::keyed_hash(&self.csrf_key, binding.as_bytes());
        hash.to_hex()[..32].to_string()
    }
}

/// How the token reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `Authorization: Bearer`: a program, not a browser's ambient credential.
    Header,
    /// The session cookie: a browser; posts need a CSRF token.
    Cookie,
}

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Identity {
    pub claims: Claims,
    pub via: Via,
}

impl Identity {
    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }

    /// The caller's role in a course, or 403 naming the user and course.
    pub fn require(&self, course_key: &str, role: Role) -> Result<Role, ApiError> {
        match self.claims.role_in(course_key) {
            Some(have) if have >= role => Ok(have),
            Some(have) => Err(ApiError::forbidden(format!(
                "user {:?} is {have:?} in course {course_key:?}; this needs {role:?}",
                self.claims.sub
            ))),
            None => Err(ApiError::forbidden(format!(
                "user {:?} has no role in course {course_key:?}",
                self.claims.sub
            ))),
        }
    }

    /// 403 unless the caller administers every course.
    pub fn require_global_admin(&self) -> Result<(), ApiError> {
        if self.claims.is_global_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "user {:?} is not an admin: this needs the admin role for every course (\"*\")",
                self.claims.sub
            )))
        }
    }
}
