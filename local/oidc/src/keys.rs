//! RSA signing keys and the JWTs they sign.
//!
//! API Gateway's JWT authorizer accepts only RSA-based signatures, so the issuer signs with
//! RS256 like the identity providers it stands in for. Key ids are RFC 7638 thumbprints, so a
//! key's `kid` changes with its material and a rotation never reuses one.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1v15;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// The modulus size every key gets: the smallest API Gateway and ring accept.
pub const KEY_BITS: usize = 2048;

/// One RSA key pair with its `kid`.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    private: RsaPrivateKey,
}

impl std::fmt::Debug for SigningKey {
    /// Names the key only: the private half never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh 2048-bit key (e = 65537). Slow in unoptimised builds, hence the
    /// `[profile.dev.package.rsa]` and `num-bigint-dig` opt-level overrides in the workspace.
    pub fn generate() -> SigningKey {
        let private = RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS)
            // Fails only for sizes or exponents the crate refuses; both are constants here.
            .expect("2048-bit RSA key generation with e = 65537");
        let kid = thumbprint(&private.to_public_key());
        SigningKey { kid, private }
    }

    /// The same key material under another `kid` (a forged token that names a trusted key).
    pub fn with_kid(&self, kid: impl Into<String>) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            private: self.private.clone(),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK, as an identity provider's `jwks_uri` lists it.
    pub fn jwk(&self) -> Value {
        let public = self.private.to_public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        })
    }

    /// An RS256 JWT of `claims` with the usual header (`alg`, `typ`, this key's `kid`).
    pub fn sign_claims(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        self.sign(&header, claims)
    }

    /// A JWT with exactly this header. The signature is RS384 or RS512 when the header's `alg`
    /// says so and RS256 otherwise, so tests can also forge tokens whose header lies
    /// (`none`, `HS256`, `ES256`) and check that they are refused.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = self.private.clone();
        let signature = match header.get("alg").and_then(Value::as_str) {
            Some("RS384") => pkcs1v15::SigningKey::<Sha384>::new(key)
                .sign(signing_input.as_bytes())
                .to_vec(),
            Some("RS512") => pkcs1v15::SigningKey::<Sha512>::new(key)
                .sign(signing_input.as_bytes())
                .to_vec(),
            _ => pkcs1v15::SigningKey::<Sha256>::new(key)
                .sign(signing_input.as_bytes())
                .to_vec(),
        };
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order, base64url.
fn thumbprint(public: &RsaPublicKey) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(public.n().to_bytes_be())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The key that signs now and the one before it, which the JWKS keeps publishing so tokens
/// signed just before a rotation stay valid (API Gateway caches a JWKS for up to two hours and
/// AWS advises a grace period with both keys).
pub(crate) struct KeyRing {
    pub(crate) current: Arc<SigningKey>,
    pub(crate) previous: Option<Arc<SigningKey>>,
}

impl KeyRing {
    pub(crate) fn new(first: SigningKey) -> KeyRing {
        KeyRing {
            current: Arc::new(first),
            previous: None,
        }
    }

    /// `next` signs from now on; the current key becomes the previous one and the one before
    /// it leaves the JWKS.
    pub(crate) fn rotate(&mut self, next: SigningKey) {
        let old = std::mem::replace(&mut self.current, Arc::new(next));
        self.previous = Some(old);
    }

    /// The JWKS document: current key first.
    pub(crate) fn jwks(&self) -> Value {
        let keys: Vec<Value> = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .map(|key| key.jwk())
            .collect();
        json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_the_rfc7638_thumbprint_and_rotation_keeps_one_previous_key() {
        let first = SigningKey::generate();
        let jwk = first.jwk();
        assert_eq!(jwk["kid"], first.kid());
        assert_eq!(first.kid().len(), 43, "base64url of a SHA-256 digest");
        assert_eq!(jwk["e"], "AQAB");

        let mut ring = KeyRing::new(first.clone());
        let second = first.with_kid("second");
        let third = first.with_kid("third");
        ring.rotate(second);
        let kids: Vec<Value> = ring.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        assert_eq!(kids, vec![json!("second"), json!(first.kid())]);
        ring.rotate(third);
        let kids: Vec<Value> = ring.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        assert_eq!(kids, vec![json!("third"), json!("second")]);
    }
}
