//! Signed approval links. notify seals `{task token, decision, scope, expiry, execution,
//! fingerprint, summary}` into an opaque URL-safe string; the approval page opens it. The
//! payload is encrypted and authenticated (AES-256-GCM, random 96-bit nonce), so the task token
//! never appears in a URL, a mail or a log, and any change to the string is detected.
//!
//! Wire format: `base64url(VERSION ‖ nonce[12] ‖ ciphertext ‖ tag[16])`, with the version byte
//! and a purpose label as associated data.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::RollbackError;
use crate::request::Scope;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Binds ciphertexts to this use of the key.
const AAD_LABEL: &[u8] = b"rollback-approval-link/v1";
/// Links longer than this are refused when sealing: mail clients and API Gateway cope with it.
pub const MAX_LINK_CHARS: usize = 8000;
/// Env var naming the Secrets Manager secret that holds the link key (notify and approval).
pub const KEY_SECRET_ENV: &str = "ROLLBACK_APPROVAL_KEY_SECRET";

/// What the approver decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// A short, already-bounded description of the plan, so the confirmation page can show what
/// is being decided without any storage behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSummary {
    pub service: String,
    #[serde(default)]
    pub reason: String,
    /// One line per action (restore db …, retag repo …, undo deployment …).
    #[serde(default)]
    pub lines: Vec<String>,
}

impl LinkSummary {
    pub const MAX_LINES: usize = 12;
    pub const MAX_LINE_CHARS: usize = 160;

    /// Cuts every field to its bound (counted in characters) so links stay short.
    pub fn bounded(mut self) -> Self {
        self.service = cut(&self.service, 60);
        self.reason = cut(&self.reason, 200);
        let extra = self.lines.len().saturating_sub(Self::MAX_LINES);
        self.lines.truncate(Self::MAX_LINES);
        for line in &mut self.lines {
            *line = cut(line, Self::MAX_LINE_CHARS);
        }
        if extra > 0 {
            self.lines
                .push(format!("… and {extra} more (see the email)"));
        }
        self
    }
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(max - 1).collect();
        out.push('…');
        out
    }
}

/// The sealed content of one link.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPayload {
    pub task_token: String,
    pub decision: Decision,
    pub scope: Scope,
    /// Unix seconds.
    pub expires_at: i64,
    pub execution: String,
    /// Fingerprint of what was resolved, which the approver is shown.
    pub fingerprint: String,
    /// Fingerprint of the plan the execution runs; the signed decision carries it.
    #[serde(default)]
    pub plan_fingerprint: String,
    #[serde(default)]
    pub summary: LinkSummary,
}

impl LinkPayload {
    pub fn expires_at(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.expires_at, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// Never prints the task token.
impl fmt::Debug for LinkPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkPayload")
            .field("task_token", &"<redacted>")
            .field("decision", &self.decision)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("execution", &self.execution)
            .field("fingerprint", &self.fingerprint)
            .field("plan_fingerprint", &self.plan_fingerprint)
            .finish()
    }
}

/// Why a link cannot be used. None of these says which byte was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is incomplete or garbled; open it again from the email, or copy it whole")]
    Malformed,
    #[error("the link was altered or was not issued by this rollback system")]
    Tampered,
    #[error("the link expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("the link would be too long ({0} characters)")]
    TooLong(usize),
}

/// The AES-256 key. Debug never prints it.
#[derive(Clone)]
pub struct LinkKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

impl LinkKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> LinkKey {
        LinkKey {
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }

    /// A fresh random key (tests, local drills).
    pub fn generate() -> LinkKey {
        LinkKey::from_bytes(&Self::generate_secret_bytes())
    }

    pub fn generate_secret_bytes() -> [u8; 32] {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        bytes
    }

    /// The text stored in the secret for a key: standard base64 of 32 bytes.
    pub fn encode_secret(bytes: &[u8; 32]) -> String {
        STANDARD.encode(bytes)
    }

