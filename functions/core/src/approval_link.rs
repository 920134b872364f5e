//! Signed approval links. notify seals `{task token, decision, scope, expiry, execution,
//! fingerprint, summary}` into an opaque URL-safe string; the approval page opens it. The
//! payload is encrypted and authenticated (AES-256-GCM, random 96-bit nonce), so the task token
//! never appears in a URL, a mail or a log, and any change to the string is detected.
//!
//! Wire format (version 2): `base64url(2 ‖ key id[8] ‖ nonce[12] ‖ ciphertext ‖ tag[16])`, with
//! the version byte, the key id and a purpose label as associated data. The key id
//! ([`KeyId`]) names the key that sealed the link, so the approval page can pick it from the
//! current and previous key of the secret ([`LinkKeys`]) after a rotation.
//!
//! Version 1 (`base64url(1 ‖ nonce[12] ‖ ciphertext ‖ tag[16])`, associated data the version
//! byte and the label) is still opened, by trying each key: links mailed before the upgrade
//! stay valid until they expire. Nothing seals version 1 any more.

use std::fmt;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::RollbackError;
use crate::plan::GROUP_PREFIX;
use crate::request::Scope;

/// What [`LinkKey::seal`] writes: with a key id.
const VERSION: u8 = 2;
/// Links sealed before key ids (no key id): opened by trying each key, never sealed.
const VERSION_1: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Binds ciphertexts to this use of the key (both versions).
const AAD_LABEL: &[u8] = b"rollback-approval-link/v1";
/// Domain separation for key ids: the id is a hash of the key made for this purpose only.
const KEY_ID_LABEL: &[u8] = b"rollback-approval-link/key-id";
/// Secrets Manager's stage of the secret's newest version: notify seals with it.
pub const CURRENT_STAGE: &str = "AWSCURRENT";
/// The version a rotation (`PutSecretValue`) moved aside: the page still opens its links.
pub const PREVIOUS_STAGE: &str = "AWSPREVIOUS";
/// Links longer than this are refused when sealing: mail clients and API Gateway cope with it.
pub const MAX_LINK_CHARS: usize = 8000;
/// Env var naming the Secrets Manager secret that holds the link key (notify and approval).
pub const KEY_SECRET_ENV: &str = "ROLLBACK_APPROVAL_KEY_SECRET";

/// What the approver decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Go ahead with the rollback in the link's scope.
    Approve,
    /// Stop the rollback: the approval task fails with `Rollback.Rejected`.
    Reject,
}

impl Decision {
    /// The wire name (`approve`, `reject`), as serialized.
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
    /// The plan's service (at most 60 characters once [`LinkSummary::bounded`]).
    pub service: String,
    /// Why the rollback was started (at most 200 characters once bounded).
    #[serde(default)]
    pub reason: String,
    /// One line per action (restore db …, retag repo …, undo deployment …).
    #[serde(default)]
    pub lines: Vec<String>,
}

impl LinkSummary {
    /// Most action lines a link carries; the rest are counted in one last line.
    pub const MAX_LINES: usize = 12;
    /// Each action line is cut to this many characters.
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
    /// The approval task's Step Functions task token: what the page completes. Never printed.
    pub task_token: String,
    /// What following this link decides.
    pub decision: Decision,
    /// The scope an approval through this link covers.
    pub scope: Scope,
    /// Unix seconds.
    pub expires_at: i64,
    /// Name of the execution the link decides on.
    pub execution: String,
    /// Fingerprint of what was resolved, which the approver is shown.
    pub fingerprint: String,
    /// Fingerprint of the plan the execution runs; the signed decision carries it.
    #[serde(default)]
    pub plan_fingerprint: String,
    /// What the confirmation page shows about the plan.
    #[serde(default)]
    pub summary: LinkSummary,
    /// Who may decide and how many must approve, from the plan's approval policy.
    #[serde(default)]
    pub rules: ApproverRules,
}

/// The plan's approval policy as it applies to one link, sealed into it so the approval page
/// needs no storage to enforce it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverRules {
    /// Lowercased email addresses and `group:<value>` entries; empty: anyone with the link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Distinct people who must approve this link's decision.
    pub needed: u8,
    /// Who started the rollback when the plan says they may not approve alone (lowercased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starter: Option<String>,
}

