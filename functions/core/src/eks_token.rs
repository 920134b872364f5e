//! EKS bearer tokens, built the way `aws eks get-token` and aws-iam-authenticator expect them:
//! `k8s-aws-v1.` + base64url (no padding) of a SigV4-presigned STS `GetCallerIdentity` URL on
//! the regional STS endpoint, with the `x-k8s-aws-id: <cluster>` header signed so the token is
//! only good for that cluster. The cluster's authenticator replays the URL against STS to learn
//! who is calling; nothing here talks to STS.
//!
//! The presigned URL says `X-Amz-Expires=60`, but the authenticator accepts a token for
//! 15 minutes after `X-Amz-Date`; [`TokenCache`] reuses one token within an invocation and
//! makes a new one before that window closes.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What every EKS token starts with (the format's version).
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster (signed, never sent by us).
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// What `aws eks get-token` puts in `X-Amz-Expires`.
pub const PRESIGN_EXPIRES: Duration = Duration::from_secs(60);
/// How long aws-iam-authenticator accepts a token after its `X-Amz-Date`.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// A cached token is replaced this long before [`TOKEN_LIFETIME`] ends, so a request that
/// starts with it cannot reach the server with an expired one.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(2 * 60);

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The credentials provider gave none.
    #[error("no AWS credentials to sign the EKS token with: {0}")]
    Credentials(String),
    /// The configuration has no region (the token is signed for the regional STS endpoint).
    #[error("no AWS region configured; the EKS token is signed for the regional STS endpoint")]
    NoRegion,
    /// SigV4 presigning failed.
    #[error("could not sign the EKS token: {0}")]
    Signing(String),
}

/// A bearer token and when it stops being accepted. `Debug` never shows the token.
#[derive(Clone)]
pub struct EksToken {
    token: String,
    /// The signing time (`X-Amz-Date`).
    pub issued_at: SystemTime,
}

impl EksToken {
    /// The `Authorization: Bearer` value. Never log it.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// When the cluster stops accepting it: [`TOKEN_LIFETIME`] after `issued_at`.
    pub fn expires_at(&self) -> SystemTime {
        self.issued_at + TOKEN_LIFETIME
    }

    /// Good for at least [`REFRESH_MARGIN`] more at `now`.
    pub fn is_fresh_at(&self, now: SystemTime) -> bool {
        now >= self.issued_at && now + REFRESH_MARGIN < self.expires_at()
    }
}

impl fmt::Debug for EksToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EksToken")
            .field("token", &"** redacted **")
            .field("issued_at", &self.issued_at)
            .finish()
    }
}

/// `https://sts.<region>.amazonaws.com/` (`.amazonaws.com.cn` in the China regions).
pub fn sts_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}/")
}

/// Presigns `GetCallerIdentity` for `cluster` at `now` and wraps it as an EKS token.
pub fn token_for(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<EksToken, TokenError> {
    let base = format!(
        "{}?Action=GetCallerIdentity&Version=2011-06-15",
        sts_endpoint(region)
    );
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_EXPIRES);
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        "GET",
        base.as_str(),
        [(CLUSTER_ID_HEADER, cluster)].into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| TokenError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into_parts();
    let mut url = url::Url::parse(&base).map_err(|e| TokenError::Signing(e.to_string()))?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
    }
    Ok(EksToken {
        token: format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(url.as_str())),
        issued_at: now,
    })
}

/// One token per cluster for the life of an invocation, renewed before it expires.
pub struct TokenCache {
    credentials: SharedCredentialsProvider,
    region: String,
    cluster: String,
    current: Mutex<Option<EksToken>>,
}

impl TokenCache {
    /// A cache that signs tokens for `cluster` with `credentials`, for `region`'s STS endpoint.
    pub fn new(
        credentials: SharedCredentialsProvider,
        region: impl Into<String>,
        cluster: impl Into<String>,
    ) -> Self {
        TokenCache {
            credentials,
            region: region.into(),
            cluster: cluster.into(),
            current: Mutex::new(None),
        }
    }

    /// From an `SdkConfig`'s credentials and region.
    pub fn from_sdk_config(
        config: &aws_config::SdkConfig,
        cluster: &str,
    ) -> Result<Self, TokenError> {
        let credentials = config.credentials_provider().ok_or_else(|| {
            TokenError::Credentials("the AWS configuration has no credentials provider".into())
        })?;
        let region = config.region().ok_or(TokenError::NoRegion)?;
        Ok(TokenCache::new(credentials, region.as_ref(), cluster))
    }

    /// The EKS cluster name the tokens are for.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The cached token if it is still fresh, else a new one.
    pub async fn token(&self) -> Result<EksToken, TokenError> {
        self.token_at(SystemTime::now()).await
    }

