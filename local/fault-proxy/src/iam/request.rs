//! From a request on the wire to what IAM authorizes: the action (`rds:ModifyDBInstance`),
//! the resource ARNs the service checks it against, and the condition keys the request
//! carries.
//!
//! Resources follow the AWS Service Authorization Reference for the operations the functions
//! call: an action "without resource-level permissions" is checked against `*`; one that
//! names resources is checked against each (all must be allowed). For example
//! `ModifyDBInstance` → `db:<DBInstanceIdentifier>` (plus the parameter, subnet and option
//! groups it names), `CreateDBSnapshot` → `db:<id>` and `snapshot:<id>`,
//! `RestoreDBInstanceFromDBSnapshot` → the new `db:` and the `snapshot:`,
//! `DescribeDBInstances` with an identifier → that `db:`, without → `*`,
//! `ecr:PutImage` → `repository/<name>`, `eks:DescribeCluster` → `cluster/<name>`,
//! `sns:Publish` → the topic, `secretsmanager:GetSecretValue` → the secret, `kms:Sign` and
//! `kms:GetPublicKey` → the key (`key/<id>`),
//! `states:ListExecutions` → the state machine, `states:DescribeExecution` → the execution,
//! `states:SendTask*` → `*` (the task token names no resource), `states:GetExecutionHistory`
//! → the execution, S3 (REST-XML, path-style) object operations → `arn:aws:s3:::<bucket>/<key>`
//! with the action IAM checks (`PutObject`, `CreateMultipartUpload`, `UploadPart` and
//! `CompleteMultipartUpload` → `s3:PutObject`; `AbortMultipartUpload` →
//! `s3:AbortMultipartUpload`; `GetObject`/`HeadObject` → `s3:GetObject`) and bucket operations
//! → `arn:aws:s3:::<bucket>`, `cloudwatch:DescribeAlarms`
//! → the named alarms, `ssm:GetParameter`/`PutParameter` → the parameter (`parameter/<name>`,
//! a `:version` selector dropped), `ssm:GetParametersByPath` → the path itself (not the
//! parameters it returns), CodeBuild (JSON, `CodeBuild_20161006.<Op>`) `StartBuild` and
//! `ListBuildsForProject` → the project (`project/<projectName>`), `BatchGetBuilds` → the project
//! of each build id (`<project>:<uuid>`, the part before the last `:`; a build ARN
//! `…:build/<project>:<uuid>` likewise): IAM authorizes builds against their project,
//! `logs:FilterLogEvents` (JSON, `Logs_20140328.<Op>`, signed as `logs`) → the log group
//! (`log-group:<logGroupName>:*`, the ARN form with the trailing `:*` that IAM checks this
//! action against; a `logGroupIdentifier` ARN likewise),
//! `sts:GetCallerIdentity` → never checked (AWS needs no permission).
//!
//! Condition keys set from the request: `aws:RequestedRegion`, `aws:RequestTag/<key>` and
//! `aws:TagKeys` (from `Tags` on RDS creates and `AddTagsToResource`),
//! `codebuild:source.buildspec` (present when a `StartBuild` carries `buildspecOverride`; AWS
//! supports only `Null` on it, and only its presence is modelled). Keys AWS sets that
//! need AWS itself (`kms:ViaService`, `iam:PassedToService`, `aws:SourceArn`, `aws:PrincipalTag`)
//! are absent, as they are for a function's direct call. `aws:ResourceTag/<key>` comes from
//! moto (see `proxy.rs`).

use http::Uri;
use serde_json::Value;

use super::policy::RequestContext;
use crate::protocol::{Protocol, RequestInfo};

/// What one request asks IAM for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `rds:ModifyDBInstance`; `None` when AWS checks no permission (GetCallerIdentity).
    pub action: Option<String>,
    /// Every resource the action is checked against (`*` when it has no resource-level
    /// permissions).
    pub resources: Vec<String>,
    pub context: RequestContext,
}

/// The IAM service prefix for a SigV4 signing name (CloudWatch signs as `monitoring`).
fn iam_prefix(signing_name: &str) -> &str {
    match signing_name {
        "monitoring" => "cloudwatch",
        other => other,
    }
}

/// Request parameters, flattened: query `Key=Value` pairs, or top-level JSON members.
struct Params {
    form: Vec<(String, String)>,
    json: Value,
}

