//! Signed approval decisions: the proof a destructive action checks before it changes anything.
//!
//! The approval function, on a valid POST, signs [`DecisionClaims`] with an asymmetric KMS key
//! (ECC_NIST_P256, ECDSA_SHA_256) that only its role may use for `kms:Sign` — and the plan
//! function's, which signs only app-only decisions its `pre-approve` policy takes. The state machine
//! passes the signed decision to every destructive step as `approval: {decision, resolved}`.
//! Restore, retag and deploy-undo verify it with the key's public half (`kms:GetPublicKey`,
//! fetched once per process) and refuse with `Rollback.NotApproved` unless it verifies, names
//! this execution, matches the plan they were given and what was resolved, covers the action's
//! scope, and has not expired. So a direct `lambda:InvokeFunction` by anyone else changes
//! nothing: without the approval function's key, no decision can be made up.
//!
//! Wire format: `base64url(claims JSON) "." base64url(DER ECDSA signature)`; the signature is
//! over the first part's ASCII bytes (KMS `MessageType: RAW`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::error::RollbackError;
use crate::fingerprint::fingerprint;
use crate::request::Scope;
use crate::step::StepInput;

/// Env var naming the decision key (its ARN): approval signs with it, the destructive
/// functions verify with its public half.
pub const DECISION_KEY_ENV: &str = "ROLLBACK_DECISION_KEY";
/// The decision key's ARN from [`DECISION_KEY_ENV`]; missing is a deployment error.
pub fn key_from_env() -> Result<String, String> {
    std::env::var(DECISION_KEY_ENV)
        .map_err(|_| format!("set {DECISION_KEY_ENV} to the approval decision key's ARN"))
}

/// The KMS signing algorithm of the decision key (key spec ECC_NIST_P256).
pub const SIGNING_ALGORITHM: &str = "ECDSA_SHA_256";
/// How long a decision stays valid: longer than any execution may run (the state machine's
/// timeout is 24 h), short enough that an old decision cannot be replayed later.
pub const DECISION_LIFETIME_HOURS: i64 = 24;
const FORMAT: &str = "rollback-decision/v1";
/// Signed decisions longer than this are not ours (claims are a few hundred bytes).
const MAX_DECISION_CHARS: usize = 4096;

/// How the approver's identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Identity {
    /// Typed into the approval page; not verified.
    SelfAsserted,
    /// A claim of a token the organisation's identity provider issued.
    Authenticated,
    /// No person: the plan's `approval.auto_approve_app_only` policy pre-approved an app-only
    /// rollback started by one of its alarms (the plan function signs it).
    PlanPolicy,
}

/// What the approver decided, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionClaims {
    /// Always `rollback-decision/v1`; [`DecisionKey::open`] refuses any other format.
    pub format: String,
    /// `$$.Execution.Name` of the execution the approver decided on.
    pub execution: String,
    /// [`fingerprint`] of the plan the execution runs.
    pub plan_fingerprint: String,
    /// Fingerprint of what the execution resolved (databases, images, deployments): what the
    /// approver was shown.
    pub fingerprint: String,
    /// What the approver allowed to change: the actions a destructive step needs must be covered.
    pub scope: Scope,
    /// Everyone who approved, distinct, in the order they approved (the last one completed
    /// the decision).
    pub approvers: Vec<String>,
    /// How the approvers were identified.
    pub identity: Identity,
    /// When the decision was completed.
    pub decided_at: DateTime<Utc>,
    /// When the decision stops being valid: [`DECISION_LIFETIME_HOURS`] after `decided_at`.
    pub expires_at: DateTime<Utc>,
}

impl DecisionClaims {
    /// Claims for an approval made `decided_at`, valid for [`DECISION_LIFETIME_HOURS`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        execution: &str,
        plan_fingerprint: &str,
        fingerprint: &str,
        scope: Scope,
        approvers: &[String],
        identity: Identity,
        decided_at: DateTime<Utc>,
    ) -> DecisionClaims {
        DecisionClaims {
            format: FORMAT.to_owned(),
            execution: execution.to_owned(),
            plan_fingerprint: plan_fingerprint.to_owned(),
            fingerprint: fingerprint.to_owned(),
            scope,
            approvers: approvers.to_vec(),
            identity,
            decided_at,
            expires_at: decided_at + Duration::hours(DECISION_LIFETIME_HOURS),
        }
    }

    /// The bytes the key signs (the first part of the wire format).
    pub fn signing_input(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// Joins the signed part and its DER signature into the wire format.
pub fn assemble(signing_input: &str, signature_der: &[u8]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature_der))
}

