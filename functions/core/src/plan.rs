//! The rollback plan: what "back to stable" means for one service. Deploy-time configuration,
//! validated before anything runs.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::validation::{self, Rule, ValidationErrors, check_len};

pub mod auto_approve;
pub mod channels;
pub mod mobile;

pub use auto_approve::AutoApprovePolicy;
pub use mobile::{AndroidRef, AppConfigRef, IosRef, MinimumVersionRef, MobileRef};

/// Most databases one plan may list.
pub const MAX_DATABASES: usize = 10;
/// Most images one plan may list.
pub const MAX_IMAGES: usize = 20;
/// Most deployments one plan's cluster may list.
pub const MAX_DEPLOYMENTS: usize = 20;
/// Most HTTP checks in `smoke.http`.
pub const MAX_HTTP_CHECKS: usize = 20;
/// Most SQL probes in `smoke.sql`.
pub const MAX_SQL_PROBES: usize = 20;
/// Most alarms in `smoke.alarms`.
pub const MAX_ALARMS: usize = 20;
/// Most logs checks in `smoke.logs`.
pub const MAX_LOGS_CHECKS: usize = 3;
/// Log groups one logs check searches (one FilterLogEvents query each).
pub const MAX_LOG_GROUPS_PER_CHECK: usize = 5;
/// CloudWatch Logs' own limits: log group names and filter patterns.
pub const MAX_LOG_GROUP_CHARS: usize = 512;
/// Longest filter pattern CloudWatch Logs accepts.
pub const MAX_FILTER_PATTERN_CHARS: usize = 1024;
/// A logs check's threshold; the check stops counting one match above it.
pub const MAX_LOG_MATCHES: u32 = 1000;
/// Longest look-back of a logs check (`window_minutes`): one day.
pub const MAX_LOGS_WINDOW_MINUTES: u32 = 1440;
/// Most extra headers one HTTP check may send.
pub const MAX_HTTP_HEADERS: usize = 10;
/// Longest header name.
pub const MAX_HEADER_NAME_CHARS: usize = 64;
/// Longest header value.
pub const MAX_HEADER_VALUE_CHARS: usize = 512;
/// A request body as sent (a JSON body serialized).
pub const MAX_HTTP_BODY_CHARS: usize = 4096;
/// Most JSON expectations one HTTP check may hold.
pub const MAX_JSON_EXPECTATIONS: usize = 10;
/// Longest JSON pointer of an expectation.
pub const MAX_JSON_POINTER_CHARS: usize = 256;
/// An expected JSON value, serialized.
pub const MAX_JSON_EXPECTED_CHARS: usize = 512;
/// The plan travels in the execution's state (256 KiB, most of it taken at the other
/// maxima): the HTTP checks' headers, bodies, JSON expectations and credentials secrets, the
/// logs checks' log groups and filter patterns and the SQL probes' comparisons share this many
/// bytes, as JSON (see [`SmokeChecks::detail_bytes`]).
pub const MAX_SMOKE_DETAIL_BYTES: usize = 3072;
/// Most GitOps objects in `cluster.gitops`.
pub const MAX_GITOPS: usize = 5;

/// The rollback plan of one service: what to put back, how to check it, and who approves.
/// Parse it with [`Plan::from_json`], which validates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Lowercase DNS label naming the service; it prefixes every resource the rollback creates.
    pub service: String,
    /// The RDS and DocumentDB databases to restore (empty: databases are left alone).
    #[serde(default)]
    pub databases: Vec<DatabaseRef>,
    /// The ECR images whose release tag goes back to the stable digest.
    #[serde(default)]
    pub images: Vec<ImageRef>,
    /// The EKS deployments to roll back (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterRef>,
    /// What must pass after the rollback.
    #[serde(default)]
    pub smoke: SmokeChecks,
    /// Who approves, how many, and how long they have.
    #[serde(default)]
    pub approval: ApprovalPolicy,
    /// How often and how long the rollback waits on slow operations.
    #[serde(default)]
    pub polling: PollingPolicy,
    /// Which alarm transitions may start a rollback.
    #[serde(default)]
    pub triggers: TriggerPolicy,
    /// What happens to the deployments `pause` scaled to zero when the rollback then fails
    /// (`stay-paused`, the default, or `resume`). Always serialized: the state machine reads
    /// `$.plan.on_failure`.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Terraform back to the stable commit through the team's CodeBuild project (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<InfrastructureRef>,
    /// The mobile apps whose bad release the rollback halts in the stores, and their minimum
    /// supported version (optional; see [`mobile`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<MobileRef>,
    /// Where the notices go besides SNS: a Statuspage incident for users, a Slack channel
    /// (optional; see [`channels`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<channels::ChannelsRef>,
}

/// Where the service's Terraform runs and where its stable commit is recorded. The release
/// pipeline writes the stable commit to `stable_commit_parameter` when a release is declared
/// healthy (the moment the `stable` image tag moves); the rollback plans that commit through
/// `codebuild_project` (infra/terraform/buildspec.yml), shows the plan, and applies exactly it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfrastructureRef {
    /// The CodeBuild project that runs Terraform for this service.
    pub codebuild_project: String,
    /// SSM parameter holding the stable commit (a full Git SHA).
    pub stable_commit_parameter: String,
    /// SSM parameter holding the commit applied now, written by the release pipeline on every
    /// apply (optional). With it the rollback skips the plan when nothing changed since the
    /// stable release, and the approver sees both commits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_commit_parameter: Option<String>,
    /// Bucket where the build writes the saved plan, its JSON and its SHA-256.
    pub artifact_bucket: String,
    /// Key prefix of the build artifacts in `artifact_bucket` (default `rollback-plans`).
    #[serde(default = "defaults::artifact_prefix")]
    pub artifact_prefix: String,
    /// Resource types whose destroy or replacement the approver must allow explicitly.
    #[serde(default = "defaults::protected_types")]
    pub protected_types: Vec<String>,
    /// How long the plan build and the apply build may each take (1-60, default 20): the
    /// definition polls them `polling.interval_seconds` apart for this long.
    #[serde(default = "defaults::max_build_minutes")]
    pub max_build_minutes: u32,
}

impl InfrastructureRef {
    /// Status checks of one build (at least one).
    pub fn max_build_polls(&self, polling: &PollingPolicy) -> u32 {
        polling.checks_within(self.max_build_minutes)
    }
}

/// What a failed rollback does with the deployments it paused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Leave them at zero replicas and say so in the contingency notice, with the commands
    /// that scale each back (`rollbackctl resume`). The default, because resuming the bad
    /// release may be worse than an outage.
    #[default]
    StayPaused,
    /// When the rollback fails after pausing the service and no database keeps a completed
    /// swap (none moved, or all were put back), scale the deployments back to their recorded
    /// counts automatically.
    Resume,
}

impl OnFailure {
    /// The plan value (`stay-paused`, `resume`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::StayPaused => "stay-paused",
            OnFailure::Resume => "resume",
        }
    }
}

/// One database the rollback restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRef {
    /// What kind of database it is.
    pub kind: DatabaseKind,
    /// DB instance identifier (`rds-instance`) or DB cluster identifier (clusters).
    pub id: String,
    /// How the database goes back: `snapshot` (default: the pre-deploy or newest snapshot
    /// before the cutoff), `point-in-time` (RDS restores it to the cutoff itself), or
    /// `snapshot-or-point-in-time` (a pre-deploy snapshot when one qualifies, else the cutoff
    /// by point-in-time restore, else the newest other snapshot).
    #[serde(default, skip_serializing_if = "RestoreMethod::is_snapshot")]
    pub restore: RestoreMethod,
}

/// How a plan database is restored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreMethod {
    /// From a snapshot taken before the cutoff (a pre-deploy snapshot when there is one).
    #[default]
    Snapshot,
    /// `RestoreDBInstanceToPointInTime` / `RestoreDBClusterToPointInTime` to the cutoff; needs
    /// automated backups and the cutoff inside `[EarliestRestorableTime, LatestRestorableTime]`.
    PointInTime,
    /// A pre-deploy snapshot when one qualifies; without one, point in time (closer to the
    /// cutoff than an older automated snapshot); when that is refused too, the newest other
    /// snapshot before the cutoff.
    SnapshotOrPointInTime,
}

impl RestoreMethod {
    /// Whether this is the default, [`RestoreMethod::Snapshot`] (left out when serialized).
    pub fn is_snapshot(&self) -> bool {
        matches!(self, RestoreMethod::Snapshot)
    }

    /// The plan value (`snapshot`, `point-in-time`, …), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            RestoreMethod::Snapshot => "snapshot",
            RestoreMethod::PointInTime => "point-in-time",
            RestoreMethod::SnapshotOrPointInTime => "snapshot-or-point-in-time",
        }
    }
}

/// Which RDS API a plan database is managed through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseKind {
    /// An RDS DB instance (`rds-instance`).
    RdsInstance,
    /// An Aurora DB cluster (`aurora-cluster`).
    AuroraCluster,
    /// DocumentDB speaks the RDS cluster API.
    DocdbCluster,
}

