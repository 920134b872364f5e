//! The one place that maps a source database's description to the settings of its restored
//! copy: what goes into the restore call, what goes into each cluster member's
//! `CreateDBInstance`, and what only `ModifyDB*` can set afterwards (the follow-up).
//!
//! Rules, per field: copy what the source has and the call accepts; send nothing the source
//! does not report (RDS then applies its own default, as for the source). A drill's scratch copy
//! keeps deletion protection and Multi-AZ off. Keys:
//! - A restore from a snapshot is encrypted with the snapshot's KMS key (the instance restore
//!   call takes no key; the cluster call is not given one), i.e. the key the source had when the
//!   snapshot was taken.
//! - Point in time: instances keep the source's key (the call takes none); clusters are given
//!   the source's `KmsKeyId` explicitly.
//!
//! DocumentDB takes fewer fields (its API rejects the others): on the cluster only subnet
//! group, security groups, cluster parameter group, port, deletion protection, CloudWatch log
//! exports, storage type, KMS key and tags; backup retention / window and the maintenance window
//! are set by the follow-up; its instances take class, maintenance window, CA certificate,
//! Performance Insights (enabled, key), promotion tier and tags.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};
use rollback_core::RollbackError;
use rollback_core::plan::DatabaseKind;

use crate::db::{describe_cluster, describe_instance, error_code};

/// gp3 storage below this size has fixed baseline IOPS / throughput that RDS refuses to be
/// given explicitly (MySQL, MariaDB, PostgreSQL; Oracle: 200 GiB).
const GP3_PROVISIONED_FROM_GIB: i32 = 400;

/// The source's own tags for the copy: `aws:` keys are reserved and `rollback:` keys describe
/// the source's history, not the copy's; ours are added after and win on a clash.
pub fn merged_tags(source: &[Tag], ours: Vec<Tag>) -> Vec<Tag> {
    let mut out: Vec<Tag> = source
        .iter()
        .filter(|t| {
            t.key().is_some_and(|k| {
                !k.starts_with("aws:")
                    && !k.starts_with("rollback:")
                    && !ours.iter().any(|o| o.key() == Some(k))
            })
        })
        .cloned()
        .collect();
    out.extend(ours);
    out
}

/// `None` when `skip` (a field the engine does not take), else `value`.
fn unless<T>(skip: bool, value: Option<T>) -> Option<T> {
    if skip { None } else { value }
}

fn non_empty(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

/// A non-default option group (the engine's `default:…` group is what RDS applies anyway).
fn custom_option_group<'a>(names: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    names
        .flatten()
        .find(|n| !n.starts_with("default:"))
        .map(str::to_owned)
}

/// Performance Insights and enhanced monitoring: the settings only `ModifyDBInstance` takes
/// for an instance (and `CreateDBInstance` for a cluster member).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Insights {
    pub performance_insights: Option<bool>,
    pub performance_insights_kms_key: Option<String>,
    pub performance_insights_retention: Option<i32>,
    /// Seconds; 0 is off.
    pub monitoring_interval: Option<i32>,
    pub monitoring_role: Option<String>,
}

impl Insights {
    fn of(i: &DbInstance) -> Self {
        let pi = i.performance_insights_enabled();
        let on = pi == Some(true);
        let interval = i.monitoring_interval();
        Insights {
            performance_insights: pi,
            performance_insights_kms_key: i
                .performance_insights_kms_key_id()
                .filter(|_| on)
                .map(str::to_owned),
            performance_insights_retention: i
                .performance_insights_retention_period()
                .filter(|_| on),
            monitoring_interval: interval,
            monitoring_role: i
                .monitoring_role_arn()
                .filter(|_| interval.unwrap_or(0) > 0)
                .map(str::to_owned),
        }
    }
}

/// Everything a restored RDS instance copies from its source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceSettings {
    pub class: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
    pub option_group: Option<String>,
    pub multi_az: Option<bool>,
    pub port: Option<i32>,
    pub deletion_protection: Option<bool>,
    pub storage_type: Option<String>,
    pub iops: Option<i32>,
    pub storage_throughput: Option<i32>,
    pub iam_auth: Option<bool>,
    pub log_exports: Vec<String>,
    pub backup_retention: Option<i32>,
    pub backup_window: Option<String>,
    pub ca_certificate: Option<String>,
    pub publicly_accessible: Option<bool>,
    pub copy_tags_to_snapshot: Option<bool>,
    pub auto_minor_version_upgrade: Option<bool>,
    /// Follow-up (`ModifyDBInstance`): the restore calls do not take these.
    pub maintenance_window: Option<String>,
    pub insights: Insights,
    /// The source's key; informational (see the module docs).
    pub kms_key: Option<String>,
    pub source_tags: Vec<Tag>,
}

