//! The link keys, read on first use rather than at cold start: a request without a link (a
//! scanner, a favicon) never waits for Secrets Manager, and init stays as short as the other
//! functions'. The page opens with the secret's current and previous version
//! ([`LinkKeys`]), so links sealed before a rotation still work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_core::RollbackError;
use rollback_core::approval_link::{LinkKey, LinkKeys, key_id_of};
use tokio::sync::Mutex;

/// A warm page reads the secret again when a link names a key it has not loaded (a rotation
/// since it read it), unless it read it less than this long ago: forged key ids must not
/// turn into a stream of Secrets Manager calls.
pub const RELOAD_AFTER: Duration = Duration::from_secs(5);
/// Keys older than this are read again on the next link, so a key retired by a second
/// rotation stops opening links on warm pages too.
pub const MAX_AGE: Duration = rollback_core::approval_link::KEY_MAX_AGE;

/// Where the page's link keys come from.
pub struct LinkKeySource {
    source: Source,
    reload_after: Duration,
    max_age: Duration,
}

enum Source {
    Fixed(Arc<LinkKeys>),
    Secret {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
        loaded: Mutex<Option<(Arc<LinkKeys>, Instant)>>,
    },
}

impl LinkKeySource {
    /// The secret's `AWSCURRENT` and `AWSPREVIOUS` versions, read on first use.
    pub fn from_secret(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
    ) -> LinkKeySource {
        LinkKeySource {
            source: Source::Secret {
                client,
                secret_id: secret_id.into(),
                loaded: Mutex::new(None),
            },
            reload_after: RELOAD_AFTER,
            max_age: MAX_AGE,
        }
    }

    /// Keys in hand (tests, the local drill): never reloaded.
    pub fn fixed(keys: LinkKeys) -> LinkKeySource {
        LinkKeySource {
            source: Source::Fixed(Arc::new(keys)),
            reload_after: RELOAD_AFTER,
            max_age: MAX_AGE,
        }
    }

    /// One key in hand.
    pub fn single(key: LinkKey) -> LinkKeySource {
        Self::fixed(LinkKeys::single(key))
    }

    /// Other reload intervals ([`RELOAD_AFTER`], [`MAX_AGE`]): tests that rotate within a
    /// second.
    pub fn reload_intervals(mut self, unknown_key: Duration, max_age: Duration) -> LinkKeySource {
        self.reload_after = unknown_key;
        self.max_age = max_age;
        self
    }

    /// The keys to open `token` with: read on the first call, and again when they are older
    /// than the maximum age or the token names a key they lack (not more often than the
    /// reload interval). A failed read is not kept: the next request tries again; meanwhile
    /// keys already in hand that can open the link are used.
    pub async fn for_token(&self, token: &str) -> Result<Arc<LinkKeys>, RollbackError> {
        let (client, secret_id, loaded) = match &self.source {
            Source::Fixed(keys) => return Ok(Arc::clone(keys)),
            Source::Secret {
                client,
                secret_id,
                loaded,
            } => (client, secret_id, loaded),
        };
        let mut loaded = loaded.lock().await;
        let wanted = key_id_of(token);
        if let Some((keys, at)) = &*loaded {
            let unknown = wanted.is_some_and(|id| !keys.has(id));
            let due =
                at.elapsed() >= self.max_age || (unknown && at.elapsed() >= self.reload_after);
            if !due {
                return Ok(Arc::clone(keys));
            }
        }
        match LinkKeys::load(client, secret_id).await {
            Ok(keys) => {
                tracing::info!(
                    current = %keys.current().id(),
                    previous = ?keys.previous().map(LinkKey::id),
                    "approval link keys loaded"
                );
                let keys = Arc::new(keys);
                *loaded = Some((Arc::clone(&keys), Instant::now()));
                Ok(keys)
            }
            Err(e) => match &*loaded {
                Some((keys, _)) if wanted.is_none_or(|id| keys.has(id)) => {
                    tracing::warn!(error = %e, "approval link keys not reloaded; using the loaded ones");
                    Ok(Arc::clone(keys))
                }
                _ => Err(e),
            },
        }
    }
}
