//! One error type for every function. Each variant surfaces as a Step Functions error name
//! (`Rollback.<Kind>`) that the definition's Retry and Catch match by name.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

/// The kinds of failure, one Step Functions error name each (`Rollback.<Kind>`, see
/// [`ErrorKind::error_name`]). The definition retries only [`ErrorKind::Throttled`] and
/// [`ErrorKind::Transient`] (with backoff); every other kind is caught (`States.ALL`) and ends in
/// the contingency notice, except where a Catch says otherwise (Terraform planning leaves
/// infrastructure out and goes on; `Validate request` fails the execution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The plan does not validate; the message names each field and its fix. Not retried.
    InvalidPlan,
    /// The execution's input (a manual start or an alarm event) does not validate. Not retried.
    InvalidRequest,
    /// A step's own input is wrong (a definition or caller defect), never an AWS answer. Not
    /// retried.
    InvalidInput,
    /// No snapshot to restore from (none before the release, or the named one is gone).
    SnapshotNotFound,
    /// A backup snapshot failed or cannot be taken; nothing was restored.
    SnapshotFailed,
    /// A restore from the snapshot failed; the live database is untouched.
    RestoreFailed,
    /// Swapping the restored copy in failed; the failure path puts an unfinished swap back.
    SwapFailed,
    /// A plan image has no `stable_tag`: there is nothing known-good to go back to.
    StableImageNotFound,
    /// Moving a release tag failed.
    RetagFailed,
    /// A deployment has no previous revision to roll back to.
    NoRolloutHistory,
    /// A rollout does not progress (e.g. `ProgressDeadlineExceeded`).
    RolloutStuck,
    /// Live state no longer matches what was approved; nothing was changed. Start again.
    PlanDrifted,
    /// A destructive action without a signed decision that covers it; nothing was changed.
    NotApproved,
    /// Another rollback of the service is running; this one stops before any change.
    ConcurrentRollback,
    /// The approver rejected: the execution ends quietly after its report.
    Rejected,
    /// A wait loop reached `polling.max_wait_minutes` (or the Terraform build limit).
    WaitTimedOut,
    /// A smoke check cannot run as configured (a bad URL, an unreadable secret).
    SmokeConfig,
    /// A Terraform build (plan or apply) failed, or its plan cannot be read: nothing more is
    /// applied; the contingency notice says which build and where its log is.
    InfrastructureFailed,
    /// Terraform refused the approved plan because the state changed since it was made: the
    /// contingency notice says "re-plan and approve again".
    PlanStale,
    /// The Kubernetes API refused a call for good (a transient one is [`ErrorKind::Transient`]).
    Kubernetes,
    /// An app store's credentials are missing, unreadable or refused (a Secrets Manager secret
    /// that is absent or malformed, a key the store answers 401 to): nothing was changed in the
    /// store; the message names the secret and the fix.
    StoreCredentials,
    /// An app store refused a change for good (changes in review, no release to halt, the key
    /// lacks the permission, a state conflict); the message has the store's reason and the fix.
    StoreRefused,
    /// AWS throttled the call; retried with backoff.
    Throttled,
    /// A timeout, a dropped connection or a 5xx; retried with backoff. A state-changing step
    /// looks at the real state before it reports this, so a retry does not do the work twice.
    Transient,
    /// AWS refused the call for good (access denied, a validation error); the message has the
    /// operation and AWS's code.
    Aws,
    /// Our defect (an output that does not encode, an impossible answer). Not retried.
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 26] = [
        ErrorKind::InvalidPlan,
        ErrorKind::InvalidRequest,
        ErrorKind::InvalidInput,
        ErrorKind::SnapshotNotFound,
        ErrorKind::SnapshotFailed,
        ErrorKind::RestoreFailed,
        ErrorKind::SwapFailed,
        ErrorKind::StableImageNotFound,
        ErrorKind::RetagFailed,
        ErrorKind::NoRolloutHistory,
        ErrorKind::RolloutStuck,
        ErrorKind::PlanDrifted,
        ErrorKind::NotApproved,
        ErrorKind::ConcurrentRollback,
        ErrorKind::Rejected,
        ErrorKind::WaitTimedOut,
        ErrorKind::SmokeConfig,
        ErrorKind::InfrastructureFailed,
        ErrorKind::PlanStale,
        ErrorKind::Kubernetes,
        ErrorKind::StoreCredentials,
        ErrorKind::StoreRefused,
        ErrorKind::Throttled,
        ErrorKind::Transient,
        ErrorKind::Aws,
        ErrorKind::Internal,
    ];

    /// The Step Functions error name, e.g. `Rollback.SnapshotNotFound`.
    pub fn error_name(self) -> &'static str {
        match self {
            ErrorKind::InvalidPlan => "Rollback.InvalidPlan",
            ErrorKind::InvalidRequest => "Rollback.InvalidRequest",
            ErrorKind::InvalidInput => "Rollback.InvalidInput",
            ErrorKind::SnapshotNotFound => "Rollback.SnapshotNotFound",
            ErrorKind::SnapshotFailed => "Rollback.SnapshotFailed",
            ErrorKind::RestoreFailed => "Rollback.RestoreFailed",
            ErrorKind::SwapFailed => "Rollback.SwapFailed",
            ErrorKind::StableImageNotFound => "Rollback.StableImageNotFound",
            ErrorKind::RetagFailed => "Rollback.RetagFailed",
            ErrorKind::NoRolloutHistory => "Rollback.NoRolloutHistory",
            ErrorKind::RolloutStuck => "Rollback.RolloutStuck",
            ErrorKind::PlanDrifted => "Rollback.PlanDrifted",
            ErrorKind::NotApproved => "Rollback.NotApproved",
            ErrorKind::ConcurrentRollback => "Rollback.ConcurrentRollback",
            ErrorKind::Rejected => "Rollback.Rejected",
            ErrorKind::WaitTimedOut => "Rollback.WaitTimedOut",
            ErrorKind::SmokeConfig => "Rollback.SmokeConfig",
            ErrorKind::InfrastructureFailed => "Rollback.InfrastructureFailed",
            ErrorKind::PlanStale => "Rollback.PlanStale",
            ErrorKind::Kubernetes => "Rollback.Kubernetes",
            ErrorKind::StoreCredentials => "Rollback.StoreCredentials",
            ErrorKind::StoreRefused => "Rollback.StoreRefused",
            ErrorKind::Throttled => "Rollback.Throttled",
            ErrorKind::Transient => "Rollback.Transient",
            ErrorKind::Aws => "Rollback.AwsError",
            ErrorKind::Internal => "Rollback.Internal",
        }
    }

    pub fn from_error_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.error_name() == name)
    }

    /// Worth retrying with backoff: the same call may succeed later.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("invalid plan: {0}")]
    InvalidPlan(ValidationErrors),
    #[error("invalid request: {0}")]
    InvalidRequest(ValidationErrors),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    SnapshotNotFound(String),
    #[error("{0}")]
    SnapshotFailed(String),
    #[error("{0}")]
    RestoreFailed(String),
    #[error("{0}")]
    SwapFailed(String),
    #[error("{0}")]
    StableImageNotFound(String),
    #[error("{0}")]
    RetagFailed(String),
    #[error("{0}")]
    NoRolloutHistory(String),
    #[error("{0}")]
    RolloutStuck(String),
    #[error("the approved plan no longer matches live state: {0}")]
    PlanDrifted(String),
    /// A destructive action without a signed decision that covers it; nothing was changed.
    #[error("not approved: {0}")]
    NotApproved(String),
    #[error("{0}")]
    ConcurrentRollback(String),
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("{0}")]
    WaitTimedOut(String),
    #[error("smoke test configuration: {0}")]
    SmokeConfig(String),
    #[error("infrastructure: {0}")]
    InfrastructureFailed(String),
    #[error("the approved Terraform plan is stale: {0}")]
    PlanStale(String),
    #[error("kubernetes {operation}: {message}")]
    Kubernetes {
        operation: String,
        message: String,
        retryable: bool,
    },
    /// An app store's credentials are missing, unreadable or refused; nothing was changed.
    #[error("store credentials: {0}")]
    StoreCredentials(String),
    /// An app store refused a change for good; the message has its reason and the fix.
    #[error("store refused: {0}")]
    StoreRefused(String),
    #[error("{operation} was throttled: {message}")]
    Throttled { operation: String, message: String },
    #[error("{operation} failed transiently: {message}")]
    Transient { operation: String, message: String },
    #[error("{operation} failed: {code}: {message}")]
    Aws {
        operation: String,
        code: String,
        message: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

impl RollbackError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RollbackError::InvalidPlan(_) => ErrorKind::InvalidPlan,
            RollbackError::InvalidRequest(_) => ErrorKind::InvalidRequest,
            RollbackError::InvalidInput(_) => ErrorKind::InvalidInput,
            RollbackError::SnapshotNotFound(_) => ErrorKind::SnapshotNotFound,
            RollbackError::SnapshotFailed(_) => ErrorKind::SnapshotFailed,
            RollbackError::RestoreFailed(_) => ErrorKind::RestoreFailed,
            RollbackError::SwapFailed(_) => ErrorKind::SwapFailed,
            RollbackError::StableImageNotFound(_) => ErrorKind::StableImageNotFound,
            RollbackError::RetagFailed(_) => ErrorKind::RetagFailed,
            RollbackError::NoRolloutHistory(_) => ErrorKind::NoRolloutHistory,
            RollbackError::RolloutStuck(_) => ErrorKind::RolloutStuck,
            RollbackError::PlanDrifted(_) => ErrorKind::PlanDrifted,
            RollbackError::NotApproved(_) => ErrorKind::NotApproved,
            RollbackError::ConcurrentRollback(_) => ErrorKind::ConcurrentRollback,
            RollbackError::Rejected(_) => ErrorKind::Rejected,
            RollbackError::WaitTimedOut(_) => ErrorKind::WaitTimedOut,
            RollbackError::SmokeConfig(_) => ErrorKind::SmokeConfig,
            RollbackError::InfrastructureFailed(_) => ErrorKind::InfrastructureFailed,
            RollbackError::PlanStale(_) => ErrorKind::PlanStale,
            RollbackError::Kubernetes {
                retryable: true, ..
            } => ErrorKind::Transient,
            RollbackError::Kubernetes {
                retryable: false, ..
            } => ErrorKind::Kubernetes,
            RollbackError::StoreCredentials(_) => ErrorKind::StoreCredentials,
            RollbackError::StoreRefused(_) => ErrorKind::StoreRefused,
            RollbackError::Throttled { .. } => ErrorKind::Throttled,
            RollbackError::Transient { .. } => ErrorKind::Transient,
            RollbackError::Aws { .. } => ErrorKind::Aws,
            RollbackError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The Step Functions error name this error surfaces as.
    pub fn error_name(&self) -> &'static str {
        self.kind().error_name()
    }

    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// Classifies an AWS SDK failure: throttling and server-side or network trouble are
    /// retryable, everything else is permanent and keeps the service's error code.
    pub fn from_sdk<E, R>(operation: &str, err: SdkError<E, R>) -> RollbackError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let operation = operation.to_owned();
        match &err {
            SdkError::TimeoutError(_) => RollbackError::Transient {
                operation,
                message: "the request timed out".to_owned(),
            },
            SdkError::DispatchFailure(failure) => RollbackError::Transient {
                operation,
                message: format!(
                    "could not reach the service: {}",
                    describe_chain(&err, failure.is_io())
                ),
            },
            SdkError::ResponseError(_) => RollbackError::Transient {
                operation,
                message: format!("unreadable response: {}", describe_chain(&err, false)),
            },
            SdkError::ServiceError(service) => {
                let meta = service.err();
                let code = meta.code().unwrap_or("Unknown").to_owned();
                let message = meta.message().unwrap_or_default().to_owned();
                if is_throttling_code(&code) {
                    RollbackError::Throttled {
                        operation,
                        message: format!("{code}: {message}"),
                    }
                } else if is_transient_code(&code) {
                    RollbackError::Transient {
                        operation,
                        message: format!("{code}: {message}"),
                    }
                } else {
                    RollbackError::Aws {
                        operation,
                        code,
                        message,
                    }
                }
            }
            _ => RollbackError::Aws {
                operation,
                code: "Unknown".to_owned(),
                message: describe_chain(&err, false),
            },
        }
    }
}

