//! One error type for every function. Each variant surfaces as a Step Functions error name
//! (`Rollback.<Kind>`) that the definition's Retry and Catch match by name.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};

use crate::validation::ValidationErrors;

/// The kinds of failure, one Step Functions error name each (`Rollback.<Kind>`, see
/// [`ErrorKind::error_name`]). What statemachine/rollback.asl.json does with each:
///
/// - **Retry**: every Task retries [`ErrorKind::Throttled`] and [`ErrorKind::Transient`] (6
///   attempts, 2 s doubling to at most 60 s, full jitter), and no other kind.
/// - **Catch**: every Task catches `States.ALL`, so every kind (a retried one once its attempts
///   are spent) is caught; the Catch decides where it goes. Mostly that is the failure path
///   (`Keep what the notice needs`: put back, resume, observe, failure report, contingency
///   notice). The exceptions: `Validate request` goes to `Request or plan invalid` (the
///   execution fails, no notice); the infrastructure resolve/plan steps go on without
///   infrastructure, and `Find live mobile releases` goes on with the error in its resolution;
///   `Swap databases` goes to `Put databases back`; the parallel branches record the failure
///   (`<X> branch failed`) before the failure path. Only [`ErrorKind::Rejected`] is caught by
///   name.
///
/// A test below checks the Retry and by-name Catch lists against the definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The plan does not validate; the message names each field and its fix. Catch only: at
    /// `Validate request` the execution fails without a notice; later, the failure path.
    InvalidPlan,
    /// The execution's input (a manual start or an alarm event) does not validate. Catch only:
    /// at `Validate request` the execution fails without a notice; later, the failure path.
    InvalidRequest,
    /// A step's own input is wrong (a definition or caller defect: a missing field, an action
    /// the deployment does not serve), never an AWS answer nor our own output (that is
    /// [`ErrorKind::Internal`]). Catch only: the failure path.
    InvalidInput,
    /// No snapshot to restore from (none before the release, or the named one is gone).
    /// Catch only: the failure path.
    SnapshotNotFound,
    /// A backup snapshot failed or cannot be taken; nothing was restored. Catch only: the
    /// failure path.
    SnapshotFailed,
    /// A restore from the snapshot failed; the live database is untouched. Catch only: the
    /// failure path.
    RestoreFailed,
    /// Swapping the restored copy in failed. Catch only: `Swap databases` goes to
    /// `Put databases back`, which puts an unfinished swap back.
    SwapFailed,
    /// A plan image has no `stable_tag`: there is nothing known-good to go back to. Catch only:
    /// the failure path.
    StableImageNotFound,
    /// Moving a release tag failed. Catch only: the failure path.
    RetagFailed,
    /// A deployment has no previous revision to roll back to. Catch only: the failure path.
    NoRolloutHistory,
    /// A rollout does not progress (e.g. `ProgressDeadlineExceeded`). Catch only: the failure
    /// path.
    RolloutStuck,
    /// Live state no longer matches what was approved; nothing was changed. Start again.
    /// Returned by the destructive functions and set by the definition itself (`Approved plan
    /// drifted`). Catch only: the failure path.
    PlanDrifted,
    /// A destructive action without a signed decision that covers it; nothing was changed.
    /// Catch only: the failure path.
    NotApproved,
    /// Another rollback of the service is running; this one stops before any change. Catch
    /// only: the failure path.
    ConcurrentRollback,
    /// The approver rejected (the approval function fails the task token with it; no handler
    /// returns it). Caught by name at `Request approval` and `Offer to stop it`: the execution
    /// ends quietly after `Write the rejection report`.
    Rejected,
    /// A wait loop reached `polling.max_wait_minutes` (or the Terraform build limit). Set by
    /// the definition's own poll counters, not returned by a function; the failure path, or
    /// for the Terraform plan, infrastructure is left out.
    WaitTimedOut,
    /// A smoke check cannot run as configured (a bad URL, an unreadable secret). Catch only:
    /// the failure path.
    SmokeConfig,
    /// A Terraform build (plan or apply) failed, or its plan cannot be read: nothing more is
    /// applied; the contingency notice says which build and where its log is. Catch only: at
    /// planning infrastructure is left out and the execution goes on; at apply, the failure
    /// path.
    InfrastructureFailed,
    /// Terraform refused the approved plan because the state changed since it was made: the
    /// contingency notice says "re-plan and approve again". Catch only: the failure path.
    PlanStale,
    /// The Kubernetes API refused a call for good (a transient one is [`ErrorKind::Transient`]).
    /// Catch only: the failure path.
    Kubernetes,
    /// An app store's credentials are missing, unreadable or refused (a Secrets Manager secret
    /// that is absent or malformed, a key the store answers 401 to): nothing was changed in the
    /// store; the message names the secret and the fix. Catch only: at `Find live mobile
    /// releases` the execution goes on with the error in the resolution; at halt or
    /// raise-minimum, the failure path.
    StoreCredentials,
    /// An app store refused a change for good (changes in review, no release to halt, the key
    /// lacks the permission, a state conflict); the message has the store's reason and the fix.
    /// Catch only: the failure path.
    StoreRefused,
    /// AWS throttled the call. Retry (with backoff, on every Task); once the attempts are spent,
    /// caught like any other kind.
    Throttled,
    /// A timeout, a dropped connection or a 5xx (AWS, Kubernetes, an app store). Retry (with
    /// backoff, on every Task); once the attempts are spent, caught like any other kind. A
    /// state-changing step looks at the real state before it reports this, so a retry does not
    /// do the work twice.
    Transient,
    /// AWS refused the call for good (access denied, a validation error); the message has the
    /// operation and AWS's code. Catch only: the failure path.
    Aws,
    /// Our defect: an output that does not encode ([`crate::step::to_output`]), an impossible
    /// answer; also set by the definition when approval ends without a decision. Catch only: the
    /// failure path.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
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

    /// The kind whose [`ErrorKind::error_name`] is `name`; `None` for any other name.
    pub fn from_error_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.error_name() == name)
    }

    /// Worth retrying with backoff: the same call may succeed later.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

