//! Signed approval decisions for tests that invoke destructive actions directly, as the state
//! machine would after an approval: signed with this moto's decision key
//! ([`MotoServer::decision_key`]) through moto's KMS, never by the function under test.

use rollback_core::Scope;
use rollback_core::decision::{ApprovalProof, DecisionClaims, DecisionSigner, Identity};
use rollback_core::fingerprint::fingerprint;
use rollback_core::plan::Plan;
use serde_json::{Value, json};

use crate::MotoServer;

/// Where each resolved part sits in a step envelope (the action's own field).
const PARTS: [(&str, &str); 5] = [
    ("databases", "resolved"),
    ("images", "images"),
    ("deployments", "deployments"),
    ("infrastructure", "infrastructure"),
    ("mobile", "mobile"),
];

/// Adds `approval` to `envelope`: a decision by as many approvers as the plan asks (`approver1@example.com`, …) for its execution, its
/// plan and the resolved part it carries, with `scope`. An envelope whose plan does not parse
/// is left alone: the function refuses it before it looks for a decision.
pub async fn approve(moto: &MotoServer, envelope: &mut Value, scope: Scope) {
    if !plan_parses(envelope) {
        return;
    }
    let proof = proof_for(moto, envelope, scope).await;
    envelope["approval"] = serde_json::to_value(proof).expect("a proof serializes");
}

fn plan_parses(envelope: &Value) -> bool {
    serde_json::from_value::<Plan>(envelope["plan"].clone()).is_ok()
}

/// [`approve`] from synchronous code (a test's envelope builder): signs on a thread of its own.
pub fn approve_blocking(moto: &'static MotoServer, envelope: &mut Value, scope: Scope) {
    if !plan_parses(envelope) {
        return;
    }
    let given = envelope.clone();
    let proof = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for signing")
            .block_on(proof_for(moto, &given, scope))
    })
    .join()
    .expect("signing did not panic");
    envelope["approval"] = serde_json::to_value(proof).expect("a proof serializes");
}

/// The `approval` a state machine would pass with `envelope`.
pub async fn proof_for(moto: &MotoServer, envelope: &Value, scope: Scope) -> ApprovalProof {
    ApprovalProof {
        decision: sign(moto, &claims_for(envelope, scope)).await,
        resolved: resolved_of(envelope),
    }
}

/// The resolved document the definition passes: the envelope's own part, the others empty.
fn resolved_of(envelope: &Value) -> Value {
    let mut resolved = json!({"databases": [], "images": [], "deployments": [], "infrastructure": null, "mobile": null});
    for (part, field) in PARTS {
        if let Some(given) = envelope.get(field) {
            resolved[part] = given.clone();
        }
    }
    resolved
}

/// What an approver of `envelope` with `scope` signs, now.
fn claims_for(envelope: &Value, scope: Scope) -> DecisionClaims {
    let plan: Plan =
        serde_json::from_value(envelope["plan"].clone()).expect("the envelope's plan parses");
    // As many distinct people as the plan asks for this scope.
    let approvers: Vec<String> = (1..=plan.approval.approvals_needed(scope))
        .map(|n| format!("approver{n}@example.com"))
        .collect();
    DecisionClaims::new(
        envelope["execution"].as_str().unwrap_or_default(),
        &fingerprint(&plan),
        &fingerprint(&resolved_of(envelope)),
        scope,
        &approvers,
        Identity::SelfAsserted,
        chrono::Utc::now(),
    )
}

/// `claims` signed with this moto's decision key.
pub async fn sign(moto: &MotoServer, claims: &DecisionClaims) -> String {
    let kms = aws_sdk_kms::Client::new(&moto.sdk_config());
    DecisionSigner::new(kms, moto.decision_key())
        .sign(claims)
        .await
        .expect("moto's KMS signs")
}

