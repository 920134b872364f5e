//! Authentication: who a bearer token is.
//!
//! - Static tokens (kubectl convenience, the test harness) are the cluster admin, in
//!   `system:masters`, which RBAC never restricts.
//! - EKS tokens (`k8s-aws-v1.` + base64url of a presigned STS `GetCallerIdentity` URL) are
//!   verified the way EKS's authenticator (aws-iam-authenticator) and STS together do: the URL's
//!   shape and query parameters, the STS host, `x-k8s-aws-id` among the signed headers, the
//!   15-minute validity window from `X-Amz-Date`, and the SigV4 signature itself, recomputed
//!   with the secret key of the access key that signed it and the configured cluster name as
//!   the `x-k8s-aws-id` value (so a token made for another cluster does not verify). The
//!   access key must be one of the configured [`AwsPrincipal`]s; the token then authenticates
//!   as the Kubernetes user and groups its access entry maps it to.
//!
//! Anything else gets 401 with a `Status` of reason `Unauthorized`.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::rbac::{SYSTEM_AUTHENTICATED, UserInfo};

pub const EKS_TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long after its `X-Amz-Date` EKS accepts a token (whatever `X-Amz-Expires` says).
pub const TOKEN_LIFETIME_SECONDS: i64 = 15 * 60;
/// aws-iam-authenticator refuses presigned URLs whose X-Amz-Expires is above this.
const MAX_EXPIRES_SECONDS: i64 = 60;
/// Clock skew tolerated for an X-Amz-Date in the future.
const MAX_SKEW_SECONDS: i64 = 300;
/// The only query parameters aws-iam-authenticator lets through (compared lowercased).
const ALLOWED_PARAMS: [&str; 9] = [
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
];

/// An AWS principal the cluster knows: its credentials (which the local API needs to check
/// signatures, where EKS asks STS) and the Kubernetes identity its access entry maps it to.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsPrincipal {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The access entry's Kubernetes username (EKS's default for a role is its assumed-role ARN).
    pub username: String,
    /// The access entry's Kubernetes groups (`--kubernetes-groups`).
    pub groups: Vec<String>,
}

impl std::fmt::Debug for AwsPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsPrincipal")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .field("username", &self.username)
            .field("groups", &self.groups)
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct EksAuth {
    /// The cluster name tokens must be signed for (`x-k8s-aws-id`).
    pub cluster: String,
    /// When set, the STS host must be this region's (`sts.<region>.amazonaws.com`) or the
    /// global `sts.amazonaws.com`.
    pub region: Option<String>,
    /// The principals with an access entry; a token signed by any other key is refused.
    pub principals: Vec<AwsPrincipal>,
}

#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Tokens accepted as-is, as the cluster admin.
    pub static_tokens: Vec<String>,
    /// Accept EKS tokens that verify.
    pub eks: Option<EksAuth>,
}

impl AuthConfig {
    /// No tokens and no EKS mode: everyone is the admin (handy for plain-HTTP unit tests).
    pub fn is_open(&self) -> bool {
        self.static_tokens.is_empty() && self.eks.is_none()
    }

    /// Who an `Authorization` header value authenticates as.
    pub fn authenticate(&self, header: Option<&str>) -> Result<UserInfo, ApiError> {
        if self.is_open() {
            return Ok(UserInfo::admin());
        }
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Unauthorized"))?;
        if self.static_tokens.iter().any(|t| t == token) {
            return Ok(UserInfo::admin());
        }
        match (&self.eks, token.strip_prefix(EKS_TOKEN_PREFIX)) {
            (Some(eks), Some(_)) => verify_eks_token(token, eks, Utc::now()).map_err(|why| {
                ApiError::unauthorized(format!("Unauthorized: invalid EKS token: {why}"))
            }),
            _ => Err(ApiError::unauthorized("Unauthorized")),
        }
    }
}

/// The parts of a token's presigned URL that the signature covers.
struct Presigned {
    host: String,
    /// Decoded (key, value) pairs, as sent, signature excluded.
    params: Vec<(String, String)>,
    signature: String,
    access_key: String,
    scope_date: String,
    region: String,
    date: DateTime<Utc>,
    signed_headers: Vec<String>,
}