/// What the state machine passes to a destructive step: the signed decision and what was
/// resolved (the document its fingerprint covers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApprovalProof {
    /// The signed decision in the wire format.
    pub decision: String,
    /// `{databases, images, deployments}` as fingerprinted before approval.
    #[serde(default)]
    pub resolved: Value,
}

/// The public half of the decision key.
#[derive(Clone)]
pub struct DecisionKey {
    /// The uncompressed P-256 point (65 bytes) ring verifies with.
    point: Vec<u8>,
}

/// DER of SubjectPublicKeyInfo for id-ecPublicKey on prime256v1, up to the point itself.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl DecisionKey {
    /// From `kms:GetPublicKey`'s DER SubjectPublicKeyInfo; only P-256 keys are accepted.
    pub fn from_spki(der: &[u8]) -> Result<DecisionKey, RollbackError> {
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) if point.len() == 65 && point[0] == 0x04 => Ok(DecisionKey {
                point: point.to_vec(),
            }),
            _ => Err(RollbackError::Internal(format!(
                "the decision key ({DECISION_KEY_ENV}) is not an ECC_NIST_P256 signing key; \
                 create it with KeySpec ECC_NIST_P256 and KeyUsage SIGN_VERIFY"
            ))),
        }
    }

    /// Verifies the signature and returns the claims (not yet checked against a step).
    pub fn open(&self, signed: &str) -> Result<DecisionClaims, String> {
        if signed.len() > MAX_DECISION_CHARS {
            return Err("the decision is too long to be one".into());
        }
        let (body, signature) = signed
            .split_once('.')
            .ok_or("the decision is malformed (no signature part)")?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "the decision's signature is not base64url")?;
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &self.point,
        )
        .verify(body.as_bytes(), &signature)
        .map_err(|_| "the decision's signature does not verify with the decision key")?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| "the decision's claims are not base64url")?;
        let claims: DecisionClaims = serde_json::from_slice(&json)
            .map_err(|e| format!("the decision's claims are unreadable: {e}"))?;
        if claims.format != FORMAT {
            return Err(format!("unknown decision format {:?}", claims.format));
        }
        Ok(claims)
    }
}

/// The decision key's public half, fetched with `kms:GetPublicKey` on first use and kept for
/// the process (cold starts do not wait for KMS; actions that need no decision never call it).
#[derive(Clone)]
pub struct DecisionVerifier {
    kms: aws_sdk_kms::Client,
    key_id: String,
    key: Arc<OnceCell<DecisionKey>>,
}

impl DecisionVerifier {
    /// A verifier for the KMS key `key_id` (its ARN); nothing is fetched until [`Self::key`].
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> DecisionVerifier {
        DecisionVerifier {
            kms,
            key_id: key_id.into(),
            key: Arc::new(OnceCell::new()),
        }
    }

    /// The public half of the key, fetched with `kms:GetPublicKey` on the first call and kept.
    pub async fn key(&self) -> Result<&DecisionKey, RollbackError> {
        self.key
            .get_or_try_init(|| async {
                let out = self
                    .kms
                    .get_public_key()
                    .key_id(&self.key_id)
                    .send()
                    .await
                    .map_err(|e| RollbackError::from_sdk("GetPublicKey", e))?;
                let der = out.public_key().map(|b| b.as_ref()).unwrap_or_default();
                DecisionKey::from_spki(der)
            })
            .await
    }
}

/// Signs decisions with the decision key (`kms:Sign`: the approval function's role, and the
/// plan function's for decisions its pre-approval policy takes).
#[derive(Clone, Debug)]
pub struct DecisionSigner {
    kms: aws_sdk_kms::Client,
    key_id: String,
}

impl DecisionSigner {
    /// A signer with the KMS key `key_id` (its ARN).
    pub fn new(kms: aws_sdk_kms::Client, key_id: impl Into<String>) -> DecisionSigner {
        DecisionSigner {
            kms,
            key_id: key_id.into(),
        }
    }

