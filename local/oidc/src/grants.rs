//! Authorization codes and their PKCE challenges (RFC 7636, S256 only).

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::Shared;

/// What a code stands for until it is exchanged.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) username: String,
    pub(crate) scope: String,
    pub(crate) nonce: Option<String>,
    pub(crate) expires: Instant,
}

/// Why a presented code gives nothing; all are `invalid_grant` (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantRefusal {
    UnknownOrUsed,
    Expired,
    OtherClient,
    OtherRedirectUri,
    VerifierMismatch,
}

impl GrantRefusal {
    /// The `error_description`: says what is wrong, never echoes the code or the verifier.
    pub(crate) fn description(self) -> &'static str {
        match self {
            GrantRefusal::UnknownOrUsed => "the code is unknown or was already used",
            GrantRefusal::Expired => "the code expired",
            GrantRefusal::OtherClient => "the code was issued to another client",
            GrantRefusal::OtherRedirectUri => {
                "redirect_uri differs from the one in the authorization request"
            }
            GrantRefusal::VerifierMismatch => {
                "code_verifier does not match the code_challenge (S256)"
            }
        }
    }
}

impl Shared {
    /// Stores `grant` under a fresh random code and returns the code. Expired codes are
    /// dropped on the way, so the store stays small.
    pub(crate) fn store_grant(&self, grant: Grant) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let code = URL_SAFE_NO_PAD.encode(bytes);
        let mut codes = self.codes.lock().expect("codes");
        let now = Instant::now();
        codes.retain(|_, g| g.expires > now);
        codes.insert(code.clone(), grant);
        code
    }

    /// Takes the code out of the store, whatever happens next: a code is good for one
    /// attempt, so a wrong verifier also burns it (RFC 6749 §4.1.2: single use).
    pub(crate) fn redeem(
        &self,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Grant, GrantRefusal> {
        let grant = self
            .codes
            .lock()
            .expect("codes")
            .remove(code)
            .ok_or(GrantRefusal::UnknownOrUsed)?;
        if grant.expires <= Instant::now() {
            return Err(GrantRefusal::Expired);
        }
        if grant.client_id != client_id {
            return Err(GrantRefusal::OtherClient);
        }
        if grant.redirect_uri != redirect_uri {
            return Err(GrantRefusal::OtherRedirectUri);
        }
        if !constant_time_eq(s256(verifier).as_bytes(), grant.code_challenge.as_bytes()) {
            return Err(GrantRefusal::VerifierMismatch);
        }
        Ok(grant)
    }
}

/// `BASE64URL(SHA256(verifier))`, the S256 challenge of a verifier (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z a-z 0-9 - . _ ~]`.
pub(crate) fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge is the base64url (no padding) of 32 bytes: 43 characters.
pub(crate) fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(valid_verifier(verifier));
        let challenge = s256(verifier);
        assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(valid_challenge(&challenge));
        assert!(!valid_verifier("too-short"));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(!valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="
        ));
    }
}
