//! Seeds the demo "Mint Replica" on the local stack: databases with pre-deploy snapshots, ECR
//! repositories with a stable and a bad image, an EKS cluster whose deployments run the bad
//! revision with the stable one in history, an alarm, the notification topic, the report
//! bucket, and the plan (in SSM, where the plan function reads it at the start of the
//! execution).

use std::time::Duration;

use anyhow::{Context, Result};
use aws_config::SdkConfig;
use rollback_core::Plan;
use serde_json::{Value, json};

pub const SERVICE: &str = "mint-replica";
/// The SSM parameter holding the plan: the drill stack's `RollbackPlanParameter`.
pub const PLAN_PARAMETER: &str = "/mint-replica/rollback-plan";
pub const ALARM: &str = "mint-replica-5xx";
/// Where Container Insights sends the pods' logs (the template's default `SmokeLogGroupPrefix`
/// for the cluster): the smoke test's logs check searches it.
pub const APP_LOG_GROUP: &str = "/aws/containerinsights/mint-replica-eks/application";
/// The stack's report bucket (the template's `ReportBucket`): the notify function writes each
/// execution's post-mortem there.
pub const REPORT_BUCKET: &str = "mint-replica-rollback-reports";
/// The Argo CD Application that syncs the demo's deployments (the plan's `cluster.gitops`):
/// the rollback suspends its auto-sync before it touches them.
pub const ARGOCD_APPLICATION: &str = "mint-replica";
/// Its Role (get/patch on that Application in `argocd`), applied in the drill's cluster.
pub const ARGOCD_RBAC_MANIFEST: &str = "infra/k8s/rollback-rbac-argocd.yaml";
/// The team's Terraform CodeBuild project, its artifact bucket and the commits the release
/// pipeline recorded (the plan's `infrastructure`; the template's defaults for the service).
pub const TERRAFORM_PROJECT: &str = "mint-replica-terraform";
pub const TERRAFORM_BUCKET: &str = "mint-replica-terraform-plans";
pub const STABLE_COMMIT_PARAMETER: &str = "/mint-replica/terraform/stable-commit";
pub const CURRENT_COMMIT_PARAMETER: &str = "/mint-replica/terraform/current-commit";
pub const STABLE_COMMIT: &str = "abc1234f00dfeedbeef0123456789abcdef01234";
pub const CURRENT_COMMIT: &str = "def5678badc0ffee0123456789abcdef01234567";
/// What `terraform show -json` prints for a plan of [`STABLE_COMMIT`] (the drill plays the CI
/// runner: moto's CodeBuild writes this as the plan build's `plan.json`): 1 to add, 2 to
/// change, 0 to destroy.
const TERRAFORM_PLAN: &str = include_str!("fixtures/terraform-plan.json");
pub const RELEASE_STABLE: &str = "v41";
pub const RELEASE_BAD: &str = "v42";
pub const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const REPOSITORIES: [(&str, &str); 2] = [
    ("mint-replica-backend", "backend-deployment"),
    ("mint-replica-frontend", "frontend-deployment"),
];

/// What the seeding made, for the run and the summary.
pub struct Seeded {
    pub plan: Plan,
    pub plan_text: String,
    /// The plan as stored: [`PLAN_PARAMETER`] and the version seeding wrote.
    pub plan_source: rollback_core::plan_store::PlanSource,
    pub topic_arn: String,
    pub queue_url: String,
    /// (repository, deployment, stable image ref, bad image ref)
    pub images: Vec<(String, String, String, String)>,
    pub sql_probe: bool,
    /// Issue 17: the local Statuspage and Slack webhook the plan's `channels` point at.
    pub channels: super::channels::DrillChannels,
}

/// A Docker schema 2 manifest whose config digest makes each image distinct.
fn manifest(seed: &str) -> String {
    let hex = |s: &str| {
        use std::fmt::Write;
        let mut out = String::new();
        for b in s.bytes().cycle().take(32) {
            let _ = write!(out, "{b:02x}");
        }
        out
    };
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1469, "digest": format!("sha256:{}", hex(seed))},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 2_811_478, "digest": format!("sha256:{}", hex(&format!("layer-{seed}")))}]
    })
    .to_string()
}