/// Parse and check everything about an EKS token that needs no secret, in this order: the
/// presigned URL and its STS host, the query parameters, the fixed ones, the credential scope,
/// the signed headers, the signature's form, the validity window, the host's region.
fn parse_eks_token(
    token: &str,
    region: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Presigned, String> {
    let url = decode_token_url(token)?;
    let (host, query) = split_sts_url(&url, region)?;
    let mut params = query_params(query)?;
    let param = |name: &str| required_param(&params, name);
    if param("Action")? != "GetCallerIdentity" {
        return Err("Action must be GetCallerIdentity".into());
    }
    if param("Version")? != "2011-06-15" {
        return Err("Version must be 2011-06-15".into());
    }
    if param("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err("X-Amz-Algorithm must be AWS4-HMAC-SHA256".into());
    }
    let credential = param("X-Amz-Credential")?;
    let parts = credential_scope(&credential)?;
    let signed_headers = checked_signed_headers(&param("X-Amz-SignedHeaders")?)?;
    let signature = param("X-Amz-Signature")?;
    if signature.len() != 64 || !signature.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("X-Amz-Signature must be 64 hex digits".into());
    }
    let date = checked_window(&params, parts[1], now)?;
    check_host_region(host, parts[2])?;
    let access_key = parts[0].to_string();
    let scope_date = parts[1].to_string();
    let region = parts[2].to_string();
    params.retain(|(key, _)| key != "X-Amz-Signature");
    Ok(Presigned {
        host: host.to_string(),
        params,
        signature,
        access_key,
        scope_date,
        region,
        date,
        signed_headers,
    })
}

/// The presigned URL a token carries: `k8s-aws-v1.` + unpadded base64url of UTF-8 text.
fn decode_token_url(token: &str) -> Result<String, String> {
    let encoded = token
        .strip_prefix(EKS_TOKEN_PREFIX)
        .ok_or("missing the k8s-aws-v1. prefix")?;
    if encoded.contains('=') {
        return Err("base64url payload must not be padded".into());
    }
    let raw = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|e| format!("payload is not base64url: {e}"))?;
    String::from_utf8(raw).map_err(|_| "payload is not UTF-8".into())
}

/// The STS host and the query of `https://<host>/?<query>`: the host must be STS's, in
/// `region` when one is configured (or the global endpoint).
fn split_sts_url<'u>(url: &'u str, region: Option<&str>) -> Result<(&'u str, &'u str), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or("presigned URL must be https")?;
    let (host, path_query) = rest.split_once('/').ok_or("presigned URL has no path")?;
    let regional = |region: &str| {
        host == format!("sts.{region}.amazonaws.com")
            || host == format!("sts.{region}.amazonaws.com.cn")
    };
    let host_ok = host == "sts.amazonaws.com"
        || match region {
            Some(region) => regional(region),
            None => {
                host.starts_with("sts.")
                    && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
            }
        };
    if !host_ok {
        return Err(format!("unexpected STS host {host:?}"));
    }
    let (path, query) = path_query
        .split_once('?')
        .ok_or("presigned URL has no query")?;
    if !path.is_empty() {
        return Err(format!("unexpected path /{path}"));
    }
    Ok((host, query))
}

/// The decoded query parameters, as sent: only those aws-iam-authenticator lets through, each
/// at most once.
fn query_params(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut params: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (percent_decode(key), percent_decode(value));
        if !ALLOWED_PARAMS.contains(&key.to_ascii_lowercase().as_str()) {
            return Err(format!("non-whitelisted query parameter {key:?}"));
        }
        if params
            .iter()
            .any(|(seen, _)| seen.eq_ignore_ascii_case(&key))
        {
            return Err("query parameter with multiple values not supported".into());
        }
        params.push((key, value));
    }
    Ok(params)
}

fn required_param(params: &[(String, String)], name: &str) -> Result<String, String> {
    params
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.clone())
        .ok_or_else(|| format!("missing {name}"))
}

