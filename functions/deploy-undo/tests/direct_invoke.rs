//! Anyone in the account with `lambda:InvokeFunction` on deploy-undo can send it any envelope.
//! Every action that changes the cluster (pause, suspend-gitops, undo, restart, resume) must
//! refuse, live, without a signed decision for this execution and plan, and change nothing.

mod common;

use common::{BAD, NS, STABLE, env};
use rollback_core::Scope;
use rollback_moto::MotoServer;
use serde_json::{Value, json};

#[tokio::test]
async fn cluster_changes_refuse_without_a_decision_that_covers_them() {
    let e = env("direct-invoke").await;
    e.kube
        .seed_two_revisions(NS, "backend", "app", STABLE, BAD, 3)
        .unwrap();
    let resolved = serde_json::to_value(e.resolve(&["backend"], json!([])).await).unwrap();
    let before = e.kube.deployment(NS, "backend").unwrap();
    let actions = [
        json!({"action": "pause"}),
        json!({"action": "suspend-gitops"}),
        json!({"action": "undo", "deployments": resolved["deployments"]}),
        json!({"action": "restart", "deployments": resolved["deployments"],
               "restarted_at": "2026-11-26T12:00:00Z"}),
        json!({"action": "resume"}),
        json!({"action": "resume", "deployments": resolved["deployments"]}),
    ];
    let mut refused = 0;
    for action in &actions {
        let mut envelope: Value = action.clone();
        envelope["plan"] = e.plan(&["backend"]);
        envelope["execution"] = json!("exec-direct-invoke");
        envelope["request"] =
            json!({"trigger": {"kind": "manual"}, "reason": "test", "mode": "live"});
        let cases =
            rollback_moto::decision::refusal_cases(MotoServer::shared(), &envelope, Scope::APP)
                .await;
        assert_eq!(cases.len(), 6);
        for (case, input) in cases {
            let err = rollback_deploy_undo::handle(&e.clients, input)
                .await
                .expect_err(&format!("{} with {case} was not refused", action["action"]));
            assert_eq!(err.error_name(), "Rollback.NotApproved", "{case}: {err}");
            refused += 1;
        }
    }
    assert_eq!(refused, 36);
    let after = e.kube.deployment(NS, "backend").unwrap();
    assert_eq!(after.spec, before.spec, "the deployment changed");
    assert_eq!(
        after.metadata.annotations, before.metadata.annotations,
        "the deployment's annotations changed"
    );
    assert_eq!(e.images("backend"), vec![BAD]);

    // With the decision the state machine passes, the same pause goes ahead.
    let out = e
        .call(&["backend"], json!({"action": "pause"}), false)
        .await
        .unwrap();
    assert_eq!(out["deployments"][0]["replicas_after"], 0, "{out}");
}
