//! The approver's sign-in through the organisation's identity provider (optional).
//!
//! With an issuer configured (`ROLLBACK_OIDC_ISSUER`, `ROLLBACK_OIDC_AUDIENCE`,
//! `ROLLBACK_OIDC_IDENTITY_CLAIM`), the page's script signs the person in (authorization code
//! with PKCE S256, the link's id in `state`), and sends the ID token as `Authorization: Bearer`
//! on the POST. In AWS the HttpApi's JWT authorizer validates it before the Lambda runs and passes
//! the claims in the request context ([`SignedIn::from_api_gateway`]); locally the approval
//! server validates it the same way (`rollback_core::oidc::validate`, see `local.rs`). The
//! recorded approver is then the token's identity claim, never a form field.
//!
//! The identity provider's endpoints come from its discovery document, read on first use.

use std::collections::HashMap;

use rollback_core::oidc::{Jwks, OidcConfig};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

/// Longest wait for the identity provider's discovery document or keys.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The identity provider's endpoints, from `<issuer>/.well-known/openid-configuration`.
#[derive(Debug, Clone, Deserialize)]
pub struct Provider {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// The identity provider could not be asked: nothing was decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the identity provider is unavailable: {0}")]
pub struct ProviderError(pub String);

/// Sign-in settings and what was learnt from the identity provider.
#[derive(Debug)]
pub struct Login {
    pub config: OidcConfig,
    http: reqwest::Client,
    provider: OnceCell<Provider>,
}

impl Login {
    pub fn new(config: OidcConfig) -> Login {
        Login {
            config,
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .build()
                .unwrap_or_default(),
            provider: OnceCell::new(),
        }
    }

    /// From the environment: `None` when no issuer is set (identity is self-asserted).
    pub fn from_env() -> Result<Option<Login>, String> {
        OidcConfig::from_env()
            .map(|config| config.map(Login::new))
            .map_err(|e| e.to_string())
    }

    /// The discovery document, read once. Its `issuer` must be the configured issuer, as
    /// OpenID Connect Discovery §4.3 requires (a mismatch is a misconfiguration, not a retry).
    pub async fn provider(&self) -> Result<&Provider, ProviderError> {
        self.provider
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let provider: Provider = self.fetch_json(&url).await?;
                if provider.issuer != self.config.issuer {
                    return Err(ProviderError(format!(
                        "the discovery document names issuer {:?}, not the configured {:?}",
                        provider.issuer, self.config.issuer
                    )));
                }
                Ok(provider)
            })
            .await
    }

    /// The identity provider's signing keys (the local authorizer's copy of what API Gateway
    /// fetches).
    pub async fn jwks(&self) -> Result<Jwks, ProviderError> {
        let uri = self.provider().await?.jwks_uri.clone();
        let document: Value = self.fetch_json(&uri).await?;
        Jwks::from_value(document).map_err(|e| ProviderError(e.to_string()))
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, ProviderError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| ProviderError(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(ProviderError(format!("GET {url}: {}", response.status())));
        }
        response
            .json()
            .await
            .map_err(|e| ProviderError(format!("GET {url}: {e}")))
    }
}

/// The claims of a validated token, attached to the request by whatever validated it (API
/// Gateway's JWT authorizer, or the local server).
#[derive(Debug, Clone, PartialEq)]
pub struct SignedIn {
    pub claims: Map<String, Value>,
}

impl SignedIn {
    /// From the HTTP API's request context (`authorizer.jwt.claims`). API Gateway passes every
    /// claim as a string; an array claim such as `groups` arrives as `[a b]`.
    pub fn from_api_gateway(claims: &HashMap<String, String>) -> SignedIn {
        let claims = claims
            .iter()
            .map(|(name, value)| {
                let value = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                    Some(items) if name == "groups" || name == "cognito:groups" => Value::Array(
                        items
                            .split_whitespace()
                            .map(|g| Value::String(g.to_owned()))
                            .collect(),
                    ),
                    _ => Value::String(value.clone()),
                };
                (name.clone(), value)
            })
            .collect();
        SignedIn { claims }
    }

    /// The person the token names (`identity_claim`), lowercased, and their groups.
    pub fn person(&self, config: &OidcConfig) -> Option<(String, Vec<String>)> {
        let claims = rollback_core::oidc::Claims::from_raw(self.claims.clone());
        let name = claims.identity(config)?.to_ascii_lowercase();
        Some((name, claims.groups()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_claims_become_the_person_and_groups() {
        let config = OidcConfig::new("https://idp.example", "client");
        let claims = HashMap::from([
            ("email".to_owned(), "Ana@Example.com".to_owned()),
            ("cognito:groups".to_owned(), "[sre dba]".to_owned()),
            ("sub".to_owned(), "[not-a-list]".to_owned()),
        ]);
        let signed_in = SignedIn::from_api_gateway(&claims);
        assert_eq!(
            signed_in.person(&config),
            Some((
                "ana@example.com".to_owned(),
                vec!["sre".to_owned(), "dba".to_owned()]
            ))
        );
        assert_eq!(signed_in.claims["sub"], "[not-a-list]");
        let nameless = SignedIn::from_api_gateway(&HashMap::new());
        assert_eq!(nameless.person(&config), None);
    }
}
