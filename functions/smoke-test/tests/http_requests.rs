//! HTTP checks that call an integration the way the service's clients do: a method, headers, a
//! body, credentials from Secrets Manager (bearer token or basic auth), and expectations on
//! JSON fields. The endpoint is a local server that requires the credentials; the secrets are
//! in moto, read under smoke-test's role (the IAM gate).

mod common;

use common::*;
use rollback_core::contract::smoke_test::{CheckKind, SmokeReport};
use rollback_core::plan::Plan;
use rollback_smoke_test::{Clients, run};
use serde_json::{Value, json};

fn plan(http: Value) -> Plan {
    Plan::from_value(json!({
        "service": "smoke-svc",
        "images": [{"repository": "smoke-svc/api", "release_tag": "prod", "stable_tag": "stable"}],
        "smoke": {"http": http},
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn assert_no_secret(text: &str) {
    for secret in [TOKEN, WRONG_TOKEN, PASSWORD] {
        assert!(!text.contains(secret), "{secret} leaked into {text}");
    }
}

async fn run_checks(checks: Value) -> SmokeReport {
    let gate = gate();
    let report = run(&Clients::new(&gate.sdk_config()), &plan(checks))
        .await
        .unwrap();
    println!("{report:#?}");
    assert!(report.checks.iter().all(|c| c.kind == CheckKind::Http));
    assert_no_secret(&serde_json::to_string(&report).unwrap());
    report
}

#[tokio::test]
async fn credentials_methods_bodies_and_json_expectations_pass() {
    let base = integration().await;
    let s = secrets("pass").await;
    let report = run_checks(json!([
        {"name": "bearer", "url": format!("{base}/status"), "credentials_secret": s.bearer,
         "expect_json": [{"pointer": "/status", "equals": "ok"},
                         {"pointer": "/release/major", "equals": 4.0},
                         {"pointer": "/integrations/1", "equals": {"name": "credit-score", "up": true}}]},
        {"name": "basic", "url": format!("{base}/status"), "credentials_secret": s.basic,
         "expect_json": [{"pointer": "/release/version", "equals": "4.2.1"}]},
        {"name": "post", "url": format!("{base}/orders"), "method": "POST",
         "credentials_secret": s.bearer, "headers": {"X-Probe": "smoke"},
         "body": {"dry_run": true, "amount": 10},
         "expect_json": [{"pointer": "/accepted", "equals": true}, {"pointer": "/quote/score", "equals": 712}]},
        {"name": "put text", "url": format!("{base}/notes"), "method": "PUT", "expect_status": 201,
         "credentials_secret": s.basic, "body": "rollback smoke note", "body_contains": "stored"},
    ]))
    .await;
    assert!(report.passed);
    for c in &report.checks {
        assert_eq!(c.attempts, 1, "{c:?}");
    }
    assert!(
        check(&report, "bearer")
            .reason
            .starts_with("200 OK, body as expected")
    );
    assert!(
        check(&report, "put text")
            .reason
            .starts_with("201 Created, body as expected")
    );
}

#[tokio::test]
async fn refusals_and_mismatches_say_why_without_the_secret() {
    let base = integration().await;
    let s = secrets("fail").await;
    let report = run_checks(json!([
        {"name": "no credentials", "url": format!("{base}/status")},
        {"name": "wrong token", "url": format!("{base}/status"), "credentials_secret": s.wrong_bearer},
        {"name": "json mismatch", "url": format!("{base}/status"), "credentials_secret": s.bearer,
         "expect_json": [{"pointer": "/status", "equals": "degraded"}]},
        {"name": "json missing", "url": format!("{base}/status"), "credentials_secret": s.bearer,
         "expect_json": [{"pointer": "/release/minor", "equals": 2}]},
        {"name": "not json", "url": format!("{base}/text"), "credentials_secret": s.bearer,
         "expect_json": [{"pointer": "/status", "equals": "ok"}]},
        {"name": "echoing service", "url": format!("{base}/echo"), "credentials_secret": s.bearer,
         "body_contains": "status ok"},
    ]))
    .await;
    assert!(report.checks.iter().all(|c| !c.passed));
    let r = |name| check(&report, name).reason.clone();
    assert_eq!(r("no credentials"), "expected 200, got 401 Unauthorized");
    // A refused credential is not transient: one attempt, the secret named, its value not.
    assert_eq!(check(&report, "wrong token").attempts, 1);
    assert_eq!(
        r("wrong token"),
        format!(
            "expected 200, got 401 Unauthorized (the credentials from secret {} were refused)",
            s.wrong_bearer
        )
    );
    assert_eq!(
        r("json mismatch"),
        r#"200 OK but the JSON at "/status" is "ok", expected "degraded""#
    );
    assert_eq!(
        r("json missing"),
        r#"200 OK but the JSON has nothing at "/release/minor" (expected 2)"#
    );
    assert!(
        r("not json").starts_with("200 OK but the body is not JSON (body starts \"plain text"),
        "{}",
        r("not json")
    );
    // The service echoed the Authorization header into its body; the reason quotes the body.
    let echoed = r("echoing service");
    assert!(
        echoed.starts_with("200 OK but the body does not contain \"status ok\" (body starts")
            && echoed.contains("[redacted]"),
        "{echoed}"
    );
}

#[tokio::test]
async fn each_secret_is_read_once_per_run() {
    let gate = gate();
    let base = integration().await;
    let s = secrets("once").await;
    let checks: Vec<Value> = (0..4)
        .map(|i| {
            let secret = if i % 2 == 0 { &s.bearer } else { &s.basic };
            json!({"name": format!("status {i}"), "url": format!("{base}/status"),
                   "credentials_secret": secret})
        })
        .collect();
    let report = run(&Clients::new(&gate.sdk_config()), &plan(json!(checks)))
        .await
        .unwrap();
    assert!(report.passed, "{report:#?}");
    let reads = gate
        .proxy()
        .log()
        .iter()
        .filter(|r| r.request.operation == "GetSecretValue")
        .count();
    assert_eq!(reads, 2, "one read per distinct secret");
}

#[tokio::test]
async fn unusable_credentials_are_configuration_errors_naming_the_secret_only() {
    let gate = gate();
    let base = integration().await;
    let clients = Clients::new(&gate.sdk_config());
    let with = |secret: &str| {
        plan(
            json!([{"name": "status", "url": format!("{base}/status"), "credentials_secret": secret}]),
        )
    };

    let err = run(&clients, &with("smoke-svc/no-such-credentials"))
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig", "{err}");
    assert!(
        err.to_string()
            .contains("secret smoke-svc/no-such-credentials"),
        "{err}"
    );

    // A typo'd field: the error names the field, never the value next to it.
    let typo = put_secret(
        "smoke-svc/typo-credentials",
        &json!({"type": "bearer", "tokn": TOKEN}),
    )
    .await;
    let err = run(&clients, &with(&typo)).await.unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig");
    let message = err.to_string();
    assert!(
        message.contains(&typo) && message.contains("missing field `token`"),
        "{message}"
    );
    assert_no_secret(&message);

    // A wrongly typed value: serde would quote it; the error does not.
    let number = put_secret(
        "smoke-svc/number-credentials",
        &json!({"type": "basic", "username": USERNAME, "password": 4242424242u64}),
    )
    .await;
    let err = run(&clients, &with(&number)).await.unwrap_err();
    assert!(!err.to_string().contains("4242424242"), "{err}");

    let unknown = put_secret(
        "smoke-svc/unknown-credentials",
        &json!({"type": PASSWORD, "token": TOKEN}),
    )
    .await;
    let err = run(&clients, &with(&unknown)).await.unwrap_err();
    assert!(err.to_string().contains("type must be"), "{err}");
    assert_no_secret(&err.to_string());
}