    /// [`TokenCache::token`] with an explicit clock (tests).
    pub async fn token_at(&self, now: SystemTime) -> Result<EksToken, TokenError> {
        if let Some(token) = self.cached(now) {
            return Ok(token);
        }
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| TokenError::Credentials(e.to_string()))?;
        let token = token_for(&credentials, &self.region, &self.cluster, now)?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        Ok(token)
    }

    fn cached(&self, now: SystemTime) -> Option<EksToken> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current.as_ref().filter(|t| t.is_fresh_at(now)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(token: &str) -> url::Url {
        let payload = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert!(!payload.contains('='), "payload must not be padded");
        assert!(
            !payload.contains('+') && !payload.contains('/'),
            "payload must be base64url"
        );
        let raw = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
        url::Url::parse(std::str::from_utf8(&raw).unwrap()).unwrap()
    }

    fn param(url: &url::Url, name: &str) -> Option<String> {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn token_is_a_presigned_regional_get_caller_identity() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        // 2024-05-01T12:00:00Z
        let token = token_for(&creds, "eu-west-1", "mint-eks", at(1_714_564_800)).unwrap();
        assert!(token.secret().starts_with("k8s-aws-v1."));
        let url = decode(token.secret());
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.host_str(), Some("sts.eu-west-1.amazonaws.com"));
        assert_eq!(url.path(), "/");
        assert_eq!(param(&url, "Action").as_deref(), Some("GetCallerIdentity"));
        assert_eq!(param(&url, "Version").as_deref(), Some("2011-06-15"));
        assert_eq!(
            param(&url, "X-Amz-Algorithm").as_deref(),
            Some("AWS4-HMAC-SHA256")
        );
        assert_eq!(
            param(&url, "X-Amz-Credential").as_deref(),
            Some("AKIDEXAMPLE/20240501/eu-west-1/sts/aws4_request")
        );
        assert_eq!(
            param(&url, "X-Amz-Date").as_deref(),
            Some("20240501T120000Z")
        );
        assert_eq!(param(&url, "X-Amz-Expires").as_deref(), Some("60"));
        assert_eq!(
            param(&url, "X-Amz-SignedHeaders").as_deref(),
            Some("host;x-k8s-aws-id")
        );
        let signature = param(&url, "X-Amz-Signature").unwrap();
        assert_eq!(signature.len(), 64);
        assert!(signature.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(param(&url, "X-Amz-Security-Token"), None);
        assert!(!format!("{token:?}").contains("k8s-aws-v1"));
    }

    #[test]
    fn the_cluster_name_is_signed_into_the_token() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let a = token_for(&creds, "us-east-1", "cluster-a", at(1_714_564_800)).unwrap();
        let b = token_for(&creds, "us-east-1", "cluster-b", at(1_714_564_800)).unwrap();
        let again = token_for(&creds, "us-east-1", "cluster-a", at(1_714_564_800)).unwrap();
        let sig = |t: &EksToken| param(&decode(t.secret()), "X-Amz-Signature");
        assert_ne!(sig(&a), sig(&b));
        assert_eq!(sig(&a), sig(&again));
    }

    #[test]
    fn session_tokens_ride_along_and_china_regions_use_their_domain() {
        let creds = Credentials::new(
            "ASIAEXAMPLE",
            "secret",
            Some("se/ss+ion=".into()),
            None,
            "t",
        );
        let token = token_for(&creds, "cn-north-1", "c", at(1_714_564_800)).unwrap();
        let url = decode(token.secret());
        assert_eq!(url.host_str(), Some("sts.cn-north-1.amazonaws.com.cn"));
        assert_eq!(
            param(&url, "X-Amz-Security-Token").as_deref(),
            Some("se/ss+ion=")
        );
    }

    #[tokio::test]
    async fn the_cache_reuses_a_token_and_renews_it_before_fifteen_minutes() {
        let provider = SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        ));
        let cache = TokenCache::new(provider, "us-east-1", "mint-eks");
        let first = cache.token_at(at(1_000_000)).await.unwrap();
        let later = cache.token_at(at(1_000_000 + 10 * 60)).await.unwrap();
        assert_eq!(first.secret(), later.secret(), "reused within the window");
        let renewed = cache.token_at(at(1_000_000 + 13 * 60 + 1)).await.unwrap();
        assert_ne!(first.secret(), renewed.secret(), "renewed near the end");
        assert_eq!(renewed.issued_at, at(1_000_000 + 13 * 60 + 1));
        // A clock that went backwards never gets a token "from the future".
        let earlier = cache.token_at(at(999_000)).await.unwrap();
        assert_eq!(earlier.issued_at, at(999_000));
    }
}