impl Params {
    /// A request's parameters: its query, with the form body (query protocol) or the JSON body
    /// (S3's are in the method, path and query; its body is the object).
    fn of_request(info: &RequestInfo, uri: &Uri, body: &[u8]) -> Params {
        let mut form: Vec<(String, String)> = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let mut json = Value::Null;
        match info.protocol {
            Protocol::Query => form.extend(url::form_urlencoded::parse(body).into_owned()),
            Protocol::Json | Protocol::RestJson => {
                json = serde_json::from_slice(body).unwrap_or(Value::Null);
            }
            Protocol::RestXml => {}
        }
        Params { form, json }
    }

    fn get(&self, key: &str) -> Option<String> {
        if let Some((_, v)) = self.form.iter().find(|(k, _)| k == key) {
            return Some(v.clone());
        }
        match self.json.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// Query lists (`AlarmNames.member.1`) or JSON arrays of strings.
    fn list(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}.");
        let mut out: Vec<String> = self
            .form
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect();
        if let Some(Value::Array(items)) = self.json.get(key) {
            out.extend(items.iter().filter_map(Value::as_str).map(str::to_owned));
        }
        out
    }

    /// `Tags.Tag.N.Key` / `Tags.Tag.N.Value` (query), or `tags: [{key, value}]` (JSON).
    fn tags(&self) -> Vec<(String, String)> {
        let mut keys: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.form {
            if let Some(stem) = k.strip_prefix("Tags.").and_then(|s| s.strip_suffix(".Key")) {
                let value = self
                    .form
                    .iter()
                    .find(|(k2, _)| *k2 == format!("Tags.{stem}.Value"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                keys.push((v.clone(), value));
            }
        }
        for name in ["tags", "Tags"] {
            if let Some(Value::Array(items)) = self.json.get(name) {
                for item in items {
                    let field = |a: &str, b: &str| {
                        item.get(a)
                            .or_else(|| item.get(b))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    if let Some(key) = field("Key", "key") {
                        keys.push((key, field("Value", "value").unwrap_or_default()));
                    }
                }
            }
        }
        keys
    }
}

/// `arn:aws:ssm:<region>:<account>:parameter/<name>`: a hierarchical name's leading `/` is the
/// ARN's separator; a `name:version` or `name:label` selector names the same parameter.
fn ssm_parameter_arn(name: &str, region: &str, account: &str) -> String {
    if name.starts_with("arn:") {
        return name.to_owned();
    }
    let name = name.split(':').next().unwrap_or(name);
    let name = name.strip_prefix('/').unwrap_or(name);
    format!("arn:aws:ssm:{region}:{account}:parameter/{name}")
}

/// `arn:aws:logs:<region>:<account>:log-group:<name>:*` for a log group name, or for a log
/// group ARN given as `logGroupIdentifier` (with or without its trailing `:*`).
fn log_group_arn(group: &str, region: &str, account: &str) -> String {
    if group.starts_with("arn:") {
        format!("{}:*", group.trim_end_matches(":*"))
    } else {
        format!("arn:aws:logs:{region}:{account}:log-group:{group}:*")
    }
}

/// The project a CodeBuild build id belongs to, as IAM checks `BatchGetBuilds`:
/// `<project>:<uuid>` → `arn:aws:codebuild:<region>:<account>:project/<project>`; a build ARN
/// (`arn:<partition>:codebuild:<region>:<account>:build/<project>:<uuid>`) keeps its partition,
/// region and account. Project names have no `:`, so the project is the part before the last.
fn codebuild_project_of_build(id: &str, region: &str, account: &str) -> String {
    let (head, build) = match id.split_once(":build/") {
        Some((head, build)) if id.starts_with("arn:") => (head.to_owned(), build),
        _ => (format!("arn:aws:codebuild:{region}:{account}"), id),
    };
    let project = build.rsplit_once(':').map_or(build, |(project, _)| project);
    format!("{head}:project/{project}")
}

/// The IAM action (without `s3:`) an S3 operation is authorized as, and its resource: the
/// object `arn:aws:s3:::<bucket>/<key>` (the key percent-decoded, as IAM sees it) or the bucket
/// `arn:aws:s3:::<bucket>`, from a path-style path.
fn s3_authorization(operation: &str, path: &str) -> (&'static str, String) {
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let object = format!("arn:aws:s3:::{bucket}/{}", percent_decode(key));
    let bucket = format!("arn:aws:s3:::{bucket}");
    match operation {
        "PutObject" | "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload" => {
            ("PutObject", object)
        }
        "AbortMultipartUpload" => ("AbortMultipartUpload", object),
        "GetObject" | "HeadObject" => ("GetObject", object),
        "DeleteObject" => ("DeleteObject", object),
        "ListParts" => ("ListMultipartUploadParts", object),
        "CreateBucket" => ("CreateBucket", bucket),
        "DeleteBucket" => ("DeleteBucket", bucket),
        "PutBucketVersioning" => ("PutBucketVersioning", bucket),
        "ListObjectVersions" => ("ListBucketVersions", bucket),
        "ListObjects" | "HeadBucket" => ("ListBucket", bucket),
        "ListBuckets" => ("ListAllMyBuckets", "*".to_owned()),
        _ => ("UnknownOperation", bucket),
    }
}

/// `%XX` escapes decoded (a path segment: `+` stays `+`).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RDS also checks `rds:AddTagsToResource` on the new resource when a create, restore or copy
/// carries `Tags` (tag-on-create): that second authorization, if any.
pub fn tag_on_create(info: &RequestInfo, authz: &Authorization) -> Option<Authorization> {
    let action = authz.action.as_deref()?;
    let op = action.strip_prefix("rds:")?;
    let creates = ["Create", "Restore", "Copy"]
        .iter()
        .any(|p| op.starts_with(p));
    if !creates || authz.context.get("aws:TagKeys").is_none() {
        return None;
    }
    let _ = info;
    Some(Authorization {
        action: Some("rds:AddTagsToResource".to_owned()),
        resources: authz.resources.first().cloned().into_iter().collect(),
        context: authz.context.clone(),
    })
}

/// The authorization a request needs, or `None` for requests IAM does not see (moto's own API,
/// unsigned requests): the action, the resources it names (deduplicated, `*` when none) and
/// the condition keys it carries.
pub fn authorization(
    info: &RequestInfo,
    uri: &Uri,
    body: &[u8],
    account: &str,
) -> Option<Authorization> {
    let service = iam_prefix(info.service.as_deref()?).to_owned();
    let region = info.region.clone().unwrap_or_else(|| "us-east-1".into());
    let params = Params::of_request(info, uri, body);
    let op = info.operation.as_str();
    let scope = ArnScope {
        service: &service,
        region: &region,
        account,
    };
    let mut action = Some(format!("{service}:{op}"));
    let named = match (service.as_str(), op) {
        ("sts", "GetCallerIdentity") => {
            action = None;
            Vec::new()
        }
        ("rds", _) => rds_resources(op, &params, &scope),
        ("s3", _) => {
            let (s3_action, resource) = s3_authorization(op, &info.path);
            action = Some(format!("s3:{s3_action}"));
            vec![resource]
        }
        _ => service_resources(info, op, &params, &scope),
    };
    let mut resources: Vec<String> = Vec::new();
    for resource in named {
        if !resources.contains(&resource) {
            resources.push(resource);
        }
    }
    if resources.is_empty() {
        resources.push("*".to_owned());
    }
    let context = request_context(&service, op, region, &params);
    Some(Authorization {
        action,
        resources,
        context,
    })
}

/// The service, region and account a request's resource ARNs are in.
struct ArnScope<'a> {
    service: &'a str,
    region: &'a str,
    account: &'a str,
}

impl ArnScope<'_> {
    /// `arn:aws:<service>:<region>:<account>:<kind><separator><id>`; an id that is an ARN
    /// already stays as it is.
    fn arn(&self, kind: &str, separator: &str, id: &str) -> String {
        if id.starts_with("arn:") {
            id.to_owned()
        } else {
            let ArnScope {
                service,
                region,
                account,
            } = self;
            format!("arn:aws:{service}:{region}:{account}:{kind}{separator}{id}")
        }
    }
}

/// The RDS resources an operation names: instances, clusters, snapshots and the groups it
/// uses (RDS identifiers are case-insensitive and stored, and put in ARNs, in lowercase).
fn rds_resources(op: &str, params: &Params, scope: &ArnScope<'_>) -> Vec<String> {
    let named = |kind: &'static str| move |key: &str| rds_arn(params, scope, kind, key);
    let db = named("db");
    let cluster = named("cluster");
    let snapshot = named("snapshot");
    let cluster_snapshot = named("cluster-snapshot");
    let subnet_group = named("subgrp");
    let parameter_group = named("pg");
    let cluster_parameter_group = named("cluster-pg");
    let option_group = named("og");
    let found: Vec<Option<String>> = match op {
        "DescribeDBInstances" | "DescribeDBInstanceAutomatedBackups" => {
            vec![db("DBInstanceIdentifier")]
        }
        "DescribeDBClusters" => vec![cluster("DBClusterIdentifier")],
        "DescribeDBSnapshots" | "CreateDBSnapshot" => {
            vec![db("DBInstanceIdentifier"), snapshot("DBSnapshotIdentifier")]
        }
        "DescribeDBClusterSnapshots" | "CreateDBClusterSnapshot" => vec![
            cluster("DBClusterIdentifier"),
            cluster_snapshot("DBClusterSnapshotIdentifier"),
        ],
        "ListTagsForResource" | "AddTagsToResource" | "RemoveTagsFromResource" => {
            vec![params.get("ResourceName")]
        }
        "RestoreDBInstanceFromDBSnapshot" => vec![
            db("DBInstanceIdentifier"),
            snapshot("DBSnapshotIdentifier"),
            subnet_group("DBSubnetGroupName"),
            parameter_group("DBParameterGroupName"),
            option_group("OptionGroupName"),
        ],
        "RestoreDBInstanceToPointInTime" => vec![
            db("TargetDBInstanceIdentifier"),
            db("SourceDBInstanceIdentifier"),
            subnet_group("DBSubnetGroupName"),
            parameter_group("DBParameterGroupName"),
            option_group("OptionGroupName"),
        ],
        "RestoreDBClusterFromSnapshot" => vec![
            cluster("DBClusterIdentifier"),
            // A cluster restores from a cluster snapshot (or, for Aurora, a DB snapshot ARN).
            cluster_snapshot("SnapshotIdentifier"),
            subnet_group("DBSubnetGroupName"),
            cluster_parameter_group("DBClusterParameterGroupName"),
            option_group("OptionGroupName"),
        ],
        "RestoreDBClusterToPointInTime" => vec![
            cluster("DBClusterIdentifier"),
            cluster("SourceDBClusterIdentifier"),
            subnet_group("DBSubnetGroupName"),
            cluster_parameter_group("DBClusterParameterGroupName"),
            option_group("OptionGroupName"),
        ],
        "CreateDBInstance" => vec![
            db("DBInstanceIdentifier"),
            cluster("DBClusterIdentifier"),
            subnet_group("DBSubnetGroupName"),
            parameter_group("DBParameterGroupName"),
            option_group("OptionGroupName"),
        ],
        "ModifyDBInstance" => vec![
            db("DBInstanceIdentifier"),
            subnet_group("DBSubnetGroupName"),
            parameter_group("DBParameterGroupName"),
            option_group("OptionGroupName"),
        ],
        "ModifyDBCluster" => vec![
            cluster("DBClusterIdentifier"),
            cluster_parameter_group("DBClusterParameterGroupName"),
            option_group("OptionGroupName"),
        ],
        "DeleteDBInstance" => vec![db("DBInstanceIdentifier")],
        "DeleteDBCluster" => vec![cluster("DBClusterIdentifier")],
        _ => Vec::new(),
    };
    found.into_iter().flatten().collect()
}

/// The ARN of the RDS resource of `kind` whose identifier is the parameter `key`, lowercased.
fn rds_arn(params: &Params, scope: &ArnScope<'_>, kind: &str, key: &str) -> Option<String> {
    params
        .get(key)
        .map(|id| scope.arn(kind, ":", &id.to_ascii_lowercase()))
}

/// The resources the other services' operations name (see the module docs); none for an
/// operation without resource-level permissions.
fn service_resources(
    info: &RequestInfo,
    op: &str,
    params: &Params,
    scope: &ArnScope<'_>,
) -> Vec<String> {
    let one = |key: &str, to_arn: &dyn Fn(&str) -> String| -> Vec<String> {
        params.get(key).map(|id| to_arn(&id)).into_iter().collect()
    };
    let each = |key: &str, to_arn: &dyn Fn(&str) -> String| -> Vec<String> {
        params.list(key).iter().map(|id| to_arn(id)).collect()
    };
    let (region, account) = (scope.region, scope.account);
    match (scope.service, op) {
        ("ecr", "DescribeRepositories") => each("repositoryNames", &|name| {
            scope.arn("repository", "/", name)
        }),
        ("ecr", "GetAuthorizationToken") => Vec::new(),
        ("ecr", _) => one("repositoryName", &|name| scope.arn("repository", "/", name)),
        ("eks", _) => {
            let segments: Vec<&str> = info.path.trim_matches('/').split('/').collect();
            match segments.as_slice() {
                ["clusters", name, ..] => vec![scope.arn("cluster", "/", name)],
                _ => Vec::new(),
            }
        }
        ("sns", "Publish") => params
            .get("TopicArn")
            .or_else(|| params.get("TargetArn"))
            .into_iter()
            .collect(),
        // A name stands for the secret's ARN, which AWS suffixes with 6 random characters;
        // the policy patterns here end in `*`.
        ("secretsmanager", _) => one("SecretId", &|id| scope.arn("secret", ":", id)),
        ("states", "ListExecutions") => one("stateMachineArn", &|arn| arn.to_owned()),
        ("states", "DescribeExecution" | "StopExecution" | "GetExecutionHistory") => {
            one("executionArn", &|arn| arn.to_owned())
        }
        ("ssm", "GetParameter" | "PutParameter" | "DeleteParameter" | "GetParameterHistory") => {
            one("Name", &|name| ssm_parameter_arn(name, region, account))
        }
        ("ssm", "GetParameters") => each("Names", &|name| ssm_parameter_arn(name, region, account)),
        ("ssm", "GetParametersByPath") => one("Path", &|path| {
            let path = path.trim_end_matches('/');
            ssm_parameter_arn(if path.is_empty() { "/" } else { path }, region, account)
        }),
        // A key id stands for `key/<id>`; the functions pass the key's ARN (an alias would be
        // checked against the key it names, which needs KMS itself).
        ("kms", _) => one("KeyId", &|id| scope.arn("key", "/", id)),
        ("cloudwatch", "DescribeAlarms") => {
            each("AlarmNames", &|name| scope.arn("alarm", ":", name))
        }
        ("codebuild", "StartBuild" | "ListBuildsForProject") => {
            one("projectName", &|name| scope.arn("project", "/", name))
        }
        ("logs", "FilterLogEvents") => params
            .get("logGroupName")
            .or_else(|| params.get("logGroupIdentifier"))
            .map(|group| log_group_arn(&group, region, account))
            .into_iter()
            .collect(),
        ("codebuild", "BatchGetBuilds") => {
            each("ids", &|id| codebuild_project_of_build(id, region, account))
        }
        _ => Vec::new(),
    }
}

/// The condition keys a request sets: its region, the tags it carries, and whether a
/// `StartBuild` overrides the buildspec.
fn request_context(service: &str, op: &str, region: String, params: &Params) -> RequestContext {
    let mut context = RequestContext::default();
    context.insert("aws:RequestedRegion", region);
    for (key, value) in params.tags() {
        context.insert(&format!("aws:RequestTag/{key}"), value);
        context.insert("aws:TagKeys", key);
    }
    if (service, op) == ("codebuild", "StartBuild")
        && let Some(buildspec) = params.get("buildspecOverride")
    {
        context.insert("codebuild:source.buildspec", buildspec);
    }
    context
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, Method};
    use serde_json::json;

