//! The local stack the drill runs on: moto, the local Kubernetes API, the engine's Step
//! Functions endpoint with the real functions registered, the approval page, the demo app.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use aws_sdk_cloudwatch::types::StateValue;
use rollback_engine::{Engine, EngineConfig, LambdaRegistry};

/// Stops a background server when the stack goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
use rollback_kube_api::LocalKube;
use rollback_moto::MotoServer;
use serde_json::{Value, json};

use super::alarm::AlarmFollower;
use super::inbox::Mail;
use super::{Approve, DrillOptions, approver, demo_app, functions, seed};

pub const STATE_MACHINE_NAME: &str = "mint-replica-rollback";

pub struct LocalStack {
    pub moto: MotoServer,
    pub kube: Arc<LocalKube>,
    pub engine: Engine,
    /// Between the functions and moto, always: the IAM check, and faults under `--faults`.
    /// (An `Option` for the fault suite's sake; the drill always starts it.)
    pub fault_proxy: Option<rollback_fault_proxy::FaultProxy>,
    /// Between the plan and approval functions and the engine's Step Functions endpoint:
    /// the IAM check only.
    pub engine_proxy: rollback_fault_proxy::FaultProxy,
    _approval_task: AbortOnDrop,
    pub engine_url: String,
    _engine_server: rollback_engine::Server,
    pub approval_url: String,
    pub app: demo_app::DemoApp,
    pub sdk: aws_config::SdkConfig,
    pub sfn: aws_sdk_sfn::Client,
    pub state_machine_arn: String,
    pub seeded: seed::Seeded,
    pub postgres_addr: Option<String>,
    _postgres: Option<rollback_postgres::PostgresServer>,
    /// The identity provider approvers sign in at (`--sign-in`).
    pub sign_in: Option<rollback_oidc_issuer::OidcIssuer>,
    /// Google Play and App Store Connect, with the demo's apps mid-rollout.
    pub stores: rollback_stores::StoreServer,
    /// The alarm's background look, stopped with the stack.
    _alarm_follower: AbortOnDrop,
}

impl LocalStack {
    /// Starts the stack in order: moto and the Kubernetes API, the fault proxy, the engine and
    /// its proxy, the demo app and its seeding, the approval page, the functions, the state
    /// machine, and the alarm that follows the app's health.
    pub async fn start(options: &DrillOptions) -> Result<LocalStack> {
        let Backends {
            moto,
            sdk,
            kube,
            postgres,
            stores,
        } = start_backends(options).await?;
        let (decision_key, iam, fault_proxy) = start_fault_proxy(options, &moto)?;

        let EngineParts {
            registry,
            engine,
            handler,
            server: engine_server,
            sfn,
            proxy: engine_proxy,
        } = start_engine(options, iam).await?;

        let link_key = rollback_core::approval_link::LinkKey::generate();
        let (app, seeded) =
            start_app_and_seed(options, &sdk, &kube, postgres.as_ref(), &stores).await?;

        let proxies = Proxies {
            fault: &fault_proxy,
            engine: &engine_proxy,
        };
        let state_machine_arn = create_state_machine(&engine, &seeded.topic_arn)?;
        let approval = start_approval_page(
            options,
            proxies,
            &decision_key,
            &link_key,
            &state_machine_arn,
        )
        .await?;
        register_functions(
            &registry,
            proxies,
            &decision_key,
            Backdrops {
                kube: &kube,
                stores: &stores,
            },
            &seeded,
            &approval,
            link_key,
        );

        let alarm = AlarmFollower::new(
            aws_sdk_cloudwatch::Client::new(&sdk),
            format!("{}/health", app.url),
        );
        let _ = handler.alarm.set(alarm.clone());
        let alarm_follower = AbortOnDrop(tokio::spawn(alarm.follow()));
        let postgres_addr = postgres.as_ref().map(|p| p.addr().to_string());
        Ok(LocalStack {
            moto,
            kube,
            engine,
            fault_proxy: Some(fault_proxy),
            engine_proxy,
            _approval_task: AbortOnDrop(approval.task),
            engine_url: engine_server.url.clone(),
            _engine_server: engine_server,
            approval_url: approval.url,
            app,
            sdk,
            sfn,
            state_machine_arn,
            seeded,
            postgres_addr,
            _postgres: postgres,
            sign_in: approval.sign_in,
            stores,
            _alarm_follower: alarm_follower,
        })
    }

