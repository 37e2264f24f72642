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
//! On the embedded store the records live in memory: a restart forgets them (a revoked
//! session's cookie then works again until its token expires, at most one maximum
//! lifetime). On a store shared by several hosts (PostgreSQL,
//! `Storage::shares_token_records`) every sign-in is also recorded there, atomically,
//! so a token or state signs in once across all hosts; a sign-out is recorded there and
//! announced, every host adds it to its memory (and loads the store's at start, and again
//! when its change notices may have been missed), so a revoked session is refused by
//! every host, across restarts too. Checking a session stays a lookup in memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use super::error::ApiError;
use super::tokens::Claims;
use crate::storage::Storage;

/// The kinds of record kept in a shared store.
const USED: &str = "used";
const REVOKED: &str = "revoked";

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

    /// The id as a shared store keeps it.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// An id a shared store kept (see [`TokenId::to_hex`]).
    pub fn from_hex(hex: &str) -> Option<TokenId> {
        blake3::Hash::from_hex(hex)
            .ok()
            .map(|h| TokenId(*h.as_bytes()))
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
pub struct TokenLedger {
    used: Mutex<ExpiringSet>,
    revoked: Mutex<ExpiringSet>,
    /// The store the records are shared through, when it shares them.
    shared: Option<Arc<dyn Storage>>,
}

/// The answer when the shared store cannot record a sign-in or sign-out.
fn store_failed(what: &str, e: &anyhow::Error) -> ApiError {
    tracing::error!("{what}: {e:#}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{what}: the store is unavailable; retry shortly"),
    )
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
            shared: None,
        }
    }

    /// Records shared through `storage` when it shares them (else kept in memory only):
    /// the revocations it holds are loaded now.
    pub fn on_store(capacity: usize, storage: Arc<dyn Storage>) -> anyhow::Result<TokenLedger> {
        let mut ledger = TokenLedger::new(capacity);
        if storage.shares_token_records() {
            ledger.shared = Some(storage);
            ledger.reload_revocations(now_secs())?;
        }
        Ok(ledger)
    }

    /// Loads every unexpired revocation the shared store holds (at start, and when
    /// notices of new ones may have been missed).
    pub fn reload_revocations(&self, now: u64) -> anyhow::Result<()> {
        let Some(store) = &self.shared else {
            return Ok(());
        };
        let records = store.token_records(REVOKED, now)?;
        let mut revoked = self
            .revoked
            .lock()
            .expect("the ledger lock is never poisoned");
        revoked.prune(now);
        for (hex, until) in records {
            self.heard(&mut revoked, &hex, until);
        }
        Ok(())
    }

    /// Another host revoked a session (a change notice).
    pub fn heard_revoked(&self, hex: &str, until: u64) {
        let mut revoked = self
            .revoked
            .lock()
            .expect("the ledger lock is never poisoned");
        revoked.prune(now_secs());
        self.heard(&mut revoked, hex, until);
    }

    fn heard(&self, revoked: &mut ExpiringSet, hex: &str, until: u64) {
        let Some(id) = TokenId::from_hex(hex) else {
            tracing::warn!(
                id = hex,
                "ignoring a revocation whose id is not a ledger id"
            );
            return;
        };
        if revoked.until.contains_key(&id) {
            return;
        }
        if !revoked.has_room_for(1) {
            // Not forgetting an id early also means not taking one in: the store still
            // holds it, and it is loaded again once room is made.
            tracing::error!(
                capacity = revoked.capacity,
                "a session revoked on another host does not fit in this host's record (--max-token-records)"
            );
            return;
        }
        revoked.insert(id, until);
    }

    /// The guard kept while the record is checked and written in memory only (the
    /// check and the write must be one step), released before a shared store's round
    /// trip (which is the one step then): `None` means "lock again to write".
    fn unlocked_for_store<'a>(
        &self,
        guard: std::sync::MutexGuard<'a, ExpiringSet>,
    ) -> Option<std::sync::MutexGuard<'a, ExpiringSet>> {
        if self.shared.is_some() {
            drop(guard);
            None
        } else {
            Some(guard)
        }
    }

    /// Records `ids` in the shared store, all or none: `Some(i)` if the `i`th was there.
    fn record_shared(
        &self,
        kind: &str,
        ids: &[(TokenId, u64)],
        now: u64,
    ) -> Result<Option<usize>, ApiError> {
        let Some(store) = &self.shared else {
            return Ok(None);
        };
        let records: Vec<(String, u64)> = ids.iter().map(|(id, u)| (id.to_hex(), *u)).collect();
        // Sign-in and sign-out handlers run on the async workers: the round trip (up to
        // the store's call limit on a stalled database) must not take a worker from every
        // other request, so the worker's other tasks move elsewhere meanwhile.
        let record = || store.record_tokens_once(kind, &records, now);
        let on_worker = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let recorded = if on_worker {
            tokio::task::block_in_place(record)
        } else {
            record()
        };
        recorded.map_err(|e| {
            let what = if kind == REVOKED {
                "cannot record the sign-out"
            } else {
                "cannot record the sign-in"
            };
            store_failed(what, &e)
        })
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
        // A shared store is the authority (atomic across hosts); the lock is not held
        // across its round trip (the store's change listener may need it meanwhile).
        let mut used = self.unlocked_for_store(used);
        match self.record_shared(USED, &[(token, token_until), (state, state_until)], now)? {
            Some(0) => {
                return Err(ApiError::unauthorized(
                    "the token has already been used to sign in (a token signs in once): \
                     start a new sign-in from the LMS",
                ));
            }
            Some(_) => {
                return Err(ApiError::forbidden(
                    "this sign-in state has already been used (a state signs in once): \
                     start the sign-in again",
                ));
            }
            None => {}
        }
        let used = used
            .get_or_insert_with(|| self.used.lock().expect("the ledger lock is never poisoned"));
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
        let mut used = self.unlocked_for_store(used);
        if self.record_shared(USED, &[(state, until)], now)?.is_some() {
            return Err(ApiError::forbidden(
                "this sign-in state has already been used (a state signs in once): reload \
                 the page and sign in again",
            ));
        }
        let used = used
            .get_or_insert_with(|| self.used.lock().expect("the ledger lock is never poisoned"));
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
        // Recorded already (by another host): revoked all the same. The lock is not
        // held across the round trip: this host's own change listener hears of the
        // revocation meanwhile and takes it (`heard_revoked`).
        let mut revoked = self.unlocked_for_store(revoked);
        self.record_shared(REVOKED, &[(session, until)], now)?;
        let revoked = revoked.get_or_insert_with(|| {
            self.revoked
                .lock()
                .expect("the ledger lock is never poisoned")
        });
        revoked.insert(session, until);
        Ok(())
    }

    /// Whether a session was signed out (on this host, or on any host of a shared store).
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

/// Now, in Unix seconds.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