    /// The signer for the key named by [`DECISION_KEY_ENV`].
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<DecisionSigner, String> {
        Ok(DecisionSigner::new(
            aws_sdk_kms::Client::new(sdk),
            key_from_env()?,
        ))
    }

    /// The signed decision (wire format) for `claims`.
    pub async fn sign(&self, claims: &DecisionClaims) -> Result<String, RollbackError> {
        let input = claims.signing_input();
        let out = self
            .kms
            .sign()
            .key_id(&self.key_id)
            .message(aws_smithy_types::Blob::new(input.as_bytes()))
            .message_type(aws_sdk_kms::types::MessageType::Raw)
            .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("Sign", e))?;
        let signature = out.signature().map(|b| b.as_ref()).unwrap_or_default();
        Ok(assemble(&input, signature))
    }
}

/// What a destructive action needs the decision to cover.
pub struct Needed<'a> {
    /// `app+database` for database actions, `app+infrastructure` (`+destroys` when the plan
    /// destroys a protected type) for the infrastructure apply, `app+mobile` for the store
    /// actions, `app` (covered by all) for the rest.
    pub scope: Scope,
    /// The action's own resolved input and where it sits in the approved `resolved` document
    /// (`databases`, `images`, `deployments`, `infrastructure`, `mobile`), when the action
    /// takes one.
    pub resolved: Option<(&'static str, Option<&'a Value>)>,
}

/// Refuses with `Rollback.NotApproved` unless `step.approval` verifies and covers `needed`.
pub async fn require<A>(
    verifier: &DecisionVerifier,
    step: &StepInput<A>,
    needed: Needed<'_>,
    now: DateTime<Utc>,
) -> Result<DecisionClaims, RollbackError> {
    let refuse = |why: String| {
        RollbackError::NotApproved(format!(
            "{why}; nothing was changed. Destructive actions run only with the signed decision \
             the approval page gives the execution (`approval`)"
        ))
    };
    let Some(proof) = &step.approval else {
        return Err(refuse("no signed decision was given".into()));
    };
    let key = verifier.key().await?;
    let claims = key.open(&proof.decision).map_err(refuse)?;
    check(&claims, step, proof, needed, now).map_err(refuse)?;
    Ok(claims)
}