    /// Reads a key from secret text: 32 bytes as base64 (standard or URL-safe) or 64 hex
    /// digits, optionally inside `{"key": "…"}`.
    pub fn from_secret_string(text: &str) -> Result<LinkKey, String> {
        let text = text.trim();
        let inner = if text.starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|_| "the secret is not valid JSON")?;
            value
                .get("key")
                .and_then(|k| k.as_str())
                .ok_or("the secret's JSON has no string field \"key\"")?
                .trim()
                .to_owned()
        } else {
            text.to_owned()
        };
        let bytes = if inner.len() == 64 && inner.chars().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(&inner).ok()
        } else {
            STANDARD
                .decode(&inner)
                .or_else(|_| URL_SAFE.decode(&inner))
                .or_else(|_| URL_SAFE_NO_PAD.decode(&inner))
                .ok()
        };
        let bytes: [u8; 32] = bytes
            .and_then(|b| b.try_into().ok())
            .ok_or("the key must be 32 bytes, as base64 or 64 hex digits")?;
        Ok(LinkKey::from_bytes(&bytes))
    }

    /// Reads the key from Secrets Manager (SecretString as above, or a 32-byte SecretBinary).
    pub async fn load(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> Result<LinkKey, RollbackError> {
        let out = client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("GetSecretValue", e))?;
        let parsed = if let Some(text) = out.secret_string() {
            LinkKey::from_secret_string(text)
        } else if let Some(blob) = out.secret_binary() {
            <[u8; 32]>::try_from(blob.as_ref())
                .map(|b| LinkKey::from_bytes(&b))
                .map_err(|_| "the binary secret must be exactly 32 bytes".to_owned())
        } else {
            Err("the secret has no value".to_owned())
        };
        parsed.map_err(|why| {
            RollbackError::InvalidInput(format!(
                "approval link key secret {secret_id}: {why}; store 32 random bytes, e.g. \
                 `openssl rand -base64 32`"
            ))
        })
    }

    /// Seals a payload into a link token.
    pub fn seal(&self, payload: &LinkPayload) -> Result<String, LinkError> {
        let plaintext = serde_json::to_vec(payload).map_err(|_| LinkError::Malformed)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = aad();
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| LinkError::Malformed)?;
        let mut raw = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        raw.push(VERSION);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        let token = URL_SAFE_NO_PAD.encode(raw);
        if token.len() > MAX_LINK_CHARS {
            return Err(LinkError::TooLong(token.len()));
        }
        Ok(token)
    }

    /// Opens a link token and checks its expiry against `now`.
    pub fn open(&self, token: &str, now: DateTime<Utc>) -> Result<LinkPayload, LinkError> {
        let payload = self.open_ignoring_expiry(token)?;
        if payload.expires_at <= now.timestamp() {
            return Err(LinkError::Expired(payload.expires_at()));
        }
        Ok(payload)
    }

    /// Authenticates and decrypts without the expiry check.
    pub fn open_ignoring_expiry(&self, token: &str) -> Result<LinkPayload, LinkError> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_LINK_CHARS {
            return Err(LinkError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| LinkError::Malformed)?;
        if raw.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(LinkError::Malformed);
        }
        if raw[0] != VERSION {
            // A flipped version byte is an alteration, not garbling.
            return Err(LinkError::Tampered);
        }
        let (nonce, ciphertext) = raw[1..].split_at(NONCE_LEN);
        let aad = aad();
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| LinkError::Tampered)?;
        // Authenticated but unreadable means we sealed something else with this key.
        serde_json::from_slice(&plaintext).map_err(|_| LinkError::Tampered)
    }
}

fn aad() -> Vec<u8> {
    let mut aad = vec![VERSION];
    aad.extend_from_slice(AAD_LABEL);
    aad
}

/// Loads the key once per process (notify and approval read the same secret).
pub struct KeyCache {
    secret_id: String,
    cell: tokio::sync::OnceCell<LinkKey>,
}

impl KeyCache {
    pub fn new(secret_id: impl Into<String>) -> KeyCache {
        KeyCache {
            secret_id: secret_id.into(),
            cell: tokio::sync::OnceCell::new(),
        }
    }

    /// A cache that already holds `key` (tests, local drills).
    pub fn with_key(key: LinkKey) -> KeyCache {
        KeyCache {
            secret_id: String::new(),
            cell: tokio::sync::OnceCell::new_with(Some(key)),
        }
    }

