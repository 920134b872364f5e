//! SQL probes against PostgreSQL (RDS, Aurora PostgreSQL), shared by the smoke-test function
//! (after a rollback) and the snapshot function (baselines before a release). A library, not a
//! Lambda.
//!
//! - Credentials come from an RDS-style Secrets Manager secret
//!   (`{username, password, host, port, dbname, engine}`), read once by the caller.
//! - TLS is libpq's `verify-full` for every host, loopback included: the certificate must chain
//!   to the shipped RDS CA bundle (or to the secret's own `sslrootcert`) and name the host.
//!   Plaintext only when the secret says `"sslmode": "disable"`; callers say so in what they
//!   report ([`Target::plaintext_notice`]).
//! - Queries run in a read-only session, bounded by a timeout on both sides (the client gives
//!   up, the server's `statement_timeout` stops the query).
//!
//! A password never appears in a `Debug` output, an error or a message.
//!
//! Tests: `cargo test -p rollback-sql-probe` (Debian PostgreSQL, started by `rollback-postgres`).

mod number;
pub mod tls;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rollback_core::RollbackError;
use rollback_core::validation::one_line;
use serde::Deserialize;
use tokio_postgres::SimpleQueryMessage;

pub use number::Number;

/// What a report says about a probe that ran in plaintext.
pub const PLAINTEXT_NOTICE: &str = "plaintext (sslmode=disable in the secret)";

/// An RDS-style secret: `{username, password, host, port, dbname, engine}`, plus optional
/// `sslmode` (`verify-full`, the default, or `disable`) and `sslrootcert` (PEM certificates
/// trusted instead of the shipped RDS bundle).
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
    /// Read as text so that libpq's other modes get an answer that names them.
    #[serde(default)]
    pub sslmode: Option<String>,
    #[serde(default)]
    pub sslrootcert: Option<String>,
}

fn default_port() -> u16 {
    5432
}

fn default_dbname() -> String {
    "postgres".to_owned()
}

/// Never prints the password (nor the root certificates).
impl fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbSecret")
            .field("username", &self.username)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext: only when the secret says `"sslmode": "disable"`.
    Disable,
    /// Encrypted; the certificate chains to a trusted root and names the host (the default).
    VerifyFull,
}

