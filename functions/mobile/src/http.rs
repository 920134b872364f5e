//! Calls to the stores over HTTPS, and what their error bodies say.
//!
//! Both stores answer JSON. A transport failure (timeout, refused connection) or a 5xx is
//! `Rollback.Transient` and a 429 `Rollback.Throttled`, both retried by the definition; every
//! other refusal is mapped by the store's own module, which knows what the fix is.

use reqwest::{RequestBuilder, StatusCode};
use rollback_core::RollbackError;
use serde_json::Value;

/// Longest a store may take to answer one call (a Play commit is the slowest).
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Store messages are echoed into errors: kept short, and never a whole body.
const MAX_MESSAGE_CHARS: usize = 300;

/// A store's answer to one call.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

/// Sends `request` (already carrying its bearer token) and reads the JSON answer. Only a
/// failure to get an answer at all is an error here.
pub async fn send(request: RequestBuilder, operation: &str) -> Result<Answer, RollbackError> {
    let response = request
        .timeout(CALL_TIMEOUT)
        .send()
        .await
        .map_err(|e| transport(operation, &e))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| transport(operation, &e))?;
    // An empty body (a 204 to a DELETE) or a non-JSON one (a proxy's error page) reads as
    // null: the status decides.
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer { status, body })
}

fn transport(operation: &str, err: &reqwest::Error) -> RollbackError {
    // reqwest's message names the URL, never the headers that carry the token.
    let what = if err.is_timeout() {
        "the store did not answer in time"
    } else if err.is_connect() {
        "could not connect to the store"
    } else {
        "the call to the store failed"
    };
    RollbackError::Transient {
        operation: operation.to_owned(),
        message: format!("{what}: {err}"),
    }
}

/// The retryable answers every store shares: 429 and 5xx. `None` for anything else.
pub fn retryable(operation: &str, answer: &Answer, says: &str) -> Option<RollbackError> {
    let message = format!("{} {}", answer.status.as_u16(), says);
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        Some(RollbackError::Throttled {
            operation: operation.to_owned(),
            message,
        })
    } else if answer.status.is_server_error() {
        Some(RollbackError::Transient {
            operation: operation.to_owned(),
            message,
        })
    } else {
        None
    }
}

/// A Google API error body (`{"error": {"code", "message", "status", "errors": [{"reason"}],
/// "details": [{"reason"}]}}`), and the OAuth token endpoint's (`{"error",
/// "error_description"}`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GoogleError {
    pub message: String,
    /// `status` (`FAILED_PRECONDITION`…) and every `reason`, as given.
    pub reasons: Vec<String>,
}

impl GoogleError {
    pub fn parse(body: &Value) -> GoogleError {
        let error = &body["error"];
        if let Some(code) = error.as_str() {
            // The OAuth endpoint's shape.
            return GoogleError {
                message: short(body["error_description"].as_str().unwrap_or_default()),
                reasons: vec![code.to_owned()],
            };
        }
        let mut reasons: Vec<String> = Vec::new();
        let lists = [&error["errors"], &error["details"]];
        for item in lists.iter().filter_map(|l| l.as_array()).flatten() {
            if let Some(reason) = item["reason"].as_str() {
                reasons.push(reason.to_owned());
            }
        }
        if let Some(status) = error["status"].as_str() {
            reasons.push(status.to_owned());
        }
        GoogleError {
            message: short(error["message"].as_str().unwrap_or_default()),
            reasons,
        }
    }

    /// Whether `reason` (any casing, `_` ignored) is among the reasons.
    pub fn has_reason(&self, reason: &str) -> bool {
        let wanted = normalize(reason);
        self.reasons.iter().any(|r| normalize(r) == wanted)
    }

    /// `releaseToHaltNotFound: Cannot halt release, …`.
    pub fn describe(&self) -> String {
        match (self.reasons.first(), self.message.is_empty()) {
            (Some(reason), false) => format!("{reason}: {}", self.message),
            (Some(reason), true) => reason.clone(),
            (None, false) => self.message.clone(),
            (None, true) => "no details".to_owned(),
        }
    }
}

fn normalize(reason: &str) -> String {
    reason.replace('_', "").to_ascii_lowercase()
}

/// App Store Connect's `ErrorResponse` (`{"errors": [{"status", "code", "title", "detail"}]}`):
/// the first error's code and detail.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AppleError {
    pub code: String,
    pub detail: String,
}

impl AppleError {
    pub fn parse(body: &Value) -> AppleError {
        let first = &body["errors"][0];
        let detail = first["detail"]
            .as_str()
            .or_else(|| first["title"].as_str())
            .unwrap_or_default();
        AppleError {
            code: first["code"].as_str().unwrap_or("no error code").to_owned(),
            detail: short(detail),
        }
    }

    /// `STATE_ERROR: The phased release …`.
    pub fn describe(&self) -> String {
        if self.detail.is_empty() {
            self.code.clone()
        } else {
            format!("{}: {}", self.code, self.detail)
        }
    }
}

/// `text` cut to [`MAX_MESSAGE_CHARS`], on one line.
pub fn short(text: &str) -> String {
    rollback_core::validation::truncate(&text.replace(['\n', '\r'], " "), MAX_MESSAGE_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn google_errors_give_their_reasons_in_either_shape() {
        let api = GoogleError::parse(&json!({"error": {
            "code": 400, "message": "Cannot halt release, no matching in progress release found.",
            "errors": [{"domain": "androidpublisher", "reason": "releaseToHaltNotFound"}],
            "status": "INVALID_ARGUMENT"
        }}));
        assert!(api.has_reason("releaseToHaltNotFound"));
        assert!(api.has_reason("RELEASE_TO_HALT_NOT_FOUND"));
        assert_eq!(
            api.describe(),
            "releaseToHaltNotFound: Cannot halt release, no matching in progress release found."
        );
        let oauth = GoogleError::parse(
            &json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
        );
        assert!(oauth.has_reason("invalid_grant"));
        assert_eq!(GoogleError::parse(&Value::Null).describe(), "no details");
    }

    #[test]
    fn apple_errors_give_the_first_code_and_detail() {
        let e = AppleError::parse(&json!({"errors": [{
            "status": "409", "code": "STATE_ERROR", "title": "t", "detail": "line\nbreak"
        }]}));
        assert_eq!(e.describe(), "STATE_ERROR: line break");
        assert_eq!(AppleError::parse(&json!({})).describe(), "no error code");
    }
}
