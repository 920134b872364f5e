//! The infra function against a real moto server, under its own IAM role (the template's
//! policy, checked on every call): moto's CodeBuild, as `local/moto/rules/codebuild.py` makes
//! it, holds the builds and plays the CI runner (the buildspec against moto's S3).
//!
//! Each test has a service of its own (its project, bucket and parameters), so they share one
//! moto.

use rollback_core::contract::infra::{BuildRef, BuildStatus, InfrastructureResolution};
use rollback_core::{ErrorKind, RollbackError, Scope};
use rollback_fault_proxy::gate::{IamGate, test_stack};
use rollback_fault_proxy::{FaultKind, FaultSchedule};
use rollback_infra::{Clients, handle};
use rollback_moto::{MotoServer, ci_runner};
use serde_json::{Value, json};

const STABLE: &str = "abc1234f00dfeedbeef0123456789abcdef01234";
const CURRENT: &str = "def5678badc0ffee0123456789abcdef01234567";

/// 1 to add, 2 to change, 0 to destroy (and a no-op and a data source read, not counted).
const PLAN: &str = r#"{"format_version": "1.2", "terraform_version": "1.9.8",
  "configuration": {"provider_config": {"aws": {"full_name": "registry.terraform.io/hashicorp/aws", "version_constraint": "~> 5.70"}}},
  "resource_changes": [
    {"address": "aws_security_group_rule.new", "type": "aws_security_group_rule", "change": {"actions": ["create"]}},
    {"address": "aws_lb_listener_rule.api", "type": "aws_lb_listener_rule", "change": {"actions": ["update"]}},
    {"address": "aws_eks_node_group.general", "type": "aws_eks_node_group", "change": {"actions": ["update"]}},
    {"address": "aws_db_instance.main", "type": "aws_db_instance", "change": {"actions": ["no-op"]}},
    {"address": "data.aws_caller_identity.current", "mode": "data", "type": "aws_caller_identity", "change": {"actions": ["read"]}}
  ]}"#;

/// The stable commit lacks a table the bad release added: Terraform would destroy it.
const DESTROYS_TABLE: &str = r#"{"format_version": "1.2", "terraform_version": "1.9.8",
  "resource_changes": [
    {"address": "aws_dynamodb_table.audit", "type": "aws_dynamodb_table", "change": {"actions": ["delete"]}},
    {"address": "aws_sqs_queue.jobs", "type": "aws_sqs_queue", "change": {"actions": ["delete", "create"]}}
  ]}"#;

/// One service's Terraform CI in moto, and the infra function under its IAM gate.
struct Service {
    name: String,
    gate: IamGate,
    infra: Clients,
    /// moto directly, for seeding and checking.
    s3: aws_sdk_s3::Client,
    ssm: aws_sdk_ssm::Client,
    codebuild: aws_sdk_codebuild::Client,
}

impl Service {
    async fn new(name: &str, plan_json: &str) -> Service {
        let moto = MotoServer::shared();
        let config = moto.sdk_config();
        let gate = IamGate::start(&moto.endpoint(), "infra", &test_stack(name));
        let service = Service {
            name: name.to_owned(),
            infra: Clients::new(&gate.sdk_config(), moto.decision_key()),
            gate,
            s3: rollback_core::aws::s3_client(&config),
            ssm: aws_sdk_ssm::Client::new(&config),
            codebuild: aws_sdk_codebuild::Client::new(&config),
        };
        service
            .s3
            .create_bucket()
            .bucket(service.bucket())
            .send()
            .await
            .unwrap();
        ci_runner::create_project(&service.codebuild, &service.project(), &[]).await;
        service.set_commit("stable-commit", STABLE).await;
        service.set_commit("current-commit", CURRENT).await;
        ci_runner::write_scenario(&service.s3, &service.bucket(), STABLE, plan_json.as_bytes())
            .await;
        service
    }

    fn project(&self) -> String {
        format!("{}-terraform", self.name)
    }

    /// The stack's `TerraformArtifactBucket` in `test_stack`.
    fn bucket(&self) -> String {
        format!("{}-terraform-plans", self.name)
    }

    fn parameter(&self, which: &str) -> String {
        format!("/{}/terraform/{which}", self.name)
    }

    async fn set_commit(&self, which: &str, commit: &str) {
        self.ssm
            .put_parameter()
            .name(self.parameter(which))
            .value(commit)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .unwrap();
    }

