//! Inputs and outputs of every function action: the contract between the functions and the
//! state machine. Each function's module lists its actions in `ACTIONS`, so a test can check
//! that the definition only calls actions that exist.

pub mod approval;
pub mod deploy_undo;
pub mod infra;
pub mod mobile;
pub mod notify;
pub mod plan;
pub mod restore;
pub mod retag;
pub mod smoke;
pub mod snapshot;

/// `${Key}` in the definition → the Lambda function that serves it, by the name the local
/// engine (the drill, the end-to-end tests) registers it under.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("PlanFunctionArn", "rollback-plan"),
    ("SnapshotFunctionArn", "rollback-snapshot"),
    ("RestoreFunctionArn", "rollback-restore"),
    ("DrillCleanupFunctionArn", "rollback-drill-cleanup"),
    ("RetagFunctionArn", "rollback-retag"),
    ("InfraFunctionArn", "rollback-infra"),
    ("MobileFunctionArn", "rollback-mobile"),
    ("DeployUndoFunctionArn", "rollback-deploy-undo"),
    ("SmokeTestFunctionArn", "rollback-smoke-test"),
    ("NotifyFunctionArn", "rollback-notify"),
];

/// Actions that change something live (databases, tags, infrastructure, deployments, store
/// releases), by
/// function (its name without `rollback-`). None may run before an approval, and none at all
/// on a path without one.
pub const DESTRUCTIVE: &[(&str, &str)] = &[
    ("deploy-undo", "pause"),
    ("deploy-undo", "suspend-gitops"),
    ("deploy-undo", "undo"),
    ("deploy-undo", "restart"),
    ("deploy-undo", "resume"),
    ("restore", "start"),
    ("restore", "swap"),
    ("drill-cleanup", "cleanup-drill"),
    ("retag", "apply"),
    ("infra", "apply"),
    ("mobile", "halt"),
    ("mobile", "raise-minimum"),
];
