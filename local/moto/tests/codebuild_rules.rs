//! The CodeBuild rules `local/moto/rules/codebuild.py` adds (idempotency tokens, environment
//! overrides, builds that take BatchGetBuilds calls to finish, `buildsNotFound`, newest-first
//! listing) and the CI runner it plays (`infra/terraform/buildspec.yml` against moto's S3),
//! through the real SDK clients the infrastructure rollback uses.

use std::collections::BTreeMap;

use aws_sdk_codebuild::error::ProvideErrorMetadata;
use aws_sdk_codebuild::types::{
    Build, EnvironmentVariable, EnvironmentVariableType, SortOrderType, StatusType,
};
use rollback_moto::{MotoServer, ci_runner};
use sha2::{Digest, Sha256};

/// The stable commit the rollback plans and applies.
const COMMIT: &str = "4f1c2a9e8d7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a";
/// The details rules/codebuild.py gives, as Terraform prints them.
const APPLIED: &str = "Apply complete! Resources: 0 added, 1 changed, 0 destroyed.";
const STALE: &str = "Error: Saved plan is stale\n\nThe given plan file can no longer be applied \
    because the state was changed by another operation after the plan was created.";
const PLAN_JSON: &[u8] = br#"{"format_version":"1.2","resource_changes":[{"address":"aws_sqs_queue.orders","change":{"actions":["update"]}}]}"#;