impl InstanceSettings {
    pub fn of(i: &DbInstance, drill: bool) -> Self {
        let storage_type = i.storage_type().map(str::to_owned);
        let provisioned = match storage_type.as_deref() {
            Some("io1" | "io2") => true,
            Some("gp3") => i.allocated_storage().unwrap_or(0) >= GP3_PROVISIONED_FROM_GIB,
            _ => false,
        };
        InstanceSettings {
            class: i.db_instance_class().map(str::to_owned),
            subnet_group: crate::db::instance_subnet_group(i),
            security_groups: crate::db::instance_security_groups(i),
            parameter_group: crate::db::instance_parameter_group(i),
            option_group: custom_option_group(
                i.option_group_memberships()
                    .iter()
                    .map(|m| m.option_group_name()),
            ),
            // A drill's scratch copy: single-AZ and deletable.
            multi_az: if drill { Some(false) } else { i.multi_az() },
            port: i.endpoint().and_then(|e| e.port()).or(i.db_instance_port()),
            deletion_protection: if drill {
                Some(false)
            } else {
                i.deletion_protection()
            },
            iops: i.iops().filter(|_| provisioned),
            storage_throughput: i
                .storage_throughput()
                .filter(|_| provisioned && storage_type.as_deref() == Some("gp3")),
            storage_type,
            iam_auth: i.iam_database_authentication_enabled(),
            log_exports: i.enabled_cloudwatch_logs_exports().to_vec(),
            backup_retention: i.backup_retention_period(),
            backup_window: i.preferred_backup_window().map(str::to_owned),
            ca_certificate: i
                .ca_certificate_identifier()
                .or_else(|| i.certificate_details().and_then(|c| c.ca_identifier()))
                .map(str::to_owned),
            publicly_accessible: i.publicly_accessible(),
            copy_tags_to_snapshot: i.copy_tags_to_snapshot(),
            auto_minor_version_upgrade: i.auto_minor_version_upgrade(),
            maintenance_window: i.preferred_maintenance_window().map(str::to_owned),
            insights: Insights::of(i),
            kms_key: i.kms_key_id().map(str::to_owned),
            source_tags: i.tag_list().to_vec(),
        }
    }

    pub fn security_groups(&self) -> Option<Vec<String>> {
        non_empty(&self.security_groups)
    }

    pub fn log_exports(&self) -> Option<Vec<String>> {
        non_empty(&self.log_exports)
    }
}

/// Sets every [`InstanceSettings`] field a restore-instance call takes. Both restore calls
/// (from a snapshot, to a point in time) have the same setters for these.
macro_rules! apply_instance_settings {
    ($call:expr, $s:expr) => {
        $call
            .set_db_instance_class($s.class.clone())
            .set_db_subnet_group_name($s.subnet_group.clone())
            .set_vpc_security_group_ids($s.security_groups())
            .set_db_parameter_group_name($s.parameter_group.clone())
            .set_option_group_name($s.option_group.clone())
            .set_multi_az($s.multi_az)
            .set_port($s.port)
            .set_deletion_protection($s.deletion_protection)
            .set_storage_type($s.storage_type.clone())
            .set_iops($s.iops)
            .set_storage_throughput($s.storage_throughput)
            .set_enable_iam_database_authentication($s.iam_auth)
            .set_enable_cloudwatch_logs_exports($s.log_exports())
            .set_backup_retention_period($s.backup_retention)
            .set_preferred_backup_window($s.backup_window.clone())
            .set_ca_certificate_identifier($s.ca_certificate.clone())
            .set_publicly_accessible($s.publicly_accessible)
            .set_copy_tags_to_snapshot($s.copy_tags_to_snapshot)
            .set_auto_minor_version_upgrade($s.auto_minor_version_upgrade)
    };
}
pub(crate) use apply_instance_settings;

