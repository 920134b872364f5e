//! Smoke checks against real things: local HTTP servers started here, a real PostgreSQL
//! (Debian's, started by rollback-postgres) with its secret in moto, and moto's CloudWatch.
//! smoke-test runs under its role in infra/template.yaml (the IAM gate), for a stack of service
//! `smoke-svc`: its probe secrets are `smoke-svc/…`. The tests seed through moto directly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use rollback_core::contract::smoke_test::{CheckKind, SmokeReport};
use rollback_core::plan::Plan;
use rollback_postgres::PostgresServer;
use rollback_smoke_test::{handle, run};
use serde_json::{Value, json};

mod common;
use common::{check, clients, gate, put_secret};
use rollback_moto::MotoServer;

fn plan(smoke: Value) -> Plan {
    Plan::from_value(json!({
        "service": "smoke-svc",
        "databases": [{"kind": "rds-instance", "id": "app-db"}],
        "smoke": smoke,
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

/// healthy, wrong status, slow, flapping-then-healthy, always failing.
async fn web() -> String {
    let flaps = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route("/healthy", get(|| async { "status: ok, release v41" }))
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "nope") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .route(
            "/flap",
            get(move || {
                let flaps = flaps.clone();
                async move {
                    if flaps.fetch_add(1, Ordering::SeqCst) < 2 {
                        (StatusCode::SERVICE_UNAVAILABLE, "warming up")
                    } else {
                        (StatusCode::OK, "ok")
                    }
                }
            }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::BAD_GATEWAY, "<html>\u{1b}[31mbad</html>") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn http_checks_pass_fail_retry_and_time_out() {
    let gate = gate();
    let base = web().await;
    let plan = plan(json!({"http": [
        {"name": "healthy", "url": format!("{base}/healthy"), "body_contains": "status: ok"},
        {"name": "regex", "url": format!("{base}/healthy"), "body_regex": "release v\\d+"},
        {"name": "wrong body", "url": format!("{base}/healthy"), "body_contains": "v42"},
        {"name": "wrong status", "url": format!("{base}/missing"), "retries": 3},
        {"name": "slow", "url": format!("{base}/slow"), "timeout_ms": 300, "retries": 1},
        {"name": "flapping", "url": format!("{base}/flap"), "retries": 3},
        {"name": "down", "url": format!("{base}/down"), "retries": 1},
        {"name": "refused", "url": "http://127.0.0.1:9/health", "retries": 0},
        {"name": "expects 404", "url": format!("{base}/missing"), "expect_status": 404},
    ]}));
    let report = run(&clients(&gate), &plan).await.unwrap();
    println!("{report:#?}");
    assert!(!report.passed);
    assert_eq!(report.checks.len(), 9);
    assert!(report.checks.iter().all(|c| c.kind == CheckKind::Http));

    let c = check(&report, "healthy");
    assert!(c.passed, "{c:?}");
    assert_eq!(c.attempts, 1);
    assert!(c.reason.starts_with("200 OK"), "{}", c.reason);
    assert!(check(&report, "regex").passed);
    assert!(check(&report, "expects 404").passed);

    let c = check(&report, "wrong body");
    assert!(!c.passed && c.attempts == 1, "{c:?}");
    assert!(
        c.reason.contains("does not contain \"v42\""),
        "{}",
        c.reason
    );

    // A 4xx is not transient: no retries.
    let c = check(&report, "wrong status");
    assert!(!c.passed && c.attempts == 1, "{c:?}");
    assert!(
        c.reason.contains("expected 200, got 404 Not Found"),
        "{}",
        c.reason
    );

    let c = check(&report, "slow");
    assert!(!c.passed && c.attempts == 2, "{c:?}");
    assert!(c.reason.contains("no answer within 300 ms"), "{}", c.reason);

    let c = check(&report, "flapping");
    assert!(c.passed, "{c:?}");
    assert_eq!(c.attempts, 3);

    let c = check(&report, "down");
    assert!(!c.passed && c.attempts == 2, "{c:?}");
    assert!(c.reason.contains("502"), "{}", c.reason);
    assert!(!c.reason.contains('\u{1b}'));

    let c = check(&report, "refused");
    assert!(!c.passed, "{c:?}");
    assert!(c.reason.contains("could not connect"), "{}", c.reason);

    assert!(!report.budget_exhausted);
    assert!(
        report.summary.starts_with("4 of 9 checks passed"),
        "{}",
        report.summary
    );
}

#[tokio::test]
async fn the_overall_budget_bounds_the_run() {
    let gate = gate();
    let base = web().await;
    let plan = plan(json!({"budget_seconds": 1, "http": [
        {"name": "slow", "url": format!("{base}/slow"), "timeout_ms": 10000},
        {"name": "healthy", "url": format!("{base}/healthy")},
    ]}));
    let report = run(&clients(&gate), &plan).await.unwrap();
    assert!(report.budget_exhausted);
    assert!(report.elapsed_ms < 2500, "{}", report.elapsed_ms);
    let slow = check(&report, "slow");
    assert!(!slow.passed);
    assert!(
        slow.reason.contains("smoke budget of 1 s"),
        "{}",
        slow.reason
    );
    assert!(check(&report, "healthy").passed);
}

#[tokio::test]
async fn sql_probes_against_a_real_postgres() {
    let gate = gate();
    // TLS with a generated CA (the secret's sslrootcert), verified as verify-full.
    let pg = PostgresServer::start_tls_async(rollback_postgres::LOOPBACK_NAMES)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    pg.psql(
        "create table releases (v text); insert into releases values ('v41'); \
         create table orders (id int); insert into orders select generate_series(1, 3);",
    )
    .unwrap();

    let arn = put_secret("smoke-svc/sql-good", &pg.rds_secret()).await;
    let mut bad = pg.rds_secret();
    bad["password"] = json!("wrong-password");
    let bad_arn = put_secret("smoke-svc/sql-badpw", &bad).await;

    let probe = |name: &str, secret: &str, query: &str, expect: Value| {
        let mut p =
            json!({"name": name, "database": "app-db", "secret_arn": secret, "query": query});
        p.as_object_mut()
            .unwrap()
            .extend(expect.as_object().unwrap().clone());
        p
    };
    let plan = plan(json!({"sql": [
        probe("select one", &arn, "select 1", json!({"expect_rows": 1, "expect_value": 1})),
        probe("release", &arn, "select v from releases", json!({"expect_value": "v41"})),
        probe("three orders", &arn, "select * from orders", json!({"expect_rows": 3})),
        probe("wrong count", &arn, "select * from orders", json!({"expect_rows": 2})),
        probe("wrong value", &arn, "select v from releases", json!({"expect_value": "v42"})),
        probe("bad sql", &arn, "select * from no_such_table", json!({"expect_rows": 1})),
        probe("read only", &arn, "insert into orders values (4)", json!({"expect_rows": 0})),
        probe("bad password", &bad_arn, "select 1", json!({"expect_rows": 1})),
        probe("slow", &arn, "select pg_sleep(5)", json!({"expect_rows": 1, "timeout_ms": 300})),
    ]}));
    let report = run(&clients(&gate), &plan).await.unwrap();
    println!("{report:#?}");
    for passing in ["select one", "release", "three orders"] {
        let c = check(&report, passing);
        assert!(c.passed, "{c:?}");
        assert_eq!(c.kind, CheckKind::Sql);
    }
    assert!(check(&report, "three orders").reason.starts_with("3 rows"));
    let r = |name| check(&report, name).reason.clone();
    assert!(
        r("wrong count").contains("expected 2 rows, got 3 rows"),
        "{}",
        r("wrong count")
    );
    assert!(r("wrong value").contains("expected first value \"v42\", got \"v41\""));
    assert!(r("bad sql").contains("no_such_table"), "{}", r("bad sql"));
    assert!(r("read only").contains("read-only"), "{}", r("read only"));
    assert!(
        r("bad password").contains("could not connect"),
        "{}",
        r("bad password")
    );
    assert!(!r("bad password").contains(pg.password()));
    assert!(
        r("slow").contains("no result within 300 ms") || r("slow").contains("statement timeout"),
        "{}",
        r("slow")
    );
    assert!(!report.passed);
    // The probe could not write.
    assert_eq!(pg.psql("select count(*) from orders").unwrap().trim(), "3");
}

#[tokio::test]
async fn configuration_errors_are_errors() {
    let gate = gate();
    let unknown = plan(json!({"sql": [{"name": "p", "database": "app-db",
        "secret_arn": "smoke-svc/no-such-secret", "query": "select 1", "expect_rows": 1}]}));
    let err = run(&clients(&gate), &unknown).await.unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig", "{err}");
    assert!(
        err.to_string().contains("smoke-svc/no-such-secret"),
        "{err}"
    );

    let mysql = put_secret(
        "smoke-svc/mysql",
        &json!({"username": "u", "password": "p", "host": "127.0.0.1", "port": 3306,
                "dbname": "d", "engine": "mysql"}),
    )
    .await;
    let plan_mysql = plan(json!({"sql": [{"name": "p", "database": "app-db",
        "secret_arn": mysql, "query": "select 1", "expect_rows": 1}]}));
    let err = run(&clients(&gate), &plan_mysql).await.unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig");
    assert!(err.to_string().contains("mysql"), "{err}");

    let not_json = put_secret("smoke-svc/not-json", &json!("just a string")).await;
    let plan_text = plan(json!({"sql": [{"name": "p", "database": "app-db",
        "secret_arn": not_json, "query": "select 1", "expect_rows": 1}]}));
    let err = run(&clients(&gate), &plan_text).await.unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig");

    let missing_alarm = plan(json!({"alarms": ["smoke-no-such-alarm"]}));
    let err = run(&clients(&gate), &missing_alarm).await.unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig");
    assert!(err.to_string().contains("smoke-no-such-alarm"));
}

async fn alarm(cw: &aws_sdk_cloudwatch::Client, name: &str, state: StateValue, reason: &str) {
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("Smoke")
        .metric_name("Errors")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason(reason)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn alarm_checks_follow_the_policy() {
    let gate = gate();
    let cw = aws_sdk_cloudwatch::Client::new(&MotoServer::shared().sdk_config());
    alarm(&cw, "smoke-ok", StateValue::Ok, "fine").await;
    alarm(
        &cw,
        "smoke-alarm",
        StateValue::Alarm,
        "5xx above 1 <script>",
    )
    .await;
    alarm(&cw, "smoke-nodata", StateValue::InsufficientData, "no data").await;
    let names = json!(["smoke-ok", "smoke-alarm", "smoke-nodata"]);

    let strict = run(&clients(&gate), &plan(json!({"alarms": names})))
        .await
        .unwrap();
    println!("{strict:#?}");
    assert_eq!(strict.checks.len(), 3);
    assert!(check(&strict, "smoke-ok").passed);
    let a = check(&strict, "smoke-alarm");
    assert!(!a.passed);
    assert_eq!(a.kind, CheckKind::Alarm);
    assert!(
        a.reason.contains("state ALARM") && a.reason.contains("5xx above 1"),
        "{}",
        a.reason
    );
    assert!(!check(&strict, "smoke-nodata").passed);

    let lenient = run(
        &clients(&gate),
        &plan(json!({"alarms": names, "alarm_policy": "not-alarm"})),
    )
    .await
    .unwrap();
    assert!(check(&lenient, "smoke-nodata").passed);
    assert!(!check(&lenient, "smoke-alarm").passed);
}

#[tokio::test]
async fn handle_reads_the_envelope_and_reports_json() {
    let gate = gate();
    let base = web().await;
    let out = handle(
        &clients(&gate),
        json!({
            "action": "run",
            "plan": {"service": "smoke-svc", "images": [{"repository": "svc", "release_tag": "prod", "stable_tag": "stable"}],
                     "smoke": {"http": [{"name": "h", "url": format!("{base}/healthy")}]}},
            "execution": "exec-smoke-1"
        }),
    )
    .await
    .unwrap();
    assert_eq!(out["passed"], json!(true));
    assert_eq!(out["checks"][0]["kind"], json!("http"));
    assert!(out["checks"][0]["elapsed_ms"].is_u64());
    let report: SmokeReport = serde_json::from_value(out).unwrap();
    assert_eq!(report.summary, "all 1 checks passed");

    let err = handle(&clients(&gate), json!({"action": "walk", "plan": {"service": "s", "images": [{"repository": "svc", "release_tag": "prod", "stable_tag": "stable"}]}, "execution": "e"}))
        .await
        .unwrap_err();
    let diag: lambda_runtime::Diagnostic = err.into();
    assert_eq!(diag.error_type, "Rollback.InvalidInput");
}
