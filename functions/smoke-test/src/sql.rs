//! SQL probes against PostgreSQL (RDS, Aurora PostgreSQL): credentials from an RDS-style
//! Secrets Manager secret, connect and query bounded by the probe's timeout, read-only
//! session, and the row count or first value compared with the expectation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_core::RollbackError;
use rollback_core::contract::smoke::{CheckKind, CheckResult};
use rollback_core::plan::SqlProbe;
use serde::Deserialize;
use tokio_postgres::SimpleQueryMessage;

use crate::{millis, one_line};

/// An RDS-style secret: `{username, password, host, port, dbname, engine}`, plus an
/// optional `sslmode` (`disable`, `require`; default `disable` on loopback hosts and
/// `require` elsewhere).
#[derive(Clone, Deserialize)]
pub struct DbSecret {
    pub username: String,
    pub password: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_dbname")]
    pub dbname: String,
    #[serde(default)]
    pub engine: Option<String>,
    #[serde(default)]
    pub sslmode: Option<SslMode>,
}

fn default_port() -> u16 {
    5432
}

fn default_dbname() -> String {
    "postgres".to_owned()
}

/// Never prints the password.
impl fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSecret")
            .field("username", &self.username)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    /// Encrypted; the certificate is not verified (libpq's `require`).
    Require,
}

impl DbSecret {
    fn ssl_mode(&self) -> SslMode {
        self.sslmode.unwrap_or_else(|| {
            let loopback = self.host == "localhost"
                || self
                    .host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                SslMode::Disable
            } else {
                SslMode::Require
            }
        })
    }
}

/// Reads every distinct secret the probes name. A missing or unreadable secret is a
/// configuration error.
pub(crate) async fn load_secrets(
    client: &aws_sdk_secretsmanager::Client,
    probes: &[SqlProbe],
) -> Result<HashMap<String, DbSecret>, RollbackError> {
    let mut secrets = HashMap::new();
    for probe in probes {
        if secrets.contains_key(&probe.secret_arn) {
            continue;
        }
        let secret = load_secret(client, probe).await?;
        secrets.insert(probe.secret_arn.clone(), secret);
    }
    Ok(secrets)
}

async fn load_secret(
    client: &aws_sdk_secretsmanager::Client,
    probe: &SqlProbe,
) -> Result<DbSecret, RollbackError> {
    let id = &probe.secret_arn;
    let out = match client.get_secret_value().secret_id(id).send().await {
        Ok(out) => out,
        Err(e) => {
            let err = RollbackError::from_sdk("GetSecretValue", e);
            return Err(match &err {
                RollbackError::Aws { code, message, .. } => RollbackError::SmokeConfig(format!(
                    "SQL probe {:?}: cannot read secret {id} ({code}: {message}); check the \
                     plan's secret_arn and that the function may read it",
                    probe.name
                )),
                _ => err,
            });
        }
    };
    let text = out.secret_string().ok_or_else(|| {
        RollbackError::SmokeConfig(format!(
            "SQL probe {:?}: secret {id} has no SecretString; store RDS-style JSON credentials",
            probe.name
        ))
    })?;
    let secret: DbSecret = serde_json::from_str(text).map_err(|e| {
        // serde's message names the field, never the value.
        RollbackError::SmokeConfig(format!(
            "SQL probe {:?}: secret {id} is not RDS-style JSON \
             {{username, password, host, port, dbname, engine}}: {}",
            probe.name,
            e.to_string().split(" at line").next().unwrap_or_default()
        ))
    })?;
    if let Some(engine) = &secret.engine
        && !engine.to_ascii_lowercase().contains("postgres")
    {
        return Err(RollbackError::SmokeConfig(format!(
            "SQL probe {:?}: secret {id} is for engine {engine:?}; SQL probes support \
             PostgreSQL (postgres, aurora-postgresql)",
            probe.name
        )));
    }
    Ok(secret)
}

pub(crate) async fn run(probe: &SqlProbe, secret: DbSecret) -> CheckResult {
    let start = Instant::now();
    let timeout = Duration::from_millis(probe.timeout_ms);
    let (passed, reason) = match tokio::time::timeout(timeout, probe_once(probe, &secret)).await {
        Err(_) => (
            false,
            format!(
                "no result within {} ms from {}:{}",
                probe.timeout_ms, secret.host, secret.port
            ),
        ),
        Ok(Err(why)) => (false, why),
        Ok(Ok(seen)) => judge(probe, &seen),
    };
    let took = millis(start.elapsed());
    CheckResult {
        kind: CheckKind::Sql,
        name: probe.name.clone(),
        passed,
        elapsed_ms: took,
        attempts: 1,
        reason: if passed {
            format!("{reason} in {took} ms")
        } else {
            reason
        },
    }
}