impl DatabaseKind {
    /// Whether it is managed as a DB cluster (Aurora, DocumentDB).
    pub fn is_cluster(self) -> bool {
        !matches!(self, DatabaseKind::RdsInstance)
    }

    /// The plan value (`rds-instance`, `aurora-cluster`, `docdb-cluster`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::RdsInstance => "rds-instance",
            DatabaseKind::AuroraCluster => "aurora-cluster",
            DatabaseKind::DocdbCluster => "docdb-cluster",
        }
    }
}

/// One ECR image whose release tag the rollback points back at the stable image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    /// The ECR repository name.
    pub repository: String,
    /// The tag the cluster deploys (the bad release points here now).
    pub release_tag: String,
    /// The tag that marks the last known-good image.
    pub stable_tag: String,
    /// Registry (account id) when the repository is in another account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<String>,
}

/// The EKS cluster and the deployments the rollback undoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterRef {
    /// EKS cluster name.
    pub name: String,
    /// The namespace of the deployments.
    pub namespace: String,
    /// Deployment names in that namespace.
    pub deployments: Vec<String>,
    /// GitOps controllers that apply these deployments from git: unless their auto-sync is
    /// suspended they put the bad release back. `deploy-undo suspend-gitops` suspends each
    /// named one before the deployments change, and resumes nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gitops: Vec<GitOpsRef>,
}

/// The GitOps controller object that syncs the plan's deployments: an Argo CD Application
/// (`kind: argocd`, `application`) or a Flux Kustomization (`kind: flux`, `kustomization`).
/// Without the name the rollback cannot suspend it; the approval email then says to pause
/// it by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitOpsRef {
    /// Which controller it is.
    pub kind: GitOpsKind,
    /// Argo CD: the Application's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Flux: the Kustomization's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomization: Option<String>,
    /// Where the object lives (default `argocd` / `flux-system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Which GitOps controller syncs the deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GitOpsKind {
    /// Argo CD (an Application).
    Argocd,
    /// Flux (a Kustomization).
    Flux,
}

impl GitOpsKind {
    /// The plan value (`argocd`, `flux`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            GitOpsKind::Argocd => "argocd",
            GitOpsKind::Flux => "flux",
        }
    }

    /// `Argo CD Application` / `Flux Kustomization`.
    pub fn describe(self) -> &'static str {
        match self {
            GitOpsKind::Argocd => "Argo CD Application",
            GitOpsKind::Flux => "Flux Kustomization",
        }
    }

    /// Where the controller's objects usually live (`argocd`, `flux-system`).
    pub fn default_namespace(self) -> &'static str {
        match self {
            GitOpsKind::Argocd => "argocd",
            GitOpsKind::Flux => "flux-system",
        }
    }

    /// The plan field that names the object.
    pub fn name_field(self) -> &'static str {
        match self {
            GitOpsKind::Argocd => "application",
            GitOpsKind::Flux => "kustomization",
        }
    }

    /// The custom resource, as kubectl names it (`applications.argoproj.io`).
    pub fn resource(self) -> &'static str {
        match self {
            GitOpsKind::Argocd => "applications.argoproj.io",
            GitOpsKind::Flux => "kustomizations.kustomize.toolkit.fluxcd.io",
        }
    }
}

impl GitOpsRef {
    /// The object's name, when the plan gives it (for its kind's field).
    pub fn name(&self) -> Option<&str> {
        match self.kind {
            GitOpsKind::Argocd => self.application.as_deref(),
            GitOpsKind::Flux => self.kustomization.as_deref(),
        }
    }

    /// The object's namespace: the plan's, else the kind's default.
    pub fn namespace(&self) -> &str {
        self.namespace
            .as_deref()
            .unwrap_or(self.kind.default_namespace())
    }

    /// `Argo CD Application argocd/mint-replica` (or `… (not named in the plan)`).
    pub fn describe(&self) -> String {
        match self.name() {
            Some(name) => format!("{} {}/{name}", self.kind.describe(), self.namespace()),
            None => format!(
                "{} in namespace {} (not named in the plan)",
                self.kind.describe(),
                self.namespace()
            ),
        }
    }
}

/// What the smoke tests check after the rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeChecks {
    /// HTTP requests against the service.
    #[serde(default)]
    pub http: Vec<HttpCheck>,
    /// SQL probes against the plan's databases.
    #[serde(default)]
    pub sql: Vec<SqlProbe>,
    /// CloudWatch alarms that must be back to OK.
    #[serde(default)]
    pub alarms: Vec<String>,
    /// CloudWatch Logs filter patterns that must match at most `max_matches` events since the
    /// rollout (optional; left out of the serialized plan when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogsCheck>,
    /// `ok`: every alarm must be OK; `not-alarm`: INSUFFICIENT_DATA is accepted too.
    #[serde(default)]
    pub alarm_policy: AlarmPolicy,
    /// Overall time budget for one smoke run, in seconds.
    #[serde(default = "defaults::smoke_budget_seconds")]
    pub budget_seconds: u64,
    /// Longest the rollback re-runs failing smoke tests, in minutes. The settle window is
    /// what the alarms need (`Period × EvaluationPeriods`, read when the rollback starts),
    /// bounded by this (`crate::history_budget::settle_seconds`).
    #[serde(default = "defaults::max_settle_minutes")]
    pub max_settle_minutes: u32,
}

impl Default for SmokeChecks {
    fn default() -> Self {
        SmokeChecks {
            http: Vec::new(),
            sql: Vec::new(),
            alarms: Vec::new(),
            logs: Vec::new(),
            alarm_policy: AlarmPolicy::default(),
            budget_seconds: defaults::smoke_budget_seconds(),
            max_settle_minutes: defaults::max_settle_minutes(),
        }
    }
}

/// What state of the smoke alarms passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmPolicy {
    /// Every alarm must be OK.
    #[default]
    Ok,
    /// Anything but ALARM passes (INSUFFICIENT_DATA too).
    NotAlarm,
}

/// An HTTP request the smoke test sends, and what its answer must be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// Names the check in reports and notices.
    pub name: String,
    /// The URL requested.
    pub url: String,
    /// `GET` (default), `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS`.
    #[serde(default, skip_serializing_if = "HttpMethod::is_get")]
    pub method: HttpMethod,
    /// Extra request headers. Never credentials (`Authorization`): those come from
    /// `credentials_secret`, so they stay out of the plan, the state and the logs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The request body: a JSON string is sent as it is (`text/plain` unless a `Content-Type`
    /// header says otherwise), any other JSON value as JSON (`application/json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// Secrets Manager secret (ARN or name) holding `{"type": "bearer", "token": …}` or
    /// `{"type": "basic", "username": …, "password": …}`; read once per smoke run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// The status the answer must have (default 200).
    #[serde(default = "defaults::expect_status")]
    pub expect_status: u16,
    /// A text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// A regular expression the body must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<String>,
    /// Values the JSON response must hold, each at a JSON pointer (RFC 6901).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect_json: Vec<JsonExpectation>,
    /// Timeout of one attempt, in milliseconds (default 3000).
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    /// Extra attempts after a transient failure (connection error, 5xx, timeout), whatever the
    /// method: a probe that must not repeat (a non-idempotent POST) sets 0.
    #[serde(default = "defaults::retries")]
    pub retries: u32,
}

impl HttpCheck {
    /// Whether the check reads the response body.
    pub fn reads_body(&self) -> bool {
        self.body_contains.is_some() || self.body_regex.is_some() || !self.expect_json.is_empty()
    }
}

/// The method of an HTTP check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET`, the default.
    #[default]
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
}

impl HttpMethod {
    /// Whether this is the default, `GET` (left out when serialized).
    pub fn is_get(&self) -> bool {
        matches!(self, HttpMethod::Get)
    }

    /// The method's name (`GET`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Options => "OPTIONS",
        }
    }

    /// GET and HEAD requests carry no body (RFC 9110 gives one no meaning there).
    pub fn allows_body(self) -> bool {
        !matches!(self, HttpMethod::Get | HttpMethod::Head)
    }
}

/// `{"pointer": "/status", "equals": "ok"}`: the JSON response's value at `pointer` equals
/// `equals` (numbers compare by value: 1 equals 1.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonExpectation {
    /// JSON pointer (RFC 6901) into the response, e.g. `/status`.
    pub pointer: String,
    /// The value expected there.
    pub equals: serde_json::Value,
}

/// A CloudWatch Logs check: FilterLogEvents with `filter_pattern` over `log_groups`, for the
/// last `window_minutes` before the smoke run, never before the rollout finished (when the
/// execution passes that time). Passes while at most `max_matches` events match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsCheck {
    /// Names the check in reports and notices.
    pub name: String,
    /// Log group names, e.g. `/aws/containerinsights/<cluster>/application`.
    pub log_groups: Vec<String>,
    /// CloudWatch Logs filter pattern syntax, e.g. `ERROR`, `?ERROR ?Exception`,
    /// `{ $.level = "error" }`.
    pub filter_pattern: String,
    /// Most matching events that still pass (default 0: any match fails the check).
    #[serde(default)]
    pub max_matches: u32,
    /// How far before the smoke run to search, in minutes (1-1440, default 15).
    #[serde(default = "defaults::logs_window_minutes")]
    pub window_minutes: u32,
    /// For the whole search (every group and page).
    #[serde(default = "defaults::logs_timeout_ms")]
    pub timeout_ms: u64,
}

