//! Bearer-token authentication. Static tokens are for kubectl convenience; EKS-style tokens
//! (`k8s-aws-v1.` + base64url of a presigned STS GetCallerIdentity URL) are checked for the
//! shape aws-iam-authenticator requires, so a client's token code path is really exercised.
//! The signature itself cannot be verified without AWS, so it is only checked to be present.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::error::ApiError;

pub const EKS_TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// aws-iam-authenticator refuses presigned URLs valid for longer than this.
const MAX_EXPIRES_SECONDS: i64 = 900;
/// Clock skew tolerated for X-Amz-Date in the future.
const MAX_SKEW_SECONDS: i64 = 300;

#[derive(Debug, Clone, Default)]
pub struct EksAuth {
    /// When set, the STS host must be this region's (`sts.<region>.amazonaws.com`).
    pub region: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    pub static_tokens: Vec<String>,
    /// Accept EKS-shaped tokens.
    pub eks: Option<EksAuth>,
}

impl AuthConfig {
    /// No tokens and no EKS mode: everything is allowed (handy for plain-HTTP unit tests).
    pub fn is_open(&self) -> bool {
        self.static_tokens.is_empty() && self.eks.is_none()
    }

    /// Check an `Authorization` header value.
    pub fn check(&self, header: Option<&str>) -> Result<(), ApiError> {
        if self.is_open() {
            return Ok(());
        }
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("Unauthorized"))?;
        if self.static_tokens.iter().any(|t| t == token) {
            return Ok(());
        }
        match (&self.eks, token.strip_prefix(EKS_TOKEN_PREFIX)) {
            (Some(eks), Some(_)) => validate_eks_token(token, eks.region.as_deref(), Utc::now())
                .map_err(|why| {
                    ApiError::unauthorized(format!("Unauthorized: invalid EKS token: {why}"))
                }),
            _ => Err(ApiError::unauthorized("Unauthorized")),
        }
    }
}

/// Validate the shape of an EKS bearer token at time `now`; the error says what is wrong.
pub fn validate_eks_token(
    token: &str,
    region: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let encoded = token
        .strip_prefix(EKS_TOKEN_PREFIX)
        .ok_or("missing the k8s-aws-v1. prefix")?;
    if encoded.contains('=') {
        return Err("base64url payload must not be padded".into());
    }
    let raw = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|e| format!("payload is not base64url: {e}"))?;
    let url = String::from_utf8(raw).map_err(|_| "payload is not UTF-8")?;
    let rest = url
        .strip_prefix("https://")
        .ok_or("presigned URL must be https")?;
    let (host, path_query) = rest.split_once('/').ok_or("presigned URL has no path")?;
    let host_ok = match region {
        Some(r) => host == format!("sts.{r}.amazonaws.com"),
        None => {
            host == "sts.amazonaws.com"
                || (host.starts_with("sts.")
                    && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")))
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
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let param = |name: &str| -> Result<&str, String> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| format!("missing {name}"))
    };
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
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[3] != "sts" || parts[4] != "aws4_request" || parts[0].is_empty() {
        return Err(format!("malformed X-Amz-Credential {credential:?}"));
    }
    let signed = param("X-Amz-SignedHeaders")?;
    let signed: Vec<&str> = signed.split(';').collect();
    if !signed.contains(&"x-k8s-aws-id") {
        return Err("X-Amz-SignedHeaders must include x-k8s-aws-id".into());
    }
    if !signed.contains(&"host") {
        return Err("X-Amz-SignedHeaders must include host".into());
    }
    let signature = param("X-Amz-Signature")?;
    if signature.len() != 64 || !signature.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("X-Amz-Signature must be 64 hex digits".into());
    }
    let date = NaiveDateTime::parse_from_str(param("X-Amz-Date")?, "%Y%m%dT%H%M%SZ")
        .map_err(|_| "X-Amz-Date must look like 20240101T000000Z")?
        .and_utc();
    if parts[1] != date.format("%Y%m%d").to_string() {
        return Err("X-Amz-Credential date does not match X-Amz-Date".into());
    }
    let expires: i64 = param("X-Amz-Expires")?
        .parse()
        .map_err(|_| "X-Amz-Expires must be a number")?;
    if !(1..=MAX_EXPIRES_SECONDS).contains(&expires) {
        return Err(format!(
            "X-Amz-Expires must be between 1 and {MAX_EXPIRES_SECONDS}"
        ));
    }
    let age = (now - date).num_seconds();
    if age > expires {
        return Err("token expired".into());
    }
    if age < -MAX_SKEW_SECONDS {
        return Err("X-Amz-Date is in the future".into());
    }
    Ok(())
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
    use super::*;

    /// A token shaped like aws-iam-authenticator's (signature is fake but well-formed).
    pub fn eks_token(
        region: &str,
        date: DateTime<Utc>,
        expires: i64,
        signed_headers: &str,
    ) -> String {
        let d = date.format("%Y%m%dT%H%M%SZ");
        let day = date.format("%Y%m%d");
        let url = format!(
            "https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F{day}%2F{region}%2Fsts%2Faws4_request\
             &X-Amz-Date={d}&X-Amz-Expires={expires}&X-Amz-SignedHeaders={}&X-Amz-Signature={}",
            signed_headers.replace(';', "%3B"),
            "a".repeat(64)
        );
        format!("{EKS_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(url))
    }

    #[test]
    fn accepts_a_well_formed_token() {
        let now = Utc::now();
        validate_eks_token(
            &eks_token("eu-west-1", now, 60, "host;x-k8s-aws-id"),
            Some("eu-west-1"),
            now,
        )
        .unwrap();
    }

    #[test]
    fn rejects_bad_shapes() {
        let now = Utc::now();
        let check = |t: &str| validate_eks_token(t, None, now).unwrap_err();
        assert!(check(&eks_token("eu-west-1", now, 60, "host")).contains("x-k8s-aws-id"));
        assert!(
            check(&eks_token("eu-west-1", now, 901, "host;x-k8s-aws-id")).contains("X-Amz-Expires")
        );
        let old = now - chrono::Duration::seconds(120);
        assert!(check(&eks_token("eu-west-1", old, 60, "host;x-k8s-aws-id")).contains("expired"));
        assert!(
            check(&format!(
                "{}=",
                eks_token("eu-west-1", now, 60, "host;x-k8s-aws-id")
            ))
            .contains("padded")
        );
        assert!(check("k8s-aws-v1.!!!").contains("base64url"));
        let wrong_region = eks_token("us-east-1", now, 60, "host;x-k8s-aws-id");
        assert!(
            validate_eks_token(&wrong_region, Some("eu-west-1"), now)
                .unwrap_err()
                .contains("STS host")
        );
    }

    #[test]
    fn config_checks_header() {
        let cfg = AuthConfig {
            static_tokens: vec!["s3cret".into()],
            eks: Some(EksAuth::default()),
        };
        assert!(cfg.check(Some("Bearer s3cret")).is_ok());
        assert_eq!(cfg.check(None).unwrap_err().code, 401);
        assert_eq!(cfg.check(Some("Bearer nope")).unwrap_err().code, 401);
        let token = eks_token("eu-west-1", Utc::now(), 60, "host;x-k8s-aws-id");
        assert!(cfg.check(Some(&format!("Bearer {token}"))).is_ok());
        let no_eks = AuthConfig {
            static_tokens: vec!["s3cret".into()],
            eks: None,
        };
        assert!(no_eks.check(Some(&format!("Bearer {token}"))).is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%3Bc+d"), "a/b;c d");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