async fn put_image(
    ecr: &aws_sdk_ecr::Client,
    repository: &str,
    seed: &str,
    tag: &str,
) -> Result<String> {
    let out = ecr
        .put_image()
        .repository_name(repository)
        .image_manifest(manifest(seed))
        .image_manifest_media_type("application/vnd.docker.distribution.manifest.v2+json")
        .image_tag(tag)
        .send()
        .await
        .with_context(|| format!("PutImage {repository}:{tag}"))?;
    out.image
        .and_then(|i| i.image_id)
        .and_then(|id| id.image_digest)
        .context("PutImage returned no digest")
}

pub struct SeedInputs<'a> {
    pub sdk: &'a SdkConfig,
    pub kube: &'a rollback_kube_api::LocalKube,
    /// The demo app's health URL (the smoke test's HTTP check).
    pub health_url: String,
    /// A local PostgreSQL for the SQL probe, when one could be started.
    pub postgres: Option<&'a rollback_postgres::PostgresServer>,
    /// The app stores, where the demo's mobile release is rolling out.
    pub stores: &'a rollback_stores::StoreServer,
    /// How the plan's databases are restored (`rollbackctl drill --restore`).
    pub restore: rollback_core::plan::RestoreMethod,
    /// How many people must approve the database rollback (`rollbackctl drill --approvers`).
    pub database_approvers: u8,
    /// `rollbackctl drill --pre-approved`: the plan pre-approves app-only rollbacks started by
    /// the drill's alarm, with this grace period; the alarm asks for the app only, and the plan
    /// has no infrastructure or mobile section (either would make people decide).
    pub pre_approval_grace: Option<u32>,
}

/// The seeding's phases in order: the databases exist before the release, the plan is stored
/// before the pre-deploy snapshots read it, and the bad release rolls out last.
pub async fn seed(inputs: SeedInputs<'_>) -> Result<Seeded> {
    let sdk = inputs.sdk;
    let rds = aws_sdk_rds::Client::new(sdk);
    seed_databases(&rds, inputs.restore).await?;
    let images = seed_images(&aws_sdk_ecr::Client::new(sdk)).await?;
    seed_cluster(&aws_sdk_eks::Client::new(sdk)).await?;
    seed_alarm(&aws_sdk_cloudwatch::Client::new(sdk)).await?;
    seed_app_logs(&aws_sdk_cloudwatchlogs::Client::new(sdk)).await?;
    // Notices go to a topic; the drill reads them as a mail client would, through a
    // raw-delivery SQS subscription.
    let (topic_arn, queue_url) = rollback_moto::inbox::topic_with_queue(
        &aws_sdk_sns::Client::new(sdk),
        &aws_sdk_sqs::Client::new(sdk),
        "mint-replica-rollback",
        "mint-replica-rollback-inbox",
        rollback_moto::inbox::Delivery::Raw,
    )
    .await?;
    seed_report_bucket(sdk).await?;
    seed_terraform(sdk).await?;
    super::mobile::seed(sdk, inputs.stores).await?;
    let sql =
        seed_sql_probe_secret(&aws_sdk_secretsmanager::Client::new(sdk), inputs.postgres).await?;
    let channels = super::channels::DrillChannels::start(sdk).await?; // issue 17
    let stored = store_plan(&inputs, sql.clone(), &channels).await?;
    seed_pre_deploy_snapshots(sdk, stored.value).await?;
    seed_rollout(inputs.kube, &images).await?;

    Ok(Seeded {
        plan: stored.plan,
        plan_text: stored.text,
        plan_source: stored.source,
        topic_arn,
        queue_url,
        images,
        sql_probe: !sql.is_empty(),
        channels,
    })
}

