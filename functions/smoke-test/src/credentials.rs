//! HTTP check credentials from Secrets Manager: a bearer token or basic auth, read once per
//! smoke run. Their values never reach a log line, a check's reason or an error: errors name
//! the secret, and every reason of a check that uses credentials is scrubbed of them.

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use rollback_core::RollbackError;
use rollback_core::plan::HttpCheck;
use serde::Deserialize;

/// `{"type": "bearer", "token": …}` or `{"type": "basic", "username": …, "password": …}`.
#[derive(Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HttpCredentials {
    Bearer { token: String },
    Basic { username: String, password: String },
}

/// Never prints a token or a password.
impl fmt::Debug for HttpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpCredentials::Bearer { .. } => f.write_str("Bearer { token: <redacted> }"),
            HttpCredentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

impl HttpCredentials {
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        // reqwest marks both headers sensitive: they are left out of its Debug output and
        // dropped on a redirect to another host.
        match self {
            HttpCredentials::Bearer { token } => request.bearer_auth(token),
            HttpCredentials::Basic { username, password } => {
                request.basic_auth(username, Some(password))
            }
        }
    }

    /// `text` without any form of the secret in it (a server may echo what it was sent).
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in self.secret_forms() {
            if !value.is_empty() {
                out = out.replace(&value, "[redacted]");
            }
        }
        out
    }

    fn secret_forms(&self) -> Vec<String> {
        match self {
            HttpCredentials::Bearer { token } => vec![token.clone()],
            HttpCredentials::Basic { username, password } => vec![
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
                password.clone(),
            ],
        }
    }

    /// What would make the request impossible, named without the value.
    fn unusable(&self) -> Option<&'static str> {
        let header_safe = |v: &str| !v.is_empty() && v.chars().all(|c| !c.is_control());
        match self {
            HttpCredentials::Bearer { token } if !header_safe(token) => {
                Some("its token is empty or has control characters")
            }
            HttpCredentials::Basic { username, .. } if username.contains(':') => {
                Some("its username contains ':', which basic auth cannot carry")
            }
            HttpCredentials::Basic { username, password }
                if !header_safe(username) || password.chars().any(char::is_control) =>
            {
                Some("its username is empty, or the username or password has control characters")
            }
            _ => None,
        }
    }
}

/// Why an HTTP check's credentials cannot be used. Messages name the check and the secret,
/// never anything read from the secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CredentialsError {
    #[error(
        "HTTP check {check:?}: cannot read secret {secret} ({code}: {message}); check the \
         plan's credentials_secret and that the function may read it (the stack's \
         SmokeSecretPrefix)"
    )]
    Unreadable {
        check: String,
        secret: String,
        code: String,
        message: String,
    },
    #[error(
        "HTTP check {check:?}: secret {secret} is not {{\"type\": \"bearer\", \"token\": …}} or \
         {{\"type\": \"basic\", \"username\": …, \"password\": …}} JSON{detail}"
    )]
    Malformed {
        check: String,
        secret: String,
        detail: String,
    },
    #[error("HTTP check {check:?}: secret {secret} cannot be sent: {why}")]
    Unusable {
        check: String,
        secret: String,
        why: &'static str,
    },
}

impl From<CredentialsError> for RollbackError {
    fn from(e: CredentialsError) -> Self {
        RollbackError::SmokeConfig(e.to_string())
    }
}

/// Reads every distinct secret the HTTP checks name, once.
pub(crate) async fn load_all(
    client: &aws_sdk_secretsmanager::Client,
    checks: &[HttpCheck],
) -> Result<HashMap<String, HttpCredentials>, RollbackError> {
    let mut loaded = HashMap::new();
    for check in checks {
        let Some(secret) = &check.credentials_secret else {
            continue;
        };
        if !loaded.contains_key(secret) {
            let credentials = load(client, &check.name, secret).await?;
            loaded.insert(secret.clone(), credentials);
        }
    }
    Ok(loaded)
}

async fn load(
    client: &aws_sdk_secretsmanager::Client,
    check: &str,
    secret: &str,
) -> Result<HttpCredentials, RollbackError> {
    let out = match client.get_secret_value().secret_id(secret).send().await {
        Ok(out) => out,
        Err(e) => {
            return Err(match RollbackError::from_sdk("GetSecretValue", e) {
                RollbackError::Aws { code, message, .. } => CredentialsError::Unreadable {
                    check: check.to_owned(),
                    secret: secret.to_owned(),
                    code,
                    message,
                }
                .into(),
                // Throttled or transient: the state machine retries the smoke run.
                other => other,
            });
        }
    };
    let malformed = |detail: String| CredentialsError::Malformed {
        check: check.to_owned(),
        secret: secret.to_owned(),
        detail,
    };
    let text = out
        .secret_string()
        .ok_or_else(|| malformed(" (it has no SecretString)".to_owned()))?;
    let credentials: HttpCredentials =
        serde_json::from_str(text).map_err(|e| malformed(safe_detail(&e)))?;
    if let Some(why) = credentials.unusable() {
        return Err(CredentialsError::Unusable {
            check: check.to_owned(),
            secret: secret.to_owned(),
            why,
        }
        .into());
    }
    Ok(credentials)
}

/// Only the parts of serde's message that cannot quote the secret: a missing field's name, or
/// that the type is unknown. Other messages (`invalid type: string "…"`) may quote a value.
fn safe_detail(e: &serde_json::Error) -> String {
    let message = e.to_string();
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = rest.split(" at line").next().unwrap_or_default();
        format!(" (missing field {field})")
    } else if message.starts_with("unknown variant") {
        " (type must be \"bearer\" or \"basic\")".to_owned()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_scrub_hide_every_form_of_the_secret() {
        let bearer: HttpCredentials =
            serde_json::from_str(r#"{"type": "bearer", "token": "tok-123"}"#).unwrap();
        assert!(!format!("{bearer:?}").contains("tok-123"));
        assert_eq!(bearer.scrub("got tok-123 back"), "got [redacted] back");

        let basic: HttpCredentials =
            serde_json::from_str(r#"{"type": "basic", "username": "probe", "password": "pw-9"}"#)
                .unwrap();
        assert!(!format!("{basic:?}").contains("pw-9"));
        // base64("probe:pw-9"), as the Authorization header carries it.
        let scrubbed = basic.scrub("Basic cHJvYmU6cHctOQ== and pw-9");
        assert_eq!(scrubbed, "Basic [redacted] and [redacted]");
    }

    #[test]
    fn parse_errors_never_quote_the_secret() {
        for (text, detail) in [
            (r#"{"type": "bearer"}"#, " (missing field `token`)"),
            (
                r#"{"type": "hunter2", "token": "x"}"#,
                " (type must be \"bearer\" or \"basic\")",
            ),
            (r#"{"type": "bearer", "token": 12345}"#, ""),
        ] {
            let e = serde_json::from_str::<HttpCredentials>(text).unwrap_err();
            assert_eq!(safe_detail(&e), detail, "{text}");
        }
    }

    #[test]
    fn unusable_credentials_are_named_without_their_value() {
        let colon = HttpCredentials::Basic {
            username: "a:b".into(),
            password: "p".into(),
        };
        assert!(colon.unusable().is_some());
        let newline = HttpCredentials::Bearer {
            token: "abc\ndef".into(),
        };
        assert!(newline.unusable().unwrap().contains("control"));
    }
}
