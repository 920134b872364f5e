//! TLS for SQL probes: libpq's `sslmode=verify-full`. The server's certificate must chain to a
//! trusted root (the shipped RDS bundle, or the secret's own `sslrootcert`) and name the host
//! the probe connects to (a DNS name or an IP address subject alternative name).

use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// Amazon RDS's global CA bundle as AWS publishes it (see `certs/README.md`).
pub static RDS_GLOBAL_BUNDLE: &[u8] = include_bytes!("../certs/rds-global-bundle.pem");

/// Certificates in [`RDS_GLOBAL_BUNDLE`]: a test checks that every one is a trust anchor.
pub const BUNDLE_CERTIFICATES: usize = 108;

/// The client configuration trusting the RDS bundle, parsed once per process.
pub fn rds_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let (roots, _) = roots_from_pem(RDS_GLOBAL_BUNDLE)
                .expect("the shipped RDS bundle parses (tested by rds_bundle_parses)");
            config(roots)
        })
        .clone()
}

/// A client configuration trusting only the certificates in `pem` (a secret's
/// `sslrootcert`). The error says why none could be used.
pub fn config_from_pem(pem: &str) -> Result<Arc<ClientConfig>, String> {
    roots_from_pem(pem.as_bytes()).map(|(roots, _)| config(roots))
}

/// The trust anchors in `pem` and how many certificates it held.
pub fn roots_from_pem(pem: &[u8]) -> Result<(RootCertStore, usize), String> {
    let mut roots = RootCertStore::empty();
    let mut count = 0;
    for (i, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| format!("certificate {} is not valid PEM ({e})", i + 1))?;
        count += 1;
        roots
            .add(cert)
            .map_err(|e| format!("certificate {} is not a usable CA certificate ({e})", i + 1))?;
    }
    if roots.is_empty() {
        return Err(
            "it holds no PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)"
                .to_owned(),
        );
    }
    Ok((roots, count))
}

fn config(roots: RootCertStore) -> Arc<ClientConfig> {
    // An explicit provider: other crates in the workspace may enable aws-lc-rs too, and then
    // rustls cannot pick a process default by itself.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        // rustls' WebPKI verifier: chain to `roots`, validity dates, and the host name.
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Why a TLS handshake failed, in words a person can act on, when the cause is the server's
/// certificate; `None` otherwise.
pub(crate) fn certificate_problem(
    error: &(dyn std::error::Error + 'static),
    host: &str,
    custom_roots: bool,
) -> Option<String> {
    let mut source = Some(error);
    while let Some(e) = source {
        let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(cert)) = rustls_error {
            let trusted = if custom_roots {
                "the secret's sslrootcert"
            } else {
                "the RDS CA bundle"
            };
            use rustls::CertificateError as C;
            return Some(match cert {
                C::NotValidForName | C::NotValidForNameContext { .. } => format!(
                    "refused the server's certificate: it is not valid for host {host} \
                     (sslmode=verify-full); connect with the name the certificate gives (the \
                     RDS endpoint)"
                ),
                // BadSignature: an issuer of the same name, another key (a CA impostor).
                C::UnknownIssuer | C::BadSignature => format!(
                    "refused the server's certificate: it is not signed by a CA in {trusted} \
                     (sslmode=verify-full)"
                ),
                C::Expired | C::ExpiredContext { .. } => {
                    "refused the server's certificate: it has expired".to_owned()
                }
                C::NotValidYet | C::NotValidYetContext { .. } => {
                    "refused the server's certificate: it is not valid yet".to_owned()
                }
                other => format!("refused the server's certificate: {other:?}"),
            });
        }
        source = e.source();
    }
    None
}