/// The error every function returns; [`RollbackError::kind`] says which Step Functions error
/// name it surfaces as.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// [`ErrorKind::InvalidPlan`], with every field error.
    #[error("invalid plan: {0}")]
    InvalidPlan(ValidationErrors),
    /// [`ErrorKind::InvalidRequest`], with every field error.
    #[error("invalid request: {0}")]
    InvalidRequest(ValidationErrors),
    /// [`ErrorKind::InvalidInput`].
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// [`ErrorKind::SnapshotNotFound`].
    #[error("{0}")]
    SnapshotNotFound(String),
    /// [`ErrorKind::SnapshotFailed`].
    #[error("{0}")]
    SnapshotFailed(String),
    /// [`ErrorKind::RestoreFailed`].
    #[error("{0}")]
    RestoreFailed(String),
    /// [`ErrorKind::SwapFailed`].
    #[error("{0}")]
    SwapFailed(String),
    /// [`ErrorKind::StableImageNotFound`].
    #[error("{0}")]
    StableImageNotFound(String),
    /// [`ErrorKind::RetagFailed`].
    #[error("{0}")]
    RetagFailed(String),
    /// [`ErrorKind::NoRolloutHistory`].
    #[error("{0}")]
    NoRolloutHistory(String),
    /// [`ErrorKind::RolloutStuck`].
    #[error("{0}")]
    RolloutStuck(String),
    /// [`ErrorKind::PlanDrifted`].
    #[error("the approved plan no longer matches live state: {0}")]
    PlanDrifted(String),
    /// A destructive action without a signed decision that covers it; nothing was changed.
    #[error("not approved: {0}")]
    NotApproved(String),
    /// [`ErrorKind::ConcurrentRollback`].
    #[error("{0}")]
    ConcurrentRollback(String),
    /// [`ErrorKind::Rejected`].
    #[error("rejected: {0}")]
    Rejected(String),
    /// [`ErrorKind::WaitTimedOut`].
    #[error("{0}")]
    WaitTimedOut(String),
    /// [`ErrorKind::SmokeConfig`].
    #[error("smoke test configuration: {0}")]
    SmokeConfig(String),
    /// [`ErrorKind::InfrastructureFailed`].
    #[error("infrastructure: {0}")]
    InfrastructureFailed(String),
    /// [`ErrorKind::PlanStale`].
    #[error("the approved Terraform plan is stale: {0}")]
    PlanStale(String),
    /// A Kubernetes API failure: [`ErrorKind::Transient`] when `retryable`, else
    /// [`ErrorKind::Kubernetes`].
    #[error("kubernetes {operation}: {message}")]
    Kubernetes {
        /// The request that failed (`rollout restart`, `eks:DescribeCluster`, …).
        operation: String,
        /// What went wrong, with the fix when there is one.
        message: String,
        /// Worth retrying (a timeout, a dropped connection, a 5xx).
        retryable: bool,
    },
    /// An app store's credentials are missing, unreadable or refused; nothing was changed.
    #[error("store credentials: {0}")]
    StoreCredentials(String),
    /// An app store refused a change for good; the message has its reason and the fix.
    #[error("store refused: {0}")]
    StoreRefused(String),
    /// [`ErrorKind::Throttled`]: the operation and AWS's code and message.
    #[error("{operation} was throttled: {message}")]
    Throttled {
        /// The AWS operation (`GetSecretValue`, …).
        operation: String,
        /// AWS's code and message.
        message: String,
    },
    /// [`ErrorKind::Transient`]: the operation and what went wrong.
    #[error("{operation} failed transiently: {message}")]
    Transient {
        /// The call that failed (`GetObject`, an app store request, …).
        operation: String,
        /// What went wrong.
        message: String,
    },
    /// [`ErrorKind::Aws`]: AWS refused the call for good.
    #[error("{operation} failed: {code}: {message}")]
    Aws {
        /// The AWS operation (`GetSecretValue`, …).
        operation: String,
        /// AWS's error code (`AccessDeniedException`, …; `Unknown` when there is none).
        code: String,
        /// AWS's message.
        message: String,
    },
    /// [`ErrorKind::Internal`].
    #[error("internal error: {0}")]
    Internal(String),
}

