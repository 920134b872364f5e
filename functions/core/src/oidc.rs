//! Validation of the approver's OIDC token, exactly as API Gateway's JWT authorizer does it.
//!
//! In AWS the approval page's HttpApi validates the token before our code runs; locally
//! nothing does, so this module applies the same checks, in the same order, so that the local
//! stack is never laxer than AWS. The workflow, from "Control access to HTTP APIs with JWT
//! authorizers in API Gateway":
//!
//! 1. the token may be prefixed with `Bearer `;
//! 2. decode it;
//! 3. check its algorithm and signature with the key of the issuer's JWKS that the header's
//!    `kid` names; only RSA-based algorithms are supported (here RS256, RS384, RS512);
//! 4. validate claims: `iss` equals the configured issuer; `aud` includes the audience or,
//!    only when there is no `aud`, `client_id` equals it; `exp` is after the current time;
//!    `nbf` and `iat`, when present, are not after it.
//!
//! AWS documents no clock-skew allowance, so there is none here. Route scopes (`scope`/`scp`)
//! are not checked: the approval page's routes configure none. The token itself never appears
//! in an error: only the names and values an operator needs to fix a configuration.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use ring::signature::{self, RsaParameters, RsaPublicKeyComponents};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Env var with the identity provider's issuer URL; unset: the approval page asks for no sign-in.
pub const ISSUER_VAR: &str = "ROLLBACK_OIDC_ISSUER";
/// Env var with the approval page's client id at the identity provider (the token's audience).
pub const AUDIENCE_VAR: &str = "ROLLBACK_OIDC_AUDIENCE";
/// Env var naming the claim that identifies the approver (default [`DEFAULT_IDENTITY_CLAIM`]).
pub const IDENTITY_CLAIM_VAR: &str = "ROLLBACK_OIDC_IDENTITY_CLAIM";
/// The claim that names the approver unless `ROLLBACK_OIDC_IDENTITY_CLAIM` says otherwise.
pub const DEFAULT_IDENTITY_CLAIM: &str = "email";

/// Longest claim or header value quoted in an error: enough to recognise, not to flood a log.
const QUOTE_MAX: usize = 120;

/// What a token must match: the JWT authorizer's `issuer` and `audience`, and which claim
/// names the approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    /// Compared with `iss` character for character, trailing slash included.
    pub issuer: String,
    /// The client id the identity provider puts in `aud` (or `client_id`).
    pub audience: String,
    /// The claim whose value names the approver (`email` by default).
    pub identity_claim: String,
}

/// Why the OIDC settings in the environment cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcConfigError {
    /// An issuer is set without an audience.
    #[error(
        "{ISSUER_VAR} is set but {AUDIENCE_VAR} is not: set it to the approval page's client id \
         at the identity provider (the value its tokens carry in aud or client_id)"
    )]
    MissingAudience,
}

impl OidcConfig {
    /// A configuration with the default identity claim (`email`).
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> OidcConfig {
        OidcConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            identity_claim: DEFAULT_IDENTITY_CLAIM.to_string(),
        }
    }

    /// From `ROLLBACK_OIDC_ISSUER`, `ROLLBACK_OIDC_AUDIENCE` and `ROLLBACK_OIDC_IDENTITY_CLAIM`:
    /// `None` when no issuer is set (sign-in not configured).
    pub fn from_env() -> Result<Option<OidcConfig>, OidcConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`OidcConfig::from_env`], reading variables through `lookup` (tests need no process
    /// environment). Empty or blank values count as unset.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OidcConfig>, OidcConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let Some(issuer) = get(ISSUER_VAR) else {
            return Ok(None);
        };
        let audience = get(AUDIENCE_VAR).ok_or(OidcConfigError::MissingAudience)?;
        let identity_claim =
            get(IDENTITY_CLAIM_VAR).unwrap_or_else(|| DEFAULT_IDENTITY_CLAIM.to_string());
        Ok(Some(OidcConfig {
            issuer,
            audience,
            identity_claim,
        }))
    }
}

