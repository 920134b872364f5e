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
pub mod smoke_test;
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

/// The ARN the local engine (the drill, the end-to-end tests) gives the function `name` of
/// [`FUNCTIONS`]: the local account in the local region.
pub fn local_function_arn(name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:123456789012:function:{name}",
        crate::aws::LOCAL_REGION
    )
}

/// The `DefinitionSubstitutions` the SAM template provides in AWS, with the local engine's
/// function ARNs ([`local_function_arn`]) and `approval_topic_arn`.
pub fn local_substitutions(approval_topic_arn: &str) -> std::collections::BTreeMap<String, String> {
    let mut map: std::collections::BTreeMap<String, String> = FUNCTIONS
        .iter()
        .map(|(key, name)| (key.to_string(), local_function_arn(name)))
        .collect();
    map.insert("ApprovalTopicArn".to_owned(), approval_topic_arn.to_owned());
    map
}

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