    /// Every call a function made that its role in the template does not allow.
    pub fn iam_violations(&self) -> Vec<rollback_fault_proxy::Violation> {
        let mut all = self.engine_proxy.iam_violations();
        if let Some(proxy) = &self.fault_proxy {
            all.extend(proxy.iam_violations());
        }
        all
    }

    /// The policy actions (as written in the template) the functions' allowed calls used.
    pub fn iam_coverage(&self) -> rollback_fault_proxy::iam::Coverage {
        let mut all = self.engine_proxy.iam_coverage();
        if let Some(proxy) = &self.fault_proxy {
            for (function, actions) in proxy.iam_coverage() {
                all.entry(function).or_default().extend(actions);
            }
        }
        all
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// The demo app's answer, e.g. `503 unhealthy: …`.
    pub async fn health(&self) -> String {
        match reqwest::get(format!("{}/health", self.app.url)).await {
            Ok(r) => {
                let status = r.status().as_u16();
                format!("{status} {}", r.text().await.unwrap_or_default().trim())
            }
            Err(e) => format!("unreachable ({e})"),
        }
    }

    pub fn running_images(&self, deployment: &str) -> Vec<String> {
        self.kube
            .deployment("mint", deployment)
            .map(|d| d.spec)
            .and_then(|s| s.template.spec)
            .map(|p| p.containers.into_iter().filter_map(|c| c.image).collect())
            .unwrap_or_default()
    }

    /// Moves the alarm to ALARM and returns the execution input EventBridge would deliver for
    /// it: the stack rule's input transformer wraps the event with the service
    /// ([`rollback_core::request::eventbridge_input`]).
    pub async fn fire_alarm(&self, quiet: bool) -> Result<Value> {
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&self.sdk);
        seed::set_alarm(
            &cloudwatch,
            StateValue::Alarm,
            "Threshold Crossed: 42 5xx responses in 1 minute (> 5)",
        )
        .await?;
        let alarm = cloudwatch
            .describe_alarms()
            .alarm_names(seed::ALARM)
            .send()
            .await
            .context("DescribeAlarms")?
            .metric_alarms
            .unwrap_or_default()
            .into_iter()
            .next()
            .context("the alarm is gone")?;
        let now = chrono::Utc::now();
        let stamp =
            |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
        let changed = alarm
            .state_updated_timestamp
            .and_then(|t| chrono::DateTime::from_timestamp_millis(t.to_millis().ok()?))
            .unwrap_or(now);
        if !quiet {
            println!(
                "\nalarm {} → ALARM: {}",
                seed::ALARM,
                alarm.state_reason.as_deref().unwrap_or_default()
            );
        }
        Ok(rollback_core::request::eventbridge_input(
            seed::SERVICE,
            json!({
                "version": "0",
                "id": uuid::Uuid::new_v4().to_string(),
                "detail-type": "CloudWatch Alarm State Change",
                "source": "aws.cloudwatch",
                "account": "123456789012",
                "time": now.to_rfc3339(),
                "region": rollback_core::aws::LOCAL_REGION,
                "resources": [alarm.alarm_arn],
                "detail": {
                    "alarmName": seed::ALARM,
                    "state": {"value": "ALARM", "reason": alarm.state_reason, "timestamp": stamp(changed)},
                    "previousState": {"value": "OK", "reason": "5xx rate normal", "timestamp": stamp(changed - chrono::Duration::hours(3))},
                    "configuration": {"description": alarm.alarm_description}
                }
            }),
        ))
    }

    /// A pre-approved rollback's email: with `--approve reject` someone follows its "stop it
    /// now" link; otherwise nobody does, and the grace period passes on the engine's clock
    /// (time stands still while a task token waits). Returns true: nothing more to decide.
    pub async fn let_pre_approval_stand(
        &self,
        mail: &Mail,
        execution_arn: &str,
        options: &DrillOptions,
    ) -> Result<bool> {
        if options.approve == Approve::Reject {
            return self.decide(mail, Approve::Reject, 1, options.quiet).await;
        }
        let grace = std::time::Duration::from_secs(u64::from(super::PRE_APPROVAL_GRACE_SECONDS));
        if let Ok(clock) = self.engine.clock(execution_arn) {
            clock.advance(grace + std::time::Duration::from_secs(1));
        }
        Ok(true)
    }

    /// Answers the approval request like the approvers would ([`approver::decide`]).
    pub async fn decide(
        &self,
        mail: &Mail,
        approve: Approve,
        approvers: u8,
        quiet: bool,
    ) -> Result<bool> {
        approver::decide(mail, approve, approvers, self.sign_in.is_some(), quiet).await
    }
}