impl SslMode {
    /// The secret's `sslmode` (absent: `verify-full`). libpq's modes that do not verify the
    /// certificate (`require`, `verify-ca`, `prefer`, `allow`) are refused, naming the fix.
    pub fn parse(value: Option<&str>) -> Result<SslMode, String> {
        match value.map(str::trim) {
            None | Some("verify-full") => Ok(SslMode::VerifyFull),
            Some("disable") => Ok(SslMode::Disable),
            Some(mode @ ("require" | "verify-ca" | "prefer" | "allow")) => Err(format!(
                "sslmode {mode:?} does not check that the server's certificate names the \
                 host; remove sslmode (verify-full is the default) or, for a server without \
                 TLS, say \"disable\""
            )),
            Some(other) => Err(format!(
                "sslmode {:?} is not known; use \"verify-full\" (the default) or \"disable\"",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// A database a probe can connect to: the secret's credentials and how to reach it.
#[derive(Clone)]
pub struct Target {
    secret: DbSecret,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Plaintext,
    Tls {
        config: Arc<rustls::ClientConfig>,
        /// The secret's `sslrootcert` rather than the RDS bundle.
        custom_roots: bool,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("secret", &self.secret)
            .field("sslmode", &self.ssl_mode())
            .finish()
    }
}

impl Target {
    /// Checks the secret (engine, `sslmode`, `sslrootcert`); the error names the field and the
    /// fix, never a value that could be secret.
    pub fn from_secret(secret: DbSecret) -> Result<Target, String> {
        if let Some(engine) = &secret.engine
            && !engine.to_ascii_lowercase().contains("postgres")
        {
            return Err(format!(
                "the secret is for engine {:?}; SQL probes support PostgreSQL (postgres, \
                 aurora-postgresql)",
                engine.chars().take(40).collect::<String>()
            ));
        }
        let transport = match SslMode::parse(secret.sslmode.as_deref())? {
            SslMode::Disable => Transport::Plaintext,
            SslMode::VerifyFull => match &secret.sslrootcert {
                Some(pem) => Transport::Tls {
                    config: tls::config_from_pem(pem).map_err(|why| {
                        format!(
                            "the secret's sslrootcert cannot be used: {why}; give the PEM \
                             certificates of the CA that signed the server's certificate, or \
                             remove sslrootcert to trust the RDS CA bundle"
                        )
                    })?,
                    custom_roots: true,
                },
                None => Transport::Tls {
                    config: tls::rds_config(),
                    custom_roots: false,
                },
            },
        };
        Ok(Target { secret, transport })
    }

    pub fn secret(&self) -> &DbSecret {
        &self.secret
    }

    pub fn ssl_mode(&self) -> SslMode {
        match self.transport {
            Transport::Plaintext => SslMode::Disable,
            Transport::Tls { .. } => SslMode::VerifyFull,
        }
    }

    /// [`PLAINTEXT_NOTICE`] when the probe runs without TLS.
    pub fn plaintext_notice(&self) -> Option<&'static str> {
        matches!(self.transport, Transport::Plaintext).then_some(PLAINTEXT_NOTICE)
    }

    /// `host:port/dbname`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}:{}/{}",
            self.secret.host, self.secret.port, self.secret.dbname
        )
    }
}

/// Why a secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager did not answer (timeout, throttling): retryable, as it is.
    #[error(transparent)]
    Aws(RollbackError),
    /// The secret is missing, unreadable or not usable as configured.
    #[error("{0}")]
    Config(String),
}

/// Reads secret `id` (an ARN or name) and checks it ([`Target::from_secret`]).
pub async fn load_secret(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<Target, SecretError> {
    let out = match client.get_secret_value().secret_id(id).send().await {
        Ok(out) => out,
        Err(e) => {
            return Err(match RollbackError::from_sdk("GetSecretValue", e) {
                RollbackError::Aws { code, message, .. } => SecretError::Config(format!(
                    "cannot read secret {id} ({code}: {message}); check the plan's secret_arn \
                     and that the function may read it"
                )),
                other => SecretError::Aws(other),
            });
        }
    };
    let text = out.secret_string().ok_or_else(|| {
        SecretError::Config(format!(
            "secret {id} has no SecretString; store RDS-style JSON credentials"
        ))
    })?;
    let secret: DbSecret = serde_json::from_str(text).map_err(|e| {
        // serde's message names the field, never the value.
        SecretError::Config(format!(
            "secret {id} is not RDS-style JSON {{username, password, host, port, dbname, \
             engine}}: {}",
            e.to_string().split(" at line").next().unwrap_or_default()
        ))
    })?;
    Target::from_secret(secret).map_err(|why| SecretError::Config(format!("secret {id}: {why}")))
}

/// What a query returned: how many rows, and the first column of the first row (`None`: no
/// row; `Some(None)`: NULL), in PostgreSQL's text form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    pub count: u64,
    pub first: Option<Option<String>>,
}

impl Rows {
    /// `1 row`, `3 rows`.
    pub fn count_words(&self) -> String {
        if self.count == 1 {
            "1 row".to_owned()
        } else {
            format!("{} rows", self.count)
        }
    }