/// One key of a JWKS document, as published (RFC 7517). Members other than these are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Jwk {
    /// Key type; only `RSA` keys can verify a token.
    pub kty: String,
    /// Key id, which a token's header names.
    #[serde(default)]
    pub kid: Option<String>,
    /// The algorithm the key is for, when the provider says.
    #[serde(default)]
    pub alg: Option<String>,
    /// `use`: `sig` for a signing key, when the provider says.
    #[serde(default, rename = "use")]
    pub key_use: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default)]
    pub n: Option<String>,
    /// RSA exponent, base64url.
    #[serde(default)]
    pub e: Option<String>,
}

/// The identity provider's signing keys (its `jwks_uri` document). Every key is kept, usable
/// or not: a token naming an unusable one gets an error that says why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Jwks {
    /// Every key of the document.
    pub keys: Vec<Jwk>,
}

/// Why a JWKS document cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("the JWKS document is not a JSON object with a `keys` array of JWKs: {0}")]
pub struct JwksError(#[source] serde_json::Error);

impl Jwks {
    /// Reads a JWKS document from its JSON text.
    pub fn from_json(text: &str) -> Result<Jwks, JwksError> {
        serde_json::from_str(text).map_err(JwksError)
    }

    /// Reads a JWKS document already parsed as JSON.
    pub fn from_value(document: Value) -> Result<Jwks, JwksError> {
        serde_json::from_value(document).map_err(JwksError)
    }

    fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

/// The claims of a token that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    raw: Map<String, Value>,
}

impl Claims {
    /// Claims another validator checked (API Gateway's JWT authorizer, which passes them to
    /// the integration in the request context).
    pub fn from_raw(raw: Map<String, Value>) -> Claims {
        Claims { raw }
    }

    /// Every claim, as the token carries them (API Gateway passes the same to the integration).
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// Every claim, taking them out.
    pub fn into_raw(self) -> Map<String, Value> {
        self.raw
    }

    /// The `sub` claim, when it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.raw.get("sub").and_then(Value::as_str)
    }

    /// The approver's identity: the configured claim, when it is a non-empty string.
    pub fn identity(&self, config: &OidcConfig) -> Option<String> {
        match self.raw.get(&config.identity_claim)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    /// Group memberships from `groups` and `cognito:groups` (an array of strings, or one
    /// string), in that order, without repeats.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for claim in ["groups", "cognito:groups"] {
            let names: Vec<&str> = match self.raw.get(claim) {
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                Some(Value::String(one)) => vec![one.as_str()],
                _ => Vec::new(),
            };
            for name in names {
                if !groups.iter().any(|g| g == name) {
                    groups.push(name.to_string());
                }
            }
        }
        groups
    }
}

/// Why a token is refused: one variant per check, each saying what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts with JSON header and payload (what is wrong).
    #[error("the token is not a signed JWT: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not RS256, RS384 or RS512.
    #[error(
        "token algorithm {0} is not accepted: API Gateway's JWT authorizer supports only \
         RSA signatures, so the identity provider must sign with RS256 (or RS384/RS512); \
         `none`, HMAC (HS*), elliptic-curve (ES*) and RSA-PSS (PS*) tokens are refused"
    )]
    UnsupportedAlgorithm(String),
    /// The header names no key.
    #[error("the token header has no kid: API Gateway needs it to pick the key in the JWKS")]
    MissingKid,
    /// No JWKS key has the header's `kid`.
    #[error(
        "no key in the identity provider's JWKS has kid {0}: refresh the JWKS from its \
         jwks_uri (the provider may have rotated keys), or the token comes from another issuer"
    )]
    UnknownKid(String),
    /// The named key cannot verify this token (not RSA, another algorithm or use, a bad modulus).
    #[error("the JWKS key {kid} cannot check this token: {reason}")]
    UnusableKey {
        /// The key the token names (quoted).
        kid: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The signature does not verify with the named key.
    #[error(
        "the token's signature does not verify with the JWKS key it names: it was not signed \
         by the configured identity provider, or it was altered"
    )]
    BadSignature,
    /// A claim API Gateway requires is missing.
    #[error("the token has no {0} claim, which API Gateway requires")]
    MissingClaim(String),
    /// A claim has the wrong type.
    #[error("the token's {claim} claim is not valid: {reason}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `iss` is not the configured issuer.
    #[error(
        "the token was issued by {found}, not by the configured issuer {expected} \
         ({ISSUER_VAR}): the two must be equal character for character, trailing slash included"
    )]
    WrongIssuer {
        /// The configured issuer (quoted).
        expected: String,
        /// The token's `iss` (quoted).
        found: String,
    },
    /// Neither `aud` nor (without `aud`) `client_id` includes the configured audience.
    #[error(
        "the token's {claim} is {found}, which does not include the configured audience \
         {expected} ({AUDIENCE_VAR}): the token was issued to another client"
    )]
    WrongAudience {
        /// `aud`, or `client_id` when there is no `aud`.
        claim: &'static str,
        /// The configured audience.
        expected: String,
        /// What the token carries.
        found: String,
    },
    /// `exp` is not after now.
    #[error(
        "the token expired at {expired_at} (now {now}): sign in again; API Gateway allows no \
         clock skew, so if it only just expired check this machine's clock"
    )]
    Expired {
        /// The token's `exp`.
        expired_at: DateTime<Utc>,
        /// The time it was checked at.
        now: DateTime<Utc>,
    },
    /// `nbf` or `iat` is after now.
    #[error(
        "the token's {claim} is {at}, after now ({now}): the identity provider's clock or this \
         machine's is wrong (API Gateway allows no clock skew)"
    )]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// Its value.
        at: DateTime<Utc>,
        /// The time it was checked at.
        now: DateTime<Utc>,
    },
}