/// What the stack stands on: moto (and an SDK configuration straight to it), the local
/// Kubernetes API, and a local PostgreSQL when asked for and one could be started.
struct Backends {
    moto: MotoServer,
    sdk: aws_config::SdkConfig,
    kube: Arc<LocalKube>,
    postgres: Option<rollback_postgres::PostgresServer>,
    stores: rollback_stores::StoreServer,
}

async fn start_backends(options: &DrillOptions) -> Result<Backends> {
    rollback_kube_api::install_default_crypto_provider();
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await?
        .context("starting moto")?;
    let sdk = moto.sdk_config();
    let kube = Arc::new(
        LocalKube::start(kube_options()?)
            .await
            .context("starting the local Kubernetes API")?,
    );
    let postgres = if options.postgres {
        // TLS with a generated CA: the drill's SQL probes verify it as they verify RDS.
        // Without one (no Debian `postgresql` here) the drill still runs, minus SQL probes.
        rollback_postgres::PostgresServer::start_tls_async(rollback_postgres::LOOPBACK_NAMES)
            .await
            .inspect_err(|e| {
                tracing::warn!("no local PostgreSQL, the smoke test runs without SQL probes: {e}")
            })
            .ok()
    } else {
        None
    };
    Ok(Backends {
        moto,
        sdk,
        kube,
        postgres,
        stores: rollback_stores::StoreServer::start().await,
    })
}

/// The fault proxy between the functions and moto, and what it checks against: the
/// functions' roles (the IAM check), which name the approval decision key.
fn start_fault_proxy(
    options: &DrillOptions,
    moto: &MotoServer,
) -> Result<(
    String,
    Arc<rollback_fault_proxy::IamChecker>,
    rollback_fault_proxy::FaultProxy,
)> {
    // The functions reach moto through the fault proxy, which checks every call against
    // the function's role in infra/template.yaml and, under a fault schedule, injects
    // faults; seeding and the drill's own checks go straight to moto.
    // The approval decision key in this moto (approval signs, the destructive functions
    // verify), made before the roles are resolved: they name it. One short blocking call
    // to the local moto.
    let decision_key = moto.decision_key().to_owned();
    let iam = Arc::new(iam_checker(options, &decision_key)?);
    let fault_proxy = rollback_fault_proxy::FaultProxy::start_with_iam(
        &moto.endpoint(),
        options
            .faults
            .clone()
            .unwrap_or_else(rollback_fault_proxy::FaultSchedule::none),
        Some(iam.clone()),
    )
    .context("starting the fault proxy")?;
    Ok((decision_key, iam, fault_proxy))
}

/// The engine, its Step Functions endpoint, and the IAM proxy in front of it. The functions
/// are registered on `registry` later, once the stack they call is seeded.
struct EngineParts {
    registry: LambdaRegistry,
    engine: Engine,
    /// The engine's task handler, which learns the alarm once the app runs.
    handler: Arc<functions::DrillHandler>,
    server: rollback_engine::Server,
    /// Step Functions at the engine, straight (the drill's own calls).
    sfn: aws_sdk_sfn::Client,
    proxy: rollback_fault_proxy::FaultProxy,
}

