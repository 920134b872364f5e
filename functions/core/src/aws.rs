//! AWS client configuration: the standard `aws-config` chain in Lambda, with the SDK's own
//! endpoint override (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) honoured, so every
//! function can point at a local emulator without code changes.
//!
//! Every configuration here carries a [`DeferredHttpsClient`]: the SDK's default HTTPS client
//! (rustls on aws-lc-rs), whose root certificates are read on the first connection rather
//! than when each SDK client is built, so a function's cold start reads no certificate.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Connect and per-attempt bounds: a hung endpoint must not eat a Lambda's whole timeout.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

/// The SDK's default HTTPS client, with its root certificates loaded on first use.
///
/// The client `aws-config` builds by default (`default-https-client`) reads the platform's
/// roots (`rustls-native-certs`: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, otherwise the
/// OpenSSL locations, e.g. the ≈ 290 files of `/etc/ssl/certs`) and parses them into a rustls
/// root store in `validate_base_client_config`, which every SDK client runs when it is built:
/// most of a function's cold start. This wrapper does not pass that call on, so the same
/// client builds its TLS connector, and reads the roots (once per process; parsed once per
/// connector setting, i.e. once, as every client shares this one), on the first request.
/// Plain `http://` endpoints (the local stack) go through the same connector, so their first
/// request reads the roots too, as before.
#[derive(Debug, Clone)]
pub struct DeferredHttpsClient {
    inner: SharedHttpClient,
}

impl DeferredHttpsClient {
    /// The SDK's default client: rustls on aws-lc-rs, `HTTP(S)_PROXY` / `NO_PROXY` honoured,
    /// as `aws-smithy-runtime` builds it for the latest behaviour version.
    pub fn new() -> Self {
        let inner = aws_smithy_http_client::Builder::new().build_with_connector_fn(
            |settings, components| {
                let mut builder = aws_smithy_http_client::Connector::builder()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
                builder.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    builder.set_sleep_impl(components.sleep_impl());
                }
                builder.set_proxy_config(Some(ProxyConfig::from_env()));
                builder.build()
            },
        );
        Self { inner }
    }

    /// Defers `inner`'s connector (tests count what reaches it).
    #[cfg(test)]
    fn wrapping(inner: impl HttpClient + 'static) -> Self {
        Self {
            inner: SharedHttpClient::new(inner),
        }
    }
}

impl Default for DeferredHttpsClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient for DeferredHttpsClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.inner.http_connector(settings, components)
    }

    // `validate_base_client_config` keeps the trait's default (nothing): the inner client's
    // builds a connector there only to load the roots early.

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

/// The standard chain: environment, profile, container and instance credentials, region.
/// No certificate is read until the first AWS call ([`DeferredHttpsClient`]).
pub async fn from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(DeferredHttpsClient::new())
        .timeout_config(timeouts())
        .load()
        .await
}

/// The static access key [`for_endpoint`] configurations sign with (local stacks only).
pub const LOCAL_ACCESS_KEY_ID: &str = "testing";
/// Its secret: the local Kubernetes API verifies EKS tokens with it.
pub const LOCAL_SECRET_ACCESS_KEY: &str = "testing";

/// A configuration for a local emulator (moto) or any explicit endpoint, with static
/// test credentials. Never used against AWS.
pub fn for_endpoint(endpoint_url: &str, region: &str) -> SdkConfig {
    for_endpoint_as(endpoint_url, region, LOCAL_ACCESS_KEY_ID)
}

/// [`for_endpoint`] signing with `access_key_id` (and the same local secret): the local IAM
/// check knows which function is calling by its key (`ASIARESTORE`…), as AWS knows a
/// Lambda's role by its credentials.
pub fn for_endpoint_as(endpoint_url: &str, region: &str, access_key_id: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint_url)
        .region(Region::new(region.to_owned()))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            access_key_id,
            LOCAL_SECRET_ACCESS_KEY,
            None,
            None,
            "local-emulator",
        )))
        .http_client(DeferredHttpsClient::new())
        .timeout_config(timeouts())
        .build()
}

/// The region local stacks use.
pub const LOCAL_REGION: &str = "us-east-1";

/// S3 as AWS addresses it (virtual-hosted buckets); an endpoint override (moto, a proxy in
/// front of it) is addressed path-style, as such endpoints serve every bucket on one host.
pub fn s3_client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_config::retry::RetryConfig;
    use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture};
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;

    use super::*;

    /// An HTTP client that counts what the SDK asks of it and refuses every request.
    #[derive(Debug, Clone, Default)]
    struct Counting(Arc<[AtomicUsize; 2]>);

    impl Counting {
        fn validations(&self) -> usize {
            self.0[0].load(Ordering::SeqCst)
        }
        fn connectors(&self) -> usize {
            self.0[1].load(Ordering::SeqCst)
        }
    }

    #[derive(Debug)]
    struct Refuse;

    impl HttpConnector for Refuse {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::ready(Err(ConnectorError::io("no network in this test".into())))
        }
    }

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            self.0[1].fetch_add(1, Ordering::SeqCst);
            SharedHttpConnector::new(Refuse)
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            // Where the SDK's default client builds its connector (and reads the roots).
            self.0[0].fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn config(client: impl HttpClient + 'static) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(LOCAL_REGION))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                LOCAL_ACCESS_KEY_ID,
                LOCAL_SECRET_ACCESS_KEY,
                None,
                None,
                "test",
            )))
            .retry_config(RetryConfig::disabled())
            .http_client(client)
            .build()
    }

    #[test]
    fn building_an_sdk_client_asks_its_http_client_to_validate() {
        // Why the wrapper exists: without it, every client built at init reaches the place
        // where the default client loads the roots.
        let counting = Counting::default();
        let config = config(counting.clone());
        let _sfn = aws_sdk_sfn::Client::new(&config);
        let _s3 = s3_client(&config);
        assert_eq!(counting.validations(), 2);
    }

    #[tokio::test]
    async fn deferred_client_builds_its_connector_on_the_first_request_only() {
        let counting = Counting::default();
        let config = config(DeferredHttpsClient::wrapping(counting.clone()));
        let sfn = aws_sdk_sfn::Client::new(&config);
        let _s3 = s3_client(&config);
        let _kms = aws_sdk_kms::Client::new(&config);
        assert_eq!(
            (counting.validations(), counting.connectors()),
            (0, 0),
            "building clients must not build a connector"
        );

        let refused = sfn.list_state_machines().send().await;
        assert!(refused.is_err(), "the test connector refuses every request");
        assert_eq!(counting.validations(), 0);
        assert!(
            counting.connectors() >= 1,
            "the request asked for a connector"
        );
    }

    #[test]
    fn local_configurations_carry_an_http_client() {
        let config = for_endpoint("http://127.0.0.1:9", LOCAL_REGION);
        assert!(config.http_client().is_some());
    }
}