impl RollbackError {
    /// The kind this error surfaces as.
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

    /// Whether the definition retries this error ([`ErrorKind::is_retryable`]).
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

/// The error a Lambda returns: its type is the name the definition's Retry and Catch match.
#[cfg(feature = "lambda")]
impl From<RollbackError> for lambda_runtime::Diagnostic {
    fn from(err: RollbackError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.error_name().to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variants in declaration order, as serde's derive knows them: `Deserialize` hands
    /// the full list to [`serde::Deserializer::deserialize_enum`], which this one captures.
    fn declared_kinds() -> &'static [&'static str] {
        use serde::de::{Deserializer, Visitor};

        #[derive(Debug)]
        struct Captured(Result<&'static [&'static str], String>);
        impl std::fmt::Display for Captured {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
        impl StdError for Captured {}
        impl serde::de::Error for Captured {
            fn custom<T: std::fmt::Display>(msg: T) -> Self {
                Captured(Err(msg.to_string()))
            }
        }

        struct Probe;
        impl<'de> Deserializer<'de> for Probe {
            type Error = Captured;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Captured> {
                Err(Captured(Err("not deserialized as an enum".into())))
            }
            fn deserialize_enum<V: Visitor<'de>>(
                self,
                _name: &'static str,
                variants: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Captured> {
                Err(Captured(Ok(variants)))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
                struct identifier ignored_any
            }
        }

        ErrorKind::deserialize(Probe).unwrap_err().0.unwrap()
    }

    /// How statemachine/rollback.asl.json handles a kind. Exhaustive: a new variant does not
    /// compile until it is classified here (and documented above).
    #[derive(Debug, PartialEq)]
    enum Handling {
        /// In every Task's Retry, then caught by `States.ALL`.
        Retried,
        /// Caught by its own name somewhere (as well as by `States.ALL`).
        CaughtByName,
        /// Caught by `States.ALL` only.
        Caught,
    }