/// A SQL query the smoke test runs against a plan database, and what it must return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlProbe {
    /// Names the probe in reports and notices (and its baseline's snapshot tag).
    pub name: String,
    /// The plan database (its `id`) the probe connects to.
    pub database: String,
    /// Secrets Manager secret (ARN or name) holding RDS-style JSON credentials.
    pub secret_arn: String,
    /// The query to run.
    pub query: String,
    /// How many rows the query must return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_rows: Option<u64>,
    /// Expected value of the first column of the first row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_value: Option<serde_json::Value>,
    /// The first column of the first row, as a number, compared with a value or with the
    /// baseline recorded when the pre-deploy snapshot was taken (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<SqlComparison>,
    /// Timeout of the probe, in milliseconds (default 3000).
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
}

impl SqlProbe {
    /// Whether the snapshot function records this probe's value at the pre-deploy snapshot.
    pub fn records_baseline(&self) -> bool {
        self.compare.as_ref().is_some_and(|c| c.baseline.is_some())
    }
}

/// `{"op": "ge", "value": 42}` or `{"op": "ge", "baseline": "pre-deploy-snapshot"}`: the probe
/// passes when `first value <op> value` (or the baseline) holds. Numbers compare by value,
/// integers exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlComparison {
    /// The comparison.
    pub op: CompareOp,
    /// A fixed value to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Number>,
    /// A recorded baseline to compare with instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<SqlBaseline>,
}

/// How a SQL probe's value compares with the expected one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompareOp {
    /// Equal.
    Eq,
    /// Greater than or equal.
    Ge,
    /// Greater than.
    Gt,
    /// Less than or equal.
    Le,
    /// Less than.
    Lt,
}

impl CompareOp {
    /// The operator as the reports print it (`=`, `≥`, …).
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ge => "≥",
            CompareOp::Gt => ">",
            CompareOp::Le => "≤",
            CompareOp::Lt => "<",
        }
    }

    /// Whether `seen <op> expected` holds, given `seen.cmp(expected)`.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CompareOp::Eq => ordering == Equal,
            CompareOp::Ge => ordering != Less,
            CompareOp::Gt => ordering == Greater,
            CompareOp::Le => ordering != Greater,
            CompareOp::Lt => ordering == Less,
        }
    }
}

/// Where a baseline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SqlBaseline {
    /// The probe's value when the pre-deploy snapshot of its database was taken (`snapshot`'s
    /// `pre-deploy` action runs the query and tags the snapshot
    /// `rollback:baseline:<probe name>`).
    PreDeploySnapshot,
}

/// Who approves a rollback, how many, and how long they have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// How long the approval task waits for a decision, in minutes (default 60); the links expire then too.
    #[serde(default = "defaults::approval_timeout_minutes")]
    pub timeout_minutes: u32,
    /// After this many minutes without a decision, the escalation topic is told (default 15).
    #[serde(default = "defaults::escalate_after_minutes")]
    pub escalate_after_minutes: u32,
    /// Who may approve or reject: email addresses, or `group:<value>` for a value of the
    /// identity provider's groups claim (needs the login; see infra/DEPLOY.md). Empty: anyone
    /// who holds the emailed link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Distinct people who must approve a rollback that restores databases (`app+database`):
    /// the first approvals are recorded, the last one lets the rollback go on.
    #[serde(default = "defaults::database_approvers")]
    pub database_approvers: u8,
    /// Whether the person who started a manual rollback (`requested_by`) may approve it
    /// alone. When false, their approval counts but someone else must approve too, and a
    /// manual start must say who it is.
    #[serde(default = "defaults::yes")]
    pub starter_may_approve_alone: bool,
    /// App-only rollbacks started by these alarms go ahead without waiting for people (see
    /// [`auto_approve`]); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approve_app_only: Option<AutoApprovePolicy>,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            timeout_minutes: defaults::approval_timeout_minutes(),
            escalate_after_minutes: defaults::escalate_after_minutes(),
            approvers: Vec::new(),
            database_approvers: defaults::database_approvers(),
            starter_may_approve_alone: true,
            auto_approve_app_only: None,
        }
    }
}

/// Most distinct approvers a plan may ask for (a rollback must stay quick to approve).
pub const MAX_DATABASE_APPROVERS: u8 = 3;
/// Most entries in `approval.approvers` (the list travels inside every approval link).
pub const MAX_APPROVERS: usize = 50;
/// Prefix of a group entry in `approval.approvers`.
pub const GROUP_PREFIX: &str = "group:";

impl ApprovalPolicy {
    /// How many distinct people must approve a decision with this scope.
    pub fn approvals_needed(&self, scope: crate::request::Scope) -> u8 {
        if scope.includes_database() {
            self.database_approvers.max(1)
        } else {
            1
        }
    }
}

/// How the rollback waits on operations that take time (backups, restores, renames, rollouts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollingPolicy {
    /// Seconds between two looks at an operation that is not done yet.
    #[serde(default = "defaults::interval_seconds")]
    pub interval_seconds: u32,
    /// How long any one wait (backup, restore, swap, rollout) may take before
    /// `Rollback.WaitTimedOut`.
    #[serde(default = "defaults::max_wait_minutes")]
    pub max_wait_minutes: u32,
    /// How long one status check (backup, restores, rollout, Terraform build) keeps looking,
    /// `interval_seconds` apart, before handing back to the state machine (0-240, default
    /// 240; 0: one look per check). Completion is seen as soon either way; a longer wait means
    /// fewer state transitions (see [`crate::wait`]).
    #[serde(default = "defaults::status_wait_seconds")]
    pub status_wait_seconds: u32,
}

impl PollingPolicy {
    /// How many polls of a repeated action (swap, revert, drill clean-up: each poll acts)
    /// fit in the wait bound (at least one).
    pub fn max_polls(&self) -> u32 {
        ((self.max_wait_minutes * 60) / self.interval_seconds.max(1)).max(1)
    }

    /// One iteration of a status loop: the check's own wait, then the definition's Wait.
    pub fn check_loop_seconds(&self) -> u32 {
        self.status_wait_seconds + self.interval_seconds.max(1)
    }

    /// How many times a status loop (backup, restores, swapped databases, rollout) checks
    /// again within the wait bound (at least one).
    pub fn max_checks(&self) -> u32 {
        self.checks_within(self.max_wait_minutes)
    }

    /// Status-loop iterations that fit in `minutes` (at least one).
    pub fn checks_within(&self, minutes: u32) -> u32 {
        ((minutes * 60) / self.check_loop_seconds()).max(1)
    }
}

impl Default for PollingPolicy {
    fn default() -> Self {
        PollingPolicy {
            interval_seconds: defaults::interval_seconds(),
            max_wait_minutes: defaults::max_wait_minutes(),
            status_wait_seconds: defaults::status_wait_seconds(),
        }
    }
}

/// Which alarm transitions may start a rollback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerPolicy {
    /// Act on INSUFFICIENT_DATA → ALARM (off by default: that is what a newly created alarm does).
    #[serde(default)]
    pub act_from_insufficient_data: bool,
    /// Act on an alarm that went into ALARM before the current release rolled out.
    #[serde(default)]
    pub act_on_alarm_before_release: bool,
    /// What an alarm-started rollback covers (a manual start says its own scope). With
    /// `app+database` the databases are resolved and backed up, and the approver still chooses
    /// between the app-only and the full rollback.
    #[serde(default)]
    pub alarm_scope: crate::request::Scope,
}

mod defaults {
    pub fn expect_status() -> u16 {
        200
    }
    pub fn timeout_ms() -> u64 {
        3000
    }
    pub fn retries() -> u32 {
        2
    }
    pub fn logs_window_minutes() -> u32 {
        15
    }
    /// A search over several groups and pages takes longer than one HTTP request.
    pub fn logs_timeout_ms() -> u64 {
        10_000
    }
    pub fn smoke_budget_seconds() -> u64 {
        60
    }
    pub fn max_settle_minutes() -> u32 {
        30
    }
    pub fn approval_timeout_minutes() -> u32 {
        60
    }
    pub fn escalate_after_minutes() -> u32 {
        15
    }
    pub fn max_build_minutes() -> u32 {
        20
    }
    pub fn artifact_prefix() -> String {
        "rollback-plans".to_owned()
    }
    /// Data and keys: a Terraform rollback must not destroy these unless a person says so.
    pub fn protected_types() -> Vec<String> {
        [
            "aws_db_instance",
            "aws_rds_cluster",
            "aws_docdb_cluster",
            "aws_dynamodb_table",
            "aws_s3_bucket",
            "aws_kms_key",
            "aws_efs_file_system",
        ]
        .map(str::to_owned)
        .to_vec()
    }
    pub fn database_approvers() -> u8 {
        1
    }
    pub fn yes() -> bool {
        true
    }
    pub fn interval_seconds() -> u32 {
        15
    }
    /// 60 with 15 s polls keeps the worst case within the history budget
    /// (`crate::history_budget`); 90 would not.
    pub fn max_wait_minutes() -> u32 {
        60
    }
    pub fn status_wait_seconds() -> u32 {
        crate::wait::STATUS_WAIT_MAX_SECONDS
    }
}

