//! Approvals recorded until enough people have approved (`approval.database_approvers`, or a
//! starter who may not approve alone).
//!
//! Each approval takes the next numbered slot of the decision in S3 with a conditional write
//! (`If-None-Match: *`): of two people pressing at once exactly one gets a slot and the other
//! re-reads it and takes the next, so each person is counted once. The person whose approval
//! completes the decision sends the task token; everyone else gets "recorded" or "already
//! decided". Nothing is ever overwritten or deleted: the slots are the record of who approved.
//!
//! Keys: `<prefix>/<execution>/<task id>/<scope>/<slot>.json`, where the task id is a hash of
//! the task token (the token itself is never stored or logged).

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use rollback_core::approval_link::{ApproverRules, LinkPayload};
use rollback_core::decision::Identity;
use rollback_core::plan::MAX_DATABASE_APPROVERS;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Env var naming the bucket that holds the ledger (the stack's report bucket).
pub const BUCKET_ENV: &str = "ROLLBACK_APPROVALS_BUCKET";
/// Key prefix of the ledger in that bucket.
pub const PREFIX: &str = "approvals";
/// More slots than any rule needs: `needed` people plus the starter.
const MAX_SLOTS: usize = MAX_DATABASE_APPROVERS as usize + 1;
/// Separates this use of the task token's hash from any other.
const TASK_ID_LABEL: &[u8] = b"rollback-approval-ledger/task";

/// One person's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Lowercased email address or identity claim.
    pub approver: String,
    pub identity: Identity,
    pub decided_at: DateTime<Utc>,
}

/// What an approval did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded; more people must approve. All approvals so far, this one last.
    Waiting(Vec<Entry>),
    /// This person had approved already; more people must approve.
    AlreadyCounted(Vec<Entry>),
    /// This approval completes the decision (or completed it before, and the task may not
    /// have been answered): send it. The approvals that complete it, in order.
    Complete(Vec<Entry>),
    /// Others completed the decision already.
    CompletedByOthers(Vec<Entry>),
}

/// The ledger could not be read or written: nothing was recorded by this request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the approvals ledger is unavailable ({0})")]
pub struct LedgerError(pub String);

/// Where approvals are recorded.
#[derive(Debug, Clone)]
pub struct Ledger {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Ledger {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> Ledger {
        Ledger {
            s3,
            bucket: bucket.into(),
        }
    }

    /// The approvals recorded for this link's decision, in order.
    pub async fn entries(&self, payload: &LinkPayload) -> Result<Vec<Entry>, LedgerError> {
        let mut entries = Vec::new();
        for slot in 1..=MAX_SLOTS {
            match self.read(payload, slot).await? {
                Some(entry) => entries.push(entry),
                None => break,
            }
        }
        Ok(entries)
    }

    /// Records `entry` as an approval of this link's decision under `rules`.
    pub async fn approve(
        &self,
        payload: &LinkPayload,
        rules: &ApproverRules,
        entry: Entry,
    ) -> Result<Outcome, LedgerError> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut claimed_before = false;
        // Each pass reads the taken slots, then takes the first free one; a lost race means
        // someone holds that slot now, and the next pass reads it. Bounded by the slots.
        for _ in 0..2 * MAX_SLOTS {
            while entries.len() < MAX_SLOTS {
                match self.read(payload, entries.len() + 1).await? {
                    Some(taken) => entries.push(taken),
                    None => break,
                }
            }
            match settled(&entries, rules, &entry.approver) {
                // This request's write took effect although its answer said otherwise (the
                // SDK's retry of a lost answer meets its own object): recorded, as asked.
                Some(Outcome::AlreadyCounted(entries)) if claimed_before => {
                    return Ok(Outcome::Waiting(entries));
                }
                Some(outcome) => return Ok(outcome),
                None => {}
            }
            if entries.len() >= MAX_SLOTS {
                break;
            }
            claimed_before = true;
            if self.claim(payload, entries.len() + 1, &entry).await? {
                entries.push(entry.clone());
                return Ok(if rules.complete(&names(&entries)) {
                    Outcome::Complete(entries)
                } else {
                    Outcome::Waiting(entries)
                });
            }
        }
        Err(LedgerError(format!(
            "{} approvals recorded and the decision is still not complete",
            entries.len()
        )))
    }

