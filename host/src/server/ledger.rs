//! What this host remembers about tokens, in memory and bounded: the tokens and sign-in
//! states already used to sign in (so none signs in twice), and the sessions signed out
//! (so a copied session cookie is refused after sign-out, as a cookie or a bearer
//! token). Each id is kept until what it names expires, then forgotten: a token cannot
//! outlive `--max-token-lifetime`, so neither record outgrows what one lifetime of
//! sign-ins puts in it.
//!
//! Each record holds at most `--max-token-records` ids. A full record is never made room
//! in by forgetting an id early (that would let a used token sign in again, or a revoked
//! session back in): the sign-in or sign-out that does not fit is refused with 503
//! naming the limit, until ids expire.
//!
//! The records live in memory: a restart forgets them (a revoked session's cookie then
//! works again until its token expires, at most one maximum lifetime).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use axum::http::StatusCode;

use super::error::ApiError;
use super::tokens::Claims;

/// The default of `--max-token-records`.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

/// What a record keys on: a hash, so ids of any length cost the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId([u8; 32]);

impl TokenId {
    /// A token's id: its `jti` when it has one (the issuer's name for it), else the hash
    /// of the token itself. Sign-in and sign-out use the same id.
    pub fn of_token(token: &str, claims: &Claims) -> TokenId {
        let mut hasher = blake3::Hasher::new();
        match &claims.jti {
            Some(jti) => hasher.update(b"jti\0").update(jti.as_bytes()),
            None => hasher.update(b"token\0").update(token.as_bytes()),
        };
        TokenId(*hasher.finalize().as_bytes())
    }

    /// A sign-in state's id.
    pub fn of_state(state: &str) -> TokenId {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"state\0").update(state.as_bytes());
        TokenId(*hasher.finalize().as_bytes())
    }
}

/// Ids until their expiry, at most `capacity` of them.
#[derive(Debug)]
struct ExpiringSet {
    capacity: usize,
    until: HashMap<TokenId, u64>,
    by_expiry: BTreeSet<(u64, TokenId)>,
}

impl ExpiringSet {
    fn new(capacity: usize) -> ExpiringSet {
        ExpiringSet {
            capacity: capacity.max(1),
            until: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Forgets the ids that expired before `now`.
    fn prune(&mut self, now: u64) {
        while let Some(&(until, id)) = self.by_expiry.first() {
            if until >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.until.remove(&id);
        }
    }

    fn contains(&self, id: &TokenId, now: u64) -> bool {
        self.until.get(id).is_some_and(|until| *until >= now)
    }

    fn has_room_for(&self, n: usize) -> bool {
        self.until.len() + n <= self.capacity
    }

    fn insert(&mut self, id: TokenId, until: u64) {
        if let Some(old) = self.until.insert(id, until) {
            self.by_expiry.remove(&(old, id));
        }
        self.by_expiry.insert((until, id));
    }

    fn len(&self) -> usize {
        self.until.len()
    }
}

/// The used sign-ins and the revoked sessions.
#[derive(Debug)]
pub struct TokenLedger {
    used: Mutex<ExpiringSet>,
    revoked: Mutex<ExpiringSet>,
}

fn full(what: &str, capacity: usize) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "{what}: the record holds {capacity} ids that have not expired yet \
             (--max-token-records); try again later"
        ),
    )
}

impl TokenLedger {
    /// Records of at most `capacity` ids each.
    pub fn new(capacity: usize) -> TokenLedger {
        TokenLedger {
            used: Mutex::new(ExpiringSet::new(capacity)),
            revoked: Mutex::new(ExpiringSet::new(capacity)),
        }
    }

    /// Records a sign-in: the token and the state it used, each until it expires. Refused
    /// (nothing recorded) when the token or the state was used before, or there is no
    /// room.
    pub fn consume_sign_in(
        &self,
        token: TokenId,
        token_until: u64,
        state: TokenId,
        state_until: u64,
        now: u64,
    ) -> Result<(), ApiError> {
        let mut used = self.used.lock().expect("the ledger lock is never poisoned");
        used.prune(now);
        if used.contains(&token, now) {
            return Err(ApiError::unauthorized(
                "the token has already been used to sign in (a token signs in once): start \
                 a new sign-in from the LMS",
            ));
        }
        if used.contains(&state, now) {
            return Err(ApiError::forbidden(
                "this sign-in state has already been used (a state signs in once): start \
                 the sign-in again",
            ));
        }
        if !used.has_room_for(2) {
            return Err(full("cannot record this sign-in", used.capacity));
        }
        used.insert(token, token_until);
        used.insert(state, state_until);
        Ok(())
    }

