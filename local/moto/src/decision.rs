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
const PARTS: [(&str, &str); 3] = [
    ("databases", "resolved"),
    ("images", "images"),
    ("deployments", "deployments"),
];

/// Adds `approval` to `envelope`: a decision by `approver@example.com` for its execution, its
/// plan and the resolved part it carries, with `scope`.
pub async fn approve(moto: &MotoServer, envelope: &mut Value, scope: Scope) {
    let proof = proof_for(moto, envelope, scope).await;
    envelope["approval"] = serde_json::to_value(proof).expect("a proof serializes");
}

/// [`approve`] from synchronous code (a test's envelope builder): signs on a thread of its own.
pub fn approve_blocking(moto: &'static MotoServer, envelope: &mut Value, scope: Scope) {
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
    let plan: Plan =
        serde_json::from_value(envelope["plan"].clone()).expect("the envelope's plan parses");
    let mut resolved = json!({"databases": [], "images": [], "deployments": []});
    for (part, field) in PARTS {
        if let Some(given) = envelope.get(field) {
            resolved[part] = given.clone();
        }
    }
    let claims = DecisionClaims::new(
        envelope["execution"].as_str().unwrap_or_default(),
        &fingerprint(&plan),
        &fingerprint(&resolved),
        scope,
        "approver@example.com",
        Identity::SelfAsserted,
        chrono::Utc::now(),
    );
    ApprovalProof {
        decision: sign(moto, &claims).await,
        resolved,
    }
}

/// `claims` signed with this moto's decision key.
pub async fn sign(moto: &MotoServer, claims: &DecisionClaims) -> String {
    let kms = aws_sdk_kms::Client::new(&moto.sdk_config());
    DecisionSigner::new(kms, moto.decision_key())
        .sign(claims)
        .await
        .expect("moto's KMS signs")
}