/// The engine first, so the plan function's guard can list executions on it.
async fn start_engine(
    options: &DrillOptions,
    iam: Arc<rollback_fault_proxy::IamChecker>,
) -> Result<EngineParts> {
    let registry = LambdaRegistry::new();
    let handler = Arc::new(functions::DrillHandler {
        inner: registry.clone(),
        fail_at: options.fail_at.clone(),
        latency: options.latency,
        marks: Default::default(),
        engine: Default::default(),
        alarm: Default::default(),
    });
    let engine = Engine::new(handler.clone(), EngineConfig::default());
    let _ = handler.engine.set(engine.clone());
    let server = rollback_engine::serve(
        engine.clone(),
        rollback_engine::Mode::Embedded,
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .context("serving the Step Functions endpoint")?;
    let engine_sdk =
        rollback_core::aws::for_endpoint(&server.url, rollback_core::aws::LOCAL_REGION);
    let sfn = aws_sdk_sfn::Client::new(&engine_sdk);
    let proxy = rollback_fault_proxy::FaultProxy::start_with_iam(
        &server.url,
        rollback_fault_proxy::FaultSchedule::none(),
        Some(iam),
    )
    .context("starting the IAM proxy in front of the engine")?;
    Ok(EngineParts {
        registry,
        engine,
        handler,
        server,
        sfn,
        proxy,
    })
}

/// The demo app, then the seeding (the plan's smoke test checks the app's health URL); the app
/// learns the stable images it counts as healthy.
async fn start_app_and_seed(
    options: &DrillOptions,
    sdk: &aws_config::SdkConfig,
    kube: &Arc<LocalKube>,
    postgres: Option<&rollback_postgres::PostgresServer>,
    stores: &rollback_stores::StoreServer,
) -> Result<(demo_app::DemoApp, seed::Seeded)> {
    let app = demo_app::start(kube.clone(), "mint").await?;
    let health_url = format!("{}/health", app.url);
    let seeded = seed::seed(seed::SeedInputs {
        sdk,
        kube,
        health_url,
        postgres,
        stores,
        restore: options.restore.method(),
        database_approvers: options.approvers,
        pre_approval_grace: options
            .pre_approved
            .then_some(super::PRE_APPROVAL_GRACE_SECONDS),
    })
    .await?;
    app.set_stable(
        seeded
            .images
            .iter()
            .map(|(_, deployment, stable, _)| (deployment.clone(), stable.clone()))
            .collect(),
    );
    Ok((app, seeded))
}

/// Where the functions' calls go: moto behind the fault proxy, the engine's Step Functions
/// endpoint behind its IAM proxy.
#[derive(Clone, Copy)]
struct Proxies<'a> {
    fault: &'a rollback_fault_proxy::FaultProxy,
    engine: &'a rollback_fault_proxy::FaultProxy,
}

/// The running approval page: its URL (for the notices' links), the identity provider under
/// `--sign-in`, and the server task.
struct ApprovalPage {
    url: String,
    sign_in: Option<rollback_oidc_issuer::OidcIssuer>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_approval_page(
    options: &DrillOptions,
    proxies: Proxies<'_>,
    decision_key: &str,
    link_key: &rollback_core::approval_link::LinkKey,
    state_machine_arn: &str,
) -> Result<ApprovalPage> {
    let Proxies {
        fault: fault_proxy,
        engine: engine_proxy,
    } = proxies;
    let function_sdk = |function: &str| function_sdk_at(&fault_proxy.url(), function);
    // The approval page: the real handler, deciding through the engine's endpoint. Its
    // port is chosen first: with --sign-in the identity provider registers its URL as the
    // redirect URI.
    let approval_port = rollback_moto::free_port().context("a port for the approval page")?;
    let approval_url = format!("http://127.0.0.1:{approval_port}/approval");
    let sign_in = if options.sign_in {
        Some(start_identity_provider(&approval_url).await?)
    } else {
        None
    };
    let services = rollback_approval::Services::with_key(
        aws_sdk_sfn::Client::new(&function_sdk_at(&engine_proxy.url(), "approval")),
        link_key.clone(),
        rollback_core::decision::DecisionSigner::new(
            aws_sdk_kms::Client::new(&function_sdk("approval")),
            decision_key,
        ),
    )
    .with_ledger(rollback_approval::ledger::Ledger::new(
        rollback_core::aws::s3_client(&function_sdk("approval")),
        seed::REPORT_BUCKET,
    ))
    .with_state_machine(state_machine_arn);
    let services = match &sign_in {
        Some(issuer) => services.with_login(rollback_approval::login::Login::new(
            rollback_core::oidc::OidcConfig::new(issuer.issuer(), approver::CLIENT_ID),
        )),
        None => services,
    };
    let (_, approval_task) =
        rollback_approval::serve_local(SocketAddr::from(([127, 0, 0, 1], approval_port)), services)
            .await
            .context("serving the approval page")?;
    Ok(ApprovalPage {
        url: approval_url,
        sign_in,
        task: approval_task,
    })
}

/// What the functions act on besides AWS: the Kubernetes API and the app stores.
#[derive(Clone, Copy)]
struct Backdrops<'a> {
    kube: &'a LocalKube,
    stores: &'a rollback_stores::StoreServer,
}