/// Databases: PostgreSQL on RDS, and the document store. moto rejects engine `docdb`, so an
/// aurora-postgresql cluster stands in for DocumentDB; it exercises the same RDS cluster API.
async fn seed_databases(
    rds: &aws_sdk_rds::Client,
    restore: rollback_core::plan::RestoreMethod,
) -> Result<()> {
    rds.create_db_instance()
        .db_instance_identifier("mint-replica-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("mint")
        .master_user_password("mint-password")
        .send()
        .await
        .context("CreateDBInstance mint-replica-db")?;
    rds.create_db_cluster()
        .db_cluster_identifier("mint-replica-docs")
        .engine("aurora-postgresql")
        .master_username("mint")
        .master_user_password("mint-password")
        .send()
        .await
        .context("CreateDBCluster mint-replica-docs")?;
    rds.create_db_instance()
        .db_instance_identifier("mint-replica-docs-1")
        .db_cluster_identifier("mint-replica-docs")
        .engine("aurora-postgresql")
        .db_instance_class("db.r5.large")
        .send()
        .await
        .context("CreateDBInstance mint-replica-docs-1")?;
    if !restore.is_snapshot() {
        // A point-in-time restore goes back to the release time, which must lie after the
        // databases came into being (RDS restores only within their restorable window, to the
        // second): let the bad release roll out a clear second later.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    Ok(())
}

/// Images: `stable` is the last good release, `prod` points at the bad one. Returns
/// (repository, deployment, stable image ref, bad image ref) per repository.
async fn seed_images(ecr: &aws_sdk_ecr::Client) -> Result<Vec<(String, String, String, String)>> {
    let mut images = Vec::new();
    for (repository, deployment) in REPOSITORIES {
        ecr.create_repository()
            .repository_name(repository)
            .send()
            .await
            .with_context(|| format!("CreateRepository {repository}"))?;
        let stable = put_image(
            ecr,
            repository,
            &format!("{repository}-{RELEASE_STABLE}"),
            "stable",
        )
        .await?;
        put_image(
            ecr,
            repository,
            &format!("{repository}-{RELEASE_STABLE}"),
            RELEASE_STABLE,
        )
        .await?;
        let bad = put_image(
            ecr,
            repository,
            &format!("{repository}-{RELEASE_BAD}"),
            "prod",
        )
        .await?;
        images.push((
            repository.to_owned(),
            deployment.to_owned(),
            format!("{REGISTRY}/{repository}@{stable}"),
            format!("{REGISTRY}/{repository}@{bad}"),
        ));
    }
    Ok(images)
}

/// The EKS cluster the plan names (its deployments live in the local Kubernetes API).
async fn seed_cluster(eks: &aws_sdk_eks::Client) -> Result<()> {
    eks.create_cluster()
        .name("mint-replica-eks")
        .role_arn("arn:aws:iam::123456789012:role/mint-replica-eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-11111111")
                .build(),
        )
        .send()
        .await
        .context("CreateCluster mint-replica-eks")?;
    Ok(())
}

/// The 5xx alarm, starting out OK.
/// The application log group with a few ordinary lines (the smoke test's logs check finds no
/// error in them).
async fn seed_app_logs(logs: &aws_sdk_cloudwatchlogs::Client) -> Result<()> {
    let stream = "backend-deployment-7c9f";
    logs.create_log_group()
        .log_group_name(APP_LOG_GROUP)
        .send()
        .await
        .context("CreateLogGroup")?;
    logs.create_log_stream()
        .log_group_name(APP_LOG_GROUP)
        .log_stream_name(stream)
        .send()
        .await
        .context("CreateLogStream")?;
    let now = chrono::Utc::now().timestamp_millis();
    let events = ["GET /health 200", "GET /api/accounts 200"].map(|message| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(now)
            .message(format!("INFO {message}"))
            .build()
            .expect("timestamp and message are set")
    });
    logs.put_log_events()
        .log_group_name(APP_LOG_GROUP)
        .log_stream_name(stream)
        .set_log_events(Some(events.to_vec()))
        .send()
        .await
        .context("PutLogEvents")?;
    Ok(())
}

async fn seed_alarm(cloudwatch: &aws_sdk_cloudwatch::Client) -> Result<()> {
    cloudwatch
        .put_metric_alarm()
        .alarm_name(ALARM)
        .alarm_description("5xx responses of the Mint Replica API")
        .namespace("MintReplica")
        .metric_name("5XXError")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .context("PutMetricAlarm")?;
    set_alarm(
        cloudwatch,
        aws_sdk_cloudwatch::types::StateValue::Ok,
        "5xx rate normal",
    )
    .await
}

/// The report bucket as the template makes it: versioned, encrypted (SSE-S3).
async fn seed_report_bucket(sdk: &SdkConfig) -> Result<()> {
    let s3 = rollback_notify::s3_client(sdk);
    s3.create_bucket()
        .bucket(REPORT_BUCKET)
        .send()
        .await
        .context("CreateBucket")?;
    s3.put_bucket_versioning()
        .bucket(REPORT_BUCKET)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .context("PutBucketVersioning")?;
    s3.put_bucket_encryption()
        .bucket(REPORT_BUCKET)
        .server_side_encryption_configuration(
            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(
                    aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(aws_sdk_s3::types::ServerSideEncryption::Aes256)
                                .build()
                                .context("ServerSideEncryptionByDefault")?,
                        )
                        .build(),
                )
                .build()
                .context("ServerSideEncryptionConfiguration")?,
        )
        .send()
        .await
        .context("PutBucketEncryption")?;
    Ok(())
}