    fn envelope(&self, action: Value) -> Value {
        let mut envelope = action;
        envelope["execution"] = json!(format!("rb-{}", self.name));
        envelope["plan"] = json!({
            "service": self.name,
            "images": [{"repository": format!("{}-backend", self.name), "release_tag": "prod", "stable_tag": "stable"}],
            "infrastructure": {
                "codebuild_project": self.project(),
                "stable_commit_parameter": self.parameter("stable-commit"),
                "current_commit_parameter": self.parameter("current-commit"),
                "artifact_bucket": self.bucket(),
            }
        });
        envelope
    }

    async fn call(&self, action: Value) -> Result<Value, RollbackError> {
        let result = handle(&self.infra, self.envelope(action)).await;
        self.gate.assert_allowed();
        result
    }

    async fn resolve(&self) -> InfrastructureResolution {
        serde_json::from_value(self.call(json!({"action": "resolve"})).await.unwrap()).unwrap()
    }

    async fn status(&self, build: &BuildRef) -> Result<BuildStatus, RollbackError> {
        let answer = self
            .call(json!({"action": "status", "build": build}))
            .await?;
        Ok(serde_json::from_value(answer).unwrap())
    }

    /// Polls until the build finishes (a bounded number of times, as the definition does).
    async fn finish(&self, build: &BuildRef) -> Result<BuildStatus, RollbackError> {
        for _ in 0..10 {
            let status = self.status(build).await?;
            if status.done {
                return Ok(status);
            }
            assert_eq!(status.status, "IN_PROGRESS");
        }
        panic!("build {} did not finish in 10 polls", build.id);
    }

    /// resolve → plan → status until done → summary: what the approver sees.
    async fn planned(&self) -> InfrastructureResolution {
        let resolved = self.resolve().await;
        let build: BuildRef = serde_json::from_value(
            self.call(json!({"action": "plan", "infrastructure": resolved}))
                .await
                .unwrap(),
        )
        .unwrap();
        self.finish(&build).await.unwrap();
        serde_json::from_value(
            self.call(json!({"action": "summary", "infrastructure": resolved, "build": build}))
                .await
                .unwrap(),
        )
        .unwrap()
    }

    /// The apply envelope with a decision for `scope` (`None`: no decision).
    async fn apply_envelope(
        &self,
        approved: &InfrastructureResolution,
        scope: Option<Scope>,
    ) -> Value {
        let mut envelope = self.envelope(json!({"action": "apply", "infrastructure": approved}));
        if let Some(scope) = scope {
            rollback_moto::decision::approve(MotoServer::shared(), &mut envelope, scope).await;
        }
        envelope
    }

    async fn apply(
        &self,
        approved: &InfrastructureResolution,
        scope: Option<Scope>,
    ) -> Result<BuildRef, RollbackError> {
        let envelope = self.apply_envelope(approved, scope).await;
        let answer = handle(&self.infra, envelope).await;
        self.gate.assert_allowed();
        answer.map(|v| serde_json::from_value(v).unwrap())
    }

    /// Builds of the project, newest first, as CodeBuild lists them.
    async fn builds(&self) -> Vec<String> {
        self.codebuild
            .list_builds_for_project()
            .project_name(self.project())
            .send()
            .await
            .unwrap()
            .ids()
            .to_vec()
    }

    async fn serial(&self) -> u64 {
        ci_runner::state_serial(&self.s3, &self.bucket()).await
    }
}