/// Envelopes a destructive action must refuse, each named: `envelope` with no decision, with
/// a decision for another execution, for another plan, tampered (scope widened without
/// re-signing), signed by another key, expired, and, when `scope` covers databases, an
/// app-only decision and one person's decision where the plan asks two.
pub async fn refusal_cases(
    moto: &MotoServer,
    envelope: &Value,
    scope: Scope,
) -> Vec<(&'static str, Value)> {
    let with = |proof: ApprovalProof| with_proof(envelope, proof);
    let mut cases = Vec::new();
    let mut none = envelope.clone();
    if let Some(map) = none.as_object_mut() {
        map.remove("approval");
    }
    cases.push(("no decision", none));

    let mut other = envelope.clone();
    other["execution"] = json!("another-execution");
    cases.push((
        "another execution",
        with(proof_for(moto, &other, scope).await),
    ));

    let mut other_plan = envelope.clone();
    other_plan["plan"]["service"] = json!("another-service");
    cases.push((
        "another plan",
        with(proof_for(moto, &other_plan, scope).await),
    ));

    let valid = proof_for(moto, envelope, Scope::APP).await;
    cases.push(("tampered", with(widened(&valid))));

    cases.push((
        "signed by another key",
        with(proof_for(foreign(), envelope, scope).await),
    ));

    let mut expired = claims_for(envelope, scope);
    expired.decided_at -= chrono::Duration::days(2);
    expired.expires_at -= chrono::Duration::days(2);
    cases.push((
        "expired",
        with(ApprovalProof {
            decision: sign(moto, &expired).await,
            resolved: resolved_of(envelope),
        }),
    ));
    cases.extend(narrower_scopes(moto, envelope, scope, valid).await);
    cases
}

/// Decisions that do not cover `scope`: app-only (`valid`), one person where the plan asks two
/// for databases, no infrastructure, no destroys.
async fn narrower_scopes(
    moto: &MotoServer,
    envelope: &Value,
    scope: Scope,
    valid: ApprovalProof,
) -> Vec<(&'static str, Value)> {
    let with = |proof: ApprovalProof| with_proof(envelope, proof);
    let mut cases = Vec::new();
    if scope.includes_database() || scope.includes_infrastructure() {
        cases.push(("app-only", with(valid)));
    }
    if scope.includes_database() {
        // The plan asks two people for databases; one approved.
        let mut two = envelope.clone();
        two["plan"]["approval"]["database_approvers"] = json!(2);
        let mut alone = claims_for(envelope, scope);
        alone.plan_fingerprint = fingerprint(
            &serde_json::from_value::<Plan>(two["plan"].clone()).expect("the plan parses"),
        );
        alone.approvers.truncate(1);
        two["approval"] = serde_json::to_value(ApprovalProof {
            decision: sign(moto, &alone).await,
            resolved: resolved_of(envelope),
        })
        .expect("a proof serializes");
        cases.push(("one approver where the plan asks two", two));
    }
    if scope.includes_infrastructure() {
        cases.push((
            "app+database for an infrastructure action",
            with(proof_for(moto, envelope, Scope::APP_AND_DATABASE).await),
        ));
    }
    if scope.allows_destroys() {
        cases.push((
            "no destroys for a plan that destroys a protected type",
            with(
                proof_for(
                    moto,
                    envelope,
                    Scope::APP_AND_DATABASE.and_infrastructure(false),
                )
                .await,
            ),
        ));
    }
    cases
}

/// `envelope` carrying `proof` as its `approval`.
fn with_proof(envelope: &Value, proof: ApprovalProof) -> Value {
    let mut e = envelope.clone();
    e["approval"] = serde_json::to_value(proof).expect("a proof serializes");
    e
}

/// A second moto, whose decision key is not the one the functions under test trust.
fn foreign() -> &'static MotoServer {
    static FOREIGN: std::sync::OnceLock<MotoServer> = std::sync::OnceLock::new();
    FOREIGN.get_or_init(|| MotoServer::start().expect("a second moto"))
}

/// `proof` with its claims' scope widened to app+database, keeping the old signature.
fn widened(proof: &ApprovalProof) -> ApprovalProof {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (body, signature) = proof.decision.split_once('.').expect("a signed decision");
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64url")).expect("json");
    claims["scope"] = json!("app+database");
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
    ApprovalProof {
        decision: format!("{body}.{signature}"),
        resolved: proof.resolved.clone(),
    }
}
