//! SQL probes end to end: verify-full TLS against a real PostgreSQL with a generated CA, the
//! plaintext notice, comparisons with a value and with the baseline recorded at the pre-deploy
//! snapshot (by the real snapshot function, in moto). smoke-test runs under its role in
//! infra/template.yaml (the IAM gate) for a stack of service `smoke-svc`.

use rollback_core::contract::smoke_test::SmokeReport;
use rollback_core::plan::Plan;
use rollback_postgres::{LOOPBACK_NAMES, PostgresServer};
use rollback_smoke_test::{RunOptions, run, run_with};
use serde_json::{Value, json};

mod common;
use common::{check, clients, gate, put_secret};
use rollback_moto::MotoServer;
use rollback_moto::rds::Postgres;

async fn postgres(names: &'static [&'static str]) -> PostgresServer {
    PostgresServer::start_tls_async(names)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn plan(db: &str, sql: Value) -> Plan {
    Plan::from_value(json!({
        "service": "smoke-svc",
        "databases": [{"kind": "rds-instance", "id": db}],
        "smoke": {"sql": sql},
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn probe(name: &str, db: &str, secret: &str, query: &str, expect: Value) -> Value {
    let mut p = json!({"name": name, "database": db, "secret_arn": secret, "query": query});
    p.as_object_mut()
        .unwrap()
        .extend(expect.as_object().unwrap().clone());
    p
}

fn reason(report: &SmokeReport, name: &str) -> String {
    check(report, name).reason.clone()
}

#[tokio::test]
async fn verify_full_refuses_a_wrong_name_and_an_unknown_ca() {
    let gate = gate();
    let right = postgres(LOOPBACK_NAMES).await;
    let wrong = postgres(&["db.wrong.example"]).await;
    let ok = put_secret("smoke-svc/tls-right", &right.rds_secret()).await;
    let bad_name = put_secret("smoke-svc/tls-wrong-name", &wrong.rds_secret()).await;
    let mut no_ca = right.rds_secret();
    no_ca.as_object_mut().unwrap().remove("sslrootcert");
    let rds_bundle = put_secret("smoke-svc/tls-rds-bundle", &no_ca).await;
    let sql = json!([
        probe(
            "right",
            "app-db",
            &ok,
            "select 1",
            json!({"expect_rows": 1})
        ),
        probe(
            "wrong name",
            "app-db",
            &bad_name,
            "select 1",
            json!({"expect_rows": 1})
        ),
        probe(
            "unknown ca",
            "app-db",
            &rds_bundle,
            "select 1",
            json!({"expect_rows": 1})
        ),
    ]);
    let report = run(&clients(&gate), &plan("app-db", sql)).await.unwrap();
    println!("{report:#?}");
    assert!(
        check(&report, "right").passed,
        "{}",
        reason(&report, "right")
    );
    assert!(!reason(&report, "right").contains("plaintext"));
    let why = reason(&report, "wrong name");
    assert!(!check(&report, "wrong name").passed);
    assert!(
        why.contains("refused the server's certificate: it is not valid for host 127.0.0.1"),
        "{why}"
    );
    let why = reason(&report, "unknown ca");
    assert!(!check(&report, "unknown ca").passed);
    assert!(
        why.contains("not signed by a CA in the RDS CA bundle"),
        "{why}"
    );
    assert!(!why.contains(right.password()));
}

#[tokio::test]
async fn plaintext_only_when_the_secret_says_so_and_the_result_says_it() {
    let gate = gate();
    let plain = PostgresServer::start_async().await.unwrap();
    // rds_secret says "sslmode": "disable" for a server without TLS.
    let explicit = put_secret("smoke-svc/plain-explicit", &plain.rds_secret()).await;
    let mut silent = plain.rds_secret();
    silent.as_object_mut().unwrap().remove("sslmode");
    let silent = put_secret("smoke-svc/plain-silent", &silent).await;
    let mut require = plain.rds_secret();
    require["sslmode"] = json!("require");
    let require = put_secret("smoke-svc/plain-require", &require).await;
    let sql = json!([
        probe(
            "explicit",
            "app-db",
            &explicit,
            "select 1",
            json!({"expect_rows": 1})
        ),
        probe(
            "silent",
            "app-db",
            &silent,
            "select 1",
            json!({"expect_rows": 1})
        ),
    ]);
    let report = run(&clients(&gate), &plan("app-db", sql)).await.unwrap();
    println!("{report:#?}");
    assert!(check(&report, "explicit").passed);
    assert!(
        reason(&report, "explicit").starts_with("plaintext (sslmode=disable in the secret): 1 row"),
        "{}",
        reason(&report, "explicit")
    );
    // Loopback is no exception: no sslmode means verify-full, and this server has no TLS.
    assert!(!check(&report, "silent").passed);
    assert!(reason(&report, "silent").contains("could not connect"));
    // A mode that does not verify is a configuration error naming the fix.
    let sql = json!([probe(
        "require",
        "app-db",
        &require,
        "select 1",
        json!({"expect_rows": 1})
    )]);
    let err = run(&clients(&gate), &plan("app-db", sql))
        .await
        .unwrap_err();
    assert_eq!(err.error_name(), "Rollback.SmokeConfig");
    assert!(err.to_string().contains("\"require\""), "{err}");
}

#[tokio::test]
async fn comparisons_with_a_value_say_what_was_compared() {
    let gate = gate();
    let pg = postgres(LOOPBACK_NAMES).await;
    pg.psql(
        "create table schema_migrations (version bigint); \
         insert into schema_migrations values (41), (42);",
    )
    .unwrap();
    let secret = put_secret("smoke-svc/compare", &pg.rds_secret()).await;
    let q = "select max(version) from schema_migrations";
    let sql = json!([
        probe(
            "at least 42",
            "app-db",
            &secret,
            q,
            json!({"compare": {"op": "ge", "value": 42}})
        ),
        probe(
            "below 42",
            "app-db",
            &secret,
            q,
            json!({"compare": {"op": "lt", "value": 42}})
        ),
        probe(
            "text",
            "app-db",
            &secret,
            "select 'v42'",
            json!({"compare": {"op": "eq", "value": 42}})
        ),
    ]);
    let report = run(&clients(&gate), &plan("app-db", sql)).await.unwrap();
    println!("{report:#?}");
    assert!(check(&report, "at least 42").passed);
    assert!(
        reason(&report, "at least 42").starts_with("1 row, first value 42 ≥ 42 in "),
        "{}",
        reason(&report, "at least 42")
    );
    assert_eq!(reason(&report, "below 42"), "first value 42, expected < 42");
    assert!(reason(&report, "text").contains("\"v42\", not a number"));
}

/// Snapshot function clients straight to moto (the pipeline's side, seeding).
fn snapshot_clients() -> rollback_snapshot::Clients {
    rollback_snapshot::Clients::new(&MotoServer::shared().sdk_config())
}

#[tokio::test]
async fn baselines_come_from_the_pre_deploy_snapshot() {
    let gate = gate();
    let pg = postgres(LOOPBACK_NAMES).await;
    pg.psql("create table accounts (id int); insert into accounts select generate_series(1, 1204)")
        .unwrap();
    let secret = put_secret("smoke-svc/baseline", &pg.rds_secret()).await;
    let db = "smoke-base-db";
    MotoServer::shared()
        .postgres_instance(db, Postgres::default())
        .await;
    let sql = json!([
        probe(
            "accounts kept",
            db,
            &secret,
            "select count(*) from accounts",
            json!({"compare": {"op": "ge", "baseline": "pre-deploy-snapshot"}})
        ),
        probe(
            "accounts unchanged",
            db,
            &secret,
            "select count(*) from accounts",
            json!({"compare": {"op": "eq", "baseline": "pre-deploy-snapshot"}})
        ),
    ]);
    let the_plan = plan(db, sql);
    // The pipeline's pre-deploy snapshot of release v9 records 1,204.
    rollback_snapshot::handle(
        &snapshot_clients(),
        json!({"action": "pre-deploy", "release": "v9", "plan": the_plan, "execution": "deploy-v9"}),
    )
    .await
    .unwrap();
    let snapshot = rollback_core::ids::pre_deploy_snapshot_id("smoke-svc", "v9", db);

    // Not restored by this execution (an application-only rollback): the release's snapshot.
    pg.psql("insert into accounts values (0)").unwrap();
    let options = RunOptions {
        execution: Some("exec-app-only".into()),
        release: Some("v9".into()),
        ..RunOptions::default()
    };
    let report = run_with(&clients(&gate), &the_plan, options).await.unwrap();
    println!("{report:#?}");
    assert!(check(&report, "accounts kept").passed);
    assert!(
        reason(&report, "accounts kept").starts_with(&format!(
            "1 row, first value 1,205 ≥ baseline 1,204 of pre-deploy snapshot {snapshot}"
        )),
        "{}",
        reason(&report, "accounts kept")
    );
    assert_eq!(
        reason(&report, "accounts unchanged"),
        format!("first value 1,205, expected = baseline 1,204 of pre-deploy snapshot {snapshot}")
    );

    // Rows lost since the snapshot: the check fails and says by how much it is short.
    pg.psql("delete from accounts where id > 1000").unwrap();
    let report = run_with(
        &clients(&gate),
        &the_plan,
        RunOptions {
            release: Some("v9".into()),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!check(&report, "accounts kept").passed);
    assert!(
        reason(&report, "accounts kept")
            .starts_with("first value 1,001, expected ≥ baseline 1,204")
    );

    // No release and no restore: the newest pre-deploy snapshot of the database.
    let report = run(&clients(&gate), &the_plan).await.unwrap();
    assert!(
        reason(&report, "accounts kept").contains(&snapshot),
        "{report:#?}"
    );

    // A release without a pre-deploy snapshot: the probe fails, saying so.
    let report = run_with(
        &clients(&gate),
        &the_plan,
        RunOptions {
            release: Some("v10".into()),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    let why = reason(&report, "accounts kept");
    assert!(!check(&report, "accounts kept").passed);
    assert!(
        why.starts_with("no baseline to compare with: no pre-deploy snapshot"),
        "{why}"
    );
}

#[tokio::test]
async fn a_restored_database_is_compared_with_the_snapshot_it_came_from() {
    let gate = gate();
    let pg = postgres(LOOPBACK_NAMES).await;
    pg.psql("create table accounts (id int); insert into accounts select generate_series(1, 50)")
        .unwrap();
    let secret = put_secret("smoke-svc/restored", &pg.rds_secret()).await;
    let source = "smoke-restored-src";
    MotoServer::shared()
        .postgres_instance(source, Postgres::default())
        .await;
    let sql = |db: &str| {
        json!([probe(
            "accounts kept",
            db,
            &secret,
            "select count(*) from accounts",
            json!({"compare": {"op": "ge", "baseline": "pre-deploy-snapshot"}})
        )])
    };
    // Release v3's pre-deploy snapshot of the source records 50 rows.
    rollback_snapshot::handle(
        &snapshot_clients(),
        json!({"action": "pre-deploy", "release": "v3", "plan": plan(source, sql(source)),
               "execution": "deploy-v3"}),
    )
    .await
    .unwrap();
    let snapshot = rollback_core::ids::pre_deploy_snapshot_id("smoke-svc", "v3", source);
    // The database as the restore leaves it under the plan's identifier: tagged with the
    // execution and the snapshot it was restored from.
    let db = "smoke-restored-db";
    let tags = [
        ("rollback:execution", "exec-restored"),
        ("rollback:snapshot", snapshot.as_str()),
    ];
    MotoServer::shared()
        .postgres_instance(
            db,
            Postgres {
                tags: &tags,
                ..Postgres::default()
            },
        )
        .await;
    let the_plan = plan(db, sql(db));
    let options = |execution: &str| RunOptions {
        execution: Some(execution.into()),
        // A release whose snapshot does not exist: the restored-from snapshot wins.
        release: Some("v-none".into()),
        ..RunOptions::default()
    };
    let report = run_with(&clients(&gate), &the_plan, options("exec-restored"))
        .await
        .unwrap();
    println!("{report:#?}");
    assert!(
        reason(&report, "accounts kept").starts_with(&format!(
            "1 row, first value 50 ≥ baseline 50 of pre-deploy snapshot {snapshot}"
        )),
        "{}",
        reason(&report, "accounts kept")
    );
    // Tags of an earlier rollback do not count: another execution looks for the release's.
    let report = run_with(&clients(&gate), &the_plan, options("exec-later"))
        .await
        .unwrap();
    assert!(!check(&report, "accounts kept").passed);
    assert!(reason(&report, "accounts kept").contains("no pre-deploy snapshot"));
}