    /// The first value as a number, or why it is not one.
    pub fn first_number(&self) -> Result<Number, String> {
        match &self.first {
            None => Err("no row".to_owned()),
            Some(None) => Err("NULL".to_owned()),
            Some(Some(text)) => {
                Number::parse(text).ok_or_else(|| format!("{:?}, not a number", one_line(text, 40)))
            }
        }
    }
}

/// Runs `query` against `target` in a read-only session; gives up after `timeout` (connect
/// and query together). The error is one line for a report: it never holds the password.
pub async fn query(
    target: &Target,
    query: &str,
    timeout: Duration,
    application_name: &str,
) -> Result<Rows, String> {
    match tokio::time::timeout(
        timeout,
        query_once(target, query, timeout, application_name),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(format!(
            "no result within {} ms from {}:{}",
            timeout.as_millis(),
            target.secret.host,
            target.secret.port
        )),
    }
}

async fn query_once(
    target: &Target,
    query: &str,
    timeout: Duration,
    application_name: &str,
) -> Result<Rows, String> {
    let secret = &target.secret;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&secret.host)
        .port(secret.port)
        .user(&secret.username)
        .password(&secret.password)
        .dbname(&secret.dbname)
        .application_name(application_name)
        .connect_timeout(timeout)
        // Probes only read; the server also stops a runaway query.
        .options(format!(
            "-c default_transaction_read_only=on -c statement_timeout={}",
            timeout.as_millis()
        ));
    let place = target.describe();
    let client = match &target.transport {
        Transport::Plaintext => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("could not connect to {place}: {}", pg_error(&e)))?;
            tokio::spawn(connection);
            client
        }
        Transport::Tls {
            config: tls_config,
            custom_roots,
        } => {
            // Require: a server without TLS is refused, never used in plaintext.
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new((**tls_config).clone());
            let (client, connection) = config.connect(connector).await.map_err(|e| {
                match tls::certificate_problem(&e, &secret.host, *custom_roots) {
                    Some(why) => format!("could not connect to {place}: {why}"),
                    None => format!("could not connect to {place}: {}", pg_error(&e)),
                }
            })?;
            tokio::spawn(connection);
            client
        }
    };
    let messages = client
        .simple_query(query)
        .await
        .map_err(|e| format!("query failed: {}", pg_error(&e)))?;
    let mut rows = Rows {
        count: 0,
        first: None,
    };
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            if rows.count == 0 {
                rows.first = Some(row.get(0).map(str::to_owned));
            }
            rows.count += 1;
        }
    }
    Ok(rows)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(extra: serde_json::Value) -> DbSecret {
        let mut v = json!({"username": "u", "password": "hunter2", "host": "db.example.com",
            "port": 5432, "dbname": "d", "engine": "postgres"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn verify_full_is_the_default_for_every_host() {
        for host in ["db.example.com", "127.0.0.1", "localhost", "::1"] {
            let t = Target::from_secret(secret(json!({"host": host}))).unwrap();
            assert_eq!(t.ssl_mode(), SslMode::VerifyFull, "{host}");
            assert_eq!(t.plaintext_notice(), None);
        }
        let t = Target::from_secret(secret(json!({"sslmode": "disable"}))).unwrap();
        assert_eq!(t.ssl_mode(), SslMode::Disable);
        assert_eq!(
            t.plaintext_notice(),
            Some("plaintext (sslmode=disable in the secret)")
        );
    }

    #[test]
    fn modes_that_do_not_verify_are_refused_naming_the_fix() {
        for mode in ["require", "verify-ca", "prefer", "allow"] {
            let err = Target::from_secret(secret(json!({"sslmode": mode}))).unwrap_err();
            assert!(err.contains(mode) && err.contains("verify-full"), "{err}");
        }
        let err = Target::from_secret(secret(json!({"sslmode": "bogus"}))).unwrap_err();
        assert!(err.contains("\"disable\""), "{err}");
    }

    #[test]
    fn a_bad_sslrootcert_is_refused() {
        let err =
            Target::from_secret(secret(json!({"sslrootcert": "not a certificate"}))).unwrap_err();
        assert!(
            err.contains("sslrootcert") && err.contains("no PEM"),
            "{err}"
        );
        let err = Target::from_secret(secret(json!({"engine": "mysql"}))).unwrap_err();
        assert!(err.contains("mysql"), "{err}");
    }

    #[test]
    fn debug_hides_the_password() {
        let t = Target::from_secret(secret(json!({}))).unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
        assert!(!format!("{:?}", t.secret()).contains("hunter2"));
    }

    #[test]
    fn rds_bundle_parses_and_holds_only_amazon_rds_roots() {
        let (roots, count) = tls::roots_from_pem(tls::RDS_GLOBAL_BUNDLE).unwrap();
        assert_eq!(count, tls::BUNDLE_CERTIFICATES);
        assert_eq!(roots.len(), tls::BUNDLE_CERTIFICATES);
        // Every subject names an Amazon RDS root CA (the DER holds the common name as UTF-8).
        for (i, anchor) in roots.roots.iter().enumerate() {
            let subject = String::from_utf8_lossy(anchor.subject.as_ref()).into_owned();
            assert!(
                subject.contains("Amazon RDS") && subject.contains("Root CA"),
                "certificate {i}: {subject}"
            );
        }
        for region in ["us-east-1", "eu-west-1", "ap-southeast-2"] {
            for kind in ["RSA2048 G1", "RSA4096 G1", "ECC384 G1"] {
                let name = format!("Amazon RDS {region} Root CA {kind}");
                assert!(
                    roots
                        .roots
                        .iter()
                        .any(|a| String::from_utf8_lossy(a.subject.as_ref()).contains(&name)),
                    "{name}"
                );
            }
        }
        // Parsed once: the same configuration every time.
        assert!(Arc::ptr_eq(&tls::rds_config(), &tls::rds_config()));
    }
}