/// BatchGetBuilds calls a build stays IN_PROGRESS for (rules/codebuild.py's default).
fn build_describes() -> usize {
    std::env::var("ROLLBACK_MOTO_BUILD_DESCRIBES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn var(name: &str, value: &str) -> EnvironmentVariable {
    EnvironmentVariable::builder()
        .name(name)
        .value(value)
        .r#type(EnvironmentVariableType::Plaintext)
        .build()
        .unwrap()
}

/// A Terraform project and its artifact bucket, both called `name`.
struct Fixture {
    cb: aws_sdk_codebuild::Client,
    s3: aws_sdk_s3::Client,
    name: String,
}

async fn fixture(name: &str) -> Fixture {
    let config = MotoServer::shared().sdk_config();
    let cb = aws_sdk_codebuild::Client::new(&config);
    let s3 = rollback_core::aws::s3_client(&config);
    ci_runner::create_project(
        &cb,
        name,
        &[
            ("TF_VERSION", "1.9.8"),
            ("ROLLBACK_EXECUTION", "project-default"),
        ],
    )
    .await;
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("CreateBucket");
    Fixture {
        cb,
        s3,
        name: name.to_owned(),
    }
}

impl Fixture {
    /// A StartBuild of `COMMIT` with the buildspec's environment for `action` on `key`.
    fn start(
        &self,
        action: &str,
        key: &str,
    ) -> aws_sdk_codebuild::operation::start_build::builders::StartBuildFluentBuilder {
        self.cb
            .start_build()
            .project_name(&self.name)
            .source_version(COMMIT)
            .environment_variables_override(var("ROLLBACK_TF_ACTION", action))
            .environment_variables_override(var("ROLLBACK_ARTIFACT_BUCKET", &self.name))
            .environment_variables_override(var("ROLLBACK_PLAN_KEY", key))
            .environment_variables_override(var("ROLLBACK_EXECUTION", "exec-42"))
    }

    async fn started(
        &self,
        request: aws_sdk_codebuild::operation::start_build::builders::StartBuildFluentBuilder,
    ) -> String {
        let build = request
            .send()
            .await
            .expect("StartBuild")
            .build_value
            .unwrap();
        build.id.unwrap()
    }

    async fn describe(&self, id: &str) -> Build {
        let answer = self
            .cb
            .batch_get_builds()
            .ids(id)
            .send()
            .await
            .expect("BatchGetBuilds");
        assert_eq!(answer.builds_not_found(), &[] as &[String]);
        assert_eq!(answer.builds().len(), 1, "{answer:?}");
        answer.builds()[0].clone()
    }

    /// Polls until the build completes (a few calls).
    async fn finish(&self, id: &str) -> Build {
        for _ in 0..=build_describes() {
            let build = self.describe(id).await;
            if build.build_status() != Some(&StatusType::InProgress) {
                return build;
            }
        }
        panic!(
            "build {id} still in progress after {} describes",
            build_describes() + 1
        );
    }

    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self
            .s3
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(object) => Some(object.body.collect().await.unwrap().into_bytes().to_vec()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
            Err(e) => panic!("GetObject {key}: {e:?}"),
        }
    }

    async fn get_json(&self, key: &str) -> serde_json::Value {
        let bytes = self.get(key).await.unwrap_or_else(|| panic!("no {key}"));
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn keys_under(&self, prefix: &str) -> Vec<String> {
        let answer = self
            .s3
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .send()
            .await
            .unwrap();
        let mut keys: Vec<String> = answer
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    async fn list(&self, order: Option<SortOrderType>) -> Vec<String> {
        self.cb
            .list_builds_for_project()
            .project_name(&self.name)
            .set_sort_order(order)
            .send()
            .await
            .expect("ListBuildsForProject")
            .ids()
            .to_vec()
    }

    /// Runs a successful plan build on `key`; returns the saved plan's hash as plan.sha256 has it.
    async fn planned(&self, key: &str) -> String {
        ci_runner::write_scenario(&self.s3, &self.name, COMMIT, PLAN_JSON).await;
        let id = self.started(self.start("plan", key)).await;
        let build = self.finish(&id).await;
        assert_eq!(build.build_status(), Some(&StatusType::Succeeded));
        let sha = self.get(&format!("{key}/plan.sha256")).await.unwrap();
        String::from_utf8(sha).unwrap().trim_end().to_owned()
    }

    async fn apply(&self, key: &str, sha: &str) -> Build {
        let request = self
            .start("apply", key)
            .environment_variables_override(var("ROLLBACK_PLAN_SHA256", sha));
        let id = self.started(request).await;
        self.finish(&id).await
    }
}

fn phase_types(build: &Build) -> Vec<String> {
    build
        .phases()
        .iter()
        .map(|p| p.phase_type().unwrap().as_str().to_owned())
        .collect()
}

fn failed_phase(build: &Build) -> Option<String> {
    build
        .phases()
        .iter()
        .find(|p| p.phase_status() == Some(&StatusType::Failed))
        .map(|p| p.phase_type().unwrap().as_str().to_owned())
}

#[tokio::test]
async fn an_idempotency_token_answers_its_build_and_refuses_changed_parameters() {
    let fx = fixture("cb-idempotency").await;
    ci_runner::write_scenario(&fx.s3, &fx.name, COMMIT, PLAN_JSON).await;
    let first = fx
        .started(fx.start("plan", "k").idempotency_token("token-1"))
        .await;
    let again = fx
        .started(fx.start("plan", "k").idempotency_token("token-1"))
        .await;
    assert_eq!(again, first);
    assert_eq!(fx.list(None).await, vec![first.clone()]);

    let changed_commit = fx
        .start("plan", "k")
        .idempotency_token("token-1")
        .source_version("0123456789abcdef0123456789abcdef01234567")
        .send()
        .await
        .expect_err("same token, another sourceVersion");
    assert_eq!(changed_commit.code(), Some("InvalidInputException"));
    assert!(
        changed_commit
            .message()
            .is_some_and(|m| m.contains("token-1") && m.contains("parameter mismatch")),
        "{changed_commit:?}"
    );
    let changed_env = fx
        .start("apply", "k")
        .idempotency_token("token-1")
        .send()
        .await
        .expect_err("same token, another environment");
    assert_eq!(changed_env.code(), Some("InvalidInputException"));
    assert_eq!(fx.list(None).await, vec![first.clone()]);

    let other = fx
        .started(fx.start("plan", "k").idempotency_token("token-2"))
        .await;
    assert_ne!(other, first);
    assert_eq!(fx.list(None).await, vec![other, first]);
}

#[tokio::test]
async fn a_build_runs_for_some_describes_then_completes_once() {
    let fx = fixture("cb-countdown").await;
    ci_runner::write_scenario(&fx.s3, &fx.name, COMMIT, PLAN_JSON).await;
    let started = fx
        .start("plan", "k")
        .send()
        .await
        .unwrap()
        .build_value
        .unwrap();
    let id = started.id().unwrap().to_owned();
    let describes = build_describes();
    if describes > 0 {
        assert_eq!(started.build_status(), Some(&StatusType::InProgress));
    }
    for call in 1..=describes {
        let build = fx.describe(&id).await;
        assert_eq!(
            build.build_status(),
            Some(&StatusType::InProgress),
            "call {call}"
        );
        assert_eq!(build.current_phase(), Some("BUILD"), "call {call}");
        assert!(!build.build_complete());
        assert_eq!(phase_types(&build), ["SUBMITTED", "QUEUED"], "call {call}");
        assert_eq!(
            fx.get("k/plan.tfplan").await,
            None,
            "the runner acts at completion"
        );
    }
    let done = fx.describe(&id).await;
    assert_eq!(done.build_status(), Some(&StatusType::Succeeded));
    assert_eq!(done.current_phase(), Some("COMPLETED"));
    assert!(done.build_complete());
    let all = [
        "SUBMITTED",
        "QUEUED",
        "PROVISIONING",
        "DOWNLOAD_SOURCE",
        "INSTALL",
        "PRE_BUILD",
        "BUILD",
        "POST_BUILD",
        "UPLOAD_ARTIFACTS",
        "FINALIZING",
        "COMPLETED",
    ];
    assert_eq!(phase_types(&done), all);
    // Later describes answer the same phases: none are appended.
    let later = fx.describe(&id).await;
    assert_eq!(phase_types(&later), all);
    assert_eq!(later.build_status(), Some(&StatusType::Succeeded));
}

#[tokio::test]
async fn batch_get_builds_answers_in_the_order_asked_and_names_unknown_ids() {
    let fx = fixture("cb-batch").await;
    let a = fx.started(fx.start("plan", "a")).await;
    let b = fx.started(fx.start("plan", "b")).await;
    let unknown = "cb-batch:00000000-0000-4000-8000-000000000000".to_owned();
    let answer = fx
        .cb
        .batch_get_builds()
        .ids(&b)
        .ids(&unknown)
        .ids(&a)
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = answer.builds().iter().map(|b| b.id().unwrap()).collect();
    assert_eq!(ids, [b.as_str(), a.as_str()]);
    assert_eq!(answer.builds_not_found(), [unknown]);
}

#[tokio::test]
async fn list_builds_for_project_is_newest_first_and_honours_sort_order() {
    let fx = fixture("cb-listing").await;
    let mut started = Vec::new();
    for key in ["one", "two", "three"] {
        started.push(fx.started(fx.start("plan", key)).await);
    }
    let oldest_first = started.clone();
    started.reverse();
    assert_eq!(fx.list(None).await, started);
    assert_eq!(fx.list(Some(SortOrderType::Descending)).await, started);
    assert_eq!(fx.list(Some(SortOrderType::Ascending)).await, oldest_first);
}

#[tokio::test]
async fn list_builds_for_project_answers_pages_of_100() {
    let fx = fixture("cb-pages").await;
    let mut started = Vec::new();
    for n in 0..101 {
        started.push(fx.started(fx.start("plan", &format!("k{n}"))).await);
    }
    started.reverse();
    let first = fx
        .cb
        .list_builds_for_project()
        .project_name(&fx.name)
        .send()
        .await
        .unwrap();
    assert_eq!(first.ids(), &started[..100]);
    let token = first.next_token().expect("a second page").to_owned();
    let second = fx
        .cb
        .list_builds_for_project()
        .project_name(&fx.name)
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.ids(), &started[100..]);
    assert_eq!(second.next_token(), None);
}

#[tokio::test]
async fn environment_overrides_and_source_version_are_the_builds() {
    let fx = fixture("cb-environment").await;
    let id = fx.started(fx.start("plan", "rollbacks/exec-42")).await;
    let build = fx.describe(&id).await;
    assert_eq!(build.source_version(), Some(COMMIT));
    assert_eq!(build.build_number(), Some(1));
    let env = build.environment().unwrap();
    assert_eq!(env.image(), "hashicorp/terraform:1.9.8");
    let vars: BTreeMap<&str, (&str, &str)> = env
        .environment_variables()
        .iter()
        .map(|v| (v.name(), (v.value(), v.r#type().unwrap().as_str())))
        .collect();
    let expected: BTreeMap<&str, (&str, &str)> = [
        ("TF_VERSION", ("1.9.8", "PLAINTEXT")),
        ("ROLLBACK_EXECUTION", ("exec-42", "PLAINTEXT")),
        ("ROLLBACK_TF_ACTION", ("plan", "PLAINTEXT")),
        ("ROLLBACK_ARTIFACT_BUCKET", ("cb-environment", "PLAINTEXT")),
        ("ROLLBACK_PLAN_KEY", ("rollbacks/exec-42", "PLAINTEXT")),
    ]
    .into_iter()
    .collect();
    assert_eq!(vars, expected);
    assert_eq!(env.environment_variables().len(), 5, "one variable a name");
}

#[tokio::test]
async fn a_plan_writes_the_saved_plan_its_json_and_its_hash() {
    let fx = fixture("cb-plan").await;
    let sha = fx.planned("rollbacks/exec-1").await;
    let saved = fx.get("rollbacks/exec-1/plan.tfplan").await.unwrap();
    assert_eq!(sha, sha256_hex(&saved));
    assert_eq!(
        fx.get("rollbacks/exec-1/plan.sha256").await.unwrap(),
        format!("{sha}\n").into_bytes(),
        "as `sha256sum | cut -d' ' -f1` writes it"
    );
    assert_eq!(
        fx.get("rollbacks/exec-1/plan.json").await.unwrap(),
        PLAN_JSON
    );
    let plan: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    assert_eq!(
        plan,
        serde_json::json!({
            "format": "rollback-ci-runner-plan",
            "source_version": COMMIT,
            "serial": 0,
            "plan_json_sha256": sha256_hex(PLAN_JSON),
        })
    );
    assert_eq!(
        fx.keys_under("rollbacks/").await,
        [
            "rollbacks/exec-1/plan.json",
            "rollbacks/exec-1/plan.sha256",
            "rollbacks/exec-1/plan.tfplan"
        ]
    );
}

#[tokio::test]
async fn a_plan_of_a_commit_without_a_scenario_fails_and_writes_nothing() {
    let fx = fixture("cb-plan-fails").await;
    let id = fx.started(fx.start("plan", "rollbacks/exec-1")).await;
    let build = fx.finish(&id).await;
    assert_eq!(build.build_status(), Some(&StatusType::Failed));
    assert_eq!(failed_phase(&build).as_deref(), Some("BUILD"));
    assert_eq!(fx.keys_under("rollbacks/").await, Vec::<String>::new());
}

#[tokio::test]
async fn a_build_without_the_buildspecs_environment_fails_in_pre_build() {
    let fx = fixture("cb-no-action").await;
    let request = fx
        .cb
        .start_build()
        .project_name(&fx.name)
        .source_version(COMMIT)
        .environment_variables_override(var("ROLLBACK_ARTIFACT_BUCKET", &fx.name))
        .environment_variables_override(var("ROLLBACK_PLAN_KEY", "k"));
    let id = fx.started(request).await;
    let build = fx.finish(&id).await;
    assert_eq!(build.build_status(), Some(&StatusType::Failed));
    assert_eq!(failed_phase(&build).as_deref(), Some("PRE_BUILD"));
    assert_eq!(fx.keys_under("k/").await, Vec::<String>::new());
}

#[tokio::test]
async fn an_apply_of_the_approved_plan_succeeds_and_bumps_the_state_serial() {
    let fx = fixture("cb-apply").await;
    let sha = fx.planned("rollbacks/exec-1").await;
    assert_eq!(ci_runner::state_serial(&fx.s3, &fx.name).await, 0);
    let build = fx.apply("rollbacks/exec-1", &sha).await;
    assert_eq!(build.build_status(), Some(&StatusType::Succeeded));
    assert_eq!(ci_runner::state_serial(&fx.s3, &fx.name).await, 1);
    assert_eq!(
        fx.get_json("rollbacks/exec-1/apply-result.json").await,
        serde_json::json!({"outcome": "applied", "detail": APPLIED, "plan_sha256": sha})
    );
}

#[tokio::test]
async fn an_apply_run_again_succeeds_without_applying_twice() {
    let fx = fixture("cb-apply-again").await;
    let sha = fx.planned("rollbacks/exec-1").await;
    let first = fx.apply("rollbacks/exec-1", &sha).await;
    assert_eq!(first.build_status(), Some(&StatusType::Succeeded));
    assert_eq!(ci_runner::state_serial(&fx.s3, &fx.name).await, 1);
    // The state moved on (serial 1, the plan's is 0): only the recorded result makes the
    // re-run succeed, and it must not apply again.
    let again = fx.apply("rollbacks/exec-1", &sha).await;
    assert_eq!(again.build_status(), Some(&StatusType::Succeeded));
    assert_ne!(again.id(), first.id());
    assert_eq!(ci_runner::state_serial(&fx.s3, &fx.name).await, 1);
    assert_eq!(
        fx.get_json("rollbacks/exec-1/apply-result.json").await,
        serde_json::json!({"outcome": "applied", "detail": APPLIED, "plan_sha256": sha})
    );
    // A result of "applied" stands for that plan only: another hash is checked, and refused.
    let other = fx.apply("rollbacks/exec-1", &"0".repeat(64)).await;
    assert_eq!(other.build_status(), Some(&StatusType::Failed));
    assert_eq!(
        fx.get_json("rollbacks/exec-1/apply-result.json").await["outcome"],
        "hash-mismatch"
    );
    assert_eq!(ci_runner::state_serial(&fx.s3, &fx.name).await, 1);
}

#[tokio::test]
async fn an_apply_of_another_hash_fails_with_hash_mismatch() {
    let fx = fixture("cb-apply-mismatch").await;
    let sha = fx.planned("rollbacks/exec-1").await;
    let approved = "0".repeat(64);
    let build = fx.apply("rollbacks/exec-1", &approved).await;
    assert_eq!(build.build_status(), Some(&StatusType::Failed));
    assert_eq!(failed_phase(&build).as_deref(), Some("BUILD"));
    assert_eq!(
        fx.get_json("rollbacks/exec-1/apply-result.json").await,
        serde_json::json!({
            "outcome": "hash-mismatch",
            "detail": format!(
                "refusing to apply: the saved plan's SHA-256 is {sha}, the approved plan's is \
                 {approved}"
            ),
            "plan_sha256": approved,
        })
    );
    assert_eq!(ci_runner::state_serial(&fx.s3, &fx.name).await, 0);
}

#[tokio::test]
async fn an_apply_after_someone_else_applied_is_stale() {
    let fx = fixture("cb-apply-stale").await;
    let sha = fx.planned("rollbacks/exec-1").await;
    assert_eq!(ci_runner::bump_state_serial(&fx.s3, &fx.name).await, 1);
    let build = fx.apply("rollbacks/exec-1", &sha).await;
    assert_eq!(build.build_status(), Some(&StatusType::Failed));
    assert_eq!(
        fx.get_json("rollbacks/exec-1/apply-result.json").await,
        serde_json::json!({"outcome": "stale", "detail": STALE, "plan_sha256": sha})
    );
    assert_eq!(ci_runner::state_serial(&fx.s3, &fx.name).await, 1);
}

#[tokio::test]
async fn an_apply_without_a_saved_plan_fails_and_writes_nothing() {
    let fx = fixture("cb-apply-missing").await;
    let build = fx.apply("rollbacks/exec-1", &"a".repeat(64)).await;
    assert_eq!(build.build_status(), Some(&StatusType::Failed));
    assert_eq!(failed_phase(&build).as_deref(), Some("BUILD"));
    // The buildspec's `aws s3 cp` of the plan fails under `set -e`: no apply-result.json.
    assert_eq!(fx.keys_under("rollbacks/").await, Vec::<String>::new());
    assert_eq!(ci_runner::state_serial(&fx.s3, &fx.name).await, 0);
}

#[tokio::test]
async fn stop_build_stops_a_running_build_for_good() {
    let fx = fixture("cb-stop").await;
    ci_runner::write_scenario(&fx.s3, &fx.name, COMMIT, PLAN_JSON).await;
    let id = fx.started(fx.start("plan", "k")).await;
    let stopped = fx
        .cb
        .stop_build()
        .id(&id)
        .send()
        .await
        .unwrap()
        .build_value
        .unwrap();
    assert_eq!(stopped.build_status(), Some(&StatusType::Stopped));
    for _ in 0..=build_describes() {
        let build = fx.describe(&id).await;
        assert_eq!(build.build_status(), Some(&StatusType::Stopped));
    }
    assert_eq!(fx.keys_under("k/").await, Vec::<String>::new());
}