impl Default for ApproverRules {
    fn default() -> Self {
        ApproverRules {
            approvers: Vec::new(),
            needed: 1,
            starter: None,
        }
    }
}

impl ApproverRules {
    /// Whether these approvers (distinct, lowercased) complete the decision: enough of them,
    /// and someone besides the starter when the starter may not approve alone.
    pub fn complete(&self, approvers: &[String]) -> bool {
        let enough = approvers.len() >= usize::from(self.needed.max(1));
        let besides_starter = match &self.starter {
            Some(starter) => approvers.iter().any(|a| a != starter),
            None => true,
        };
        enough && besides_starter
    }

    /// Whether a person (lowercased email, with their groups when authenticated) may decide.
    pub fn allows(&self, person: &str, groups: &[String]) -> bool {
        self.approvers.is_empty()
            || self
                .approvers
                .iter()
                .any(|entry| match entry.strip_prefix(GROUP_PREFIX) {
                    Some(group) => groups.iter().any(|g| g == group),
                    None => entry == person,
                })
    }

    /// Whether only one person's approval is needed (no record of earlier approvals).
    pub fn single(&self) -> bool {
        self.needed <= 1 && self.starter.is_none()
    }
}

/// A plausible email address: one `@` with text on both sides, no spaces or control
/// characters, 3-254 characters.
pub fn is_email(text: &str) -> bool {
    (3..=254).contains(&text.len())
        && text.matches('@').count() == 1
        && !text.starts_with('@')
        && !text.ends_with('@')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl LinkPayload {
    /// The expiry as a time (`expires_at` is Unix seconds; out of range reads as long past).
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
            .field("rules", &self.rules)
            .finish()
    }
}

/// Why a link cannot be used. None of these says which byte was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link: empty, too long, not base64url, or too short.
    #[error("the link is incomplete or garbled; open it again from the email, or copy it whole")]
    Malformed,
    /// It fails authentication, or names a key this side does not hold (altered, forged, or
    /// sealed with a retired key).
    #[error("the link was altered or was not issued by this rollback system")]
    Tampered,
    /// Its expiry has passed (when it expired).
    #[error("the link expired at {0}")]
    Expired(DateTime<Utc>),
    /// Sealing would make a link longer than [`MAX_LINK_CHARS`] (its length).
    #[error("the link would be too long ({0} characters)")]
    TooLong(usize),
}

/// Names the key that sealed a link: the first 8 bytes of SHA-256 over a label and the key.
/// Not secret (every link carries it in the clear); it only says which key to try.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    fn of(bytes: &[u8; 32]) -> KeyId {
        let digest = Sha256::new()
            .chain_update(KEY_ID_LABEL)
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        KeyId(id)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The AES-256 key. Debug never prints it.
#[derive(Clone)]
pub struct LinkKey {
    cipher: Aes256Gcm,
    id: KeyId,
}

impl fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinkKey(id {}, <redacted>)", self.id)
    }
}