/// `<access key>/<date>/<region>/sts/aws4_request`, split at `/`.
fn credential_scope(credential: &str) -> Result<Vec<&str>, String> {
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[3] != "sts" || parts[4] != "aws4_request" || parts[0].is_empty() {
        return Err(format!("malformed X-Amz-Credential {credential:?}"));
    }
    Ok(parts)
}

/// `X-Amz-SignedHeaders`: `host` and `x-k8s-aws-id`, nothing else.
fn checked_signed_headers(signed: &str) -> Result<Vec<String>, String> {
    let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
    if !signed_headers.iter().any(|h| h == CLUSTER_ID_HEADER) {
        return Err(format!(
            "client did not sign the {CLUSTER_ID_HEADER} header in the pre-signed URL"
        ));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err("X-Amz-SignedHeaders must include host".into());
    }
    if let Some(other) = signed_headers
        .iter()
        .find(|h| !matches!(h.as_str(), "host" | CLUSTER_ID_HEADER))
    {
        return Err(format!(
            "signed header {other:?} is not one an EKS token carries"
        ));
    }
    Ok(signed_headers)
}

/// `X-Amz-Date` (the credential scope's day), within [`TOKEN_LIFETIME_SECONDS`] of `now` and
/// not ahead of it by more than the tolerated skew; `X-Amz-Expires` at most
/// [`MAX_EXPIRES_SECONDS`].
fn checked_window(
    params: &[(String, String)],
    scope_date: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let date =
        NaiveDateTime::parse_from_str(&required_param(params, "X-Amz-Date")?, "%Y%m%dT%H%M%SZ")
            .map_err(|_| "X-Amz-Date must look like 20240101T000000Z")?
            .and_utc();
    if scope_date != date.format("%Y%m%d").to_string() {
        return Err("X-Amz-Credential date does not match X-Amz-Date".into());
    }
    let expires: i64 = required_param(params, "X-Amz-Expires")?
        .parse()
        .map_err(|_| "invalid X-Amz-Expires parameter in pre-signed URL")?;
    if !(0..=MAX_EXPIRES_SECONDS).contains(&expires) {
        return Err("invalid X-Amz-Expires parameter in pre-signed URL".into());
    }
    let age = (now - date).num_seconds();
    if age > TOKEN_LIFETIME_SECONDS {
        return Err(format!(
            "X-Amz-Date parameter is expired ({} minute expiration) {}",
            TOKEN_LIFETIME_SECONDS / 60,
            date.format("%Y%m%dT%H%M%SZ")
        ));
    }
    if age < -MAX_SKEW_SECONDS {
        return Err("X-Amz-Date is in the future".into());
    }
    Ok(date)
}

/// The credential scope's region must be the STS host's: the global endpoint signs for
/// us-east-1, a regional one for its own region.
fn check_host_region(host: &str, credential_region: &str) -> Result<(), String> {
    let host_region = host
        .strip_prefix("sts.")
        .and_then(|h| {
            h.strip_suffix(".amazonaws.com.cn")
                .or_else(|| h.strip_suffix(".amazonaws.com"))
        })
        .unwrap_or("us-east-1");
    if credential_region != host_region {
        return Err(format!(
            "X-Amz-Credential region {credential_region} does not match the STS host {host}"
        ));
    }
    Ok(())
}

/// Check an EKS token's shape and validity window at `now`, without its signature (what
/// a client can check of its own token); the error says what is wrong.
pub fn validate_eks_token(
    token: &str,
    region: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    parse_eks_token(token, region, now).map(|_| ())
}

/// Verify an EKS token at `now`: shape, window, the principal and the SigV4 signature over
/// the configured cluster name. Returns the Kubernetes identity of its access entry.
pub fn verify_eks_token(
    token: &str,
    eks: &EksAuth,
    now: DateTime<Utc>,
) -> Result<UserInfo, String> {
    let p = parse_eks_token(token, eks.region.as_deref(), now)?;
    let principal = eks
        .principals
        .iter()
        .find(|pr| pr.access_key_id == p.access_key)
        .ok_or_else(|| {
            format!(
                "access key {} has no access entry in cluster {:?}",
                p.access_key, eks.cluster
            )
        })?;
    let expected = signature(&p, &principal.secret_access_key, &eks.cluster);
    if !constant_time_eq(
        expected.as_bytes(),
        p.signature.to_ascii_lowercase().as_bytes(),
    ) {
        return Err(format!(
            "the signature does not verify for cluster {:?} (a token for another cluster, \
             other credentials, or an altered URL)",
            eks.cluster
        ));
    }
    let mut groups = principal.groups.clone();
    if !groups.iter().any(|g| g == SYSTEM_AUTHENTICATED) {
        groups.push(SYSTEM_AUTHENTICATED.into());
    }
    Ok(UserInfo {
        name: principal.username.clone(),
        groups,
    })
}

