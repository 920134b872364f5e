//! The IAM check for a function's own test suite: the same check the drill runs, in front of
//! the moto a test already uses.
//!
//! A test hands the function under test [`IamGate::sdk_config`] (signed with the function's
//! own key, through a proxy that authorizes every request against the function's role in
//! `infra/template.yaml`) and keeps seeding and asserting through moto directly. A call the
//! role would not allow gets AWS's own access-denied answer, and the gate fails the test
//! when it is dropped, naming the function, action, resource and policy — even when the
//! test expected the call to fail for another reason.
//!
//! ```no_run
//! use rollback_fault_proxy::gate::{IamGate, test_stack};
//! let moto = rollback_moto::MotoServer::shared();
//! // The role's resources are scoped by the service name: name test databases `res-…`.
//! let gate = IamGate::start(&moto.endpoint(), "restore", &test_stack("res"));
//! let rds = aws_sdk_rds::Client::new(&gate.sdk_config());
//! // … call the function with `rds`, seed with moto.sdk_config() …
//! gate.assert_allowed();
//! ```

use std::sync::Arc;

use crate::iam::{IamChecker, LOCAL_ACCOUNT, StackValues, Violation, access_key_id};
use crate::{FaultProxy, FaultSchedule};

/// A proxy that checks one function's requests against its role; fails the test on drop if
/// the role refused any.
pub struct IamGate {
    proxy: FaultProxy,
    function: String,
}

impl IamGate {
    /// Starts the gate in front of `upstream_url` (moto) for `function` (`restore`,
    /// `deploy-undo`…), with the roles of the shipped template resolved with `values`.
    ///
    /// # Panics
    /// When the template cannot be read or has no role for `function`: a test cannot run
    /// its IAM check without them.
    pub fn start(upstream_url: &str, function: &str, values: &StackValues) -> IamGate {
        let path = rollback_moto::workspace_root().join("infra/template.yaml");
        let template = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        IamGate::start_with_template(upstream_url, function, &template, values)
    }

    /// [`IamGate::start`] with the template text given (a test that edits a role).
    pub fn start_with_template(
        upstream_url: &str,
        function: &str,
        template_yaml: &str,
        values: &StackValues,
    ) -> IamGate {
        let checker = IamChecker::from_template(template_yaml, values)
            .unwrap_or_else(|e| panic!("the IAM check cannot read infra/template.yaml: {e}"));
        assert!(
            checker.role_for_key(&access_key_id(function)).is_some(),
            "infra/template.yaml has no function {function:?} (roles: {:?})",
            checker.roles().map(|r| &r.function).collect::<Vec<_>>()
        );
        let proxy = FaultProxy::start_with_iam(
            upstream_url,
            FaultSchedule::none(),
            Some(Arc::new(checker)),
        )
        .unwrap_or_else(|e| panic!("IAM gate for {function}: {e}"));
        IamGate {
            proxy,
            function: function.to_owned(),
        }
    }

    /// The function's SDK configuration: its own key, through the gate.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        function_sdk_config(&self.proxy.url(), &self.function)
    }

    /// The proxy underneath, to add faults ([`FaultProxy::set_schedule`]) or read its log: a
    /// fault test's calls are checked too.
    pub fn proxy(&self) -> &FaultProxy {
        &self.proxy
    }

    /// The gate's endpoint, for a client built another way.
    pub fn url(&self) -> String {
        self.proxy.url()
    }

    /// The calls the role refused so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.proxy.iam_violations()
    }

    /// The policy actions allowed calls used so far.
    pub fn coverage(&self) -> crate::iam::Coverage {
        self.proxy.iam_coverage()
    }

    /// Panics with every refused call.
    pub fn assert_allowed(&self) {
        let violations = self.violations();
        assert!(violations.is_empty(), "{}", describe(&violations));
    }

    /// Forgets the refusals so far: a test that provokes one on purpose, after asserting it.
    pub fn take_violations(&self) -> Vec<Violation> {
        self.proxy.take_iam_violations()
    }
}

impl Drop for IamGate {
    fn drop(&mut self) {
        let violations = self.violations();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!("{}", describe(&violations));
        }
    }
}

fn describe(violations: &[Violation]) -> String {
    let lines: Vec<String> = violations.iter().map(|v| format!("  - {v}")).collect();
    format!(
        "{} call(s) the role would refuse in AWS:\n{}",
        violations.len(),
        lines.join("\n")
    )
}

/// A function's SDK configuration for a local endpoint: its own access key id
/// ([`access_key_id`]: `ASIARESTORE`…), by which the proxy knows whose role to check, as each
/// Lambda has its own role's credentials in AWS.
pub fn function_sdk_config(endpoint_url: &str, function: &str) -> aws_config::SdkConfig {
    rollback_core::aws::for_endpoint_as(
        endpoint_url,
        rollback_core::aws::LOCAL_REGION,
        &access_key_id(function),
    )
}

/// Stack values for a test whose resources are named after `service` (the template scopes
/// databases, repositories and secrets to `${ServiceName}-*` unless a prefix parameter says
/// otherwise). Topics are `<service>-approvals`, `<service>-notices`,
/// `<service>-escalations`; the link key is `<service>-approval-link-key`; the report bucket
/// is [`report_bucket`]`(service)`. The infrastructure rollback is configured: its artifact
/// bucket (`TerraformArtifactBucket`) is [`terraform_artifact_bucket`]`(service)`, and the
/// other `Terraform*` parameters keep their defaults (project `<service>-terraform`, commits
/// under `/<service>/terraform/`, artifacts under `rollback-plans/<service>/`). Override any with
/// [`StackValues::parameter`] / [`StackValues::resource`].
/// The decision key is the shared moto's ([`MotoServer::decision_key`]); a stack on another
/// moto starts from [`stack_values`] and names its own.
///
/// [`MotoServer::decision_key`]: rollback_moto::MotoServer::decision_key
pub fn test_stack(service: &str) -> StackValues {
    stack_values(service).decision_key(rollback_moto::MotoServer::shared().decision_key())
}

/// [`test_stack`] without a decision key.
pub fn stack_values(service: &str) -> StackValues {
    StackValues::new(
        rollback_core::aws::LOCAL_REGION,
        LOCAL_ACCOUNT,
        &format!("{service}-stack"),
    )
    .parameter("ServiceName", service)
    .parameter(
        "RollbackPlanParameter",
        &format!("/{service}/rollback-plan"),
    )
    .parameter("AlarmNames", &format!("{service}-5xx"))
    .parameter("ClusterName", &format!("{service}-eks"))
    .topic("ApprovalsTopic", &format!("{service}-approvals"))
    .topic("NoticesTopic", &format!("{service}-notices"))
    .topic("EscalationTopic", &format!("{service}-escalations"))
    .secret(
        "ApprovalLinkKey",
        &format!("{service}-approval-link-key-AbCdEf"),
    )
    .report_bucket(&report_bucket(service))
    .parameter(
        "TerraformArtifactBucket",
        &terraform_artifact_bucket(service),
    )
}

/// The report bucket of [`test_stack`]`(service)`: `<service>-rollback-reports`.
pub fn report_bucket(service: &str) -> String {
    format!("{service}-rollback-reports")
}

/// The Terraform artifact bucket of [`test_stack`]`(service)`: `<service>-terraform-plans`.
pub fn terraform_artifact_bucket(service: &str) -> String {
    format!("{service}-terraform-plans")
}