impl LinkKey {
    /// The key made of 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> LinkKey {
        LinkKey {
            cipher: Aes256Gcm::new(bytes.into()),
            id: KeyId::of(bytes),
        }
    }

    /// The id written into the links this key seals.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// A fresh random key (tests, local drills).
    pub fn generate() -> LinkKey {
        LinkKey::from_bytes(&Self::generate_secret_bytes())
    }

    /// 32 random bytes for a new key (store them with [`LinkKey::encode_secret`]).
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

    /// Reads the key from Secrets Manager (SecretString as above, or a 32-byte SecretBinary):
    /// the current version (`AWSCURRENT`), the one notify seals with.
    pub async fn load(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> Result<LinkKey, RollbackError> {
        Self::load_stage(client, secret_id, CURRENT_STAGE)
            .await?
            .ok_or_else(|| {
                RollbackError::InvalidInput(format!(
                    "approval link key secret {secret_id} has no {CURRENT_STAGE} version"
                ))
            })
    }

    /// The key in the secret's version labelled `stage`; `None` when no version carries the
    /// label (a secret never rotated has no `AWSPREVIOUS`).
    pub async fn load_stage(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
        stage: &str,
    ) -> Result<Option<LinkKey>, RollbackError> {
        let out = match client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if stage != CURRENT_STAGE
                    && e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(RollbackError::from_sdk("GetSecretValue", e)),
        };
        let parsed = if let Some(text) = out.secret_string() {
            LinkKey::from_secret_string(text)
        } else if let Some(blob) = out.secret_binary() {
            <[u8; 32]>::try_from(blob.as_ref())
                .map(|b| LinkKey::from_bytes(&b))
                .map_err(|_| "the binary secret must be exactly 32 bytes".to_owned())
        } else {
            Err("the secret has no value".to_owned())
        };
        parsed.map(Some).map_err(|why| {
            RollbackError::InvalidInput(format!(
                "approval link key secret {secret_id} ({stage}): {why}; store 32 random bytes, \
                 e.g. `openssl rand -base64 32`"
            ))
        })
    }

    /// Seals a payload into a link token (version 2, with this key's id).
    pub fn seal(&self, payload: &LinkPayload) -> Result<String, LinkError> {
        let plaintext = serde_json::to_vec(payload).map_err(|_| LinkError::Malformed)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = aad(Some(self.id));
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
        let mut raw = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + ciphertext.len());
        raw.push(VERSION);
        raw.extend_from_slice(&self.id.0);
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
        not_expired(self.open_ignoring_expiry(token)?, now)
    }

    /// Authenticates and decrypts without the expiry check.
    pub fn open_ignoring_expiry(&self, token: &str) -> Result<LinkPayload, LinkError> {
        self.decrypt(&Sealed::parse(token)?)
    }

    fn decrypt(&self, sealed: &Sealed) -> Result<LinkPayload, LinkError> {
        if sealed.key_id.is_some_and(|id| id != self.id) {
            return Err(LinkError::Tampered);
        }
        let aad = aad(sealed.key_id);
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| LinkError::Tampered)?;
        // Authenticated but unreadable means we sealed something else with this key.
        serde_json::from_slice(&plaintext).map_err(|_| LinkError::Tampered)
    }
}

/// A link token taken apart, not yet authenticated.
struct Sealed {
    /// `None`: version 1, sealed before key ids.
    key_id: Option<KeyId>,
    nonce: [u8; NONCE_LEN],
    /// With the tag.
    ciphertext: Vec<u8>,
}

impl Sealed {
    fn parse(token: &str) -> Result<Sealed, LinkError> {
        let token = token.trim();
        if token.is_empty() || token.len() > MAX_LINK_CHARS {
            return Err(LinkError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| LinkError::Malformed)?;
        let id_len = match raw.first() {
            Some(&VERSION) => KEY_ID_LEN,
            Some(&VERSION_1) => 0,
            // Long enough to be a link: a changed version byte is an alteration, not garbling.
            Some(_) if raw.len() >= 1 + NONCE_LEN + TAG_LEN => return Err(LinkError::Tampered),
            _ => return Err(LinkError::Malformed),
        };
        if raw.len() < 1 + id_len + NONCE_LEN + TAG_LEN {
            return Err(LinkError::Malformed);
        }
        let (id, rest) = raw[1..].split_at(id_len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Ok(Sealed {
            key_id: <[u8; KEY_ID_LEN]>::try_from(id).ok().map(KeyId),
            nonce: nonce.try_into().map_err(|_| LinkError::Malformed)?,
            ciphertext: ciphertext.to_vec(),
        })
    }
}

/// The key id a link names, without authenticating anything: `None` for a version 1 link or
/// one that is not a link at all. Lets the page notice a key it has not loaded yet.
pub fn key_id_of(token: &str) -> Option<KeyId> {
    Sealed::parse(token).ok()?.key_id
}

fn not_expired(payload: LinkPayload, now: DateTime<Utc>) -> Result<LinkPayload, LinkError> {
    if payload.expires_at <= now.timestamp() {
        return Err(LinkError::Expired(payload.expires_at()));
    }
    Ok(payload)
}

/// Version 2 binds the key id too, so a link cannot be re-labelled with another key's id.
fn aad(key_id: Option<KeyId>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + KEY_ID_LEN + AAD_LABEL.len());
    match key_id {
        Some(id) => {
            aad.push(VERSION);
            aad.extend_from_slice(&id.0);
        }
        None => aad.push(VERSION_1),
    }
    aad.extend_from_slice(AAD_LABEL);
    aad
}

/// The keys the approval page opens links with: the secret's current version and, after a
/// rotation, the previous one, so links mailed before `PutSecretValue` still work. A key older
/// than that is retired: its links are refused as altered.
#[derive(Clone, Debug)]
pub struct LinkKeys {
    current: LinkKey,
    previous: Option<LinkKey>,
}

impl LinkKeys {
    /// `previous` is dropped when it is the current key again (a rotation to the same value).
    pub fn new(current: LinkKey, previous: Option<LinkKey>) -> LinkKeys {
        let previous = previous.filter(|p| p.id != current.id);
        LinkKeys { current, previous }
    }