/// The checks after the signature: execution, plan, resolved, scope, expiry.
fn check<A>(
    claims: &DecisionClaims,
    step: &StepInput<A>,
    proof: &ApprovalProof,
    needed: Needed<'_>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    if claims.execution != step.execution.as_str() {
        return Err(format!(
            "the decision is for execution {}, not {}",
            claims.execution,
            step.execution.as_str()
        ));
    }
    let plan = fingerprint(&step.plan);
    if claims.plan_fingerprint != plan {
        return Err(format!(
            "the decision approved plan {}, but this call carries plan {plan}",
            claims.plan_fingerprint
        ));
    }
    if let Some(what) = claims.scope.uncovered(needed.scope) {
        return Err(format!(
            "the decision approved scope {:?}, which does not cover {what}",
            claims.scope.as_str()
        ));
    }
    // The plan function may sign only app-only decisions (its pre-approval policy): anything
    // wider with that identity is not one it could have taken.
    if claims.identity == Identity::PlanPolicy && claims.scope != Scope::APP {
        return Err(format!(
            "a pre-approval policy decides app-only rollbacks, not scope {:?}",
            claims.scope.as_str()
        ));
    }
    let people = step.plan.approval.approvals_needed(needed.scope);
    let distinct: std::collections::BTreeSet<&str> =
        claims.approvers.iter().map(String::as_str).collect();
    if distinct.len() < usize::from(people) {
        return Err(format!(
            "the plan needs {people} distinct approvers for this action, the decision names {}",
            distinct.len()
        ));
    }
    if now >= claims.expires_at {
        return Err(format!("the decision expired at {}", claims.expires_at));
    }
    if let Some((part, given)) = needed.resolved {
        if fingerprint(&proof.resolved) != claims.fingerprint {
            return Err("the resolved document does not match the decision's fingerprint".into());
        }
        let approved = proof.resolved.get(part).unwrap_or(&Value::Null);
        if fingerprint(given.unwrap_or(&Value::Null)) != fingerprint(approved) {
            return Err(format!(
                "the {part} of this call differ from the approved {part}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_that_is_not_p256_is_refused() {
        assert!(DecisionKey::from_spki(&[0x30, 0x01]).is_err());
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.push(0x04);
        der.extend([7u8; 63]);
        assert!(DecisionKey::from_spki(&der).is_err(), "64-byte point");
        der.push(7);
        assert!(DecisionKey::from_spki(&der).is_ok());
    }

    #[test]
    fn malformed_decisions_are_refused_before_any_parsing() {
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.push(0x04);
        der.extend([7u8; 64]);
        let key = DecisionKey::from_spki(&der).unwrap();
        for bad in [
            "",
            "abc",
            "abc.!!!",
            "abc.AAAA",
            &"a".repeat(MAX_DECISION_CHARS + 1),
        ] {
            assert!(key.open(bad).is_err(), "{bad}");
        }
    }

    fn step(execution: &str) -> StepInput<Value> {
        StepInput {
            action: json!({}),
            plan: serde_json::from_value(json!({"service": "svc"})).unwrap(),
            request: Default::default(),
            execution: crate::ExecutionId::new(execution),
            approval: None,
        }
    }

    #[test]
    fn every_claim_is_checked() {
        let now = Utc::now();
        let s = step("e1");
        let resolved = json!({"databases": [{"id": "db"}], "images": [], "deployments": []});
        let proof = ApprovalProof {
            decision: String::new(),
            resolved: resolved.clone(),
        };
        let claims = DecisionClaims::new(
            "e1",
            &fingerprint(&s.plan),
            &fingerprint(&resolved),
            Scope::APP,
            &["a@b.c".to_owned()],
            Identity::SelfAsserted,
            now,
        );
        let app = || Needed {
            scope: Scope::APP,
            resolved: None,
        };
        assert!(check(&claims, &s, &proof, app(), now).is_ok());
        let err = |c: &DecisionClaims, n: Needed<'_>| check(c, &s, &proof, n, now).unwrap_err();
        let db = Needed {
            scope: Scope::APP_AND_DATABASE,
            resolved: None,
        };
        assert!(err(&claims, db).contains("does not cover databases"));
        let other = DecisionClaims {
            execution: "e2".into(),
            ..claims.clone()
        };
        assert!(err(&other, app()).contains("execution e2"));
        let other = DecisionClaims {
            plan_fingerprint: "f".into(),
            ..claims.clone()
        };
        assert!(err(&other, app()).contains("approved plan f"));
        let expired = DecisionClaims {
            expires_at: now,
            ..claims.clone()
        };
        assert!(err(&expired, app()).contains("expired"));
        let given = json!([{"id": "db"}]);
        let same = Needed {
            scope: Scope::APP,
            resolved: Some(("databases", Some(&given))),
        };
        assert!(check(&claims, &s, &proof, same, now).is_ok());
        let changed = json!([{"id": "other"}]);
        let differ = Needed {
            scope: Scope::APP,
            resolved: Some(("databases", Some(&changed))),
        };
        assert!(err(&claims, differ).contains("differ from the approved databases"));
    }

    /// A plan that asks two people for databases: a database action refuses a decision one
    /// person made (or one person twice), an app action does not need the second.
    #[test]
    fn database_actions_count_distinct_approvers() {
        let now = Utc::now();
        let mut s = step("e1");
        s.plan.approval.database_approvers = 2;
        let resolved = json!({});
        let proof = ApprovalProof {
            decision: String::new(),
            resolved: resolved.clone(),
        };
        let claims = |approvers: &[&str]| {
            let approvers: Vec<String> = approvers.iter().map(|a| a.to_string()).collect();
            DecisionClaims::new(
                "e1",
                &fingerprint(&s.plan),
                &fingerprint(&resolved),
                Scope::APP_AND_DATABASE,
                &approvers,
                Identity::SelfAsserted,
                now,
            )
        };
        let needed = |scope| Needed {
            scope,
            resolved: None,
        };
        let db = Scope::APP_AND_DATABASE;
        for one in [&["a@x.io"][..], &["a@x.io", "a@x.io"]] {
            let why = check(&claims(one), &s, &proof, needed(db), now).unwrap_err();
            assert!(why.contains("needs 2 distinct approvers"), "{why}");
        }
        assert!(check(&claims(&["a@x.io"]), &s, &proof, needed(Scope::APP), now).is_ok());
        assert!(check(&claims(&["a@x.io", "b@x.io"]), &s, &proof, needed(db), now).is_ok());
    }
}