/// Everything a restored cluster copies from its source (Aurora or DocumentDB).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterSettings {
    pub docdb: bool,
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
    pub port: Option<i32>,
    pub deletion_protection: Option<bool>,
    pub log_exports: Vec<String>,
    pub storage_type: Option<String>,
    pub kms_key: Option<String>,
    pub serverless_v2: Option<(f64, f64)>,
    // Not DocumentDB:
    pub option_group: Option<String>,
    pub iam_auth: Option<bool>,
    pub copy_tags_to_snapshot: Option<bool>,
    pub backtrack_window: Option<i64>,
    /// Multi-AZ DB clusters only (Aurora reports none); with it, IOPS and public access.
    pub cluster_instance_class: Option<String>,
    pub iops: Option<i32>,
    pub publicly_accessible: Option<bool>,
    /// Restore call for Aurora; follow-up for DocumentDB.
    pub backup_retention: Option<i32>,
    pub backup_window: Option<String>,
    /// Follow-up (`ModifyDBCluster`) for both.
    pub maintenance_window: Option<String>,
    pub source_tags: Vec<Tag>,
}

impl ClusterSettings {
    pub fn of(c: &DbCluster, kind: DatabaseKind, drill: bool) -> Self {
        let docdb = kind == DatabaseKind::DocdbCluster || c.engine() == Some("docdb");
        let multi_az_cluster = c.db_cluster_instance_class().is_some() && !docdb;
        ClusterSettings {
            docdb,
            engine: c.engine().map(str::to_owned),
            engine_version: c.engine_version().map(str::to_owned),
            subnet_group: c.db_subnet_group().map(str::to_owned),
            security_groups: c
                .vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                .collect(),
            parameter_group: c.db_cluster_parameter_group().map(str::to_owned),
            port: c.port(),
            deletion_protection: if drill {
                Some(false)
            } else {
                c.deletion_protection()
            },
            log_exports: c.enabled_cloudwatch_logs_exports().to_vec(),
            storage_type: c.storage_type().map(str::to_owned),
            kms_key: c.kms_key_id().map(str::to_owned),
            serverless_v2: unless(
                docdb,
                c.serverless_v2_scaling_configuration()
                    .and_then(|s| Some((s.min_capacity()?, s.max_capacity()?))),
            ),
            option_group: unless(
                docdb,
                custom_option_group(
                    c.db_cluster_option_group_memberships()
                        .iter()
                        .map(|m| m.db_cluster_option_group_name()),
                ),
            ),
            iam_auth: unless(docdb, c.iam_database_authentication_enabled()),
            copy_tags_to_snapshot: unless(docdb, c.copy_tags_to_snapshot()),
            backtrack_window: unless(docdb, c.backtrack_window().filter(|w| *w > 0)),
            cluster_instance_class: if multi_az_cluster {
                c.db_cluster_instance_class().map(str::to_owned)
            } else {
                None
            },
            iops: c.iops().filter(|_| multi_az_cluster),
            publicly_accessible: c.publicly_accessible().filter(|_| multi_az_cluster),
            backup_retention: c.backup_retention_period(),
            backup_window: c.preferred_backup_window().map(str::to_owned),
            maintenance_window: c.preferred_maintenance_window().map(str::to_owned),
            source_tags: c.tag_list().to_vec(),
        }
    }

    pub fn security_groups(&self) -> Option<Vec<String>> {
        non_empty(&self.security_groups)
    }

    pub fn log_exports(&self) -> Option<Vec<String>> {
        non_empty(&self.log_exports)
    }

    /// Backup settings for the restore call (Aurora takes them; DocumentDB gets them in the
    /// follow-up).
    pub fn backup_in_restore(&self) -> (Option<i32>, Option<String>) {
        if self.docdb {
            (None, None)
        } else {
            (self.backup_retention, self.backup_window.clone())
        }
    }
}