#[tokio::test]
async fn resolve_reads_both_commits() {
    let service = Service::new("infra-resolve", PLAN).await;
    let resolved = service.resolve().await;
    assert_eq!(resolved.stable_commit, STABLE);
    assert_eq!(resolved.current_commit.as_deref(), Some(CURRENT));
    assert!(resolved.needs_plan);
    assert_eq!(resolved.codebuild_project, "infra-resolve-terraform");
    assert_eq!(
        resolved.artifact_key,
        "rollback-plans/infra-resolve/rb-infra-resolve"
    );
    assert!(service.builds().await.is_empty(), "resolve starts nothing");

    // Already at the stable commit: nothing to plan, and no build is started.
    service.set_commit("current-commit", STABLE).await;
    let resolved = service.resolve().await;
    assert!(!resolved.needs_plan);
    let build: BuildRef = serde_json::from_value(
        service
            .call(json!({"action": "plan", "infrastructure": resolved}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        build.skipped.as_deref(),
        Some("the current commit is the stable commit")
    );
    assert!(service.builds().await.is_empty());
}

#[tokio::test]
async fn a_missing_or_malformed_stable_commit_is_explained() {
    let service = Service::new("infra-commit", PLAN).await;
    service.set_commit("stable-commit", "main").await;
    let err = service
        .call(json!({"action": "resolve"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InfrastructureFailed);
    let message = err.to_string();
    assert!(
        message.contains("/infra-commit/terraform/stable-commit"),
        "{message}"
    );
    assert!(message.contains("full Git SHA"), "{message}");

    service
        .ssm
        .delete_parameter()
        .name(service.parameter("stable-commit"))
        .send()
        .await
        .unwrap();
    let err = service
        .call(json!({"action": "resolve"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InfrastructureFailed);
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn plan_is_started_once_and_summarized_for_the_approver() {
    let service = Service::new("infra-plan", PLAN).await;
    let resolved = service.resolve().await;
    let plan = |r: &InfrastructureResolution| json!({"action": "plan", "infrastructure": r});
    let first: BuildRef =
        serde_json::from_value(service.call(plan(&resolved)).await.unwrap()).unwrap();
    assert!(first.started_now);
    assert_eq!(first.source_version, STABLE);
    // Step Functions runs a task at least once: the retry finds the build, starts none.
    let again: BuildRef =
        serde_json::from_value(service.call(plan(&resolved)).await.unwrap()).unwrap();
    assert_eq!(again.id, first.id);
    assert!(!again.started_now);
    assert_eq!(service.builds().await, vec![first.id.clone()]);

    let status = service.status(&first).await.unwrap();
    assert!(!status.done, "a build takes BatchGetBuilds calls to finish");
    let status = service.finish(&first).await.unwrap();
    assert_eq!(status.status, "SUCCEEDED");

    let summarized: InfrastructureResolution = serde_json::from_value(
        service
            .call(json!({"action": "summary", "infrastructure": resolved, "build": first}))
            .await
            .unwrap(),
    )
    .unwrap();
    let summary = summarized.summary.clone().unwrap();
    assert_eq!((summary.add, summary.change, summary.destroy), (1, 2, 0));
    assert_eq!(summary.terraform_version, "1.9.8");
    assert_eq!(summarized.plan_build.as_deref(), Some(first.id.as_str()));
    assert_eq!(
        summarized.headline(),
        "Terraform: stable commit abc1234 (current def5678): 1 to add, 2 to change, 0 to destroy"
    );
    // The hash is the saved plan's, as the buildspec recorded it.
    let saved = service
        .s3
        .get_object()
        .bucket(service.bucket())
        .key(format!("{}/plan.tfplan", summarized.artifact_key))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    use sha2::Digest;
    assert_eq!(
        summarized.plan_sha256.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&saved)).as_str())
    );
}

#[tokio::test]
async fn a_plan_build_that_fails_is_an_error_that_names_it() {
    let service = Service::new("infra-planfail", PLAN).await;
    // A stable commit the CI runner cannot plan (no scenario for it).
    let broken = "0000000000000000000000000000000000000001";
    service.set_commit("stable-commit", broken).await;
    let resolved = service.resolve().await;
    let build: BuildRef = serde_json::from_value(
        service
            .call(json!({"action": "plan", "infrastructure": resolved}))
            .await
            .unwrap(),
    )
    .unwrap();
    let err = service.finish(&build).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InfrastructureFailed);
    let message = err.to_string();
    assert!(message.contains(&build.id), "{message}");
    assert!(message.contains("FAILED"), "{message}");
    assert!(message.contains("Nothing was applied"), "{message}");
}

#[tokio::test]
async fn apply_needs_a_decision_that_covers_infrastructure() {
    let service = Service::new("infra-apply", PLAN).await;
    let approved = service.planned().await;
    let before = service.builds().await.len();
    let cases = rollback_moto::decision::refusal_cases(
        MotoServer::shared(),
        &service
            .apply_envelope(&approved, Some(Scope::APP.and_infrastructure(false)))
            .await,
        Scope::APP.and_infrastructure(false),
    )
    .await;
    assert_eq!(
        cases.len(),
        8,
        "{:?}",
        cases.iter().map(|c| c.0).collect::<Vec<_>>()
    );
    for (case, envelope) in cases {
        let err = handle(&service.infra, envelope).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotApproved, "{case}: {err}");
    }
    service.gate.assert_allowed();
    assert_eq!(
        service.builds().await.len(),
        before,
        "a refused apply starts nothing"
    );

    let build = service
        .apply(&approved, Some(Scope::APP.and_infrastructure(false)))
        .await
        .unwrap();
    assert!(build.started_now);
    let status = service.finish(&build).await.unwrap();
    assert_eq!(status.status, "SUCCEEDED");
    assert_eq!(service.serial().await, 1, "the plan was applied once");

    // A retried apply finds its build: nothing is applied twice.
    let again = service
        .apply(&approved, Some(Scope::APP.and_infrastructure(false)))
        .await
        .unwrap();
    assert_eq!(again.id, build.id);
    assert_eq!(service.serial().await, 1);
}

#[tokio::test]
async fn a_protected_destroy_needs_a_decision_that_allows_destroys() {
    let service = Service::new("infra-destroy", DESTROYS_TABLE).await;
    let approved = service.planned().await;
    let summary = approved.summary.clone().unwrap();
    assert_eq!(summary.protected, vec!["aws_dynamodb_table.audit"]);
    assert_eq!(summary.replaced, vec!["aws_sqs_queue.jobs"]);
    assert!(approved.destroys_protected());

    let err = service
        .apply(
            &approved,
            Some(Scope::APP_AND_DATABASE.and_infrastructure(false)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotApproved);
    assert!(
        err.to_string().contains("destroys of protected resources"),
        "{err}"
    );
    assert_eq!(service.builds().await.len(), 1, "only the plan build");

    let build = service
        .apply(&approved, Some(Scope::APP.and_infrastructure(true)))
        .await
        .unwrap();
    service.finish(&build).await.unwrap();
}

#[tokio::test]
async fn a_stale_plan_is_refused_and_says_replan() {
    let service = Service::new("infra-stale", PLAN).await;
    let approved = service.planned().await;
    // Someone applied Terraform between the plan and the approval.
    ci_runner::bump_state_serial(&service.s3, &service.bucket()).await;
    let build = service
        .apply(&approved, Some(Scope::APP.and_infrastructure(false)))
        .await
        .unwrap();
    let err = service.finish(&build).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PlanStale);
    assert!(
        err.to_string().contains("re-plan and approve again"),
        "{err}"
    );
    assert_eq!(service.serial().await, 1, "the stale plan changed nothing");
}

#[tokio::test]
async fn a_moved_stable_commit_or_rewritten_plan_is_drift() {
    let service = Service::new("infra-drift", PLAN).await;
    let approved = service.planned().await;
    service
        .set_commit("stable-commit", "1111111111111111111111111111111111111111")
        .await;
    let err = service
        .apply(&approved, Some(Scope::APP.and_infrastructure(false)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PlanDrifted);
    service.set_commit("stable-commit", STABLE).await;

    service
        .s3
        .put_object()
        .bucket(service.bucket())
        .key(format!("{}/plan.sha256", approved.artifact_key))
        .body(format!("{}\n", "f".repeat(64)).into_bytes().into())
        .send()
        .await
        .unwrap();
    let err = service
        .apply(&approved, Some(Scope::APP.and_infrastructure(false)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PlanDrifted);
    assert_eq!(service.builds().await.len(), 1, "only the plan build");
}

#[tokio::test]
async fn drill_mode_shows_the_plan_and_applies_nothing() {
    let service = Service::new("infra-drill", PLAN).await;
    let approved = service.planned().await;
    let mut envelope = service.envelope(json!({"action": "apply", "infrastructure": approved}));
    envelope["request"] =
        json!({"trigger": {"kind": "manual"}, "reason": "drill", "mode": "drill"});
    let build: BuildRef =
        serde_json::from_value(handle(&service.infra, envelope).await.unwrap()).unwrap();
    assert!(build.skipped.as_deref().unwrap().starts_with("drill"));
    assert!(service.status(&build).await.unwrap().done);
    assert_eq!(service.builds().await.len(), 1);
    assert_eq!(service.serial().await, 0);
}

/// The state-changing call, StartBuild, under each fault: the answer lost after CodeBuild
/// started the build, a 5xx after it, throttling and a 5xx before it. The function either
/// reports the build (found after the failure, or started by the SDK's own retry) or fails
/// retryably, and the retry (as Step Functions would) never starts a second one.
#[tokio::test]
async fn start_build_faults_never_start_two_builds() {
    for (n, fault) in [
        FaultKind::DropAfterForward,
        FaultKind::ErrorAfterForward,
        FaultKind::Throttle,
        FaultKind::InternalError,
    ]
    .into_iter()
    .enumerate()
    {
        let service = Service::new(&format!("infra-fault{n}"), PLAN).await;
        let approved = service.planned().await;
        service
            .gate
            .proxy()
            .set_schedule(FaultSchedule::none().fail_next(1, "StartBuild", fault));
        let first = service
            .apply(&approved, Some(Scope::APP.and_infrastructure(false)))
            .await;
        // The SDK retries some faults itself (with the same idempotency token).
        let build = match first {
            Ok(build) => build,
            Err(err) => {
                assert!(err.is_retryable(), "{fault}: {err}");
                service
                    .apply(&approved, Some(Scope::APP.and_infrastructure(false)))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(service.builds().await.len(), 2, "{fault}: plan + one apply");
        service.finish(&build).await.unwrap();
        assert_eq!(service.serial().await, 1, "{fault}: applied once");
    }
}
