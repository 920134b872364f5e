//! verify-full against a real PostgreSQL serving TLS with a generated CA: the right CA and
//! name pass; a wrong host name, an unknown CA (the RDS bundle) and plaintext are refused.

use std::time::Duration;

use rollback_postgres::{LOOPBACK_NAMES, PostgresServer};
use rollback_sql_probe::{DbSecret, SslMode, Target, query};
use serde_json::{Value, json};

async fn server(names: &'static [&'static str]) -> PostgresServer {
    PostgresServer::start_tls_async(names)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn target(secret: Value) -> Target {
    let secret: DbSecret = serde_json::from_value(secret).unwrap();
    Target::from_secret(secret).unwrap()
}

async fn run(target: &Target, sql: &str) -> Result<rollback_sql_probe::Rows, String> {
    query(target, sql, Duration::from_secs(10), "tls-test").await
}

#[tokio::test]
async fn the_right_ca_and_name_pass() {
    let pg = server(LOOPBACK_NAMES).await;
    let t = target(pg.rds_secret());
    assert_eq!(t.ssl_mode(), SslMode::VerifyFull);
    let rows = run(
        &t,
        "select ssl::text from pg_stat_ssl where pid = pg_backend_pid()",
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", pg.log()));
    // The session really is encrypted.
    assert_eq!(rows.first, Some(Some("true".to_owned())));
    // By name too: the certificate also gives localhost.
    let mut by_name = pg.rds_secret();
    by_name["host"] = json!("localhost");
    run(&target(by_name), "select 1").await.unwrap();
}

#[tokio::test]
async fn a_certificate_for_another_host_is_refused() {
    let pg = server(&["db.wrong.example"]).await;
    let err = run(&target(pg.rds_secret()), "select 1").await.unwrap_err();
    assert!(
        err.contains("not valid for host 127.0.0.1") && err.contains("verify-full"),
        "{err}"
    );
    assert!(!err.contains(pg.password()));
}

#[tokio::test]
async fn an_unknown_ca_is_refused() {
    let pg = server(LOOPBACK_NAMES).await;
    // No sslrootcert: the shipped RDS bundle, which did not sign this server's certificate.
    let mut secret = pg.rds_secret();
    secret.as_object_mut().unwrap().remove("sslrootcert");
    let err = run(&target(secret), "select 1").await.unwrap_err();
    assert!(
        err.contains("not signed by a CA in the RDS CA bundle"),
        "{err}"
    );
    // Another CA in sslrootcert: refused the same way, naming it.
    let other = server(LOOPBACK_NAMES).await;
    let mut secret = pg.rds_secret();
    secret["sslrootcert"] = json!(other.ca_pem().unwrap());
    let err = run(&target(secret), "select 1").await.unwrap_err();
    assert!(
        err.contains("not signed by a CA in the secret's sslrootcert"),
        "{err}"
    );
}

#[tokio::test]
async fn plaintext_only_when_the_secret_says_disable() {
    // A server without TLS: verify-full (the default) refuses to go on in plaintext.
    let plain = PostgresServer::start_async().await.unwrap();
    let mut secret = plain.rds_secret();
    secret.as_object_mut().unwrap().remove("sslmode");
    let err = run(&target(secret), "select 1").await.unwrap_err();
    assert!(err.contains("could not connect"), "{err}");
    // Said explicitly: plaintext, and the target says so for the report.
    let t = target(plain.rds_secret());
    assert_eq!(
        t.plaintext_notice(),
        Some("plaintext (sslmode=disable in the secret)")
    );
    let rows = run(&t, "select 42").await.unwrap();
    assert_eq!(rows.first, Some(Some("42".to_owned())));
    // A TLS-only server refuses a plaintext client.
    let pg = server(LOOPBACK_NAMES).await;
    let mut secret = pg.rds_secret();
    secret["sslmode"] = json!("disable");
    let err = run(&target(secret), "select 1").await.unwrap_err();
    assert!(
        err.contains("no encryption") || err.contains("pg_hba"),
        "{err}"
    );
}