/// Validates `token` (optionally `Bearer `-prefixed) as API Gateway's JWT authorizer would at
/// time `now`, and returns its claims.
pub fn validate(
    token: &str,
    jwks: &Jwks,
    config: &OidcConfig,
    now: DateTime<Utc>,
) -> Result<Claims, TokenError> {
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let decoded = decode(token)?;
    let alg = header_string(&decoded.header, "alg")?
        .ok_or(TokenError::Malformed("the header has no alg"))?;
    let params = rsa_parameters(alg)?;
    let kid = header_string(&decoded.header, "kid")?.ok_or(TokenError::MissingKid)?;
    let jwk = jwks
        .find(kid)
        .ok_or_else(|| TokenError::UnknownKid(quote(kid)))?;
    let key = rsa_key(jwk, kid, alg)?;
    key.verify(params, decoded.signing_input.as_bytes(), &decoded.signature)
        .map_err(|_| TokenError::BadSignature)?;
    check_issuer(&decoded.claims, &config.issuer)?;
    check_audience(&decoded.claims, &config.audience)?;
    check_times(&decoded.claims, now)?;
    Ok(Claims {
        raw: decoded.claims,
    })
}

/// A JWS in compact form, taken apart.
struct Decoded<'t> {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signing_input: &'t str,
    signature: Vec<u8>,
}

fn decode(token: &str) -> Result<Decoded<'_>, TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(TokenError::Malformed(if parts.len() == 5 {
            "it is an encrypted token (JWE), which API Gateway does not accept"
        } else {
            "it is not three base64url parts separated by dots"
        }));
    };
    let header_json = decode_json(header, "the header is not a base64url-encoded JSON object")?;
    let claims_json = decode_json(claims, "the payload is not a base64url-encoded JSON object")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed("the signature is not base64url"))?;
    Ok(Decoded {
        header: header_json,
        claims: claims_json,
        signing_input: &token[..header.len() + 1 + claims.len()],
        signature,
    })
}

fn decode_json(part: &str, problem: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed(problem))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed(problem)),
    }
}

fn header_string<'h>(
    header: &'h Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'h str>, TokenError> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenError::Malformed(match name {
            "alg" => "the header's alg is not a string",
            _ => "the header's kid is not a string",
        })),
    }
}