/// The team's Terraform CI: the CodeBuild project, the bucket its builds write plans to, the
/// commits the release pipeline recorded, and what a plan of the stable commit shows.
async fn seed_terraform(sdk: &SdkConfig) -> Result<()> {
    let s3 = rollback_notify::s3_client(sdk);
    s3.create_bucket()
        .bucket(TERRAFORM_BUCKET)
        .send()
        .await
        .context("CreateBucket (Terraform plans)")?;
    rollback_moto::ci_runner::create_project(
        &aws_sdk_codebuild::Client::new(sdk),
        TERRAFORM_PROJECT,
        &[],
    )
    .await;
    let ssm = aws_sdk_ssm::Client::new(sdk);
    for (name, commit) in [
        (STABLE_COMMIT_PARAMETER, STABLE_COMMIT),
        (CURRENT_COMMIT_PARAMETER, CURRENT_COMMIT),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(commit)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .with_context(|| format!("PutParameter {name}"))?;
    }
    rollback_moto::ci_runner::write_scenario(
        &s3,
        TERRAFORM_BUCKET,
        STABLE_COMMIT,
        TERRAFORM_PLAN.as_bytes(),
    )
    .await;
    Ok(())
}

/// The SQL probes read credentials from Secrets Manager, as they do in AWS; the local
/// PostgreSQL serves TLS with its own CA (the secret's `sslrootcert`), verified as
/// `verify-full`. Seeds the app's tables and returns the plan's SQL checks (none without a
/// local PostgreSQL): the schema version and the accounts count, each compared with the
/// baseline the pre-deploy snapshot records.
async fn seed_sql_probe_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    postgres: Option<&rollback_postgres::PostgresServer>,
) -> Result<Vec<Value>> {
    let mut sql = Vec::new();
    if let Some(pg) = postgres {
        pg.psql(
            "create table schema_migrations (version bigint primary key); \
             insert into schema_migrations values (20240101), (20240315), (20240502); \
             create table accounts (id bigint primary key, email text); \
             insert into accounts select n, 'user' || n || '@example.com' \
             from generate_series(1, 1204) n;",
        )
        .context("seeding the local PostgreSQL")?;
        let secret = pg.rds_secret();
        let arn = secrets
            .create_secret()
            .name("mint-replica-db-smoke")
            .secret_string(secret.to_string())
            .send()
            .await
            .context("CreateSecret")?
            .arn
            .context("no secret ARN")?;
        sql.push(
            json!({"name": "schema version", "database": "mint-replica-db", "secret_arn": arn,
            "query": "select max(version) from schema_migrations", "expect_rows": 1,
            "compare": {"op": "eq", "baseline": "pre-deploy-snapshot"}, "timeout_ms": 3000}),
        );
        sql.push(
            json!({"name": "accounts kept", "database": "mint-replica-db", "secret_arn": arn,
            "query": "select count(*) from accounts",
            "compare": {"op": "ge", "baseline": "pre-deploy-snapshot"}, "timeout_ms": 3000}),
        );
    }
    Ok(sql)
}

/// The drill's plan in its forms: the document, its text, the parsed plan and where it was
/// stored.
struct StoredPlan {
    value: Value,
    text: String,
    plan: Plan,
    source: rollback_core::plan_store::PlanSource,
}

/// Builds the plan, checks it parses, and stores it in SSM.
async fn store_plan(
    inputs: &SeedInputs<'_>,
    sql: Vec<Value>,
    channels: &super::channels::DrillChannels,
) -> Result<StoredPlan> {
    let mut plan_value = plan_document(&inputs.health_url, sql, inputs.restore);
    plan_value["channels"] = channels.plan_section(); // issue 17
    plan_value["approval"]["database_approvers"] = json!(inputs.database_approvers.max(1));
    if let Some(grace) = inputs.pre_approval_grace {
        plan_value["approval"]["auto_approve_app_only"] =
            json!({"alarms": [ALARM], "grace_seconds": grace});
        plan_value["triggers"]["alarm_scope"] = json!("app");
        if let Some(plan) = plan_value.as_object_mut() {
            plan.remove("infrastructure");
            plan.remove("mobile");
        }
    }
    let plan_text = serde_json::to_string_pretty(&plan_value)?;
    let plan = Plan::from_json(&plan_text)
        .map_err(|e| anyhow::anyhow!("the drill's plan is invalid: {e}"))?;
    // Stored as `rollbackctl plan push` stores it; the plan function reads it from here.
    let plan_source = crate::plan_push::push(
        &aws_sdk_ssm::Client::new(inputs.sdk),
        &plan_text,
        PLAN_PARAMETER,
    )
    .await
    .map_err(|e| anyhow::anyhow!("storing the drill's plan in SSM: {e}"))?
    .source;
    Ok(StoredPlan {
        value: plan_value,
        text: plan_text,
        plan,
        source: plan_source,
    })
}