    /// Records a sign-in that carries no token of the LMS (the development sign-in): only
    /// its state.
    pub fn consume_state(&self, state: TokenId, until: u64, now: u64) -> Result<(), ApiError> {
        let mut used = self.used.lock().expect("the ledger lock is never poisoned");
        used.prune(now);
        if used.contains(&state, now) {
            return Err(ApiError::forbidden(
                "this sign-in state has already been used (a state signs in once): reload \
                 the page and sign in again",
            ));
        }
        if !used.has_room_for(1) {
            return Err(full("cannot record this sign-in", used.capacity));
        }
        used.insert(state, until);
        Ok(())
    }

    /// Whether a state was used to sign in.
    pub fn state_used(&self, state: &TokenId, now: u64) -> bool {
        let used = self.used.lock().expect("the ledger lock is never poisoned");
        used.contains(state, now)
    }

    /// Revokes a session until its token expires.
    pub fn revoke(&self, session: TokenId, until: u64, now: u64) -> Result<(), ApiError> {
        let mut revoked = self
            .revoked
            .lock()
            .expect("the ledger lock is never poisoned");
        revoked.prune(now);
        if revoked.contains(&session, now) {
            return Ok(());
        }
        if !revoked.has_room_for(1) {
            return Err(full(
                "cannot revoke the session (your browser forgets it, but a copy of its \
                 cookie stays valid until it expires)",
                revoked.capacity,
            ));
        }
        revoked.insert(session, until);
        Ok(())
    }

    /// Whether a session was signed out on this host.
    pub fn is_revoked(&self, session: &TokenId, now: u64) -> bool {
        let revoked = self
            .revoked
            .lock()
            .expect("the ledger lock is never poisoned");
        revoked.contains(session, now)
    }

    /// How many ids each record holds (used sign-ins, revoked sessions).
    pub fn sizes(&self) -> (usize, usize) {
        let used = self.used.lock().expect("the ledger lock is never poisoned");
        let revoked = self
            .revoked
            .lock()
            .expect("the ledger lock is never poisoned");
        (used.len(), revoked.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TokenId {
        TokenId::of_state(&n.to_string())
    }

    #[test]
    fn ids_are_kept_until_they_expire_and_bounded() {
        let ledger = TokenLedger::new(2);
        ledger.consume_sign_in(id(1), 100, id(2), 50, 10).unwrap();
        let replay = ledger
            .consume_sign_in(id(1), 100, id(3), 50, 20)
            .unwrap_err();
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
        // Full: refused, nothing recorded.
        let full = ledger.consume_state(id(4), 60, 20).unwrap_err();
        assert_eq!(full.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            full.message.contains("--max-token-records"),
            "{}",
            full.message
        );
        assert!(!ledger.state_used(&id(4), 20));
        // The state expired at 50: its room is free again, the token still recorded.
        ledger.consume_state(id(4), 60, 51).unwrap();
        assert_eq!(ledger.sizes(), (2, 0));
        assert!(ledger.consume_sign_in(id(1), 100, id(5), 60, 52).is_err());
        // Everything expired.
        ledger.consume_sign_in(id(1), 300, id(5), 300, 101).unwrap();
    }

    #[test]
    fn revoked_sessions_stay_revoked_until_expiry() {
        let ledger = TokenLedger::new(1);
        ledger.revoke(id(1), 100, 10).unwrap();
        ledger.revoke(id(1), 100, 11).unwrap();
        assert!(ledger.is_revoked(&id(1), 100));
        assert!(!ledger.is_revoked(&id(1), 101));
        assert_eq!(
            ledger.revoke(id(2), 100, 50).unwrap_err().status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        ledger.revoke(id(2), 200, 101).unwrap();
    }
}