/// What the query returned.
#[derive(Debug)]
struct Seen {
    rows: u64,
    first: Option<Option<String>>,
}

async fn probe_once(probe: &SqlProbe, secret: &DbSecret) -> Result<Seen, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&secret.host)
        .port(secret.port)
        .user(&secret.username)
        .password(&secret.password)
        .dbname(&secret.dbname)
        .application_name("rollback-smoke-test")
        .connect_timeout(Duration::from_millis(probe.timeout_ms))
        // Probes only read; the server also stops a runaway query.
        .options(format!(
            "-c default_transaction_read_only=on -c statement_timeout={}",
            probe.timeout_ms
        ));
    let target = format!("{}:{}/{}", secret.host, secret.port, secret.dbname);
    let connect_err =
        |e: tokio_postgres::Error| format!("could not connect to {target}: {}", pg_error(&e));
    let client = match secret.ssl_mode() {
        SslMode::Disable => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(connect_err)?;
            tokio::spawn(connection);
            client
        }
        SslMode::Require => {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let (client, connection) = config
                .connect(tls_unverified())
                .await
                .map_err(connect_err)?;
            tokio::spawn(connection);
            client
        }
    };
    let messages = client
        .simple_query(&probe.query)
        .await
        .map_err(|e| format!("query failed: {}", pg_error(&e)))?;
    let mut seen = Seen {
        rows: 0,
        first: None,
    };
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            if seen.rows == 0 {
                seen.first = Some(row.get(0).map(str::to_owned));
            }
            seen.rows += 1;
        }
    }
    Ok(seen)
}

fn judge(probe: &SqlProbe, seen: &Seen) -> (bool, String) {
    let rows = if seen.rows == 1 {
        "1 row".to_owned()
    } else {
        format!("{} rows", seen.rows)
    };
    if let Some(expected) = probe.expect_rows
        && expected != seen.rows
    {
        return (false, format!("expected {expected} rows, got {rows}"));
    }
    if let Some(expected) = &probe.expect_value {
        let got = seen.first.clone().flatten();
        if !value_matches(expected, got.as_deref()) {
            let got = match (&seen.first, got) {
                (None, _) => "no row".to_owned(),
                (Some(_), None) => "NULL".to_owned(),
                (Some(_), Some(text)) => format!("{:?}", one_line(&text, 60)),
            };
            return (false, format!("expected first value {expected}, got {got}"));
        }
        return (true, format!("{rows}, first value {expected}"));
    }
    (true, rows)
}

/// Compares PostgreSQL's text form of a value with the plan's JSON expectation.
fn value_matches(expected: &serde_json::Value, got: Option<&str>) -> bool {
    use serde_json::Value;
    match (expected, got) {
        (Value::Null, None) => true,
        (_, None) | (Value::Null, Some(_)) => false,
        (Value::String(s), Some(text)) => s == text,
        (Value::Bool(b), Some(text)) => match text {
            "t" | "true" => *b,
            "f" | "false" => !*b,
            _ => false,
        },
        (Value::Number(n), Some(text)) => match (n.as_f64(), text.trim().parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        // Arrays and objects: compare JSON text (e.g. a json column).
        (other, Some(text)) => serde_json::from_str::<Value>(text).is_ok_and(|v| v == *other),
    }
}

fn pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return one_line(&format!("{} ({})", db.message(), db.code().code()), 160);
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    one_line(&text, 160)
}

/// TLS like libpq's `sslmode=require`: encrypted, certificate not verified (RDS certificates
/// chain to Amazon's own CA, which is not in public root stores).
fn tls_unverified() -> tokio_postgres_rustls::MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_compare_by_postgres_text_form() {
        assert!(value_matches(&json!(1), Some("1")));
        assert!(value_matches(&json!(1.5), Some("1.50")));
        assert!(value_matches(&json!("v42"), Some("v42")));
        assert!(value_matches(&json!(true), Some("t")));
        assert!(value_matches(&json!(null), None));
        assert!(!value_matches(&json!(1), Some("2")));
        assert!(!value_matches(&json!("1"), None));
        assert!(!value_matches(&json!(false), Some("t")));
    }

    #[test]
    fn secret_debug_hides_the_password() {
        let secret: DbSecret = serde_json::from_value(json!({
            "username": "u", "password": "hunter2", "host": "db.example.com", "port": 5432,
            "dbname": "d", "engine": "postgres"
        }))
        .unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert_eq!(secret.ssl_mode(), SslMode::Require);
        let local: DbSecret =
            serde_json::from_value(json!({"username": "u", "password": "p", "host": "127.0.0.1"}))
                .unwrap();
        assert_eq!(local.ssl_mode(), SslMode::Disable);
    }
}