/// Error codes AWS services use for throttling.
pub fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
    )
}

/// Server-side error codes worth a retry.
pub fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "InternalFailure"
            | "InternalError"
            | "InternalServerError"
            | "InternalServerException"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "RequestTimeout"
            | "RequestTimeoutException"
            | "ServerException"
    )
}

fn describe_chain(err: &dyn StdError, io: bool) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    let text = parts.join(": ");
    if io { format!("{text} (I/O)") } else { text }
}

impl From<RollbackError> for lambda_runtime::Diagnostic {
    fn from(err: RollbackError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.error_name().to_owned(),
            error_message: err.to_string(),
        }
    }
}

impl RollbackError {
    /// A function's output that does not encode: our defect, never the caller's input.
    pub fn encoding(err: serde_json::Error) -> RollbackError {
        RollbackError::Internal(format!("could not encode the output: {err}"))
    }
}

/// A function's output as JSON; an encoding failure is `Rollback.Internal`.
pub fn output<T: Serialize>(value: &T) -> Result<serde_json::Value, RollbackError> {
    serde_json::to_value(value).map_err(RollbackError::encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` lists every kind, once, in declaration order: serde's derive knows the variants
    /// (its "expected one of" list), so a variant added without an `ALL` entry fails here.
    #[test]
    fn all_lists_every_kind() {
        let err = serde_json::from_str::<ErrorKind>("\"NoSuchKind\"").unwrap_err();
        let message = err.to_string();
        let declared: Vec<&str> = message
            .split("expected one of ")
            .nth(1)
            .expect("serde lists the variants")
            .split(", ")
            .filter_map(|v| v.split('`').nth(1))
            .collect();
        let listed: Vec<String> = ErrorKind::ALL.iter().map(|k| format!("{k:?}")).collect();
        assert_eq!(declared, listed, "ErrorKind::ALL");
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|k| k.error_name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len(), "one name per kind");
    }

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.error_name()).collect();
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_error_name(kind.error_name()), Some(kind));
            assert!(kind.error_name().starts_with("Rollback."));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn diagnostic_carries_the_step_functions_name() {
        let diag: lambda_runtime::Diagnostic =
            RollbackError::SnapshotNotFound("no snapshot of db before 12:00".into()).into();
        assert_eq!(diag.error_type, "Rollback.SnapshotNotFound");
        assert!(diag.error_message.contains("no snapshot of db"));
    }

    #[test]
    fn retryable_split() {
        let throttled = RollbackError::Throttled {
            operation: "x".into(),
            message: "y".into(),
        };
        assert!(throttled.is_retryable());
        assert!(!RollbackError::PlanDrifted("x".into()).is_retryable());
        let k8s = RollbackError::Kubernetes {
            operation: "get".into(),
            message: "503".into(),
            retryable: true,
        };
        assert_eq!(k8s.error_name(), "Rollback.Transient");
    }
}