    async fn read(&self, payload: &LinkPayload, slot: usize) -> Result<Option<Entry>, LedgerError> {
        let key = key(payload, slot);
        match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(object) => {
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| LedgerError(format!("reading {key}: {e}")))?
                    .into_bytes();
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| LedgerError(format!("{key} is not an approval: {e}")))
            }
            Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
            Err(e) => Err(unavailable(&key, &e)),
        }
    }

    /// Writes `entry` into `slot` unless the slot is taken: `Ok(false)` when it was.
    async fn claim(
        &self,
        payload: &LinkPayload,
        slot: usize,
        entry: &Entry,
    ) -> Result<bool, LedgerError> {
        let key = key(payload, slot);
        let body = serde_json::to_vec(entry).map_err(|e| LedgerError(e.to_string()))?;
        match self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .if_none_match("*")
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            // 412: the slot exists. 409: a concurrent conditional write to it is in flight;
            // either way someone else holds it now or will.
            Err(e)
                if matches!(
                    e.code(),
                    Some("PreconditionFailed" | "ConditionalRequestConflict")
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable(&key, &e)),
        }
    }
}

/// The outcome when the approvals read so far already decide it for `me`.
fn settled(entries: &[Entry], rules: &ApproverRules, me: &str) -> Option<Outcome> {
    let names = names(entries);
    if let Some(last) = (1..=names.len()).find(|&n| rules.complete(&names[..n])) {
        let completing = entries[..last].to_vec();
        return Some(if names[last - 1] == me {
            Outcome::Complete(completing)
        } else {
            Outcome::CompletedByOthers(completing)
        });
    }
    names
        .iter()
        .any(|n| n == me)
        .then(|| Outcome::AlreadyCounted(entries.to_vec()))
}

pub fn names(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| e.approver.clone()).collect()
}

fn key(payload: &LinkPayload, slot: usize) -> String {
    let task = Sha256::new()
        .chain_update(TASK_ID_LABEL)
        .chain_update(payload.task_token.as_bytes())
        .finalize();
    format!(
        "{PREFIX}/{}/{}/{}/{slot}.json",
        payload.execution,
        hex::encode(&task[..16]),
        payload.scope.as_str()
    )
}

fn unavailable<E>(key: &str, e: &aws_sdk_s3::error::SdkError<E>) -> LedgerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = e.code().unwrap_or("no error code").to_owned();
    tracing::warn!(key, code, error = %aws_sdk_s3::error::DisplayErrorContext(e), "approvals ledger call failed");
    LedgerError(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> Entry {
        Entry {
            approver: name.into(),
            identity: Identity::SelfAsserted,
            decided_at: DateTime::UNIX_EPOCH,
        }
    }

    fn rules(needed: u8, starter: Option<&str>) -> ApproverRules {
        ApproverRules {
            approvers: Vec::new(),
            needed,
            starter: starter.map(str::to_owned),
        }
    }

    #[test]
    fn who_completes_is_decided_by_the_order_of_the_slots() {
        let two = rules(2, None);
        assert_eq!(settled(&[], &two, "a"), None);
        assert_eq!(
            settled(&[entry("a")], &two, "a"),
            Some(Outcome::AlreadyCounted(vec![entry("a")]))
        );
        assert_eq!(settled(&[entry("a")], &two, "b"), None);
        let both = [entry("a"), entry("b")];
        assert!(matches!(settled(&both, &two, "b"), Some(Outcome::Complete(e)) if e.len() == 2));
        assert!(matches!(
            settled(&both, &two, "a"),
            Some(Outcome::CompletedByOthers(_))
        ));
        assert!(matches!(
            settled(&both, &two, "c"),
            Some(Outcome::CompletedByOthers(_))
        ));
    }

    #[test]
    fn a_starter_who_may_not_approve_alone_needs_someone_else() {
        let starter = rules(1, Some("s"));
        assert_eq!(
            settled(&[entry("s")], &starter, "s"),
            Some(Outcome::AlreadyCounted(vec![entry("s")]))
        );
        assert!(matches!(
            settled(&[entry("s"), entry("o")], &starter, "o"),
            Some(Outcome::Complete(e)) if e.len() == 2
        ));
        // Someone else approving first completes it alone.
        assert!(matches!(
            settled(&[entry("o")], &starter, "o"),
            Some(Outcome::Complete(e)) if e.len() == 1
        ));
    }

    #[test]
    fn keys_name_the_decision_not_the_token() {
        let payload = LinkPayload {
            task_token: "AQB8-secret-token".into(),
            decision: rollback_core::approval_link::Decision::Approve,
            scope: rollback_core::request::Scope::APP_AND_DATABASE,
            expires_at: 0,
            execution: "exec-1".into(),
            fingerprint: String::new(),
            plan_fingerprint: String::new(),
            summary: Default::default(),
            rules: Default::default(),
        };
        let key = key(&payload, 2);
        assert!(key.starts_with("approvals/exec-1/"), "{key}");
        assert!(key.ends_with("/app+database/2.json"), "{key}");
        assert!(!key.contains("secret"), "{key}");
    }
}
