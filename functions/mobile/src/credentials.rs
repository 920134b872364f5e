//! The stores' credentials: read from Secrets Manager before any store is asked, and turned
//! into bearer tokens.
//!
//! - Google: the service account's JSON key signs an RS256 assertion (`iss` = its
//!   `client_email`, `scope` androidpublisher, `aud` = the token endpoint, at most an hour),
//!   exchanged at the token endpoint for an access token (OAuth 2.0 JWT bearer grant, "Using
//!   OAuth 2.0 for Server to Server Applications").
//! - App Store Connect: the API key's `.p8` signs an ES256 token (`kid` = key id, `iss` =
//!   issuer id, `aud` = `appstoreconnect-v1`, expiring within 20 minutes), sent as it is
//!   ("Generating Tokens for API Requests").
//!
//! Nothing here logs or echoes a key or a token: [`Bearer`] and the keys print redacted, and
//! a malformed secret is described by the fields it lacks, never by its content.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rollback_core::RollbackError;
use rollback_core::plan::MobileRef;
use serde::Serialize;
use serde_json::Value;

use crate::Clients;
use crate::http::{self, GoogleError};

/// Google's token endpoint, when neither the key file nor the environment names another.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The OAuth scope of the Android Publisher API.
pub const ANDROIDPUBLISHER_SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
/// The audience App Store Connect tokens name.
pub const APP_STORE_AUDIENCE: &str = "appstoreconnect-v1";
/// App Store Connect refuses tokens that live longer than 20 minutes; a Lambda runs at most
/// 15, so one token per call covers it with room for clock skew.
const APP_STORE_TOKEN_MINUTES: i64 = 15;
/// The assertion is exchanged at once; Google accepts at most an hour.
const ASSERTION_MINUTES: i64 = 10;

const GOOGLE_PLAY: &str = "Google Play";
const APP_STORE_CONNECT: &str = "App Store Connect";

/// An access token for one store. Printed redacted.
#[derive(Clone)]
pub struct Bearer(String);

impl Bearer {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer(<redacted>)")
    }
}

/// A Google service account's key.
pub struct GoogleKey {
    /// The secret it came from, for messages.
    pub secret: String,
    pub client_email: String,
    /// `private_key_id`, sent as the assertion's `kid`.
    key_id: Option<String>,
    key: EncodingKey,
    /// The key file's `token_uri` (default [`GOOGLE_TOKEN_URL`]).
    pub token_uri: String,
}

impl fmt::Debug for GoogleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleKey")
            .field("secret", &self.secret)
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

/// An App Store Connect API key.
pub struct AppStoreKey {
    pub secret: String,
    pub key_id: String,
    pub issuer_id: String,
    key: EncodingKey,
}

impl fmt::Debug for AppStoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppStoreKey")
            .field("secret", &self.secret)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The keys of every platform the plan names.
#[derive(Debug, Default)]
pub struct Credentials {
    pub google: Option<GoogleKey>,
    pub apple: Option<AppStoreKey>,
}

impl Credentials {
    /// Reads and checks every platform's secret, so that a missing or malformed one stops the
    /// step before any store is asked (and before anything changes).
    pub async fn load(clients: &Clients, mobile: &MobileRef) -> Result<Credentials, RollbackError> {
        let mut credentials = Credentials::default();
        if let Some(android) = &mobile.android {
            let text = read_secret(clients, &android.credentials_secret, GOOGLE_PLAY).await?;
            credentials.google = Some(GoogleKey::parse(&android.credentials_secret, &text)?);
        }
        if let Some(ios) = &mobile.ios {
            let text = read_secret(clients, &ios.credentials_secret, APP_STORE_CONNECT).await?;
            credentials.apple = Some(AppStoreKey::parse(&ios.credentials_secret, &text)?);
        }
        Ok(credentials)
    }
}