/// The pipeline's pre-deploy snapshots of release v42, through the real snapshot function.
async fn seed_pre_deploy_snapshots(sdk: &SdkConfig, plan_value: Value) -> Result<()> {
    let snapshot = rollback_snapshot::Clients::new(sdk);
    rollback_snapshot::handle(
        &snapshot,
        json!({"action": "pre-deploy", "release": RELEASE_BAD, "plan": plan_value, "execution": format!("pipeline-{RELEASE_BAD}")}),
    )
    .await
    .context("pre-deploy snapshots")?;
    Ok(())
}

/// The bad release rolls out: the Kubernetes deployments run it with the stable one in their
/// history, and the Argo CD Application that syncs them.
async fn seed_rollout(
    kube: &rollback_kube_api::LocalKube,
    images: &[(String, String, String, String)],
) -> Result<()> {
    // The release rolls out after its snapshots (Kubernetes timestamps have whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (b, f) = (&images[0], &images[1]);
    kube.seed_mint_demo(&rollback_kube_api::MintImages {
        backend_stable: b.2.clone(),
        backend_bad: b.3.clone(),
        frontend_stable: f.2.clone(),
        frontend_bad: f.3.clone(),
    })
    .context("seeding the Kubernetes deployments")?;
    kube.seed_argocd_application(
        "argocd",
        ARGOCD_APPLICATION,
        "mint",
        Some(json!({"prune": true, "selfHeal": true})),
    )
    .context("seeding the Argo CD Application")?;
    Ok(())
}

/// The example plan (infra/plans/mint-replica.json) pointed at the local demo app.
fn plan_document(
    health_url: &str,
    sql: Vec<Value>,
    restore: rollback_core::plan::RestoreMethod,
) -> Value {
    let database = |kind: &str, id: &str| {
        let mut db = json!({"kind": kind, "id": id});
        if !restore.is_snapshot() {
            db["restore"] = json!(restore.as_str());
        }
        db
    };
    json!({
        "service": SERVICE,
        "databases": [
            database("rds-instance", "mint-replica-db"),
            database("aurora-cluster", "mint-replica-docs")
        ],
        "images": REPOSITORIES.iter().map(|(r, _)| json!({"repository": r, "release_tag": "prod", "stable_tag": "stable"})).collect::<Vec<_>>(),
        "cluster": {"name": "mint-replica-eks", "namespace": "mint", "deployments": ["backend-deployment", "frontend-deployment"],
                    "gitops": [{"kind": "argocd", "application": ARGOCD_APPLICATION, "namespace": "argocd"}]},
        "smoke": {
            "http": [{"name": "api health", "url": health_url, "expect_status": 200, "body_contains": "ok", "timeout_ms": 2000, "retries": 1}],
            "sql": sql,
            "alarms": [ALARM],
            "logs": [{"name": "no errors in the app's logs", "log_groups": [APP_LOG_GROUP], "filter_pattern": "ERROR"}],
            "budget_seconds": 30
        },
        "infrastructure": {"codebuild_project": TERRAFORM_PROJECT, "stable_commit_parameter": STABLE_COMMIT_PARAMETER,
                           "current_commit_parameter": CURRENT_COMMIT_PARAMETER, "artifact_bucket": TERRAFORM_BUCKET},
        "mobile": super::mobile::plan_section(),
        "approval": {"timeout_minutes": 60, "escalate_after_minutes": 15},
        "polling": {"interval_seconds": 15, "max_wait_minutes": 60},
        // The drill rehearses everything: databases are resolved and backed up on the alarm.
        "triggers": {"alarm_scope": "app+database"}
    })
}

pub async fn set_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    state: aws_sdk_cloudwatch::types::StateValue,
    reason: &str,
) -> Result<()> {
    cloudwatch
        .set_alarm_state()
        .alarm_name(ALARM)
        .state_value(state)
        .state_reason(reason)
        .send()
        .await
        .context("SetAlarmState")?;
    Ok(())
}
