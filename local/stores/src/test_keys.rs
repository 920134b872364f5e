//! Key material shaped like what the stores issue, for tests.
//!
//! - [`google_service_account`]: the JSON key file Google Cloud issues for a service account
//!   (`type: service_account`, `client_email`, `private_key` as a PKCS#8 PEM, `private_key_id`,
//!   `token_uri`; <https://cloud.google.com/iam/docs/keys-create-delete>), with the public half
//!   to register on the [`crate::StoreServer`].
//! - [`app_store_key`]: an App Store Connect API key, the `.p8` file (a PKCS#8 PEM of a P-256
//!   key; <https://developer.apple.com/documentation/appstoreconnectapi/creating-api-keys-for-app-store-connect-api>),
//!   with its public half.
//!
//! A 2048-bit RSA key takes seconds to generate unoptimised (the workspace optimises `rsa` and
//! `num-bigint-dig` in dev builds), so one RSA key is made per process and shared by every
//! service account; [`foreign_rsa_private_key_pem`] is a second one, for signatures that must
//! not verify.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::Rng as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use serde_json::{Value, json};

/// PEM of a 2048-bit RSA key pair: (PKCS#8 private key, SPKI public key).
struct RsaPems {
    private: String,
    public: String,
}

static SERVICE_ACCOUNT_KEY: OnceLock<RsaPems> = OnceLock::new();
static FOREIGN_KEY: OnceLock<RsaPems> = OnceLock::new();

fn generate_rsa() -> RsaPems {
    let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
        // Fails only for sizes or exponents the crate refuses; both are constants here.
        .expect("2048-bit RSA key generation");
    let private = key.to_pkcs8_der().expect("PKCS#8 encoding of an RSA key");
    let public = key
        .to_public_key()
        .to_public_key_der()
        .expect("SPKI encoding of an RSA public key");
    RsaPems {
        private: pem("PRIVATE KEY", private.as_bytes()),
        public: pem("PUBLIC KEY", public.as_ref()),
    }
}

/// RFC 7468 textual encoding: base64 in lines of 64 characters.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A service account's JSON key file for `client_email` (whose token endpoint is
/// `token_uri`), and the PEM of its public key for
/// [`crate::StoreServer::register_service_account`].
///
/// Every call in a process uses the same RSA key (see the module docs); `private_key_id` is
/// derived from it, so it is the same too.
pub fn google_service_account(client_email: &str, token_uri: &str) -> (Value, String) {
    let key = SERVICE_ACCOUNT_KEY.get_or_init(generate_rsa);
    let key_id = ring::digest::digest(&ring::digest::SHA256, key.public.as_bytes());
    let project = client_email
        .split_once('@')
        .and_then(|(_, domain)| domain.split('.').next())
        .unwrap_or("local-project");
    let client_id: u128 = rand::thread_rng().gen_range(10u128.pow(20)..10u128.pow(21));
    let file = json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": hex::encode(&key_id.as_ref()[..20]),
        "private_key": key.private,
        "client_email": client_email,
        "client_id": client_id.to_string(),
        "token_uri": token_uri,
    });
    (file, key.public.clone())
}

/// A PKCS#8 PEM RSA private key that is not the service accounts' key: assertions it signs
/// must be refused with a bad signature.
pub fn foreign_rsa_private_key_pem() -> String {
    FOREIGN_KEY.get_or_init(generate_rsa).private.clone()
}

/// The DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point: SEQUENCE {
/// SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused bits) }.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A fresh App Store Connect API key: (the `.p8` file, a PKCS#8 PEM of the P-256 private key;
/// the SPKI PEM of its public key, for [`crate::StoreServer::register_app_store_key`]).
pub fn app_store_key() -> (String, String) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("P-256 key generation");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("a P-256 key ring just generated");
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(pair.public_key().as_ref());
    (pem("PRIVATE KEY", pkcs8.as_ref()), pem("PUBLIC KEY", &spki))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_are_64_characters_and_framed() {
        let text = pem("PUBLIC KEY", &[7u8; 100]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last().copied(), Some("-----END PUBLIC KEY-----"));
        assert_eq!(
            STANDARD.decode(lines[1..lines.len() - 1].concat()).unwrap(),
            [7u8; 100]
        );
    }

    #[test]
    fn app_store_keys_load_in_jsonwebtoken() {
        let (private, public) = app_store_key();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        jsonwebtoken::EncodingKey::from_ec_pem(private.as_bytes()).unwrap();
        jsonwebtoken::DecodingKey::from_ec_pem(public.as_bytes()).unwrap();
    }
}