/// Registers the real functions on the engine, each with its own credentials (by which the
/// proxies check its role).
fn register_functions(
    registry: &LambdaRegistry,
    proxies: Proxies<'_>,
    decision_key: &str,
    backdrops: Backdrops<'_>,
    seeded: &seed::Seeded,
    approval: &ApprovalPage,
    link_key: rollback_core::approval_link::LinkKey,
) {
    let Proxies {
        fault: fault_proxy,
        engine: engine_proxy,
    } = proxies;
    let Backdrops { kube, stores } = backdrops;
    let function_sdk = |function: &str| function_sdk_at(&fault_proxy.url(), function);
    let mut notify_config =
        rollback_notify::Config::local(&seeded.topic_arn, &approval.url, link_key)
            .with_report_bucket(seed::REPORT_BUCKET);
    notify_config.approval_login = approval.sign_in.is_some();
    let kube_override = rollback_deploy_undo::ApiOverride {
        url: kube.url(),
        ca_pem: kube.ca_pem().map(str::to_owned),
    };
    let clients = functions::FunctionClients {
        // The plan from moto's SSM, as the Lambda reads it (its own key, the IAM check).
        plan_store: rollback_plan::PlanStore::new(
            aws_sdk_ssm::Client::new(&function_sdk("plan")),
            rollback_core::plan_store::PlanLocation::Parameter(seed::PLAN_PARAMETER.into()),
        ),
        // Step Functions at the engine; the smoke alarms' periods from moto.
        plan: rollback_plan::Clients::new(&function_sdk_at(&engine_proxy.url(), "plan"))
            .with_cloudwatch(Some(&function_sdk("plan")))
            // Pre-approved decisions (approval.auto_approve_app_only), under the plan role.
            .with_signer(rollback_core::decision::DecisionSigner::new(
                aws_sdk_kms::Client::new(&function_sdk("plan")),
                decision_key,
            )),
        snapshot: rollback_snapshot::Clients::new(&function_sdk("snapshot")),
        restore: rollback_restore::Clients::new(&function_sdk("restore"), decision_key),
        drill_cleanup: rollback_restore::Clients::new(&function_sdk("drill-cleanup"), decision_key),
        retag: rollback_retag::Clients::new(&function_sdk("retag"), decision_key),
        infra: rollback_infra::Clients::new(&function_sdk("infra"), decision_key),
        mobile: rollback_mobile::Clients::new(
            &function_sdk("mobile"),
            decision_key,
            super::mobile::endpoints(stores),
        ),
        deploy_undo: rollback_deploy_undo::Clients::new(
            &function_sdk("deploy-undo"),
            decision_key,
            Some(kube_override),
        ),
        smoke: rollback_smoke_test::Clients::new(&function_sdk("smoke-test")),
        // SNS and S3 in moto; its own execution's history (the report) from the engine.
        notify: rollback_notify::Clients {
            sfn: aws_sdk_sfn::Client::new(&function_sdk_at(&engine_proxy.url(), "notify")),
            ..rollback_notify::Clients::new(&function_sdk("notify"))
        },
        notify_config,
    };
    functions::register_all(registry, Arc::new(clients));
}

/// The shipped state machine definition on the engine; returns its ARN.
fn create_state_machine(engine: &Engine, topic_arn: &str) -> Result<String> {
    let definition = std::fs::read_to_string(definition_path())
        .context("reading statemachine/rollback.asl.json")?;
    let machine = engine
        .create_state_machine(
            STATE_MACHINE_NAME,
            &definition,
            "arn:aws:iam::123456789012:role/rollback",
            &functions::substitutions(topic_arn),
        )
        .map_err(|e| anyhow!("the engine refused the definition: {e:?}"))?;
    Ok(machine.arn)
}

/// The drill's identity provider: the approvers can sign in by their user names.
async fn start_identity_provider(approval_url: &str) -> Result<rollback_oidc_issuer::OidcIssuer> {
    let mut builder =
        rollback_oidc_issuer::OidcIssuer::builder().client(approver::CLIENT_ID, [approval_url]);
    for email in approver::APPROVERS {
        builder = builder.user(approver::username(email), email, ["sre"]);
    }
    builder
        .start()
        .await
        .context("starting the local identity provider")
}

/// The stack name the drill plays: the state machine is `${AWS::StackName}-rollback`.
pub const STACK_NAME: &str = "mint-replica";

/// The template values of the drill's stack: what `!Sub`/`!Ref`/`!GetAtt` resolve to.
pub fn stack_values(decision_key: &str) -> rollback_fault_proxy::iam::StackValues {
    // The names seed.rs gives the topic, cluster, plan and bucket. The drill has one topic
    // for approvals and notices, as a small stack might.
    let mut values = rollback_fault_proxy::gate::stack_values(seed::SERVICE)
        .decision_key(decision_key)
        .parameter("RollbackPlanParameter", seed::PLAN_PARAMETER)
        .parameter("AlarmNames", seed::ALARM)
        .parameter("ClusterName", CLUSTER_NAME)
        .topic("ApprovalsTopic", "mint-replica-rollback")
        .topic("NoticesTopic", "mint-replica-rollback")
        .topic("EscalationTopic", "mint-replica-rollback-escalations")
        .secret("ApprovalLinkKey", "mint-replica-approval-link-key-Lc4l01")
        .report_bucket(seed::REPORT_BUCKET);
    values.stack_name = STACK_NAME.to_owned();
    values
}