/// Sets every [`ClusterSettings`] field both cluster restore calls take (the engine, engine
/// version, KMS key and serverless settings differ per call and are set by the caller).
macro_rules! apply_cluster_settings {
    ($call:expr, $s:expr) => {{
        let (retention, window) = $s.backup_in_restore();
        $call
            .set_db_subnet_group_name($s.subnet_group.clone())
            .set_vpc_security_group_ids($s.security_groups())
            .set_db_cluster_parameter_group_name($s.parameter_group.clone())
            .set_port($s.port)
            .set_deletion_protection($s.deletion_protection)
            .set_enable_cloudwatch_logs_exports($s.log_exports())
            .set_storage_type($s.storage_type.clone())
            .set_option_group_name($s.option_group.clone())
            .set_enable_iam_database_authentication($s.iam_auth)
            .set_copy_tags_to_snapshot($s.copy_tags_to_snapshot)
            .set_backtrack_window($s.backtrack_window)
            .set_db_cluster_instance_class($s.cluster_instance_class.clone())
            .set_iops($s.iops)
            .set_publicly_accessible($s.publicly_accessible)
            .set_backup_retention_period(retention)
            .set_preferred_backup_window(window)
    }};
}
pub(crate) use apply_cluster_settings;

/// What each member instance of a restored cluster copies from the source's member in the
/// same position (writer first). No availability zone: RDS places the copies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberSettings {
    pub engine: Option<String>,
    pub class: Option<String>,
    /// Not DocumentDB (its instances take no DB parameter group).
    pub parameter_group: Option<String>,
    pub ca_certificate: Option<String>,
    pub maintenance_window: Option<String>,
    pub auto_minor_version_upgrade: Option<bool>,
    pub promotion_tier: Option<i32>,
    /// Not DocumentDB.
    pub publicly_accessible: Option<bool>,
    /// DocumentDB: enabled and key only (no retention, no enhanced monitoring).
    pub insights: Insights,
    pub source_tags: Vec<Tag>,
}

impl MemberSettings {
    pub fn of(i: &DbInstance, docdb: bool) -> Self {
        let mut insights = Insights::of(i);
        if docdb {
            insights.performance_insights_retention = None;
            insights.monitoring_interval = None;
            insights.monitoring_role = None;
        }
        MemberSettings {
            engine: i.engine().map(str::to_owned),
            class: i.db_instance_class().map(str::to_owned),
            parameter_group: if docdb {
                None
            } else {
                i.db_parameter_groups()
                    .first()
                    .and_then(|g| g.db_parameter_group_name())
                    .map(str::to_owned)
            },
            ca_certificate: i.ca_certificate_identifier().map(str::to_owned),
            maintenance_window: i.preferred_maintenance_window().map(str::to_owned),
            auto_minor_version_upgrade: i.auto_minor_version_upgrade(),
            promotion_tier: i.promotion_tier(),
            publicly_accessible: if docdb { None } else { i.publicly_accessible() },
            insights,
            source_tags: i.tag_list().to_vec(),
        }
    }
}

/// What the follow-up still has to change on the copy so it matches the source: the fields
/// only `ModifyDB*` takes, compared as observed on both. Empty when nothing differs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowUp {
    pub maintenance_window: Option<String>,
    pub performance_insights: Option<(bool, Option<String>, Option<i32>)>,
    pub monitoring: Option<(i32, Option<String>)>,
    /// Clusters (DocumentDB) only.
    pub backup_retention: Option<i32>,
    pub backup_window: Option<String>,
}

impl FollowUp {
    pub fn is_empty(&self) -> bool {
        *self == FollowUp::default()
    }