/// The secret's string; its absence and any refusal to read it name the secret and the fix.
async fn read_secret(clients: &Clients, id: &str, store: &str) -> Result<String, RollbackError> {
    let what = if store == GOOGLE_PLAY {
        "the service account's JSON key file (Google Cloud console, IAM, Service accounts, \
         Keys), the account invited to the app in Play Console"
    } else {
        "{\"key_id\", \"issuer_id\", \"private_key\"}: an App Store Connect API key (Users \
         and Access, Integrations; role App Manager) and its .p8 PEM"
    };
    let out = clients
        .secrets
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| match RollbackError::from_sdk("GetSecretValue", e) {
            RollbackError::Aws { code, message, .. } => {
                let fix = match code.as_str() {
                    "ResourceNotFoundException" => format!("create it with {what}"),
                    "AccessDeniedException" => {
                        "allow this function's role secretsmanager:GetSecretValue on it (and \
                         kms:Decrypt on its key)"
                            .to_owned()
                    }
                    _ => "check the secret's name and its state".to_owned(),
                };
                RollbackError::StoreCredentials(format!(
                    "the {store} credentials secret {id:?} cannot be read ({code}: {message}); \
                     {fix}. Nothing was changed in the store"
                ))
            }
            retryable => retryable,
        })?;
    out.secret_string().map(str::to_owned).ok_or_else(|| {
        RollbackError::StoreCredentials(format!(
            "the {store} credentials secret {id:?} holds binary data; store the JSON as its \
             secret string"
        ))
    })
}

/// The string field `name` of a secret's JSON, or why it is unusable (never its value).
fn field<'a>(json: &'a Value, name: &str) -> Option<&'a str> {
    json.get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.trim().is_empty())
}

fn malformed(store: &str, secret: &str, what: &str) -> RollbackError {
    RollbackError::StoreCredentials(format!(
        "the {store} credentials secret {secret:?} is not usable: {what}. Nothing was changed \
         in the store"
    ))
}

impl GoogleKey {
    /// From the JSON key file Google Cloud issues for a service account.
    pub fn parse(secret: &str, text: &str) -> Result<GoogleKey, RollbackError> {
        const STORE: &str = GOOGLE_PLAY;
        let json: Value = serde_json::from_str(text).map_err(|_| {
            malformed(
                STORE,
                secret,
                "it is not JSON; store the service account's JSON key file",
            )
        })?;
        let (Some(client_email), Some(private_key)) =
            (field(&json, "client_email"), field(&json, "private_key"))
        else {
            return Err(malformed(
                STORE,
                secret,
                "it lacks client_email or private_key; store the service account's JSON key \
                 file as Google Cloud downloads it",
            ));
        };
        let key = EncodingKey::from_rsa_pem(private_key.as_bytes()).map_err(|_| {
            malformed(
                STORE,
                secret,
                "private_key is not an RSA private key in PEM",
            )
        })?;
        let token_uri = field(&json, "token_uri").unwrap_or(GOOGLE_TOKEN_URL);
        check_token_uri(secret, token_uri)?;
        Ok(GoogleKey {
            secret: secret.to_owned(),
            client_email: client_email.to_owned(),
            key_id: field(&json, "private_key_id").map(str::to_owned),
            key,
            token_uri: token_uri.to_owned(),
        })
    }

    /// The signed assertion for `token_uri`, issued `now`.
    fn assertion(&self, token_uri: &str, now: DateTime<Utc>) -> Result<String, RollbackError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            scope: &'a str,
            aud: &'a str,
            iat: i64,
            exp: i64,
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        let claims = Claims {
            iss: &self.client_email,
            scope: ANDROIDPUBLISHER_SCOPE,
            aud: token_uri,
            iat: now.timestamp(),
            exp: (now + Duration::minutes(ASSERTION_MINUTES)).timestamp(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| {
            malformed(
                GOOGLE_PLAY,
                &self.secret,
                "its private_key cannot sign (RS256); create a new key for the service account",
            )
        })
    }

    /// An access token for the Android Publisher API, from the token endpoint
    /// (`token_override`, else the key file's `token_uri`).
    pub async fn access_token(
        &self,
        clients: &Clients,
        token_override: Option<&str>,
    ) -> Result<Bearer, RollbackError> {
        let token_uri = token_override.unwrap_or(&self.token_uri);
        let assertion = self.assertion(token_uri, Utc::now())?;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion.as_str()),
        ];
        let operation = "Google OAuth token";
        let answer = http::send(clients.http.post(token_uri).form(&form), operation).await?;
        let error = GoogleError::parse(&answer.body);
        if let Some(err) = http::retryable(operation, &answer, &error.describe()) {
            return Err(err);
        }
        match answer.body["access_token"].as_str() {
            Some(token) if answer.is_success() && !token.is_empty() => Ok(Bearer(token.to_owned())),
            _ => Err(RollbackError::StoreCredentials(format!(
                "Google refused the service account {} at {token_uri} ({} {}): the key in \
                 secret {:?} may be disabled or deleted (create a new key and store it), or \
                 this machine's clock is off. Nothing was changed in the store",
                self.client_email,
                answer.status.as_u16(),
                error.describe(),
                self.secret
            ))),
        }
    }
}