/// The functions' roles from `infra/template.yaml` (or the drill's replacement text).
fn iam_checker(
    options: &DrillOptions,
    decision_key: &str,
) -> Result<rollback_fault_proxy::IamChecker> {
    let text = match &options.iam_template {
        Some(text) => text.clone(),
        None => std::fs::read_to_string(template_path())
            .with_context(|| format!("reading {}", template_path().display()))?,
    };
    rollback_fault_proxy::IamChecker::from_template(&text, &stack_values(decision_key))
        .map_err(|e| anyhow!("the IAM check cannot read infra/template.yaml: {e}"))
}

pub fn template_path() -> std::path::PathBuf {
    rollback_moto::workspace_root().join("infra/template.yaml")
}

/// A function's own SDK configuration (its own access key id, by which the proxy checks
/// its role).
fn function_sdk_at(endpoint_url: &str, function: &str) -> aws_config::SdkConfig {
    rollback_fault_proxy::gate::function_sdk_config(endpoint_url, function)
}

/// The cluster the drill's plan names (seeded in moto by `seed`).
pub const CLUSTER_NAME: &str = "mint-replica-eks";
/// The Kubernetes user the drill's access entry maps the functions' credentials to (EKS's
/// default username for a role: its assumed-role ARN).
pub const FUNCTION_USER: &str =
    "arn:aws:sts::123456789012:assumed-role/DeployUndoFunctionRole/rollback-deploy-undo";

/// The local Kubernetes API as EKS would be set up by infra/DEPLOY.md: EKS tokens verified
/// for [`CLUSTER_NAME`] with the functions' (local) credentials, whose access entry maps them
/// to the deploy-undo group, and RBAC from the shipped `infra/k8s/rollback-rbac.yaml`. The
/// drill's own seeding and checks use the admin token or direct state access.
pub fn kube_options() -> Result<rollback_kube_api::Options> {
    use rollback_core::contract::deploy_undo::{KUBERNETES_GROUP, RBAC_MANIFEST};
    // The drill's plan names an Argo CD Application: its Role is applied too (infra/DEPLOY.md).
    let mut manifest = String::new();
    for file in [RBAC_MANIFEST, seed::ARGOCD_RBAC_MANIFEST] {
        let path = rollback_moto::workspace_root().join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        rollback_kube_api::Rbac::from_manifest(&text)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        manifest.push_str(&text);
        manifest.push_str("\n---\n");
    }
    let rbac = rollback_kube_api::Rbac::from_manifest(&manifest).map_err(|e| anyhow!("{e}"))?;
    Ok(rollback_kube_api::Options {
        eks: Some(rollback_kube_api::EksAuth {
            cluster: CLUSTER_NAME.into(),
            region: Some(rollback_core::aws::LOCAL_REGION.into()),
            // deploy-undo's own credentials (each function has its own access key id in the
            // drill, by which the fault proxy's IAM check knows its role).
            principals: vec![
                rollback_kube_api::AwsPrincipal {
                    access_key_id: rollback_fault_proxy::iam::access_key_id("deploy-undo"),
                    secret_access_key: rollback_core::aws::LOCAL_SECRET_ACCESS_KEY.into(),
                    username: FUNCTION_USER.into(),
                    groups: vec![KUBERNETES_GROUP.into()],
                },
                // The operator running `rollbackctl resume` with the drill's own credentials:
                // it needs the deploy-undo rights too (README), so its access entry maps it to
                // the same group.
                rollback_kube_api::AwsPrincipal {
                    access_key_id: rollback_core::aws::LOCAL_ACCESS_KEY_ID.into(),
                    secret_access_key: rollback_core::aws::LOCAL_SECRET_ACCESS_KEY.into(),
                    username: "drill-operator".into(),
                    groups: vec![KUBERNETES_GROUP.into()],
                },
            ],
        }),
        rbac: Some(rbac),
        ..rollback_kube_api::Options::default()
    })
}

fn definition_path() -> std::path::PathBuf {
    rollback_moto::workspace_root().join("statemachine/rollback.asl.json")
}