    use super::*;

    /// A JSON 1.1 request as the SDK sends it: `X-Amz-Target: <target_prefix>.<operation>`,
    /// signed for `service` with the access key `key`.
    fn json_request(
        service: &str,
        key: &str,
        target_prefix: &str,
        operation: &str,
        body: Value,
    ) -> Authorization {
        let mut headers = HeaderMap::new();
        let credential = format!(
            "AWS4-HMAC-SHA256 Credential={key}/20250101/us-east-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date;x-amz-target, Signature=0"
        );
        headers.insert("authorization", HeaderValue::from_str(&credential).unwrap());
        let target = format!("{target_prefix}.{operation}");
        headers.insert("x-amz-target", HeaderValue::from_str(&target).unwrap());
        let uri = Uri::from_static("/");
        let body = body.to_string();
        let info = RequestInfo::parse(&Method::POST, &uri, &headers, body.as_bytes());
        assert_eq!(info.protocol, Protocol::Json);
        assert_eq!(info.operation, operation);
        authorization(&info, &uri, body.as_bytes(), "123456789012").unwrap()
    }

    /// A CodeBuild request, signed as `codebuild`.
    fn codebuild(operation: &str, body: Value) -> Authorization {
        json_request(
            "codebuild",
            "ASIAINFRA",
            "CodeBuild_20161006",
            operation,
            body,
        )
    }