    fn handling(kind: ErrorKind) -> Handling {
        match kind {
            ErrorKind::Throttled | ErrorKind::Transient => Handling::Retried,
            ErrorKind::Rejected => Handling::CaughtByName,
            ErrorKind::InvalidPlan
            | ErrorKind::InvalidRequest
            | ErrorKind::InvalidInput
            | ErrorKind::SnapshotNotFound
            | ErrorKind::SnapshotFailed
            | ErrorKind::RestoreFailed
            | ErrorKind::SwapFailed
            | ErrorKind::StableImageNotFound
            | ErrorKind::RetagFailed
            | ErrorKind::NoRolloutHistory
            | ErrorKind::RolloutStuck
            | ErrorKind::PlanDrifted
            | ErrorKind::NotApproved
            | ErrorKind::ConcurrentRollback
            | ErrorKind::WaitTimedOut
            | ErrorKind::SmokeConfig
            | ErrorKind::InfrastructureFailed
            | ErrorKind::PlanStale
            | ErrorKind::Kubernetes
            | ErrorKind::StoreCredentials
            | ErrorKind::StoreRefused
            | ErrorKind::Aws
            | ErrorKind::Internal => Handling::Caught,
        }
    }

    /// `ALL` lists every declared kind, once, in declaration order: a variant added without an
    /// `ALL` entry fails here (and without a [`handling`] arm or an `error_name`, does not
    /// compile).
    #[test]
    fn all_lists_every_kind() {
        let declared = declared_kinds();
        let listed: Vec<String> = ErrorKind::ALL.iter().map(|k| format!("{k:?}")).collect();
        assert_eq!(declared, listed, "ErrorKind::ALL");
        assert_eq!(declared.len(), ErrorKind::ALL.len(), "ErrorKind::ALL");
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|k| k.error_name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len(), "one name per kind");
    }

    /// The `Rollback.*` names in every `key` list (`Retry` or `Catch`) of the definition.
    fn definition_names(key: &str) -> std::collections::BTreeSet<String> {
        fn walk(
            value: &serde_json::Value,
            key: &str,
            out: &mut std::collections::BTreeSet<String>,
        ) {
            match value {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        if k == key {
                            let names = v.as_array().into_iter().flatten();
                            let names = names.flat_map(|r| r["ErrorEquals"].as_array().unwrap());
                            out.extend(
                                names
                                    .filter_map(|n| n.as_str())
                                    .filter(|n| n.starts_with("Rollback."))
                                    .map(str::to_owned),
                            );
                        }
                        walk(v, key, out);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, key, out)),
                _ => {}
            }
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../statemachine/rollback.asl.json"
        );
        let text = std::fs::read_to_string(path).expect(path);
        let definition: serde_json::Value = serde_json::from_str(&text).expect(path);
        let mut out = std::collections::BTreeSet::new();
        walk(&definition, key, &mut out);
        out
    }

    /// The handling each kind's documentation states is the definition's: the kinds it retries
    /// are exactly the retried ones ([`ErrorKind::is_retryable`]), the kinds it catches by name
    /// exactly the `CaughtByName` ones.
    #[test]
    fn handling_matches_the_definition() {
        let named = |wanted: Handling| -> std::collections::BTreeSet<String> {
            ErrorKind::ALL
                .into_iter()
                .filter(|k| handling(*k) == wanted)
                .map(|k| k.error_name().to_owned())
                .collect()
        };
        assert_eq!(definition_names("Retry"), named(Handling::Retried));
        assert_eq!(definition_names("Catch"), named(Handling::CaughtByName));
        for kind in ErrorKind::ALL {
            assert_eq!(
                kind.is_retryable(),
                handling(kind) == Handling::Retried,
                "{kind:?}"
            );
        }
    }

    /// An output that does not encode is our defect, not the caller's input.
    #[test]
    fn an_output_that_does_not_encode_is_internal() {
        use crate::step::to_output;
        // A map with non-string keys has no JSON form.
        let output: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let err = to_output(&output).unwrap_err();
        assert_eq!(err.error_name(), "Rollback.Internal");
        assert!(
            err.to_string().contains("could not encode the output"),
            "{err}"
        );
        assert_eq!(
            to_output(&ErrorKind::Rejected).unwrap(),
            serde_json::json!("Rejected")
        );
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

    #[cfg(feature = "lambda")]
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
