//! The claims of the tokens `/token` issues and [`crate::OidcIssuer::mint`] starts from.

use serde_json::{Map, Value, json};

use crate::{Shared, User};

impl Shared {
    /// An OIDC ID token's claims: `aud` is the client id (OIDC Core §2). `nbf` is included
    /// (OIDC does not require it) so that validation of `nbf` is exercised too.
    pub(crate) fn id_token_claims(
        &self,
        user: &User,
        client_id: &str,
        nonce: Option<&str>,
        now: i64,
    ) -> Map<String, Value> {
        let mut claims = self.common_claims(user, now);
        claims.insert("aud".into(), json!(client_id));
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        claims
    }

    /// An access token's claims, shaped like a Cognito access token: `client_id` and no
    /// `aud`, the case where API Gateway checks `client_id` against the audience.
    pub(crate) fn access_token_claims(
        &self,
        user: &User,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Map<String, Value> {
        let mut claims = self.common_claims(user, now);
        claims.insert("client_id".into(), json!(client_id));
        claims.insert("scope".into(), json!(scope));
        claims
    }

    fn common_claims(&self, user: &User, now: i64) -> Map<String, Value> {
        let ttl = i64::try_from(self.token_ttl.as_secs()).unwrap_or(i64::MAX);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(user.username));
        claims.insert("email".into(), json!(user.email));
        claims.insert("email_verified".into(), json!(true));
        claims.insert("groups".into(), json!(user.groups));
        claims.insert("iat".into(), json!(now));
        claims.insert("nbf".into(), json!(now));
        claims.insert("exp".into(), json!(now.saturating_add(ttl)));
        claims
    }
}