    #[test]
    fn codebuild_builds_are_authorized_against_their_project() {
        let project = "arn:aws:codebuild:us-east-1:123456789012:project/mint-replica-terraform";
        let start = codebuild(
            "StartBuild",
            json!({
                "projectName": "mint-replica-terraform",
                "sourceVersion": "0123456789abcdef0123456789abcdef01234567",
                "idempotencyToken": "rollback-1",
                "environmentVariablesOverride": [
                    {"name": "ROLLBACK_TF_ACTION", "value": "plan", "type": "PLAINTEXT"}
                ],
            }),
        );
        assert_eq!(start.action.as_deref(), Some("codebuild:StartBuild"));
        assert_eq!(start.resources, [project]);
        assert_eq!(start.context.get("codebuild:source.buildspec"), None);

        let listed = codebuild(
            "ListBuildsForProject",
            json!({"projectName": "mint-replica-terraform", "sortOrder": "DESCENDING"}),
        );
        assert_eq!(
            listed.action.as_deref(),
            Some("codebuild:ListBuildsForProject")
        );
        assert_eq!(listed.resources, [project]);

        // Each id's project, once; a build ARN keeps its own region and account.
        let described = codebuild(
            "BatchGetBuilds",
            json!({"ids": [
                "mint-replica-terraform:9b2c7a4e-0000-4000-8000-000000000001",
                "mint-replica-terraform:9b2c7a4e-0000-4000-8000-000000000002",
                "payments-terraform:9b2c7a4e-0000-4000-8000-000000000003",
                "arn:aws:codebuild:eu-west-1:111122223333:build/other:9b2c7a4e-0000-4000-8000-000000000004",
            ]}),
        );
        assert_eq!(
            described.action.as_deref(),
            Some("codebuild:BatchGetBuilds")
        );
        assert_eq!(
            described.resources,
            [
                project,
                "arn:aws:codebuild:us-east-1:123456789012:project/payments-terraform",
                "arn:aws:codebuild:eu-west-1:111122223333:project/other",
            ]
        );
    }

