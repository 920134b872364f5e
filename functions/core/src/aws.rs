//! AWS client configuration: the standard `aws-config` chain in Lambda, with the SDK's own
//! endpoint override (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) honoured, so every
//! function can point at a local emulator without code changes.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;

/// Connect and per-attempt bounds: a hung endpoint must not eat a Lambda's whole timeout.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

/// The standard chain: environment, profile, container and instance credentials, region.
pub async fn from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
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
