//! The scenario the local CI runner plays. moto's CodeBuild, as `local/moto/rules/codebuild.py`
//! patches it, completes a build of the Terraform project by acting out
//! `infra/terraform/buildspec.yml` against moto's S3, and reads two objects of the artifact
//! bucket (`ROLLBACK_ARTIFACT_BUCKET`) that stand for what a real runner would compute:
//!
//! - `.ci-runner/<commit>/plan.json`: what `terraform show -json` prints for a plan of the
//!   commit (the build's `sourceVersion`). Without it, a plan build of that commit fails.
//! - `.ci-runner/state.json`, `{"serial": n}` (absent: 0): the Terraform state. A plan records
//!   the serial; an apply whose plan's serial is no longer the state's fails as "stale", and an
//!   apply that succeeds adds one.
//!
//! These helpers write them for tests and drills. They mirror `rules/codebuild.py`
//! (`SCENARIO_PREFIX` and the key layout): change both together. Like the seeding helpers,
//! they are setup and panic when moto refuses.

use aws_sdk_s3::primitives::ByteStream;

/// The key prefix of the CI runner's scenario objects in the artifact bucket.
pub const SCENARIO_PREFIX: &str = ".ci-runner";

/// The key of the plan JSON a plan build of `commit` produces.
pub fn scenario_key(commit: &str) -> String {
    format!("{SCENARIO_PREFIX}/{commit}/plan.json")
}

/// The key of the stand-in for the Terraform state.
pub fn state_key() -> String {
    format!("{SCENARIO_PREFIX}/state.json")
}

/// Makes `plan_json` what a plan build of `commit` writes as `plan.json` (and what its saved
/// plan is made from).
pub async fn write_scenario(s3: &aws_sdk_s3::Client, bucket: &str, commit: &str, plan_json: &[u8]) {
    let key = scenario_key(commit);
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .body(ByteStream::from(plan_json.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject s3://{bucket}/{key}: {e:?}"));
}

/// The Terraform state's serial (0 while nothing was applied).
pub async fn state_serial(s3: &aws_sdk_s3::Client, bucket: &str) -> u64 {
    let key = state_key();
    let object = match s3.get_object().bucket(bucket).key(&key).send().await {
        Ok(object) => object,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return 0,
        Err(e) => panic!("GetObject s3://{bucket}/{key}: {e:?}"),
    };
    let bytes = object
        .body
        .collect()
        .await
        .unwrap_or_else(|e| panic!("reading s3://{bucket}/{key}: {e}"))
        .into_bytes();
    let state: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("s3://{bucket}/{key} is not JSON: {e}"));
    state["serial"]
        .as_u64()
        .unwrap_or_else(|| panic!("s3://{bucket}/{key} has no serial: {state}"))
}

/// Someone else's apply: the state's serial goes up by one, so every plan made before is
/// stale. Returns the new serial.
pub async fn bump_state_serial(s3: &aws_sdk_s3::Client, bucket: &str) -> u64 {
    let serial = state_serial(s3, bucket).await + 1;
    let key = state_key();
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .body(ByteStream::from(
            serde_json::json!({ "serial": serial })
                .to_string()
                .into_bytes(),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutObject s3://{bucket}/{key}: {e:?}"));
    serial
}

/// Creates the team's Terraform project as a service would have it: a GitHub source (so a build
/// can check out any commit), the shipped buildspec, a Terraform image, and `project_env` as
/// the project's own environment variables (a build's overrides win over them).
pub async fn create_project(
    codebuild: &aws_sdk_codebuild::Client,
    name: &str,
    project_env: &[(&str, &str)],
) {
    use aws_sdk_codebuild::types::{
        ArtifactsType, ComputeType, EnvironmentType, EnvironmentVariable, EnvironmentVariableType,
        ProjectArtifacts, ProjectEnvironment, ProjectSource, SourceType,
    };
    let mut environment = ProjectEnvironment::builder()
        .r#type(EnvironmentType::LinuxContainer)
        .image("hashicorp/terraform:1.9.8")
        .compute_type(ComputeType::BuildGeneral1Small);
    for (variable, value) in project_env {
        environment = environment.environment_variables(
            EnvironmentVariable::builder()
                .name(*variable)
                .value(*value)
                .r#type(EnvironmentVariableType::Plaintext)
                .build()
                .expect("a variable has a name and a value"),
        );
    }
    codebuild
        .create_project()
        .name(name)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::Github)
                .location(format!("https://github.com/example/{name}.git"))
                .buildspec("infra/terraform/buildspec.yml")
                .build()
                .expect("a source has a type"),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build()
                .expect("artifacts have a type"),
        )
        .environment(environment.build().expect("an environment is complete"))
        .service_role(format!("arn:aws:iam::123456789012:role/{name}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateProject {name}: {e:?}"));
}