/// Identifier rules of the services the plan names.
pub mod rules {
    use super::*;

    /// The service name: a lowercase DNS label of at most 40 characters.
    pub static SERVICE: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[a-z]([a-z0-9]|-[a-z0-9])*$",
            1,
            40,
            "use 1-40 lowercase letters, digits and single hyphens, starting with a letter",
        )
    });
    /// RDS DB instance / cluster identifiers (DocumentDB follows the same rules).
    pub static RDS_IDENTIFIER: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[a-zA-Z]([a-zA-Z0-9]|-[a-zA-Z0-9])*$",
            1,
            63,
            "RDS identifiers have 1-63 letters, digits or hyphens, start with a letter, \
             and have no two consecutive hyphens and no trailing hyphen",
        )
    });
    /// ECR repository names.
    pub static ECR_REPOSITORY: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$",
            2,
            256,
            "ECR repository names have 2-256 lowercase letters, digits, and . _ - / separators",
        )
    });
    /// Image tags.
    pub static IMAGE_TAG: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[a-zA-Z0-9_][a-zA-Z0-9._-]*$",
            1,
            128,
            "image tags have 1-128 letters, digits, _ . -, and do not start with . or -",
        )
    });
    /// CodeBuild project names.
    pub static CODEBUILD_PROJECT: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
            2,
            255,
            "CodeBuild project names have 2-255 letters, digits, - and _, starting with a letter or digit",
        )
    });
    // SSM allows 1011 characters; the plan travels in the execution's state (256 KiB), and a
    // commit's parameter is a short path.
    /// SSM parameter names.
    pub static SSM_PARAMETER: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^/?[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*$",
            1,
            256,
            "SSM parameter names (here at most 256 characters) have letters, digits and _ . - between / separators",
        )
    });
    /// S3 bucket names.
    pub static S3_BUCKET: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$",
            3,
            63,
            "S3 bucket names have 3-63 lowercase letters, digits, . and -, starting and ending with a letter or digit",
        )
    });
    /// S3 key prefixes.
    pub static S3_PREFIX: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$",
            1,
            128,
            "a key prefix of safe characters between / separators, without leading or trailing /",
        )
    });
    /// Terraform resource types (`aws_db_instance`).
    pub static TERRAFORM_TYPE: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[a-z0-9]+_[a-z0-9_]+$",
            3,
            128,
            "a Terraform resource type such as aws_db_instance (provider prefix, underscore, name)",
        )
    });
    /// AWS account ids.
    pub static ACCOUNT_ID: LazyLock<Rule> =
        LazyLock::new(|| Rule::new(r"^[0-9]{12}$", 12, 12, "an AWS account id is 12 digits"));
    /// EKS cluster names.
    pub static EKS_CLUSTER: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[0-9A-Za-z][A-Za-z0-9_-]*$",
            1,
            100,
            "EKS cluster names have 1-100 letters, digits, - and _, starting with a letter or digit",
        )
    });
    /// Kubernetes namespace: DNS-1123 label.
    pub static K8S_NAMESPACE: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
            1,
            63,
            "namespaces are DNS-1123 labels: 1-63 lowercase letters, digits and '-', \
             starting and ending with a letter or digit",
        )
    });
    /// Kubernetes object name: DNS-1123 subdomain.
    pub static K8S_NAME: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
            1,
            253,
            "Kubernetes names are DNS-1123 subdomains: lowercase letters, digits, '-' and '.', \
             at most 253 characters",
        )
    });
    /// CloudWatch alarm names.
    pub static ALARM_NAME: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[^\x00-\x1f\x7f]+$",
            1,
            255,
            "alarm names have 1-255 printable characters",
        )
    });
    // Secrets Manager names have at most 512 characters; an ARN adds its prefix (partition,
    // region, account) and the 7-character suffix: 600 covers every one.
    /// Secrets Manager secret ARNs or names.
    pub static SECRET_ID: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]+)$",
            1,
            600,
            "give a Secrets Manager secret ARN or name (letters, digits and /_+=.@-)",
        )
    });
    /// CloudWatch Logs log group names.
    pub static LOG_GROUP: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[A-Za-z0-9_./#-]+$",
            1,
            MAX_LOG_GROUP_CHARS,
            "log group names have 1-512 letters, digits and _ - / . #",
        )
    });
    /// An HTTP header field name (RFC 9110 token).
    pub static HEADER_NAME: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
            1,
            MAX_HEADER_NAME_CHARS,
            "header names have 1-64 letters, digits and !#$%&'*+.^_`|~-",
        )
    });
    /// Smoke check names.
    pub static CHECK_NAME: LazyLock<Rule> = LazyLock::new(|| {
        Rule::new(
            r"^[^\x00-\x1f\x7f]+$",
            1,
            100,
            "check names have 1-100 printable characters",
        )
    });
}

impl Plan {
    /// The databases an action applies to (`filter`: the action's `databases`, `None` for
    /// all), each with its index in the plan for error paths. An empty filter or an id the
    /// plan does not have is refused, naming the entry.
    pub fn select_databases(
        &self,
        filter: Option<&[String]>,
    ) -> Result<Vec<(usize, &DatabaseRef)>, crate::RollbackError> {
        let all = self.databases.iter().enumerate();
        let Some(filter) = filter else {
            return Ok(all.collect());
        };
        if filter.is_empty() {
            return Err(crate::RollbackError::InvalidInput(
                "databases: the list is empty; omit it to mean every database in the plan".into(),
            ));
        }
        if let Some((i, id)) = filter
            .iter()
            .enumerate()
            .find(|(_, id)| !self.databases.iter().any(|d| &d.id == *id))
        {
            let known: Vec<&str> = self.databases.iter().map(|d| d.id.as_str()).collect();
            return Err(crate::RollbackError::InvalidInput(format!(
                "databases[{i}]: {id:?} is not one of the plan's databases ({})",
                known.join(", ")
            )));
        }
        Ok(all.filter(|(_, d)| filter.contains(&d.id)).collect())
    }

