//! What a token must say beyond a good signature, however it arrives (a sign-in, a bearer
//! header, the session cookie): the issuer and audience this host was told to demand
//! (`--token-issuer`, `--token-audience`), `nbf` (always, when the token has one), the
//! clock skew tolerated on `exp`, `nbf` and `iat` (`--token-leeway`), and the longest
//! lifetime a token may have (`--max-token-lifetime`), so a leaked token is worth little.
//!
//! A token without `iat` is accepted if it expires within the maximum lifetime from now;
//! with `iat`, both `exp - iat` and `exp - now` must be within it, and `iat` may not be
//! in the future.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};

/// The default of `--max-token-lifetime`.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// The default of `--token-leeway`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// The checks every token passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// `iss` must be this (`--token-issuer`); any or none when unset.
    pub issuer: Option<String>,
    /// `aud` must be or contain this (`--token-audience`); not checked when unset.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (`--token-leeway`).
    pub leeway: Duration,
    /// The longest a token may live (`--max-token-lifetime`).
    pub max_lifetime: Duration,
}

impl Default for TokenPolicy {
    fn default() -> TokenPolicy {
        TokenPolicy {
            issuer: None,
            audience: None,
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }
}

impl TokenPolicy {
    /// jsonwebtoken's checks for this policy: HS256 only, `exp` and `sub` required,
    /// `nbf` checked when present, `iss` and `aud` required and checked when configured.
    pub fn validation(&self) -> Validation {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without an audience of its own, xbhost does not judge the LMS's.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The lifetime checks jsonwebtoken does not make, on a token whose signature, `exp`
    /// and `nbf` already passed: at most the maximum lifetime, and not issued in the
    /// future. The error names the limit and its flag.
    pub fn check_lifetime(&self, exp: u64, iat: Option<u64>, now: u64) -> Result<(), String> {
        let max = self.max_lifetime.as_secs();
        let leeway = self.leeway.as_secs();
        if let Some(iat) = iat {
            if iat > now.saturating_add(leeway) {
                return Err(format!(
                    "the token's iat ({iat}) is in the future (now {now}, leeway {leeway} s, \
                     --token-leeway)"
                ));
            }
            let lifetime = exp.saturating_sub(iat);
            if lifetime > max {
                return Err(format!(
                    "the token's lifetime (exp - iat = {lifetime} s) is over the maximum of \
                     {max} s (--max-token-lifetime)"
                ));
            }
        }
        let remaining = exp.saturating_sub(now);
        if remaining > max.saturating_add(leeway) {
            return Err(format!(
                "the token expires in {remaining} s, over the maximum lifetime of {max} s \
                 (--max-token-lifetime)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_over_the_maximum_are_refused() {
        let p = TokenPolicy::default();
        let now = 1_000_000;
        assert!(p.check_lifetime(now + 3600, Some(now), now).is_ok());
        assert!(p.check_lifetime(now + 3600, None, now).is_ok());
        let long = p.check_lifetime(now + 7200, Some(now), now).unwrap_err();
        assert!(long.contains("exp - iat = 7200") && long.contains("--max-token-lifetime"));
        let no_iat = p.check_lifetime(now + 7200, None, now).unwrap_err();
        assert!(no_iat.contains("expires in 7200"), "{no_iat}");
        // An old iat does not hide a long remaining life.
        assert!(p.check_lifetime(now + 7200, Some(now - 100), now).is_err());
        let future = p
            .check_lifetime(now + 3700, Some(now + 600), now)
            .unwrap_err();
        assert!(future.contains("in the future"), "{future}");
        // Within the leeway is fine.
        assert!(p.check_lifetime(now + 3603, Some(now + 3), now).is_ok());
    }
}