/// SigV4 over the presigned GET: canonical request (method, path `/`, canonical query of
/// every parameter but the signature, the signed headers with `x-k8s-aws-id` = `cluster`, the
/// empty payload's hash), string to sign, then aws-sigv4's signing key and HMAC.
fn signature(p: &Presigned, secret: &str, cluster: &str) -> String {
    let mut query: Vec<(String, String)> = p
        .params
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = p.signed_headers.clone();
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|h| match h.as_str() {
            "host" => format!("host:{}\n", p.host),
            _ => format!("{CLUSTER_ID_HEADER}:{}\n", cluster.trim()),
        })
        .collect();
    let empty_payload = hex::encode(Sha256::digest(b""));
    let canonical_request = format!(
        "GET\n/\n{canonical_query}\n{canonical_headers}\n{}\n{empty_payload}",
        headers.join(";")
    );
    let amz_date = p.date.format("%Y%m%dT%H%M%SZ");
    let scope = format!("{}/{}/sts/aws4_request", p.scope_date, p.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let time = UNIX_EPOCH + Duration::from_secs(p.date.timestamp().max(0) as u64);
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, time, &p.region, "sts");
    aws_sigv4::sign::v4::calculate_signature(key, string_to_sign.as_bytes())
}

/// SigV4's URI encoding: everything but unreserved characters as uppercase %XX.
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decode %XX escapes (and '+' as space, as in form-encoded queries).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::SystemTime;

    use aws_credential_types::Credentials;
    use rollback_core::eks_token::token_for;

    use super::*;

    const CLUSTER: &str = "mint-replica-eks";

    fn principal() -> AwsPrincipal {
        AwsPrincipal {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            username: "deploy-undo".into(),
            groups: vec!["rollback-deploy-undo".into()],
        }
    }

    fn eks() -> EksAuth {
        EksAuth {
            cluster: CLUSTER.into(),
            region: Some("eu-west-1".into()),
            principals: vec![principal()],
        }
    }

    /// A token made the way the function makes it (aws-sigv4's presigning).
    fn token(secret: &str, cluster: &str, at: DateTime<Utc>) -> String {
        let creds = Credentials::new("AKIDEXAMPLE", secret, None, None, "test");
        let at = SystemTime::from(at);
        token_for(&creds, "eu-west-1", cluster, at)
            .unwrap()
            .secret()
            .to_string()
    }

    /// Decode, edit and re-encode a token's URL.
    fn edit(token: &str, f: impl Fn(String) -> String) -> String {
        let url = URL_SAFE_NO_PAD
            .decode(token.strip_prefix(EKS_TOKEN_PREFIX).unwrap())
            .unwrap();
        let url = f(String::from_utf8(url).unwrap());
        format!("{EKS_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(url))
    }

    #[test]
    fn a_token_signed_for_this_cluster_with_known_credentials_verifies() {
        let now = Utc::now();
        let user = verify_eks_token(&token("secret", CLUSTER, now), &eks(), now).unwrap();
        assert_eq!(user.name, "deploy-undo");
        assert_eq!(
            user.groups,
            vec![
                "rollback-deploy-undo".to_string(),
                SYSTEM_AUTHENTICATED.into()
            ]
        );
        // Still good 14 minutes later, although X-Amz-Expires is 60.
        let later = now + chrono::Duration::minutes(14);
        verify_eks_token(&token("secret", CLUSTER, now), &eks(), later).unwrap();
        // With a session token, which the signature covers.
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("se/ss+ion=".into()),
            None,
            "t",
        );
        let t = token_for(&creds, "eu-west-1", CLUSTER, SystemTime::from(now)).unwrap();
        verify_eks_token(t.secret(), &eks(), now).unwrap();
    }

    #[test]
    fn other_clusters_expired_tampered_and_unknown_keys_are_refused() {
        let now = Utc::now();
        let other = verify_eks_token(&token("secret", "other-cluster", now), &eks(), now);
        assert!(other.unwrap_err().contains("does not verify for cluster"));
        let old = now - chrono::Duration::minutes(16);
        let expired = verify_eks_token(&token("secret", CLUSTER, old), &eks(), now);
        assert!(
            expired
                .unwrap_err()
                .contains("expired (15 minute expiration)")
        );
        let wrong_secret = verify_eks_token(&token("guessed", CLUSTER, now), &eks(), now);
        assert!(wrong_secret.unwrap_err().contains("does not verify"));
        let good = token("secret", CLUSTER, now);
        let tampered = edit(&good, |url| {
            let at = url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
            let flipped = if &url[at..at + 1] == "0" { "1" } else { "0" };
            format!("{}{flipped}{}", &url[..at], &url[at + 1..])
        });
        assert!(
            verify_eks_token(&tampered, &eks(), now)
                .unwrap_err()
                .contains("does not verify")
        );
        let later_date = edit(&good, |url| {
            url.replace("X-Amz-Expires=60", "X-Amz-Expires=59")
        });
        assert!(verify_eks_token(&later_date, &eks(), now).is_err());
        let mut stranger = eks();
        stranger.principals[0].access_key_id = "AKIDOTHER".into();
        assert!(
            verify_eks_token(&good, &stranger, now)
                .unwrap_err()
                .contains("no access entry")
        );
    }

    #[test]
    fn bad_shapes_are_refused_before_any_signature_check() {
        let now = Utc::now();
        let good = token("secret", CLUSTER, now);
        let check = |t: &str| validate_eks_token(t, Some("eu-west-1"), now).unwrap_err();
        assert!(
            check(&edit(&good, |u| u.replace("host%3Bx-k8s-aws-id", "host")))
                .contains("x-k8s-aws-id")
        );
        assert!(
            check(&edit(&good, |u| u
                .replace("X-Amz-Expires=60", "X-Amz-Expires=900")))
            .contains("X-Amz-Expires")
        );
        assert!(check(&edit(&good, |u| format!("{u}&Extra=1"))).contains("non-whitelisted"));
        assert!(
            check(&edit(&good, |u| format!("{u}&Action=GetCallerIdentity"))).contains("multiple")
        );
        assert!(check(&edit(&good, |u| u.replace("https://", "http://"))).contains("https"));
        assert!(
            check(&edit(&good, |u| u.replace("sts.eu-west-1", "sts.evil"))).contains("STS host")
        );
        assert!(check(&format!("{good}=")).contains("padded"));
        assert!(check("k8s-aws-v1.!!!").contains("base64url"));
        let future = token("secret", CLUSTER, now + chrono::Duration::minutes(10));
        assert!(check(&future).contains("future"));
    }

    #[test]
    fn static_tokens_are_the_admin_and_anything_else_is_401() {
        let cfg = AuthConfig {
            static_tokens: vec!["s3cret".into()],
            eks: Some(eks()),
        };
        assert_eq!(
            cfg.authenticate(Some("Bearer s3cret")).unwrap(),
            UserInfo::admin()
        );
        assert_eq!(cfg.authenticate(None).unwrap_err().code, 401);
        assert_eq!(cfg.authenticate(Some("Bearer nope")).unwrap_err().code, 401);
        let token = token("secret", CLUSTER, Utc::now());
        let user = cfg.authenticate(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(user.name, "deploy-undo");
        let no_eks = AuthConfig {
            static_tokens: vec!["s3cret".into()],
            eks: None,
        };
        assert_eq!(
            no_eks
                .authenticate(Some(&format!("Bearer {token}")))
                .unwrap_err()
                .reason,
            "Unauthorized"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%3Bc+d"), "a/b;c d");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