    /// A CloudWatch Logs request, signed as `logs`.
    fn logs(operation: &str, body: Value) -> Authorization {
        json_request("logs", "ASIASMOKE", "Logs_20140328", operation, body)
    }

    #[test]
    fn filter_log_events_is_authorized_against_the_log_group() {
        let group =
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/containerinsights/c/application:*";
        let by_name = logs(
            "FilterLogEvents",
            json!({"logGroupName": "/aws/containerinsights/c/application", "filterPattern": "ERROR"}),
        );
        assert_eq!(by_name.action.as_deref(), Some("logs:FilterLogEvents"));
        assert_eq!(by_name.resources, [group]);
        let by_arn = logs(
            "FilterLogEvents",
            json!({"logGroupIdentifier": group.trim_end_matches(":*")}),
        );
        assert_eq!(by_arn.resources, [group]);
    }

    #[test]
    fn a_buildspec_override_is_a_condition_key() {
        let start = codebuild(
            "StartBuild",
            json!({"projectName": "p", "buildspecOverride": "version: 0.2"}),
        );
        assert_eq!(
            start.context.get("codebuild:source.buildspec"),
            Some(&["version: 0.2".to_owned()][..])
        );
    }

    #[test]
    fn s3_object_and_bucket_resources() {
        assert_eq!(
            s3_authorization("UploadPart", "/rb/reports/e%3A1/history.json"),
            (
                "PutObject",
                "arn:aws:s3:::rb/reports/e:1/history.json".to_owned()
            )
        );
        assert_eq!(
            s3_authorization("AbortMultipartUpload", "/rb/k"),
            ("AbortMultipartUpload", "arn:aws:s3:::rb/k".to_owned())
        );
        assert_eq!(
            s3_authorization("CreateBucket", "/rb"),
            ("CreateBucket", "arn:aws:s3:::rb".to_owned())
        );
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
    }
}