    pub async fn get(
        &self,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Result<&LinkKey, RollbackError> {
        self.cell
            .get_or_try_init(|| async {
                if self.secret_id.is_empty() {
                    return Err(RollbackError::InvalidInput(format!(
                        "no approval link key configured; set {KEY_SECRET_ENV} to the secret's ARN"
                    )));
                }
                LinkKey::load(client, &self.secret_id).await
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> LinkPayload {
        LinkPayload {
            task_token: "AQB8AAAAKgAAAAMAAAAAAAAAAX-token-secret".into(),
            decision: Decision::Approve,
            scope: Scope::AppAndDatabase,
            expires_at: Utc::now().timestamp() + 3600,
            execution: "exec-1".into(),
            fingerprint: "ab".repeat(32),
            plan_fingerprint: String::new(),
            summary: LinkSummary {
                service: "mint-replica".into(),
                reason: "5xx alarm".into(),
                lines: vec!["restore mint-replica-db".into()],
            }
            .bounded(),
        }
    }

    #[test]
    fn round_trip_and_the_token_is_not_visible() {
        let key = LinkKey::generate();
        let p = payload();
        let link = key.seal(&p).unwrap();
        assert!(!link.contains("token-secret"));
        assert!(
            link.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(key.open(&link, Utc::now()).unwrap(), p);
        // Random nonces: two seals of the same payload differ.
        assert_ne!(key.seal(&p).unwrap(), link);
        assert!(!format!("{p:?}").contains("token-secret"));
        assert!(!format!("{key:?}").contains(&STANDARD.encode([0u8; 4])));
    }

    #[test]
    fn another_key_cannot_open() {
        let link = LinkKey::generate().seal(&payload()).unwrap();
        assert_eq!(
            LinkKey::generate().open(&link, Utc::now()),
            Err(LinkError::Tampered)
        );
    }

    #[test]
    fn every_byte_is_protected() {
        let key = LinkKey::generate();
        let link = key.seal(&payload()).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&link).unwrap();
        // Version, nonce, ciphertext (where every payload field lives), tag.
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let err = key
                .open(&URL_SAFE_NO_PAD.encode(&bad), Utc::now())
                .unwrap_err();
            assert_eq!(err, LinkError::Tampered, "byte {i}");
        }
    }

    #[test]
    fn truncated_and_garbage_links_are_malformed_or_tampered() {
        let key = LinkKey::generate();
        let link = key.seal(&payload()).unwrap();
        assert_eq!(key.open("", Utc::now()), Err(LinkError::Malformed));
        assert_eq!(key.open("!!!", Utc::now()), Err(LinkError::Malformed));
        assert_eq!(key.open(&link[..20], Utc::now()), Err(LinkError::Malformed));
        // Cut to a whole number of bytes: authentication fails.
        let raw = URL_SAFE_NO_PAD.decode(&link).unwrap();
        let cut = URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 3]);
        assert_eq!(key.open(&cut, Utc::now()), Err(LinkError::Tampered));
        assert_eq!(
            key.open(&"A".repeat(MAX_LINK_CHARS + 1), Utc::now()),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn expiry_is_checked_after_authentication() {
        let key = LinkKey::generate();
        let mut p = payload();
        p.expires_at = Utc::now().timestamp() - 1;
        let link = key.seal(&p).unwrap();
        assert!(matches!(
            key.open(&link, Utc::now()),
            Err(LinkError::Expired(_))
        ));
        assert!(key.open_ignoring_expiry(&link).is_ok());
    }

    #[test]
    fn secret_formats() {
        let bytes = LinkKey::generate_secret_bytes();
        let sealed = LinkKey::from_bytes(&bytes).seal(&payload()).unwrap();
        for text in [
            LinkKey::encode_secret(&bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            hex::encode(bytes),
            format!("{{\"key\": \"{}\"}}", LinkKey::encode_secret(&bytes)),
        ] {
            let key = LinkKey::from_secret_string(&text).unwrap();
            assert!(key.open(&sealed, Utc::now()).is_ok(), "{text}");
        }
        assert!(LinkKey::from_secret_string("c2hvcnQ=").is_err());
        assert!(LinkKey::from_secret_string("{}").is_err());
    }

    #[test]
    fn summaries_are_bounded() {
        let s = LinkSummary {
            service: "s".repeat(500),
            reason: "r".repeat(5000),
            lines: vec!["l".repeat(1000); 50],
        }
        .bounded();
        assert!(s.reason.chars().count() <= 200);
        assert_eq!(s.lines.len(), LinkSummary::MAX_LINES + 1);
        let mut p = payload();
        p.summary = s;
        p.task_token = "t".repeat(1024);
        assert!(LinkKey::generate().seal(&p).is_ok());
    }
}