    /// One key (tests, local drills).
    pub fn single(key: LinkKey) -> LinkKeys {
        LinkKeys::new(key, None)
    }

    /// The key of the secret's `AWSCURRENT` version: the one notify seals with.
    pub fn current(&self) -> &LinkKey {
        &self.current
    }

    /// The key of its `AWSPREVIOUS` version, after a rotation to a different value.
    pub fn previous(&self) -> Option<&LinkKey> {
        self.previous.as_ref()
    }

    /// Whether a link naming `id` can be opened by one of these keys.
    pub fn has(&self, id: KeyId) -> bool {
        self.keys().any(|k| k.id == id)
    }

    fn keys(&self) -> impl Iterator<Item = &LinkKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// Reads `AWSCURRENT` and `AWSPREVIOUS` of the secret (concurrently); a secret never
    /// rotated has no previous version.
    pub async fn load(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> Result<LinkKeys, RollbackError> {
        let (current, previous) = tokio::try_join!(
            LinkKey::load(client, secret_id),
            LinkKey::load_stage(client, secret_id, PREVIOUS_STAGE),
        )?;
        Ok(LinkKeys::new(current, previous))
    }

    /// Opens a link token with the key it names and checks its expiry against `now`.
    pub fn open(&self, token: &str, now: DateTime<Utc>) -> Result<LinkPayload, LinkError> {
        not_expired(self.open_ignoring_expiry(token)?, now)
    }

    /// Authenticates and decrypts without the expiry check. A version 2 link is opened with
    /// the key its id names (another id: refused as altered); a version 1 link, which names
    /// no key, with each key in turn.
    pub fn open_ignoring_expiry(&self, token: &str) -> Result<LinkPayload, LinkError> {
        let sealed = Sealed::parse(token)?;
        match sealed.key_id {
            Some(id) => self
                .keys()
                .find(|k| k.id == id)
                .ok_or(LinkError::Tampered)?
                .decrypt(&sealed),
            None => self
                .keys()
                .find_map(|k| k.decrypt(&sealed).ok())
                .ok_or(LinkError::Tampered),
        }
    }
}

/// How long a process keeps the link keys it read before reading the secret again: a
/// rotation reaches warm notify and approval processes within this time, so a second rotation
/// really retires the oldest key.
pub const KEY_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// The current key, read on first use and again after [`KEY_MAX_AGE`]: notify seals with it
/// (the approval page opens with [`LinkKeys`], current and previous).
pub struct KeyCache {
    secret_id: String,
    max_age: Duration,
    cached: tokio::sync::Mutex<Option<(LinkKey, Instant)>>,
}

impl KeyCache {
    /// A cache that reads the key from the secret `secret_id` (ARN or name) on first use.
    pub fn new(secret_id: impl Into<String>) -> KeyCache {
        KeyCache {
            secret_id: secret_id.into(),
            max_age: KEY_MAX_AGE,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A cache that holds `key` for good (tests, local drills).
    pub fn with_key(key: LinkKey) -> KeyCache {
        KeyCache {
            secret_id: String::new(),
            max_age: KEY_MAX_AGE,
            cached: tokio::sync::Mutex::new(Some((key, Instant::now()))),
        }
    }

    /// Another maximum age (a test that rotates within a second).
    pub fn max_age(mut self, max_age: Duration) -> KeyCache {
        self.max_age = max_age;
        self
    }

    /// The key to seal with. When reading it again fails, the key in hand is kept: its links
    /// still open (as the previous key after one rotation).
    pub async fn get(
        &self,
        client: &aws_sdk_secretsmanager::Client,
    ) -> Result<LinkKey, RollbackError> {
        let mut cached = self.cached.lock().await;
        if let Some((key, at)) = &*cached
            && (self.secret_id.is_empty() || at.elapsed() < self.max_age)
        {
            return Ok(key.clone());
        }
        if self.secret_id.is_empty() {
            return Err(RollbackError::InvalidInput(format!(
                "no approval link key configured; set {KEY_SECRET_ENV} to the secret's ARN"
            )));
        }
        match LinkKey::load(client, &self.secret_id).await {
            Ok(key) => {
                *cached = Some((key.clone(), Instant::now()));
                Ok(key)
            }
            Err(e) => match &*cached {
                Some((key, _)) => {
                    tracing::warn!(error = %e, "approval link key not reloaded; sealing with the loaded one");
                    Ok(key.clone())
                }
                None => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> LinkPayload {
        LinkPayload {
            task_token: "AQB8AAAAKgAAAAMAAAAAAAAAAX-token-secret".into(),
            decision: Decision::Approve,
            scope: Scope::APP_AND_DATABASE,
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
            rules: ApproverRules {
                approvers: vec!["oncall@example.com".into(), "group:sre".into()],
                needed: 2,
                starter: Some("dev@example.com".into()),
            },
        }
    }

    #[test]
    fn approvers_are_emails() {
        assert!(is_email("oncall@example.com"));
        for bad in ["", "x", "a b@c", "@x", "x@", "a@b@c", "<script>@x\n"] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn rules_say_who_may_decide_and_when_it_is_complete() {
        let rules = payload().rules;
        assert!(rules.allows("oncall@example.com", &[]));
        assert!(rules.allows("someone@example.com", &["sre".into()]));
        assert!(!rules.allows("someone@example.com", &["dev".into()]));
        assert!(!rules.allows("dev@example.com", &[]));
        assert!(ApproverRules::default().allows("anyone@example.com", &[]));
        let people = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(!rules.complete(&people(&["oncall@example.com"])));
        assert!(rules.complete(&people(&["oncall@example.com", "dev@example.com"])));
        // Two people, but one of them must not be the starter: the starter and… the starter.
        let starter_alone = ApproverRules {
            needed: 1,
            ..rules.clone()
        };
        assert!(!starter_alone.complete(&people(&["dev@example.com"])));
        assert!(starter_alone.complete(&people(&["oncall@example.com"])));
        assert!(!rules.single() && ApproverRules::default().single());
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
    fn links_name_the_key_that_sealed_them() {
        let bytes = LinkKey::generate_secret_bytes();
        let key = LinkKey::from_bytes(&bytes);
        let raw = URL_SAFE_NO_PAD
            .decode(key.seal(&payload()).unwrap())
            .unwrap();
        assert_eq!(raw[0], VERSION);
        assert_eq!(raw[1..1 + KEY_ID_LEN], key.id().0);
        assert_eq!(key_id_of(&URL_SAFE_NO_PAD.encode(&raw)), Some(key.id()));
        // The same bytes give the same id (another process, after a restart); another key
        // another one, and the id is not a prefix of the key or of its plain hash.
        assert_eq!(LinkKey::from_bytes(&bytes).id(), key.id());
        assert_ne!(LinkKey::generate().id(), key.id());
        assert_ne!(key.id().0[..], bytes[..KEY_ID_LEN]);
        assert_ne!(key.id().0[..], Sha256::digest(bytes)[..KEY_ID_LEN]);
        assert_eq!(key.id().to_string().len(), 2 * KEY_ID_LEN);
        assert!(!format!("{key:?}").contains(&hex::encode(bytes)));
    }

    #[test]
    fn the_current_or_the_previous_key_opens_and_no_other() {
        let (old, new) = (LinkKey::generate(), LinkKey::generate());
        let keys = LinkKeys::new(new.clone(), Some(old.clone()));
        let p = payload();
        for key in [&old, &new] {
            let link = key.seal(&p).unwrap();
            assert_eq!(keys.open(&link, Utc::now()).unwrap(), p);
        }
        // A retired key (neither current nor previous).
        let retired = LinkKey::generate().seal(&p).unwrap();
        assert_eq!(keys.open(&retired, Utc::now()), Err(LinkError::Tampered));
        // Relabelled with a key the page has: the key id is authenticated too.
        let mut raw = URL_SAFE_NO_PAD.decode(&retired).unwrap();
        raw[1..1 + KEY_ID_LEN].copy_from_slice(&new.id().0);
        let relabelled = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(keys.open(&relabelled, Utc::now()), Err(LinkError::Tampered));
        // Expiry is checked after authentication, as with one key.
        let mut expired = payload();
        expired.expires_at = Utc::now().timestamp() - 1;
        let link = old.seal(&expired).unwrap();
        assert!(matches!(
            keys.open(&link, Utc::now()),
            Err(LinkError::Expired(_))
        ));
        // The previous key is forgotten when a rotation put the same key back.
        assert!(
            LinkKeys::new(new.clone(), Some(new.clone()))
                .previous()
                .is_none()
        );
        assert!(keys.has(old.id()) && keys.has(new.id()));
        assert!(!LinkKeys::single(new).has(old.id()));
    }

    /// Seals as version 1 did (no key id; the version byte and the label as associated data).
    fn seal_v1(key: &LinkKey, payload: &LinkPayload) -> String {
        let nonce = [9u8; NONCE_LEN];
        let aad = aad(None);
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &serde_json::to_vec(payload).unwrap(),
                    aad: &aad,
                },
            )
            .unwrap();
        let mut raw = vec![VERSION_1];
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(raw)
    }

    #[test]
    fn version_1_links_still_open_with_either_key() {
        let (old, new) = (LinkKey::generate(), LinkKey::generate());
        let keys = LinkKeys::new(new.clone(), Some(old.clone()));
        let p = payload();
        for key in [&old, &new] {
            let link = seal_v1(key, &p);
            assert_eq!(key_id_of(&link), None);
            assert_eq!(keys.open(&link, Utc::now()).unwrap(), p);
            assert_eq!(key.open(&link, Utc::now()).unwrap(), p);
        }
        let foreign = seal_v1(&LinkKey::generate(), &p);
        assert_eq!(keys.open(&foreign, Utc::now()), Err(LinkError::Tampered));
        // A version 2 link re-labelled as version 1 (dropping or keeping the id) is refused.
        let raw = URL_SAFE_NO_PAD.decode(new.seal(&p).unwrap()).unwrap();
        let mut downgraded = raw.clone();
        downgraded[0] = VERSION_1;
        let mut stripped = vec![VERSION_1];
        stripped.extend_from_slice(&raw[1 + KEY_ID_LEN..]);
        for bad in [downgraded, stripped] {
            let bad = URL_SAFE_NO_PAD.encode(bad);
            assert_eq!(keys.open(&bad, Utc::now()), Err(LinkError::Tampered));
        }
    }

    /// A link sealed by the code before key ids (version 1), with the key `[0x42; 32]`.
    const SEALED_BY_VERSION_1: &str = "AX2rF-2h6xPCtfO0MQQh-caotbwR4E5mb8QstIdM_NedRv-JjWg4P9rPA5bRa8FJ8YICnNCEpYPmFtSHNIhzaWH13fAgqufg3Gl-m1mvQIvQXv8cnMx_E0UbnuGusaHfyAhGVrtbhI2D2DWgBvZUdIUAFifpTHCI6d_gN-wy4M0ojFV5gQNg4WBzuAelV3o8fenkIUl7pXM5PXnk9v78xDq8mU6LSihtxVaRmbLBoWAdbwRrdm0J31OZgDnlP_eJoSu3IaEITraITnK4YpRV2Ubd_oHzFnLTcXY2Iju8gDzPxJPvPnjxUd6pGEtfgZ1eL7kB54VjdqPEAJZPV_p0TdLUhLtBAhJbSNEXPoI";

    #[test]
    fn a_link_mailed_before_the_upgrade_opens() {
        let mailed = LinkKey::from_bytes(&[0x42; 32]);
        // Either as the current key or, after a rotation, as the previous one.
        for keys in [
            LinkKeys::single(mailed.clone()),
            LinkKeys::new(LinkKey::generate(), Some(mailed)),
        ] {
            let p = keys.open(SEALED_BY_VERSION_1, Utc::now()).unwrap();
            assert_eq!(p.task_token, "AQB8-v1-task-token");
            assert_eq!((p.decision, p.scope), (Decision::Reject, Scope::APP));
            assert_eq!(p.execution, "exec-v1");
        }
        let other = LinkKeys::single(LinkKey::generate());
        assert_eq!(
            other.open(SEALED_BY_VERSION_1, Utc::now()),
            Err(LinkError::Tampered)
        );
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
