//! The test-suite IAM gate: a function's call its role allows passes; one it does not is
//! refused as AWS refuses it, and named.

use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_moto::MotoServer;

#[tokio::test]
async fn a_call_outside_the_role_is_refused_and_named() {
    let moto = MotoServer::shared();
    let gate = IamGate::start(&moto.endpoint(), "retag", &test_stack("gate"));
    let ecr = aws_sdk_ecr::Client::new(&gate.sdk_config());
    // Inside the role: the service's own repositories.
    ecr.describe_images()
        .repository_name("gate-api")
        .send()
        .await
        .expect_err("no such repository yet, but the role allows asking");
    assert!(gate.violations().is_empty(), "{:?}", gate.violations());

    // Outside it: retag may not touch RDS at all.
    let rds = aws_sdk_rds::Client::new(&gate.sdk_config());
    let err = rds
        .delete_db_instance()
        .db_instance_identifier("gate-db")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect_err("refused");
    let text = format!("{:?}", err);
    assert!(text.contains("AccessDenied"), "{text}");
    let violations = gate.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(
        violations[0].to_string(),
        "function retag called rds:DeleteDBInstance on \
         arn:aws:rds:us-east-1:123456789012:db:gate-db, which its role does not allow \
         (template.yaml, policy RetagFunctionRolePolicy0: no statement allows rds:DeleteDBInstance)"
    );
}

#[test]
#[should_panic(expected = "call(s) the role would refuse in AWS")]
fn a_refused_call_fails_the_test_when_the_gate_is_dropped() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto = MotoServer::shared();
    let gate = IamGate::start(&moto.endpoint(), "snapshot", &test_stack("gate"));
    let sns = aws_sdk_sns::Client::new(&gate.sdk_config());
    let _ = runtime.block_on(
        sns.publish()
            .topic_arn("arn:aws:sns:us-east-1:123456789012:x")
            .message("m")
            .send(),
    );
    drop(gate);
}