/// The RSA PKCS#1 v1.5 schemes JWA names RS256/384/512, with moduli of 2048 to 8192 bits.
fn rsa_parameters(alg: &str) -> Result<&'static RsaParameters, TokenError> {
    match alg {
        "RS256" => Ok(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => Ok(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => Ok(&signature::RSA_PKCS1_2048_8192_SHA512),
        other => Err(TokenError::UnsupportedAlgorithm(quote(other))),
    }
}

/// JWK `n` and `e` are base64url without padding (RFC 7518 §6.3.1); padding is tolerated
/// because some providers add it and it changes nothing about the key.
const JWK_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The RSA public key of `jwk`, if it is one meant to verify `alg` signatures.
fn rsa_key(jwk: &Jwk, kid: &str, alg: &str) -> Result<RsaPublicKeyComponents<Vec<u8>>, TokenError> {
    let unusable = |reason: String| TokenError::UnusableKey {
        kid: quote(kid),
        reason,
    };
    if jwk.kty != "RSA" {
        return Err(unusable(format!(
            "it is a {} key; API Gateway verifies RSA keys only",
            quote(&jwk.kty)
        )));
    }
    if let Some(key_alg) = jwk.alg.as_deref().filter(|a| *a != alg) {
        return Err(unusable(format!(
            "it is for {}, the token says {alg}",
            quote(key_alg)
        )));
    }
    if let Some(key_use) = jwk.key_use.as_deref().filter(|u| *u != "sig") {
        return Err(unusable(format!("its use is {}, not sig", quote(key_use))));
    }
    let component = |value: Option<&String>, name: &str| {
        let bytes = value
            .and_then(|v| JWK_BASE64.decode(v).ok())
            .ok_or_else(|| unusable(format!("its {name} is missing or not base64url")))?;
        // ring wants big-endian integers without leading zeros.
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        Ok::<_, TokenError>(bytes[start..].to_vec())
    };
    let n = component(jwk.n.as_ref(), "modulus n")?;
    let e = component(jwk.e.as_ref(), "exponent e")?;
    // Leading zeros are gone, so the first byte holds the top bit.
    let bits = (n.len() * 8).saturating_sub(n.first().map_or(8, |b| b.leading_zeros() as usize));
    if !(2048..=8192).contains(&bits) {
        return Err(unusable(format!(
            "its modulus has {bits} bits; RS256/384/512 need 2048 to 8192"
        )));
    }
    Ok(RsaPublicKeyComponents { n, e })
}

fn check_issuer(claims: &Map<String, Value>, issuer: &str) -> Result<(), TokenError> {
    match claims.get("iss") {
        None => Err(TokenError::MissingClaim("iss".into())),
        Some(Value::String(found)) if found == issuer => Ok(()),
        Some(Value::String(found)) => Err(TokenError::WrongIssuer {
            expected: quote(issuer),
            found: quote(found),
        }),
        Some(_) => Err(TokenError::InvalidClaim {
            claim: "iss",
            reason: "it is not a string",
        }),
    }
}

/// `aud` (a string or an array of strings) must include the audience; only when there is no
/// `aud` does `client_id` count.
fn check_audience(claims: &Map<String, Value>, audience: &str) -> Result<(), TokenError> {
    let wrong = |claim, found: &[&str]| TokenError::WrongAudience {
        claim,
        expected: quote(audience),
        found: found
            .iter()
            .map(|f| quote(f))
            .collect::<Vec<_>>()
            .join(", "),
    };
    match (claims.get("aud"), claims.get("client_id")) {
        (Some(Value::String(aud)), _) if aud == audience => Ok(()),
        (Some(Value::String(aud)), _) => Err(wrong("aud", &[aud.as_str()])),
        (Some(Value::Array(items)), _) => {
            let auds: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if auds.len() != items.len() {
                Err(TokenError::InvalidClaim {
                    claim: "aud",
                    reason: "it is an array with an item that is not a string",
                })
            } else if auds.contains(&audience) {
                Ok(())
            } else {
                Err(wrong("aud", &auds))
            }
        }
        (Some(_), _) => Err(TokenError::InvalidClaim {
            claim: "aud",
            reason: "it is neither a string nor an array of strings",
        }),
        (None, Some(Value::String(id))) if id == audience => Ok(()),
        (None, Some(Value::String(id))) => Err(wrong("client_id", &[id.as_str()])),
        (None, Some(_)) => Err(TokenError::InvalidClaim {
            claim: "client_id",
            reason: "it is not a string",
        }),
        (None, None) => Err(TokenError::MissingClaim("aud (or client_id)".into())),
    }
}

/// `exp` is required and must be after `now`; `nbf` and `iat`, when present, must not be
/// after it. No leeway: AWS documents none.
fn check_times(claims: &Map<String, Value>, now: DateTime<Utc>) -> Result<(), TokenError> {
    let now_seconds = now.timestamp() as f64 + f64::from(now.timestamp_subsec_nanos()) / 1e9;
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| TokenError::MissingClaim("exp".into()))?;
    if exp.0 <= now_seconds {
        return Err(TokenError::Expired {
            expired_at: exp.1,
            now,
        });
    }
    for claim in ["nbf", "iat"] {
        if let Some((seconds, at)) = numeric_date(claims, claim)?
            && seconds > now_seconds
        {
            return Err(TokenError::NotYetValid { claim, at, now });
        }
    }
    Ok(())
}