    /// Field names, for the log and the status note.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.maintenance_window.is_some() {
            out.push("preferred maintenance window");
        }
        if self.performance_insights.is_some() {
            out.push("Performance Insights");
        }
        if self.monitoring.is_some() {
            out.push("enhanced monitoring");
        }
        if self.backup_retention.is_some() {
            out.push("backup retention");
        }
        if self.backup_window.is_some() {
            out.push("preferred backup window");
        }
        out
    }

    /// Instances: maintenance window, Performance Insights, enhanced monitoring.
    pub fn for_instance(want: &InstanceSettings, have: &InstanceSettings) -> Self {
        let differs = |w: &Option<String>, h: &Option<String>| w.is_some() && w != h;
        let (wi, hi) = (&want.insights, &have.insights);
        let pi_on = wi.performance_insights == Some(true);
        let monitoring = wi.monitoring_interval.filter(|n| *n > 0);
        FollowUp {
            maintenance_window: differs(&want.maintenance_window, &have.maintenance_window)
                .then(|| want.maintenance_window.clone())
                .flatten(),
            performance_insights: (pi_on
                && (hi.performance_insights != Some(true)
                    || wi.performance_insights_retention.is_some()
                        && wi.performance_insights_retention != hi.performance_insights_retention))
                .then(|| {
                    (
                        true,
                        wi.performance_insights_kms_key.clone(),
                        wi.performance_insights_retention,
                    )
                }),
            monitoring: monitoring
                .filter(|n| {
                    hi.monitoring_interval != Some(*n) || wi.monitoring_role != hi.monitoring_role
                })
                .map(|n| (n, wi.monitoring_role.clone())),
            backup_retention: None,
            backup_window: None,
        }
    }

    /// Clusters: maintenance window; DocumentDB also backup retention and window.
    pub fn for_cluster(want: &ClusterSettings, have: &ClusterSettings) -> Self {
        let differs = |w: &Option<String>, h: &Option<String>| w.is_some() && w != h;
        FollowUp {
            maintenance_window: differs(&want.maintenance_window, &have.maintenance_window)
                .then(|| want.maintenance_window.clone())
                .flatten(),
            backup_retention: want
                .backup_retention
                .filter(|r| want.docdb && have.backup_retention != Some(*r)),
            backup_window: (want.docdb && differs(&want.backup_window, &have.backup_window))
                .then(|| want.backup_window.clone())
                .flatten(),
            ..FollowUp::default()
        }
    }
}

/// Tag on the copy once the follow-up was sent: a second poll that still sees a difference
/// does not modify again (RDS normalised or refused a value); it is logged, not looped on.
pub const FOLLOW_UP_TAG: &str = "rollback:settings-applied";

/// Applies the follow-up to a copy that is `available` (RDS refuses changes while it is
/// creating or modifying). Idempotent: it observes both databases first and changes only what
/// differs, so a retry after a lost answer changes nothing twice. Returns the fields it
/// changed now (the copy is then `modifying` for a while); empty when nothing is left to do.
pub async fn converge(
    rds: &Client,
    kind: DatabaseKind,
    source_id: &str,
    copy_id: &str,
    drill: bool,
) -> Result<Vec<&'static str>, RollbackError> {
    let observed = if kind.is_cluster() {
        observe_cluster(rds, kind, source_id, copy_id, drill).await?
    } else {
        observe_instance(rds, source_id, copy_id, drill).await?
    };
    let Some(Observed {
        follow_up,
        arn,
        already,
    }) = observed
    else {
        return Ok(Vec::new());
    };
    if follow_up.is_empty() {
        return Ok(Vec::new());
    }
    let fields = follow_up.fields();
    if already {
        tracing::warn!(copy = %copy_id, ?fields, ?follow_up,
            "the copy still differs from its source after the follow-up; not modifying again");
        return Ok(Vec::new());
    }
    let sent = if kind.is_cluster() {
        modify_cluster(rds, copy_id, &follow_up).await
    } else {
        modify_instance(rds, copy_id, &follow_up).await
    };
    if let Err(err) = sent {
        return follow_up_failed(err, copy_id, source_id, fields);
    }
    if let Some(arn) = arn {
        rds.add_tags_to_resource()
            .resource_name(arn)
            .tags(crate::db::tag(FOLLOW_UP_TAG, &fields.join(", ")))
            .send()
            .await
            .map_err(|e| RollbackError::from_sdk("AddTagsToResource", e))?;
    }
    tracing::info!(copy = %copy_id, ?fields, "settings the restore call could not take applied");
    Ok(fields)
}

/// The copy as observed beside its source, for [`converge`].
struct Observed {
    /// What still differs.
    follow_up: FollowUp,
    /// The copy's ARN, to tag.
    arn: Option<String>,
    /// The copy carries [`FOLLOW_UP_TAG`]: the follow-up was sent before.
    already: bool,
}

/// A cluster copy and its source; `None` while either is missing or the copy is not
/// `available`.
async fn observe_cluster(
    rds: &Client,
    kind: DatabaseKind,
    source_id: &str,
    copy_id: &str,
    drill: bool,
) -> Result<Option<Observed>, RollbackError> {
    let (Some(source), Some(copy)) = (
        describe_cluster(rds, source_id).await?,
        describe_cluster(rds, copy_id).await?,
    ) else {
        return Ok(None);
    };
    if copy.status() != Some("available") {
        return Ok(None);
    }
    Ok(Some(Observed {
        follow_up: FollowUp::for_cluster(
            &ClusterSettings::of(&source, kind, drill),
            &ClusterSettings::of(&copy, kind, drill),
        ),
        arn: copy.db_cluster_arn().map(str::to_owned),
        already: copy
            .tag_list()
            .iter()
            .any(|t| t.key() == Some(FOLLOW_UP_TAG)),
    }))
}