    /// Parses and validates a plan document. Every problem is reported, each with its path.
    pub fn from_json(text: &str) -> Result<Plan, ValidationErrors> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            let mut errors = ValidationErrors::default();
            errors.push(".", format!("not valid JSON: {e}"));
            errors
        })?;
        Plan::from_value(value)
    }

    /// Validates an already parsed JSON document as a plan.
    pub fn from_value(value: serde_json::Value) -> Result<Plan, ValidationErrors> {
        let plan: Plan = validation::from_value(value)?;
        plan.validate()?;
        Ok(plan)
    }

    /// Semantic checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        rules::SERVICE.check(&mut errors, "service", &self.service);
        self.validate_databases(&mut errors);
        self.validate_derived_names(&mut errors);
        if let Some(infrastructure) = &self.infrastructure {
            infrastructure.validate(&mut errors);
        }
        if let Some(mobile) = &self.mobile {
            mobile.validate(&mut errors);
        }
        if let Some(channels) = &self.channels {
            channels.validate(&mut errors);
        }
        self.validate_images(&mut errors);
        if let Some(cluster) = &self.cluster {
            validate_cluster(&mut errors, cluster);
        }

        if self.databases.is_empty() && self.images.is_empty() && self.cluster.is_none() {
            errors.push(
                ".",
                "the plan rolls nothing back: list databases, images or a cluster",
            );
        }

        self.validate_smoke(&mut errors);
        self.validate_policies(&mut errors);
        errors.into_result(())
    }

    /// `databases`: how many, each id valid and listed once.
    fn validate_databases(&self, errors: &mut ValidationErrors) {
        check_len(errors, "databases", &self.databases, MAX_DATABASES);
        let mut seen = HashSet::new();
        for (i, db) in self.databases.iter().enumerate() {
            let path = format!("databases[{i}].id");
            rules::RDS_IDENTIFIER.check(errors, &path, &db.id);
            if !seen.insert(db.id.to_ascii_lowercase()) {
                errors.push(path, format!("database {:?} is listed twice", db.id));
            }
        }
    }

    /// `images`: how many, each repository and tag valid, the stable tag not the release tag,
    /// each repository (per registry) listed once.
    fn validate_images(&self, errors: &mut ValidationErrors) {
        check_len(errors, "images", &self.images, MAX_IMAGES);
        let mut seen = HashSet::new();
        for (i, image) in self.images.iter().enumerate() {
            let path = format!("images[{i}]");
            rules::ECR_REPOSITORY.check(errors, &format!("{path}.repository"), &image.repository);
            rules::IMAGE_TAG.check(errors, &format!("{path}.release_tag"), &image.release_tag);
            rules::IMAGE_TAG.check(errors, &format!("{path}.stable_tag"), &image.stable_tag);
            if image.release_tag == image.stable_tag {
                errors.push(
                    format!("{path}.stable_tag"),
                    "must differ from release_tag: the stable tag is what the release tag is reset to",
                );
            }
            if let Some(registry) = &image.registry_id {
                rules::ACCOUNT_ID.check(errors, &format!("{path}.registry_id"), registry);
            }
            if !seen.insert((image.registry_id.clone(), image.repository.clone())) {
                errors.push(
                    format!("{path}.repository"),
                    format!("repository {:?} is listed twice", image.repository),
                );
            }
        }
    }

    /// The copies a rollback makes of each database (moved aside, restored, drill) are named
    /// from its id (`ids::derived_identifier`); no two databases may share such a name, and no
    /// database may be named like another's copy (a rollback would take one for the other).
    fn validate_derived_names(&self, errors: &mut ValidationErrors) {
        use crate::ids::{self, Derived};
        // Invalid and repeated ids are reported above; a derived name needs a valid id.
        let mut seen = HashSet::new();
        let dbs: Vec<(usize, &DatabaseRef)> = self
            .databases
            .iter()
            .enumerate()
            .filter(|(_, db)| rules::RDS_IDENTIFIER.is_valid(&db.id))
            .filter(|(_, db)| seen.insert(db.id.to_ascii_lowercase()))
            .collect();
        let rename = |db: &DatabaseRef| {
            let noun = if db.kind.is_cluster() {
                "cluster"
            } else {
                "instance"
            };
            format!(
                "aws rds modify-db-{noun} --db-{noun}-identifier {} \
                 --new-db-{noun}-identifier NEW-ID --apply-immediately",
                db.id
            )
        };
        for (n, &(j, b)) in dbs.iter().enumerate() {
            let path = format!("databases[{j}].id");
            for &(i, a) in &dbs[..n] {
                for kind in Derived::ALL {
                    let stem = ids::derived_stem(&b.id, kind);
                    if stem.eq_ignore_ascii_case(&ids::derived_stem(&a.id, kind)) {
                        errors.push(
                            &path,
                            format!(
                                "its {} would be the same as that of databases[{i}] ({}): \
                                 {stem}<execution>, so a rollback could take one database's \
                                 copy for the other's. Give one of the two databases another \
                                 identifier ({}) and update the plan",
                                kind.describe(),
                                a.id,
                                rename(b)
                            ),
                        );
                        break;
                    }
                }
            }
            for &(i, a) in &dbs {
                if i == j {
                    continue;
                }
                if let Some(kind) = ids::named_like_copy_of(&b.id, &a.id) {
                    errors.push(
                        &path,
                        format!(
                            "{} is named like a copy a rollback makes of databases[{i}] ({}): \
                             its {} {}<execution>, so a rollback could take this database for \
                             its own copy. If it is left over from an earlier rollback, remove \
                             it from the plan; if it is a database the service uses, give it \
                             another identifier ({}) and update the plan",
                            b.id,
                            a.id,
                            kind.describe(),
                            ids::derived_stem(&a.id, kind),
                            rename(b)
                        ),
                    );
                }
            }
        }
    }

    /// `smoke`: the HTTP and logs checks, the SQL probes, then the alarms and time limits.
    fn validate_smoke(&self, errors: &mut ValidationErrors) {
        validate_smoke_http_and_logs(errors, &self.smoke);
        self.validate_sql_probes(errors);
        validate_smoke_alarms_and_limits(errors, &self.smoke);
    }

    /// `smoke.sql`: how many, each probe, then baselines recorded under distinct names.
    fn validate_sql_probes(&self, errors: &mut ValidationErrors) {
        let sql = &self.smoke.sql;
        check_len(errors, "smoke.sql", sql, MAX_SQL_PROBES);
        for (i, probe) in sql.iter().enumerate() {
            self.validate_sql_probe(errors, &format!("smoke.sql[{i}]"), probe);
        }
        let mut baselines = HashSet::new();
        for (i, probe) in sql.iter().enumerate() {
            if probe.records_baseline()
                && !baselines.insert((probe.database.as_str(), probe.name.as_str()))
            {
                errors.push(
                    format!("smoke.sql[{i}].name"),
                    format!(
                        "another probe of {} records its baseline under the same name (the \
                         snapshot tag {}<name>); give each probe with a baseline its own name",
                        validation::truncate(&probe.database, 63),
                        crate::contract::snapshot::tags::BASELINE_PREFIX
                    ),
                );
            }
        }
    }

    /// One SQL probe: its name, a database of this plan, its secret, query, expectation,
    /// comparison and timeout.
    fn validate_sql_probe(&self, errors: &mut ValidationErrors, path: &str, probe: &SqlProbe) {
        rules::CHECK_NAME.check(errors, &format!("{path}.name"), &probe.name);
        if !self.databases.iter().any(|db| db.id == probe.database) {
            errors.push(
                format!("{path}.database"),
                format!(
                    "{:?} is not one of the plan's databases ({})",
                    validation::truncate(&probe.database, 80),
                    self.databases
                        .iter()
                        .map(|d| validation::truncate(&d.id, 63))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        rules::SECRET_ID.check(errors, &format!("{path}.secret_arn"), &probe.secret_arn);
        if probe.query.trim().is_empty() {
            errors.push(format!("{path}.query"), "give the SQL query to run");
        }
        if probe.expect_rows.is_none() && probe.expect_value.is_none() && probe.compare.is_none() {
            errors.push(
                format!("{path}.expect_rows"),
                "give expect_rows, expect_value or compare, or the probe cannot fail",
            );
        }
        if let Some(compare) = &probe.compare {
            validate_sql_comparison(errors, path, probe, compare);
        }
        check_timeout(errors, &format!("{path}.timeout_ms"), probe.timeout_ms);
    }

    fn validate_policies(&self, errors: &mut ValidationErrors) {
        let approval = &self.approval;
        if !(1..=7 * 24 * 60).contains(&approval.timeout_minutes) {
            errors.push(
                "approval.timeout_minutes",
                "use 1-10080 minutes (up to a week)",
            );
        }
        if approval.escalate_after_minutes == 0
            || approval.escalate_after_minutes >= approval.timeout_minutes
        {
            errors.push(
                "approval.escalate_after_minutes",
                format!(
                    "must be at least 1 and less than approval.timeout_minutes ({})",
                    approval.timeout_minutes
                ),
            );
        }
        validate_approvers(approval, errors);
        if self.on_failure == OnFailure::Resume
            && self
                .cluster
                .as_ref()
                .is_none_or(|c| c.deployments.is_empty())
        {
            errors.push(
                "on_failure",
                "`resume` scales the paused deployments back up, but the plan lists none; \
                 remove on_failure or add cluster.deployments",
            );
        }
        let polling = &self.polling;
        if !(1..=3600).contains(&polling.interval_seconds) {
            errors.push("polling.interval_seconds", "use 1-3600 seconds");
        }
        if !(1..=24 * 60).contains(&polling.max_wait_minutes) {
            errors.push("polling.max_wait_minutes", "use 1-1440 minutes");
        }
        if polling.status_wait_seconds > crate::wait::STATUS_WAIT_MAX_SECONDS {
            errors.push(
                "polling.status_wait_seconds",
                format!(
                    "use 0-{} seconds: a status check must answer within its function's {} s \
                     timeout",
                    crate::wait::STATUS_WAIT_MAX_SECONDS,
                    crate::wait::STATUS_FUNCTION_TIMEOUT_SECONDS
                ),
            );
        }
        // Only for limits that are otherwise valid: the message suggests values that fit.
        if !errors.mentions("polling.interval_seconds")
            && !errors.mentions("polling.max_wait_minutes")
            && !errors.mentions("polling.status_wait_seconds")
            && !errors.mentions("smoke.max_settle_minutes")
            && let Some(message) = crate::history_budget::over_budget_message(self)
        {
            errors.push("polling", message);
        }
    }

    /// The plan database with this `id`.
    pub fn database(&self, id: &str) -> Option<&DatabaseRef> {
        self.databases.iter().find(|d| d.id == id)
    }
}

/// `cluster`: its name and namespace, at least one deployment, each listed once, its GitOps
/// repositories.
fn validate_cluster(errors: &mut ValidationErrors, cluster: &ClusterRef) {
    rules::EKS_CLUSTER.check(errors, "cluster.name", &cluster.name);
    rules::K8S_NAMESPACE.check(errors, "cluster.namespace", &cluster.namespace);
    if cluster.deployments.is_empty() {
        errors.push(
            "cluster.deployments",
            "list at least one deployment to undo",
        );
    }
    check_len(
        errors,
        "cluster.deployments",
        &cluster.deployments,
        MAX_DEPLOYMENTS,
    );
    let mut seen = HashSet::new();
    for (i, name) in cluster.deployments.iter().enumerate() {
        let path = format!("cluster.deployments[{i}]");
        rules::K8S_NAME.check(errors, &path, name);
        if !seen.insert(name) {
            errors.push(path, format!("deployment {name:?} is listed twice"));
        }
    }
    validate_gitops(errors, &cluster.gitops);
}

/// `smoke.http` and `smoke.logs`: how many, each check, and the bytes their details (and the
/// SQL probes' comparisons) take in the execution's state.
fn validate_smoke_http_and_logs(errors: &mut ValidationErrors, smoke: &SmokeChecks) {
    check_len(errors, "smoke.http", &smoke.http, MAX_HTTP_CHECKS);
    for (i, check) in smoke.http.iter().enumerate() {
        check.validate(errors, &format!("smoke.http[{i}]"));
    }
    check_len(errors, "smoke.logs", &smoke.logs, MAX_LOGS_CHECKS);
    for (i, check) in smoke.logs.iter().enumerate() {
        check.validate(errors, &format!("smoke.logs[{i}]"));
    }
    let detail = smoke.detail_bytes();
    if detail > MAX_SMOKE_DETAIL_BYTES {
        errors.push(
            "smoke",
            format!(
                "the HTTP checks' headers, bodies, expect_json and credentials_secret, \
                 the logs checks' log_groups and filter patterns and the SQL probes' \
                 compare take {detail} bytes as JSON; at most {MAX_SMOKE_DETAIL_BYTES} (the plan travels in the \
                 execution's state): shorten them or drop some"
            ),
        );
    }
}

/// `smoke.alarms`, `smoke.budget_seconds` and `smoke.max_settle_minutes`.
fn validate_smoke_alarms_and_limits(errors: &mut ValidationErrors, smoke: &SmokeChecks) {
    check_len(errors, "smoke.alarms", &smoke.alarms, MAX_ALARMS);
    for (i, alarm) in smoke.alarms.iter().enumerate() {
        rules::ALARM_NAME.check(errors, &format!("smoke.alarms[{i}]"), alarm);
    }
    if !(1..=900).contains(&smoke.budget_seconds) {
        errors.push(
            "smoke.budget_seconds",
            "use 1-900 seconds (a Lambda runs at most 15 minutes)",
        );
    }
    let settle = crate::history_budget::MAX_SETTLE_MINUTES_RANGE;
    if !settle.contains(&smoke.max_settle_minutes) {
        errors.push(
            "smoke.max_settle_minutes",
            format!(
                "use {}-{} minutes: the longest the rollback re-runs failing smoke tests \
                 while the alarms settle (default 30)",
                settle.start(),
                settle.end()
            ),
        );
    }
}

/// `cluster.gitops`: each entry names its object with its kind's field (only that one), as a
/// Kubernetes name in a valid namespace, at most once.
fn validate_gitops(errors: &mut ValidationErrors, gitops: &[GitOpsRef]) {
    check_len(errors, "cluster.gitops", gitops, MAX_GITOPS);
    let mut seen = HashSet::new();
    for (i, g) in gitops.iter().enumerate() {
        let path = format!("cluster.gitops[{i}]");
        let (field, other) = match g.kind {
            GitOpsKind::Argocd => ("application", ("kustomization", &g.kustomization)),
            GitOpsKind::Flux => ("kustomization", ("application", &g.application)),
        };
        if other.1.is_some() {
            errors.push(
                format!("{path}.{}", other.0),
                format!(
                    "a {} entry names its object with `{field}`, not `{}`",
                    g.kind.as_str(),
                    other.0
                ),
            );
        }
        if let Some(name) = g.name() {
            rules::K8S_NAME.check(errors, &format!("{path}.{field}"), name);
        }
        if let Some(ns) = &g.namespace {
            rules::K8S_NAMESPACE.check(errors, &format!("{path}.namespace"), ns);
        }
        if let Some(name) = g.name()
            && !seen.insert((g.kind, g.namespace().to_owned(), name.to_owned()))
        {
            errors.push(
                format!("{path}.{field}"),
                format!("{} is listed twice", g.describe()),
            );
        }
    }
}

impl SmokeChecks {
    /// Bytes, as JSON, of the optional fields [`MAX_SMOKE_DETAIL_BYTES`] bounds: each HTTP
    /// check's `headers`, `body`, `credentials_secret` and `expect_json`, each logs check's
    /// `log_groups` and `filter_pattern`, each SQL probe's `compare` (their values, with their
    /// brackets and quotes).
    pub fn detail_bytes(&self) -> usize {
        let http: usize = self
            .http
            .iter()
            .map(|c| {
                let headers = if c.headers.is_empty() {
                    0
                } else {
                    json_bytes(&c.headers)
                };
                let json = if c.expect_json.is_empty() {
                    0
                } else {
                    json_bytes(&c.expect_json)
                };
                let body = c.body.as_ref().map_or(0, json_bytes);
                let secret = c.credentials_secret.as_deref().map_or(0, json_bytes);
                headers + json + body + secret
            })
            .sum();
        let logs: usize = self
            .logs
            .iter()
            .map(|c| json_bytes(&c.log_groups) + json_bytes(&c.filter_pattern))
            .sum();
        let sql: usize = self
            .sql
            .iter()
            .map(|p| p.compare.as_ref().map_or(0, json_bytes))
            .sum();
        http + logs + sql
    }
}

/// Serialized size: what a value takes in the execution's state.
fn json_bytes<T: Serialize + ?Sized>(value: &T) -> usize {
    serde_json::to_string(value).map_or(0, |text| text.len())
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// A request body as sent: a JSON string as it is, any other value serialized.
pub fn body_text(body: &serde_json::Value) -> String {
    match body {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Request headers the plan may not set: credentials (they come from `credentials_secret`)
/// and the ones the HTTP client writes itself.
const REFUSED_HEADERS: &[(&str, &str)] = &[
    (
        "authorization",
        "credentials come from credentials_secret (a Secrets Manager secret), never the plan",
    ),
    (
        "proxy-authorization",
        "credentials come from credentials_secret (a Secrets Manager secret), never the plan",
    ),
    ("host", "the HTTP client sets it from the url"),
    ("content-length", "the HTTP client sets it from the body"),
    ("transfer-encoding", "the HTTP client sets it"),
    ("connection", "the HTTP client manages connections"),
];

impl HttpCheck {
    fn validate(&self, errors: &mut ValidationErrors, path: &str) {
        rules::CHECK_NAME.check(errors, &format!("{path}.name"), &self.name);
        match url::Url::parse(&self.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => errors.push(
                format!("{path}.url"),
                format!(
                    "{:?} is not an absolute http(s) URL, e.g. https://api.example.com/health",
                    validation::truncate(&self.url, 80)
                ),
            ),
        }
        if !(100..=599).contains(&self.expect_status) {
            errors.push(
                format!("{path}.expect_status"),
                format!("{} is not an HTTP status; use 100-599", self.expect_status),
            );
        }
        if let Some(pattern) = &self.body_regex
            && let Err(e) = regex::Regex::new(pattern)
        {
            errors.push(
                format!("{path}.body_regex"),
                format!("not a valid regex: {e}"),
            );
        }
        check_timeout(errors, &format!("{path}.timeout_ms"), self.timeout_ms);
        if self.retries > 10 {
            errors.push(format!("{path}.retries"), "at most 10 retries");
        }
        self.validate_request(errors, path);
        self.validate_expect_json(errors, path);
    }

    /// Method, headers, body and credentials.
    fn validate_request(&self, errors: &mut ValidationErrors, path: &str) {
        if self.headers.len() > MAX_HTTP_HEADERS {
            errors.push(
                format!("{path}.headers"),
                format!(
                    "has {} headers; at most {MAX_HTTP_HEADERS} are allowed",
                    self.headers.len()
                ),
            );
        }
        let mut seen = HashSet::new();
        for (name, value) in &self.headers {
            let at = format!("{path}.headers.{}", validation::truncate(name, 64));
            rules::HEADER_NAME.check(errors, &at, name);
            let lower = name.to_ascii_lowercase();
            if let Some((_, why)) = REFUSED_HEADERS.iter().find(|(h, _)| *h == lower) {
                errors.push(&at, format!("remove it: {why}"));
            }
            if !seen.insert(lower) {
                errors.push(&at, "listed twice (header names ignore case)");
            }
            if chars(value) > MAX_HEADER_VALUE_CHARS || value.chars().any(|c| c.is_control()) {
                errors.push(
                    &at,
                    format!(
                        "header values have at most {MAX_HEADER_VALUE_CHARS} characters and no \
                         control characters (no line breaks)"
                    ),
                );
            }
        }
        if let Some(body) = &self.body {
            if !self.method.allows_body() {
                errors.push(
                    format!("{path}.body"),
                    format!(
                        "a {} request has no body: set method to POST, PUT, PATCH or DELETE",
                        self.method.as_str()
                    ),
                );
            }
            let len = chars(&body_text(body));
            if len > MAX_HTTP_BODY_CHARS {
                errors.push(
                    format!("{path}.body"),
                    format!("{len} characters as sent; at most {MAX_HTTP_BODY_CHARS}"),
                );
            }
        }
        if let Some(secret) = &self.credentials_secret {
            rules::SECRET_ID.check(errors, &format!("{path}.credentials_secret"), secret);
        }
    }

    fn validate_expect_json(&self, errors: &mut ValidationErrors, path: &str) {
        if self.expect_json.is_empty() {
            return;
        }
        check_len(
            errors,
            &format!("{path}.expect_json"),
            &self.expect_json,
            MAX_JSON_EXPECTATIONS,
        );
        if self.method == HttpMethod::Head {
            errors.push(
                format!("{path}.expect_json"),
                "a HEAD response has no body: use GET (or the method the endpoint answers JSON to)",
            );
        }
        for (j, expectation) in self.expect_json.iter().enumerate() {
            let at = format!("{path}.expect_json[{j}]");
            if let Err(why) = json_pointer(&expectation.pointer) {
                errors.push(format!("{at}.pointer"), why);
            }
            let len = chars(&expectation.equals.to_string());
            if len > MAX_JSON_EXPECTED_CHARS {
                errors.push(
                    format!("{at}.equals"),
                    format!(
                        "{len} characters as JSON; at most {MAX_JSON_EXPECTED_CHARS} (compare a \
                         smaller part of the response)"
                    ),
                );
            }
        }
    }
}

/// A JSON pointer (RFC 6901): empty (the whole document) or `/`-separated reference tokens in
/// which `~` only starts `~0` (`~`) or `~1` (`/`).
fn json_pointer(pointer: &str) -> Result<(), String> {
    let shown = validation::truncate(pointer, 80);
    if chars(pointer) > MAX_JSON_POINTER_CHARS {
        return Err(format!(
            "{shown:?} is longer than {MAX_JSON_POINTER_CHARS} characters"
        ));
    }
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "{shown:?} is not a JSON pointer: start it with /, e.g. /status or /checks/0/name"
        ));
    }
    let mut rest = pointer;
    while let Some(at) = rest.find('~') {
        if !matches!(rest.as_bytes().get(at + 1), Some(b'0' | b'1')) {
            return Err(format!(
                "{shown:?}: in a JSON pointer ~ is written ~0 and / inside a key ~1"
            ));
        }
        rest = &rest[at + 2..];
    }
    Ok(())
}

impl LogsCheck {
    fn validate(&self, errors: &mut ValidationErrors, path: &str) {
        rules::CHECK_NAME.check(errors, &format!("{path}.name"), &self.name);
        let groups = format!("{path}.log_groups");
        if self.log_groups.is_empty() {
            errors.push(
                &groups,
                "list the log groups to search, e.g. /aws/containerinsights/<cluster>/application",
            );
        }
        check_len(errors, &groups, &self.log_groups, MAX_LOG_GROUPS_PER_CHECK);
        let mut seen = HashSet::new();
        for (j, group) in self.log_groups.iter().enumerate() {
            let at = format!("{groups}[{j}]");
            rules::LOG_GROUP.check(errors, &at, group);
            if !seen.insert(group) {
                errors.push(at, format!("log group {group:?} is listed twice"));
            }
        }
        let pattern = &self.filter_pattern;
        if pattern.trim().is_empty()
            || chars(pattern) > MAX_FILTER_PATTERN_CHARS
            || pattern.chars().any(|c| c.is_control())
        {
            errors.push(
                format!("{path}.filter_pattern"),
                format!(
                    "give a CloudWatch Logs filter pattern of 1-{MAX_FILTER_PATTERN_CHARS} \
                     characters on one line, e.g. ERROR, ?ERROR ?Exception or \
                     {{ $.level = \"error\" }}"
                ),
            );
        }
        if self.max_matches > MAX_LOG_MATCHES {
            errors.push(
                format!("{path}.max_matches"),
                format!("use 0-{MAX_LOG_MATCHES} (0, the default: any match fails the check)"),
            );
        }
        if !(1..=MAX_LOGS_WINDOW_MINUTES).contains(&self.window_minutes) {
            errors.push(
                format!("{path}.window_minutes"),
                format!(
                    "use 1-{MAX_LOGS_WINDOW_MINUTES} minutes: how far before the smoke run the \
                     search starts (never before the rollout finished)"
                ),
            );
        }
        check_timeout(errors, &format!("{path}.timeout_ms"), self.timeout_ms);
    }
}

fn check_timeout(errors: &mut ValidationErrors, path: &str, timeout_ms: u64) {
    if !(1..=60_000).contains(&timeout_ms) {
        errors.push(path, "use 1-60000 milliseconds");
    }
}

/// Longest name of a probe with a baseline: the snapshot tag `rollback:baseline:<name>` fits
/// RDS's 128-character tag keys (check names have at most 100 characters anyway).
pub const MAX_BASELINE_PROBE_NAME_CHARS: usize =
    128 - crate::contract::snapshot::tags::BASELINE_PREFIX.len();

/// RDS tag keys: letters, digits, spaces and `_ . : / = + - @`.
static BASELINE_PROBE_NAME: LazyLock<Rule> = LazyLock::new(|| {
    Rule::new(
        r"^[\p{L}\p{Z}\p{N}_.:/=+@-]+$",
        1,
        MAX_BASELINE_PROBE_NAME_CHARS,
        "a probe with a baseline is recorded as the snapshot tag rollback:baseline:<name> \
         (an RDS tag key), so its name has only letters, digits, spaces and _ . : / = + - @",
    )
});

fn validate_sql_comparison(
    errors: &mut ValidationErrors,
    path: &str,
    probe: &SqlProbe,
    compare: &SqlComparison,
) {
    match (&compare.value, &compare.baseline) {
        (Some(_), Some(_)) => errors.push(
            format!("{path}.compare"),
            "give value or baseline, not both: the first value is compared with one of them",
        ),
        (None, None) => errors.push(
            format!("{path}.compare"),
            "give value (a number, e.g. {\"op\": \"ge\", \"value\": 42}) or baseline \
             (\"pre-deploy-snapshot\": the value recorded when the pre-deploy snapshot was \
             taken)",
        ),
        (Some(value), None) => {
            if value.as_f64().is_none_or(|f| !f.is_finite()) {
                errors.push(format!("{path}.compare.value"), "give a finite number");
            }
        }
        (None, Some(SqlBaseline::PreDeploySnapshot)) => {
            BASELINE_PROBE_NAME.check(errors, &format!("{path}.name"), &probe.name);
        }
    }
}

fn validate_approvers(approval: &ApprovalPolicy, errors: &mut ValidationErrors) {
    if let Some(policy) = &approval.auto_approve_app_only {
        policy.validate(errors);
    }
    if !(1..=MAX_DATABASE_APPROVERS).contains(&approval.database_approvers) {
        errors.push(
            "approval.database_approvers",
            format!(
                "use 1-{MAX_DATABASE_APPROVERS}: how many distinct people must approve a \
                 rollback that restores databases"
            ),
        );
    }
    if approval.approvers.len() > MAX_APPROVERS {
        errors.push(
            "approval.approvers",
            format!("at most {MAX_APPROVERS} entries; name a group (`group:<value>`) instead"),
        );
    }
    for (i, entry) in approval.approvers.iter().enumerate() {
        if let Err(why) = approver_entry(entry) {
            errors.push(format!("approval.approvers[{i}]"), why);
        }
    }
    if !approval.approvers.is_empty()
        && approval
            .approvers
            .iter()
            .all(|a| !a.starts_with(GROUP_PREFIX))
    {
        let people = approval
            .approvers
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let needed = usize::from(approval.database_approvers)
            + usize::from(!approval.starter_may_approve_alone);
        if people < needed.max(1) {
            errors.push(
                "approval.approvers",
                format!(
                    "lists {people} distinct people, but a decision may need {needed} \
                     (database_approvers, plus someone besides the starter when \
                     starter_may_approve_alone is false): add approvers or a group"
                ),
            );
        }
    }
}

/// One `approval.approvers` entry: an email address or `group:<value>`.
fn approver_entry(entry: &str) -> Result<(), String> {
    if let Some(group) = entry.strip_prefix(GROUP_PREFIX) {
        return if !group.is_empty()
            && group.len() <= 200
            && !group.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            Ok(())
        } else {
            Err(
                "a group entry is `group:<value>`: the value as the groups claim carries it, \
                 without spaces"
                    .into(),
            )
        };
    }
    if crate::approval_link::is_email(entry) {
        Ok(())
    } else {
        Err(format!(
            "{entry:?} is neither an email address nor `group:<value>`"
        ))
    }
}

impl InfrastructureRef {
    fn validate(&self, errors: &mut ValidationErrors) {
        let at = |field: &str| format!("infrastructure.{field}");
        rules::CODEBUILD_PROJECT.check(errors, &at("codebuild_project"), &self.codebuild_project);
        rules::SSM_PARAMETER.check(
            errors,
            &at("stable_commit_parameter"),
            &self.stable_commit_parameter,
        );
        if let Some(current) = &self.current_commit_parameter {
            rules::SSM_PARAMETER.check(errors, &at("current_commit_parameter"), current);
        }
        rules::S3_BUCKET.check(errors, &at("artifact_bucket"), &self.artifact_bucket);
        rules::S3_PREFIX.check(errors, &at("artifact_prefix"), &self.artifact_prefix);
        if !(1..=60).contains(&self.max_build_minutes) {
            errors.push(
                at("max_build_minutes"),
                format!(
                    "{} is out of range: give 1-60 minutes (how long a Terraform plan or apply \
                     build may take)",
                    self.max_build_minutes
                ),
            );
        }
        for (i, kind) in self.protected_types.iter().enumerate() {
            rules::TERRAFORM_TYPE.check(
                errors,
                &format!("infrastructure.protected_types[{i}]"),
                kind,
            );
        }
    }
}

#[cfg(test)]
mod smoke_tests {
    use serde_json::{Value, json};

    use super::*;

    fn plan(smoke: Value) -> Result<Plan, ValidationErrors> {
        Plan::from_value(json!({
            "service": "svc",
            "images": [{"repository": "svc/api", "release_tag": "prod", "stable_tag": "stable"}],
            "smoke": smoke,
        }))
    }

    fn errors(smoke: Value) -> Vec<(String, String)> {
        plan(smoke)
            .expect_err("the smoke section should be refused")
            .iter()
            .map(|e| (e.path.clone(), e.message.clone()))
            .collect()
    }

    fn assert_refused(smoke: Value, path: &str, says: &str) {
        let errors = errors(smoke);
        assert!(
            errors.iter().any(|(p, m)| p == path && m.contains(says)),
            "expected {path}: …{says}…, got {errors:?}"
        );
    }

    fn http(extra: Value) -> Value {
        let mut check = json!({"name": "h", "url": "https://api.example.com/x"});
        check
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"http": [check]})
    }

    fn logs(extra: Value) -> Value {
        let mut check = json!({"name": "l", "log_groups": ["/aws/containerinsights/c/application"],
                               "filter_pattern": "ERROR"});
        check
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"logs": [check]})
    }

    #[test]
    fn new_fields_have_their_defaults_and_stay_out_of_old_plans() {
        let p = plan(json!({"http": [{"name": "h", "url": "https://a.example.com/"}]})).unwrap();
        let h = &p.smoke.http[0];
        assert_eq!(h.method, HttpMethod::Get);
        assert!(h.headers.is_empty() && h.body.is_none() && h.credentials_secret.is_none());
        assert!(h.expect_json.is_empty() && p.smoke.logs.is_empty());
        // A plan without the new fields serializes as before (fingerprints do not change).
        let text = serde_json::to_string(&p.smoke).unwrap();
        for field in [
            "method",
            "headers",
            "body",
            "credentials_secret",
            "expect_json",
            "logs",
        ] {
            assert!(!text.contains(&format!("\"{field}\"")), "{field} in {text}");
        }
        let l = plan(logs(json!({}))).unwrap().smoke.logs[0].clone();
        assert_eq!(
            (l.max_matches, l.window_minutes, l.timeout_ms),
            (0, 15, 10_000)
        );
    }

    #[test]
    fn full_http_and_logs_checks_validate() {
        let p = plan(json!({
            "http": [{"name": "quote", "url": "https://api.example.com/quote", "method": "POST",
                      "headers": {"X-Probe": "smoke", "Content-Type": "application/json"},
                      "body": {"dry_run": true}, "credentials_secret": "svc/credit-score-probe",
                      "expect_json": [{"pointer": "/status", "equals": "ok"},
                                      {"pointer": "/a~1b/~0c", "equals": null}]}],
            "logs": [{"name": "errors", "log_groups": ["/aws/containerinsights/c/application"],
                      "filter_pattern": "{ $.level = \"error\" }", "max_matches": 5,
                      "window_minutes": 30, "timeout_ms": 20000}]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.smoke.http[0].method.as_str(), "POST");
        assert_eq!(p.smoke.http[0].expect_json[1].equals, Value::Null);
    }

    #[test]
    fn http_requests_are_checked_with_field_paths() {
        assert_refused(
            http(json!({"headers": {"Authorization": "Bearer x"}})),
            "smoke.http[0].headers.Authorization",
            "credentials_secret",
        );
        assert_refused(
            http(json!({"headers": {"x-a": "1", "X-A": "2"}})),
            "smoke.http[0].headers.x-a",
            "listed twice",
        );
        assert_refused(
            http(json!({"headers": {"bad name": "1"}})),
            "smoke.http[0].headers.bad name",
            "header names",
        );
        assert_refused(
            http(json!({"headers": {"X-A": "a\r\nInjected: 1"}})),
            "smoke.http[0].headers.X-A",
            "no line breaks",
        );
        assert_refused(
            http(json!({"body": "x"})),
            "smoke.http[0].body",
            "set method to POST",
        );
        assert_refused(
            http(json!({"method": "POST", "body": "x".repeat(MAX_HTTP_BODY_CHARS + 1)})),
            "smoke.http[0].body",
            "at most 4096",
        );
        assert_refused(
            http(json!({"method": "TRACE"})),
            "smoke.http[0].method",
            "unknown variant",
        );
        assert_refused(
            http(json!({"credentials_secret": "not a secret id"})),
            "smoke.http[0].credentials_secret",
            "Secrets Manager",
        );
        let many: serde_json::Map<String, Value> =
            (0..11).map(|i| (format!("X-{i}"), json!("v"))).collect();
        assert_refused(
            http(json!({"headers": many})),
            "smoke.http[0].headers",
            "at most 10",
        );
    }

    #[test]
    fn json_expectations_are_checked() {
        assert_refused(
            http(json!({"expect_json": [{"pointer": "status", "equals": "ok"}]})),
            "smoke.http[0].expect_json[0].pointer",
            "start it with /",
        );
        assert_refused(
            http(json!({"expect_json": [{"pointer": "/a~2", "equals": 1}]})),
            "smoke.http[0].expect_json[0].pointer",
            "~0",
        );
        assert_refused(
            http(json!({"expect_json": [{"pointer": "/a"}]})),
            "smoke.http[0].expect_json[0]",
            "missing field `equals`",
        );
        assert_refused(
            http(json!({"method": "HEAD", "expect_json": [{"pointer": "/a", "equals": 1}]})),
            "smoke.http[0].expect_json",
            "HEAD response has no body",
        );
        assert_refused(
            http(json!({"expect_json": [{"pointer": "/a", "equals": "x".repeat(600)}]})),
            "smoke.http[0].expect_json[0].equals",
            "at most 512",
        );
    }

    #[test]
    fn logs_checks_are_checked() {
        assert_refused(
            logs(json!({"log_groups": []})),
            "smoke.logs[0].log_groups",
            "list the log groups",
        );
        assert_refused(
            logs(json!({"log_groups": ["/a", "/a"]})),
            "smoke.logs[0].log_groups[1]",
            "listed twice",
        );
        assert_refused(
            logs(json!({"log_groups": ["/app logs"]})),
            "smoke.logs[0].log_groups[0]",
            "log group names",
        );
        assert_refused(
            logs(json!({"log_groups": ["/g".repeat(257)]})),
            "smoke.logs[0].log_groups[0]",
            "1-512",
        );
        assert_refused(
            logs(json!({"log_groups": ["/a", "/b", "/c", "/d", "/e", "/f"]})),
            "smoke.logs[0].log_groups",
            "at most 5",
        );
        for pattern in [json!(""), json!("x".repeat(1025)), json!("ERROR\nWARN")] {
            assert_refused(
                logs(json!({"filter_pattern": pattern})),
                "smoke.logs[0].filter_pattern",
                "1-1024 characters on one line",
            );
        }
        assert_refused(
            logs(json!({"max_matches": 1001})),
            "smoke.logs[0].max_matches",
            "0-1000",
        );
        assert_refused(
            logs(json!({"window_minutes": 0})),
            "smoke.logs[0].window_minutes",
            "1-1440",
        );
        assert_refused(
            logs(json!({"timeout_ms": 0})),
            "smoke.logs[0].timeout_ms",
            "1-60000",
        );
        let four: Vec<Value> = (0..4)
            .map(|i| json!({"name": format!("l{i}"), "log_groups": ["/g"], "filter_pattern": "E"}))
            .collect();
        assert_refused(json!({"logs": four}), "smoke.logs", "at most 3");
    }

    #[test]
    fn the_detail_budget_bounds_the_plan_in_the_state() {
        // 1500 characters: 1502 bytes as a JSON string.
        let big = |i: usize| {
            json!({"name": format!("h{i}"), "url": "https://a.example.com/", "method": "POST",
                   "body": "b".repeat(1500)})
        };
        let two = json!({"http": [big(0), big(1)]});
        assert!(plan(two.clone()).is_ok(), "{:?}", plan(two).err());
        assert_refused(
            json!({"http": [big(0), big(1), big(2)]}),
            "smoke",
            "take 4506 bytes as JSON; at most 3072",
        );
        // Bytes, not characters: quotes and line breaks are escaped, é takes two.
        let escaped = json!({"http": [{"name": "h", "url": "https://a.example.com/",
            "method": "POST", "body": "\"é\n".repeat(500)}]});
        assert_eq!(plan(escaped).unwrap().smoke.detail_bytes(), 3002);
        // The fields' whole JSON counts: braces, keys and separators too.
        let p = plan(
            json!({"http": [{"name": "h", "url": "https://a.example.com/",
            "headers": {"X-A": "1"}, "expect_json": [{"pointer": "/s", "equals": "ok"}]}]}),
        )
        .unwrap();
        let expected = r#"{"X-A":"1"}"#.len() + r#"[{"pointer":"/s","equals":"ok"}]"#.len();
        assert_eq!(p.smoke.detail_bytes(), expected);
    }
}