/// A NumericDate claim (seconds since 1970, fractions allowed: RFC 7519 §2) as seconds and
/// as a date for messages.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<(f64, DateTime<Utc>)>, TokenError> {
    let Some(value) = claims.get(claim) else {
        return Ok(None);
    };
    let invalid = TokenError::InvalidClaim {
        claim,
        reason: "it is not a NumericDate (seconds since 1970-01-01T00:00:00Z)",
    };
    let seconds = value
        .as_f64()
        .filter(|s| s.is_finite())
        .ok_or(invalid.clone())?;
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9) as u32;
    let at = DateTime::from_timestamp(whole as i64, nanos).ok_or(invalid)?;
    Ok(Some((seconds, at)))
}

/// A value from the token or configuration, quoted and escaped (no control characters reach
/// a log) and cut to [`QUOTE_MAX`] characters.
fn quote(value: &str) -> String {
    if value.chars().count() <= QUOTE_MAX {
        format!("{value:?}")
    } else {
        let cut: String = value.chars().take(QUOTE_MAX).collect();
        format!("{cut:?}…")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use rollback_oidc_issuer::SigningKey;
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://idp.example.com/tenant";
    const AUDIENCE: &str = "rollback-approval";

    /// Key generation is slow: one trusted key and one foreign key for the whole module.
    static KEY: LazyLock<SigningKey> = LazyLock::new(SigningKey::generate);
    static FOREIGN: LazyLock<SigningKey> = LazyLock::new(SigningKey::generate);

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap()
    }

    fn config() -> OidcConfig {
        OidcConfig::new(ISSUER, AUDIENCE)
    }

    fn jwks() -> Jwks {
        Jwks::from_value(json!({"keys": [KEY.jwk()]})).unwrap()
    }

    /// Claims that pass, with `changes` applied (`null` removes a claim).
    fn claims(changes: Value) -> Value {
        let mut claims = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "u-1",
            "email": "ana@example.com",
            "groups": ["approvers"],
            "iat": 1_700_000_000 - 10,
            "nbf": 1_700_000_000 - 10,
            "exp": 1_700_000_000 + 300,
        });
        for (name, value) in changes.as_object().unwrap() {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn token(changes: Value) -> String {
        KEY.sign_claims(&claims(changes))
    }

    /// Validation fails, and the error says nothing of the token.
    fn refused(token: &str) -> TokenError {
        refused_with(token, &jwks(), &config())
    }

    fn refused_with(token: &str, jwks: &Jwks, config: &OidcConfig) -> TokenError {
        let error = validate(token, jwks, config, now()).expect_err("token must be refused");
        let text = format!("{error} {error:?}");
        for part in token.split('.').filter(|p| p.len() > 8) {
            assert!(!text.contains(part), "error quotes the token: {text}");
        }
        error
    }

    #[test]
    fn a_valid_token_is_accepted_with_or_without_bearer() {
        let token = token(json!({}));
        let claims = validate(&token, &jwks(), &config(), now()).unwrap();
        assert_eq!(
            claims.identity(&config()).as_deref(),
            Some("ana@example.com")
        );
        assert_eq!(claims.subject(), Some("u-1"));
        assert_eq!(claims.groups(), vec!["approvers".to_string()]);
        let bearer = format!("Bearer {token}");
        assert_eq!(
            validate(&bearer, &jwks(), &config(), now()).unwrap(),
            claims
        );
        // Only that exact prefix, as API Gateway's identitySource allows.
        assert!(matches!(
            refused(&format!("bearer {token}")),
            TokenError::Malformed(_)
        ));
    }

    #[test]
    fn rs384_and_rs512_verify_with_a_key_that_does_not_pin_an_algorithm() {
        let mut jwk = KEY.jwk();
        jwk.as_object_mut().unwrap().remove("alg");
        let jwks = Jwks::from_value(json!({ "keys": [jwk] })).unwrap();
        for alg in ["RS256", "RS384", "RS512"] {
            let header = json!({"alg": alg, "kid": KEY.kid()});
            let token = KEY.sign(&header, &claims(json!({})));
            validate(&token, &jwks, &config(), now()).unwrap_or_else(|e| panic!("{alg}: {e}"));
        }
        // The published key says RS256: an RS384 token naming it is refused.
        let token = KEY.sign(
            &json!({"alg": "RS384", "kid": KEY.kid()}),
            &claims(json!({})),
        );
        let error = refused(&token);
        assert!(matches!(error, TokenError::UnusableKey { .. }), "{error}");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = token(json!({}));
        let parts: Vec<&str> = good.split('.').collect();
        let not_json = URL_SAFE_NO_PAD.encode("not json");
        let cases = [
            String::new(),
            "abc".to_string(),
            format!("{}.{}", parts[0], parts[1]),
            format!("{good}.x.y"),
            format!("{}.{not_json}.{}", parts[0], parts[2]),
            format!("{not_json}.{}.{}", parts[1], parts[2]),
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            format!("{}.{}.!!", parts[0], parts[1]),
            KEY.sign(&json!({"kid": KEY.kid()}), &claims(json!({}))),
            KEY.sign(&json!({"alg": 256, "kid": KEY.kid()}), &claims(json!({}))),
        ];
        for case in &cases {
            let error = refused(case);
            assert!(matches!(error, TokenError::Malformed(_)), "{case}: {error}");
        }
        let jwe = format!("{good}.a.b");
        assert!(refused(&jwe).to_string().contains("JWE"));
    }

    #[test]
    fn algorithms_other_than_rsa_pkcs1_are_refused() {
        for alg in ["none", "HS256", "HS512", "ES256", "ES384", "PS256", "EdDSA"] {
            let header = json!({"alg": alg, "kid": KEY.kid()});
            let token = KEY.sign(&header, &claims(json!({})));
            assert_eq!(
                refused(&token),
                TokenError::UnsupportedAlgorithm(format!("{alg:?}"))
            );
        }
        // alg none with an empty signature, the classic downgrade.
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": KEY.kid()}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
        let error = refused(&format!("{header}.{payload}."));
        assert!(error.to_string().contains("only RSA"), "{error}");
    }

    #[test]
    fn the_kid_must_name_a_key_of_the_jwks() {
        let token = KEY.sign(&json!({"alg": "RS256"}), &claims(json!({})));
        assert_eq!(refused(&token), TokenError::MissingKid);
        let token = KEY.sign(&json!({"alg": "RS256", "kid": "other"}), &claims(json!({})));
        assert_eq!(refused(&token), TokenError::UnknownKid("\"other\"".into()));
        let empty = Jwks::from_json(r#"{"keys": []}"#).unwrap();
        let error = refused_with(&self::token(json!({})), &empty, &config());
        assert!(matches!(error, TokenError::UnknownKid(_)));
    }

    #[test]
    fn keys_that_are_not_rsa_signing_keys_of_2048_bits_are_unusable() {
        let kid = KEY.kid();
        let jwk = KEY.jwk();
        let short_n = URL_SAFE_NO_PAD.encode([0xC5u8; 128]);
        let odd_n = URL_SAFE_NO_PAD.encode([0x45u8; 256]);
        let cases = [
            (
                json!({"kty": "EC", "kid": kid, "crv": "P-256"}),
                "RSA keys only",
            ),
            (
                json!({"kty": "RSA", "kid": kid, "e": "AQAB"}),
                "modulus n is missing",
            ),
            (
                json!({"kty": "RSA", "kid": kid, "n": jwk["n"]}),
                "exponent e is missing",
            ),
            (
                json!({"kty": "RSA", "kid": kid, "n": short_n, "e": "AQAB"}),
                "1024 bits",
            ),
            (
                json!({"kty": "RSA", "kid": kid, "n": odd_n, "e": "AQAB"}),
                "2047 bits",
            ),
            (
                json!({"kty": "RSA", "kid": kid, "use": "enc", "n": jwk["n"], "e": "AQAB"}),
                "not sig",
            ),
        ];
        for (key, why) in cases {
            let jwks = Jwks::from_value(json!({ "keys": [key] })).unwrap();
            let error = refused_with(&token(json!({})), &jwks, &config());
            assert!(matches!(error, TokenError::UnusableKey { .. }), "{error}");
            assert!(error.to_string().contains(why), "{error} lacks {why}");
        }
        // Padded base64url and a leading zero byte in n still make the same key.
        let n = JWK_BASE64.decode(jwk["n"].as_str().unwrap()).unwrap();
        let padded = base64::engine::general_purpose::URL_SAFE.encode([&[0u8][..], &n].concat());
        let jwks = Jwks::from_value(
            json!({"keys": [{"kty": "RSA", "kid": kid, "n": padded, "e": "AQAB"}]}),
        );
        validate(&token(json!({})), &jwks.unwrap(), &config(), now()).unwrap();
    }

    #[test]
    fn a_signature_from_another_key_or_over_other_claims_is_bad() {
        let forged = FOREIGN.with_kid(KEY.kid()).sign_claims(&claims(json!({})));
        assert_eq!(refused(&forged), TokenError::BadSignature);
        let good = token(json!({}));
        let parts: Vec<&str> = good.split('.').collect();
        let altered =
            URL_SAFE_NO_PAD.encode(claims(json!({"email": "eve@example.com"})).to_string());
        let tampered = format!("{}.{altered}.{}", parts[0], parts[2]);
        assert_eq!(refused(&tampered), TokenError::BadSignature);
        let unsigned = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(refused(&unsigned), TokenError::BadSignature);
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        let error = refused(&token(json!({"iss": format!("{ISSUER}/")})));
        assert!(matches!(error, TokenError::WrongIssuer { .. }), "{error}");
        assert!(error.to_string().contains(ISSUER_VAR));
        assert_eq!(
            refused(&token(json!({"iss": null}))),
            TokenError::MissingClaim("iss".into())
        );
        let error = refused(&token(json!({"iss": 7})));
        assert!(matches!(
            error,
            TokenError::InvalidClaim { claim: "iss", .. }
        ));
    }

    #[test]
    fn the_audience_is_checked_in_aud_and_only_without_aud_in_client_id() {
        let ok = |changes: Value| validate(&token(changes), &jwks(), &config(), now());
        ok(json!({"aud": ["other", AUDIENCE]})).unwrap();
        ok(json!({"aud": null, "client_id": AUDIENCE})).unwrap();
        let wrong = [
            (json!({"aud": "other"}), "aud"),
            (json!({"aud": ["a", "b"]}), "aud"),
            (json!({"aud": []}), "aud"),
            // Both present: API Gateway evaluates aud, so a matching client_id does not help.
            (json!({"aud": "other", "client_id": AUDIENCE}), "aud"),
            (json!({"aud": null, "client_id": "other"}), "client_id"),
        ];
        for (changes, which) in wrong {
            match refused(&token(changes.clone())) {
                TokenError::WrongAudience { claim, .. } => assert_eq!(claim, which, "{changes}"),
                other => panic!("{changes}: {other}"),
            }
        }
        let error = refused(&token(json!({"aud": null})));
        assert_eq!(error, TokenError::MissingClaim("aud (or client_id)".into()));
        for changes in [
            json!({"aud": 5}),
            json!({"aud": ["x", 5]}),
            json!({"aud": null, "client_id": 5}),
        ] {
            let error = refused(&token(changes.clone()));
            assert!(
                matches!(error, TokenError::InvalidClaim { .. }),
                "{changes}: {error}"
            );
        }
        let error = refused(&token(json!({"aud": "other"})));
        assert!(error.to_string().contains(AUDIENCE_VAR), "{error}");
    }

    #[test]
    fn exp_is_required_and_must_be_after_now_without_leeway() {
        let at =
            |changes: Value, now: DateTime<Utc>| validate(&token(changes), &jwks(), &config(), now);
        let exp = DateTime::from_timestamp(1_700_000_300, 0).unwrap();
        at(json!({}), exp - chrono::Duration::milliseconds(1)).unwrap();
        let error = at(json!({}), exp).unwrap_err();
        assert_eq!(
            error,
            TokenError::Expired {
                expired_at: exp,
                now: exp
            }
        );
        let error = refused(&token(json!({"exp": 1_700_000_000})));
        assert!(matches!(error, TokenError::Expired { .. }), "{error}");
        // Fractional NumericDates count to the fraction.
        refused(&token(json!({"exp": 1_700_000_000.25})));
        at(json!({"exp": 1_700_000_000.75}), now()).unwrap();
        assert_eq!(
            refused(&token(json!({"exp": null}))),
            TokenError::MissingClaim("exp".into())
        );
        for bad in [json!("soon"), json!(1e300)] {
            let error = refused(&token(json!({ "exp": bad })));
            assert!(
                matches!(error, TokenError::InvalidClaim { claim: "exp", .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn nbf_and_iat_must_not_be_in_the_future() {
        let ok = |changes: Value| validate(&token(changes), &jwks(), &config(), now());
        ok(json!({"nbf": null, "iat": null})).unwrap();
        ok(json!({"nbf": 1_700_000_000.5, "iat": 1_700_000_000.5})).unwrap();
        for claim in ["nbf", "iat"] {
            let error = refused(&token(json!({ claim: 1_700_000_001 })));
            let at = DateTime::from_timestamp(1_700_000_001, 0).unwrap();
            assert_eq!(
                error,
                TokenError::NotYetValid {
                    claim,
                    at,
                    now: now()
                }
            );
            let error = refused(&token(json!({ claim: "yesterday" })));
            assert!(matches!(error, TokenError::InvalidClaim { .. }), "{error}");
        }
    }

    #[test]
    fn every_error_says_what_to_fix() {
        let texts = [
            TokenError::Malformed("x").to_string(),
            TokenError::UnsupportedAlgorithm("\"HS256\"".into()).to_string(),
            TokenError::MissingKid.to_string(),
            TokenError::UnknownKid("\"k\"".into()).to_string(),
            TokenError::BadSignature.to_string(),
            TokenError::MissingClaim("exp".into()).to_string(),
        ];
        assert!(texts[1].contains("RS256"));
        assert!(texts[3].contains("jwks_uri"));
        assert!(texts.iter().all(|t| t.len() > 30), "{texts:?}");
        // Values from the token are quoted, escaped and cut.
        let long = format!("line\nbreak{}", "x".repeat(500));
        let error = refused(&token(json!({ "iss": long })));
        let text = error.to_string();
        assert!(
            !text.contains('\n') && text.contains("\\n") && text.len() < 600,
            "{text}"
        );
    }

    #[test]
    fn claims_expose_identity_and_groups() {
        let claims = |raw: Value| Claims {
            raw: raw.as_object().unwrap().clone(),
        };
        let config = OidcConfig {
            identity_claim: "upn".into(),
            ..config()
        };
        assert_eq!(
            claims(json!({"upn": "ana"})).identity(&config).as_deref(),
            Some("ana")
        );
        assert_eq!(claims(json!({"upn": ""})).identity(&config), None);
        assert_eq!(claims(json!({"upn": 7})).identity(&config), None);
        assert_eq!(claims(json!({"email": "ana"})).identity(&config), None);
        let both = claims(json!({"groups": ["a", "b", 3], "cognito:groups": ["b", "c"]}));
        assert_eq!(both.groups(), vec!["a", "b", "c"]);
        assert_eq!(
            claims(json!({"cognito:groups": "ops"})).groups(),
            vec!["ops"]
        );
        assert!(claims(json!({})).groups().is_empty());
    }

    #[test]
    fn config_comes_from_the_environment_or_is_absent() {
        let from = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            OidcConfig::from_lookup(|name| {
                vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
            })
        };
        assert_eq!(from(&[]), Ok(None));
        assert_eq!(from(&[(ISSUER_VAR, "  "), (AUDIENCE_VAR, "a")]), Ok(None));
        let error = from(&[(ISSUER_VAR, ISSUER)]).unwrap_err();
        assert!(error.to_string().contains(AUDIENCE_VAR), "{error}");
        assert_eq!(
            from(&[(ISSUER_VAR, ISSUER), (AUDIENCE_VAR, AUDIENCE)]),
            Ok(Some(config()))
        );
        let custom = from(&[
            (ISSUER_VAR, ISSUER),
            (AUDIENCE_VAR, AUDIENCE),
            (IDENTITY_CLAIM_VAR, "sub"),
        ]);
        assert_eq!(custom.unwrap().unwrap().identity_claim, "sub");
        assert!(Jwks::from_json("{}").is_err());
        assert!(Jwks::from_json(r#"{"keys": [{"kid": "no kty"}]}"#).is_err());
    }
}
