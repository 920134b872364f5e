//! Errors: `ApiError` is what a request handler answers with (rendered as a
//! Kubernetes `Status` object, so kubectl and kube-rs show the real message);
//! `Error` is what starting the server can fail with.

use serde_json::{Value, json};

/// Failure to start or configure the local API server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding or serving the local Kubernetes API: {0}")]
    Io(#[from] std::io::Error),
    #[error("generating the self-signed CA or server certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("configuring TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("seeding state: {0}")]
    Seed(#[from] ApiError),
}

/// A request failure with the HTTP code and the `reason` the real API server uses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (name, group, kind, causes), when known.
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "Unauthorized", message)
    }

    pub fn not_found(resource: &str, name: &str) -> Self {
        let (group, kind) = split_resource(resource);
        Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
            .with_details(json!({"name": name, "group": group, "kind": kind}))
    }

    /// For paths that name no resource the server knows (kubectl treats these as "not served").
    pub fn path_not_found(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    pub fn already_exists(resource: &str, name: &str) -> Self {
        let (group, kind) = split_resource(resource);
        Self::new(
            409,
            "AlreadyExists",
            format!("{resource} \"{name}\" already exists"),
        )
        .with_details(json!({"name": name, "group": group, "kind": kind}))
    }

    pub fn conflict(resource: &str, name: &str) -> Self {
        let (group, kind) = split_resource(resource);
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again"
            ),
        )
        .with_details(json!({"name": name, "group": group, "kind": kind}))
    }

    /// 422 with one cause per invalid field, like apimachinery's field.ErrorList.
    pub fn invalid(kind: &str, name: &str, causes: &[(String, String)]) -> Self {
        Self::invalid_in("apps", kind, name, causes)
    }

    /// A 422 for an object of `kind` in API group `group`.
    pub fn invalid_in(group: &str, kind: &str, name: &str, causes: &[(String, String)]) -> Self {
        let summary: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let message = format!(
            "{kind}.{group} \"{name}\" is invalid: {}",
            summary.join(", ")
        );
        let causes: Vec<Value> = causes
            .iter()
            .map(|(field, msg)| json!({"reason": "FieldValueInvalid", "message": msg, "field": field}))
            .collect();
        Self::new(422, "Invalid", message)
            .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes}))
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method ({method}) on the requested resource ({path})"
            ),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 422 for a SelfSubjectAccessReview whose spec names nothing to check.
    pub fn invalid_review(message: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!(
                "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": {message}"
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// The `Status` object the API server returns for failures.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// "deployments.apps" → ("apps", "deployments"); "pods" → ("", "pods").
fn split_resource(resource: &str) -> (&str, &str) {
    match resource.split_once('.') {
        Some((kind, group)) => (group, kind),
        None => ("", resource),
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