/// An instance copy and its source; `None` while either is missing or the copy is not
/// `available`.
async fn observe_instance(
    rds: &Client,
    source_id: &str,
    copy_id: &str,
    drill: bool,
) -> Result<Option<Observed>, RollbackError> {
    let (Some(source), Some(copy)) = (
        describe_instance(rds, source_id).await?,
        describe_instance(rds, copy_id).await?,
    ) else {
        return Ok(None);
    };
    if copy.db_instance_status() != Some("available") {
        return Ok(None);
    }
    Ok(Some(Observed {
        follow_up: FollowUp::for_instance(
            &InstanceSettings::of(&source, drill),
            &InstanceSettings::of(&copy, drill),
        ),
        arn: copy.db_instance_arn().map(str::to_owned),
        already: copy
            .tag_list()
            .iter()
            .any(|t| t.key() == Some(FOLLOW_UP_TAG)),
    }))
}

/// A failed `ModifyDB*`: its error code, if RDS answered, and the error.
type ModifyFailed = (Option<String>, RollbackError);

/// `ModifyDBCluster` with the follow-up's cluster fields, applied immediately.
async fn modify_cluster(
    rds: &Client,
    copy_id: &str,
    follow_up: &FollowUp,
) -> Result<(), ModifyFailed> {
    rds.modify_db_cluster()
        .db_cluster_identifier(copy_id)
        .apply_immediately(true)
        .set_preferred_maintenance_window(follow_up.maintenance_window.clone())
        .set_backup_retention_period(follow_up.backup_retention)
        .set_preferred_backup_window(follow_up.backup_window.clone())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            let code = error_code(&e).map(str::to_owned);
            (code, RollbackError::from_sdk("ModifyDBCluster", e))
        })
}

/// `ModifyDBInstance` with the follow-up's instance fields, applied immediately.
async fn modify_instance(
    rds: &Client,
    copy_id: &str,
    follow_up: &FollowUp,
) -> Result<(), ModifyFailed> {
    let (pi, pi_key, pi_days) = follow_up
        .performance_insights
        .clone()
        .map(|(on, k, d)| (Some(on), k, d))
        .unwrap_or_default();
    let (interval, role) = follow_up
        .monitoring
        .clone()
        .map(|(n, r)| (Some(n), r))
        .unwrap_or_default();
    rds.modify_db_instance()
        .db_instance_identifier(copy_id)
        .apply_immediately(true)
        .set_preferred_maintenance_window(follow_up.maintenance_window.clone())
        .set_enable_performance_insights(pi)
        .set_performance_insights_kms_key_id(pi_key)
        .set_performance_insights_retention_period(pi_days)
        .set_monitoring_interval(interval)
        .set_monitoring_role_arn(role)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            let code = error_code(&e).map(str::to_owned);
            (code, RollbackError::from_sdk("ModifyDBInstance", e))
        })
}

/// What [`converge`] answers after a failed `ModifyDB*`.
fn follow_up_failed(
    err: ModifyFailed,
    copy_id: &str,
    source_id: &str,
    fields: Vec<&'static str>,
) -> Result<Vec<&'static str>, RollbackError> {
    match err {
        // Busy (e.g. our own earlier call whose answer was lost): observe again next poll.
        (Some(code), _)
            if matches!(
                code.as_str(),
                "InvalidDBInstanceState"
                    | "InvalidDBInstanceStateFault"
                    | "InvalidDBClusterStateFault"
            ) =>
        {
            Ok(fields)
        }
        (
            _,
            RollbackError::Aws {
                operation,
                code,
                message,
            },
        ) => Err(RollbackError::RestoreFailed(format!(
            "{operation} on the restored copy {copy_id} failed: {code}: {message}; it could \
             not be given the source's {}. The live database {source_id} is untouched; fix \
             the cause (e.g. the role's kms or iam:PassRole permissions) and poll status \
             again",
            fields.join(", ")
        ))),
        (_, other) => Err(other),
    }
}