/// The assertion goes to the key file's `token_uri`: only over HTTPS (or to this machine).
fn check_token_uri(secret: &str, uri: &str) -> Result<(), RollbackError> {
    let ok = url::Url::parse(uri).is_ok_and(|u| match u.scheme() {
        "https" => u.host().is_some(),
        "http" => matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    });
    if ok {
        Ok(())
    } else {
        Err(malformed(
            GOOGLE_PLAY,
            secret,
            "its token_uri is not an https URL (Google's is https://oauth2.googleapis.com/token)",
        ))
    }
}

impl AppStoreKey {
    /// From `{"key_id", "issuer_id", "private_key"}` (the `.p8` file's PEM).
    pub fn parse(secret: &str, text: &str) -> Result<AppStoreKey, RollbackError> {
        const STORE: &str = APP_STORE_CONNECT;
        const SHAPE: &str = "store {\"key_id\", \"issuer_id\", \"private_key\"} with the API \
                             key's id, the team's issuer id and the .p8 file's PEM";
        let json: Value = serde_json::from_str(text)
            .map_err(|_| malformed(STORE, secret, &format!("it is not JSON; {SHAPE}")))?;
        let (Some(key_id), Some(issuer_id), Some(private_key)) = (
            field(&json, "key_id"),
            field(&json, "issuer_id"),
            field(&json, "private_key"),
        ) else {
            return Err(malformed(
                STORE,
                secret,
                &format!("it lacks key_id, issuer_id or private_key; {SHAPE}"),
            ));
        };
        let key = EncodingKey::from_ec_pem(private_key.as_bytes()).map_err(|_| {
            malformed(
                STORE,
                secret,
                "private_key is not the P-256 PEM of an App Store Connect API key (.p8)",
            )
        })?;
        Ok(AppStoreKey {
            secret: secret.to_owned(),
            key_id: key_id.to_owned(),
            issuer_id: issuer_id.to_owned(),
            key,
        })
    }

    /// A token for App Store Connect, issued `now`.
    pub fn token(&self, now: DateTime<Utc>) -> Result<Bearer, RollbackError> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            iat: i64,
            exp: i64,
            aud: &'a str,
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.issuer_id,
            iat: now.timestamp(),
            exp: (now + Duration::minutes(APP_STORE_TOKEN_MINUTES)).timestamp(),
            aud: APP_STORE_AUDIENCE,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Bearer)
            .map_err(|_| {
                malformed(
                    APP_STORE_CONNECT,
                    &self.secret,
                    "its private_key cannot sign (ES256); create a new API key and store it",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_secrets_are_named_by_what_they_lack_never_by_their_content() {
        let secret = "mint/google-play";
        for text in [
            "not json at all: hunter2",
            r#"{"client_email": "a@b.iam.gserviceaccount.com"}"#,
            r#"{"client_email": "a@b", "private_key": "hunter2"}"#,
        ] {
            let err = GoogleKey::parse(secret, text).unwrap_err();
            assert_eq!(err.error_name(), "Rollback.StoreCredentials");
            assert!(err.to_string().contains(secret), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let err =
            AppStoreKey::parse("mint/asc", r#"{"key_id": "K", "issuer_id": "I"}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("lacks key_id, issuer_id or private_key")
        );
    }

    #[test]
    fn the_token_endpoint_must_be_https_or_this_machine() {
        assert!(check_token_uri("s", GOOGLE_TOKEN_URL).is_ok());
        assert!(check_token_uri("s", "http://127.0.0.1:4000/google/token").is_ok());
        assert!(check_token_uri("s", "http://example.com/token").is_err());
        assert!(check_token_uri("s", "file:///etc/passwd").is_err());
    }

    #[test]
    fn bearers_print_redacted() {
        assert_eq!(
            format!("{:?}", Bearer("ya29.secret".into())),
            "Bearer(<redacted>)"
        );
    }
}
