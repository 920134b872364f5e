//! `rollbackctl plan push FILE --parameter NAME` against moto's SSM, through the binary as an
//! operator runs it (`--endpoint-url`): an invalid plan is refused with every problem and its
//! JSON path and nothing is written; a valid one is stored and its version printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rollback_moto::MotoServer;
use serde_json::{Value, json};

fn rollbackctl(moto: &MotoServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollbackctl"))
        .args(args)
        .arg("--endpoint-url")
        .arg(moto.endpoint())
        .env("AWS_REGION", rollback_core::aws::LOCAL_REGION)
        .env_remove("ROLLBACK_ENDPOINT_URL")
        .output()
        .expect("run rollbackctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(name: &str, plan: &Value) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollbackctl-plan-push-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(plan).unwrap()).unwrap();
    path
}

fn example() -> Value {
    let path = rollback_moto::workspace_root().join("infra/plans/mint-replica.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn get(moto: &MotoServer, name: &str) -> Option<(String, i64)> {
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config());
    match ssm.get_parameter().name(name).send().await {
        Ok(out) => out
            .parameter
            .map(|p| (p.value.unwrap_or_default(), p.version)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_parameter_not_found()) =>
        {
            None
        }
        Err(e) => panic!("GetParameter {name}: {e:?}"),
    }
}

fn push(moto: &MotoServer, file: &Path, parameter: &str) -> Output {
    rollbackctl(
        moto,
        &[
            "plan",
            "push",
            file.to_str().unwrap(),
            "--parameter",
            parameter,
        ],
    )
}

#[tokio::test]
async fn an_invalid_plan_is_refused_with_every_path_and_nothing_is_written() {
    let moto = MotoServer::shared();
    let bad = json!({
        "service": "Mint Replica",
        "databases": [
            {"kind": "rds-instance", "id": "1bad--id"},
            {"kind": "rds-instance", "id": "mint-db"},
            {"kind": "rds-instance", "id": "mint-db"}
        ],
        "images": [{"repository": "mint-backend", "release_tag": "bad tag!", "stable_tag": "stable"}],
        "approval": {"timeout_minutes": 0}
    });
    let file = write("bad.json", &bad);
    let parameter = "/push-test/invalid/plan";
    let out = push(moto, &file, parameter);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("6 problem(s); nothing was written"),
        "{stderr}"
    );
    for path in [
        "  service: ",
        "  databases[0].id: ",
        "  databases[2].id: ",
        "  images[0].release_tag: ",
        "  approval.timeout_minutes: ",
        "  approval.escalate_after_minutes: ",
    ] {
        assert!(stderr.contains(path), "{path:?} missing from:\n{stderr}");
    }
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert_eq!(
        get(moto, parameter).await,
        None,
        "an invalid plan was written"
    );
}

#[tokio::test]
async fn a_valid_plan_is_stored_and_each_push_prints_its_version() {
    let moto = MotoServer::shared();
    let parameter = "/push-test/plans/mint-replica";
    let mut plan = example();
    let file = write("valid.json", &plan);
    let out = push(moto, &file, parameter);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    assert!(stdout.trim_end().ends_with("version 1"), "{stdout}");
    assert!(stdout.contains("Standard tier"), "{stdout}");
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    let (stored, version) = get(moto, parameter).await.expect("stored");
    assert_eq!(version, 1);
    // Stored compact, as the plan function reads it.
    assert_eq!(stored, plan.to_string());
    assert_eq!(
        rollback_core::Plan::from_json(&stored).unwrap().service,
        "mint-replica"
    );

    plan["approval"]["timeout_minutes"] = json!(30);
    let file = write("valid-v2.json", &plan);
    let out = push(moto, &file, parameter);
    let stdout = text(&out.stdout);
    assert!(stdout.trim_end().ends_with("version 2"), "{stdout}");
    let (stored, version) = get(moto, parameter).await.unwrap();
    assert_eq!(version, 2);
    assert!(stored.contains(r#""timeout_minutes":30"#), "{stored}");

    // A name whose last segment is not the service: stored (a stack's one plan may be named
    // anything), with a note about plan paths.
    let out = push(moto, &file, "/push-test/mint-replica/plan");
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("<path>/mint-replica"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_plan_over_4_kb_goes_to_the_advanced_tier() {
    let moto = MotoServer::shared();
    let mut plan = example();
    let checks: Vec<Value> = (0..20)
        .map(|i| {
            json!({"name": format!("health check {i:02} of the mint replica api"),
                   "url": format!("https://api-{i:02}.mint-replica.example.com/health/deep/check"),
                   "expect_status": 200, "body_contains": "ok", "timeout_ms": 3000})
        })
        .collect();
    plan["smoke"]["http"] = json!(checks);
    assert!(plan.to_string().len() > 4096, "{}", plan.to_string().len());
    let file = write("large.json", &plan);
    let parameter = "/push-test/plans/large";
    let out = push(moto, &file, parameter);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    assert!(stdout.contains("Advanced tier"), "{stdout}");
    assert!(stdout.trim_end().ends_with("version 1"), "{stdout}");
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk_config());
    let described = ssm
        .describe_parameters()
        .parameter_filters(
            aws_sdk_ssm::types::ParameterStringFilter::builder()
                .key("Name")
                .values(parameter)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.parameters()[0].tier(),
        Some(&aws_sdk_ssm::types::ParameterTier::Advanced)
    );
    let (stored, _) = get(moto, parameter).await.unwrap();
    assert_eq!(stored, plan.to_string());
}

#[tokio::test]
async fn a_bad_parameter_name_is_refused_naming_the_option() {
    let moto = MotoServer::shared();
    let file = write("for-bad-name.json", &example());
    let out = push(moto, &file, "mint-replica-plan");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--parameter"), "{stderr}");
    assert!(stderr.contains("start it with /"), "{stderr}");
}
