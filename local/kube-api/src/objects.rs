//! Per-kind defaulting and validation, done on the typed k8s-openapi structs so that a body
//! with wrong field types is a 400 (as from the real API server) and everything stored has
//! the same defaulted shape (so template comparisons are exact).

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::meta::{self, Selector};
use crate::store::Kind;

pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;

pub fn from_value<T: DeserializeOwned>(kind: Kind, v: &Value) -> ApiResult<T> {
    serde_json::from_value(v.clone()).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"v1\" cannot be handled as a {}: {e}",
            kind.kind(),
            kind.kind()
        ))
    })
}

pub fn to_value<T: Serialize>(t: &T) -> ApiResult<Value> {
    serde_json::to_value(t).map_err(|e| ApiError::internal(format!("encoding object: {e}")))
}

/// Default and validate `obj` (with `old` the stored version for updates); returns the
/// object in its stored shape.
pub fn prepare(kind: Kind, obj: &Value, old: Option<&Value>) -> ApiResult<Value> {
    match kind {
        Kind::Deployment => {
            let mut d: Deployment = from_value(kind, obj)?;
            default_deployment(&mut d);
            let old: Option<Deployment> = old.map(|o| from_value(kind, o)).transpose()?;
            validate_deployment(&d, old.as_ref())?;
            to_value(&d)
        }
        Kind::ReplicaSet => {
            let mut rs: ReplicaSet = from_value(kind, obj)?;
            default_replica_set(&mut rs);
            let old: Option<ReplicaSet> = old.map(|o| from_value(kind, o)).transpose()?;
            validate_replica_set(&rs, old.as_ref())?;
            to_value(&rs)
        }
        Kind::Application | Kind::Kustomization => prepare_custom(kind, obj),
    }
}

/// A custom resource as its CRD's structural schema checks it, for the fields a rollback
/// touches: a valid name, a `spec` object, and the types of `spec.syncPolicy(.automated)`
/// (Argo CD) and `spec.suspend` (Flux). Anything else is stored as sent.
pub fn prepare_custom(kind: Kind, obj: &Value) -> ApiResult<Value> {
    let mut causes = Causes::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    validate_name(&name, &mut causes);
    let type_error = |field: &str, v: &Value, want: &str| {
        (
            field.to_owned(),
            format!(
                "Invalid value: \"{}\": {field} in body must be of type {want}",
                json_type(v)
            ),
        )
    };
    match obj.get("spec") {
        None | Some(Value::Null) => causes.push(("spec".into(), "Required value".into())),
        Some(spec) if !spec.is_object() => causes.push(type_error("spec", spec, "object")),
        Some(spec) => match kind {
            Kind::Application => {
                if let Some(policy) = spec.get("syncPolicy").filter(|p| !p.is_null()) {
                    if !policy.is_object() {
                        causes.push(type_error("spec.syncPolicy", policy, "object"));
                    } else if let Some(a) = policy.get("automated").filter(|a| !a.is_null())
                        && !a.is_object()
                    {
                        causes.push(type_error("spec.syncPolicy.automated", a, "object"));
                    }
                }
            }
            Kind::Kustomization => {
                if let Some(v) = spec.get("suspend").filter(|v| !v.is_null())
                    && !v.is_boolean()
                {
                    causes.push(type_error("spec.suspend", v, "boolean"));
                }
            }
            Kind::Deployment | Kind::ReplicaSet => {}
        },
    }
    if causes.is_empty() {
        Ok(obj.clone())
    } else {
        Err(ApiError::invalid_in(
            kind.group(),
            kind.kind(),
            &name,
            &causes,
        ))
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub fn default_deployment(d: &mut Deployment) {
    let spec = &mut d.spec;
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit
        .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
    spec.progress_deadline_seconds
        .get_or_insert(DEFAULT_PROGRESS_DEADLINE_SECONDS);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    let type_ = strategy.type_.get_or_insert_with(|| "RollingUpdate".into());
    if type_ == "RollingUpdate" {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        ru.max_surge
            .get_or_insert(IntOrString::String("25%".into()));
        ru.max_unavailable
            .get_or_insert(IntOrString::String("25%".into()));
    }
    default_template(&mut spec.template);
}

pub fn default_replica_set(rs: &mut ReplicaSet) {
    let spec = &mut rs.spec;
    spec.replicas.get_or_insert(1);
    if let Some(t) = spec.template.as_mut() {
        default_template(t);
    }
}

/// The pod-spec defaults the API server fills in (the subset that shows up in templates).
pub fn default_template(t: &mut PodTemplateSpec) {
    let spec = t.spec.get_or_insert_with(PodSpec::default);
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    spec.security_context
        .get_or_insert_with(PodSecurityContext::default);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        c.termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        c.termination_message_policy
            .get_or_insert_with(|| "File".into());
        if c.image_pull_policy.is_none() {
            let image = c.image.as_deref().unwrap_or("");
            c.image_pull_policy = Some(default_pull_policy(image).into());
        }
        for p in c.ports.iter_mut().flatten() {
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise (digests included).
fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

type Causes = Vec<(String, String)>;

fn validate_name(name: &str, causes: &mut Causes) {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        causes.push((
            "metadata.name".into(),
            format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"),
        ));
    }
}

fn validate_selector_and_template(
    selector: Option<&LabelSelector>,
    template: Option<&PodTemplateSpec>,
    template_required: bool,
    causes: &mut Causes,
) {
    let selector = match selector {
        None => {
            causes.push(("spec.selector".into(), "Required value".into()));
            None
        }
        Some(s) => match Selector::from_label_selector(s) {
            Some(sel) if !sel.is_empty() => Some(sel),
            Some(_) => {
                causes.push((
                    "spec.selector".into(),
                    "Invalid value: \"\": empty selector is invalid for deployment".into(),
                ));
                None
            }
            None => {
                causes.push((
                    "spec.selector.matchExpressions".into(),
                    "Unsupported value: valid operators are In, NotIn, Exists, DoesNotExist".into(),
                ));
                None
            }
        },
    };
    let Some(template) = template else {
        if template_required {
            causes.push(("spec.template".into(), "Required value".into()));
        }
        return;
    };
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if let Some(sel) = selector
        && !sel.matches(&labels)
    {
        causes.push((
            "spec.template.metadata.labels".into(),
            format!("Invalid value: {labels:?}: `selector` does not match template `labels`"),
        ));
    }
    let containers = template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    if containers.is_empty() {
        causes.push((
            "spec.template.spec.containers".into(),
            "Required value".into(),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        if c.name.is_empty() {
            causes.push((
                format!("spec.template.spec.containers[{i}].name"),
                "Required value".into(),
            ));
        } else if !seen.insert(c.name.clone()) {
            causes.push((
                format!("spec.template.spec.containers[{i}].name"),
                format!("Duplicate value: {:?}", c.name),
            ));
        }
        if c.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
            causes.push((
                format!("spec.template.spec.containers[{i}].image"),
                "Required value".into(),
            ));
        }
    }
}

fn non_negative(field: &str, v: Option<i32>, causes: &mut Causes) {
    if let Some(v) = v
        && v < 0
    {
        causes.push((
            field.into(),
            format!("Invalid value: {v}: must be greater than or equal to 0"),
        ));
    }
}

fn finish(kind: Kind, name: &str, causes: Causes) -> ApiResult<()> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(kind.kind(), name, &causes))
    }
}

pub fn validate_deployment(d: &Deployment, old: Option<&Deployment>) -> ApiResult<()> {
    let mut causes = Causes::new();
    let name = d.metadata.name.clone().unwrap_or_default();
    validate_name(&name, &mut causes);
    let spec = &d.spec;
    non_negative("spec.replicas", spec.replicas, &mut causes);
    non_negative(
        "spec.revisionHistoryLimit",
        spec.revision_history_limit,
        &mut causes,
    );
    non_negative("spec.minReadySeconds", spec.min_ready_seconds, &mut causes);
    if let Some(pds) = spec.progress_deadline_seconds
        && pds <= spec.min_ready_seconds.unwrap_or(0)
    {
        causes.push((
            "spec.progressDeadlineSeconds".into(),
            "Invalid value: must be greater than minReadySeconds".into(),
        ));
    }
    validate_selector_and_template(
        Some(&spec.selector),
        Some(&spec.template),
        true,
        &mut causes,
    );
    if let Some(old) = old.map(|o| &o.spec)
        && meta::normalized(&serde_json::to_value(&old.selector).unwrap_or_default())
            != meta::normalized(&serde_json::to_value(&spec.selector).unwrap_or_default())
    {
        causes.push((
            "spec.selector".into(),
            "Invalid value: field is immutable".into(),
        ));
    }
    finish(Kind::Deployment, &name, causes)
}

pub fn validate_replica_set(rs: &ReplicaSet, old: Option<&ReplicaSet>) -> ApiResult<()> {
    let mut causes = Causes::new();
    let name = rs.metadata.name.clone().unwrap_or_default();
    validate_name(&name, &mut causes);
    let spec = &rs.spec;
    non_negative("spec.replicas", spec.replicas, &mut causes);
    validate_selector_and_template(
        Some(&spec.selector),
        spec.template.as_ref(),
        spec.replicas.unwrap_or(1) > 0,
        &mut causes,
    );
    if let Some(old) = old.map(|o| &o.spec)
        && meta::normalized(&serde_json::to_value(&old.selector).unwrap_or_default())
            != meta::normalized(&serde_json::to_value(&spec.selector).unwrap_or_default())
    {
        causes.push((
            "spec.selector".into(),
            "Invalid value: field is immutable".into(),
        ));
    }
    finish(Kind::ReplicaSet, &name, causes)
}

/// Resolve an int-or-percent against `total` (percentages round up for surge, down for
/// unavailable, as the deployment controller does).
pub fn resolve_int_or_percent(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        None => 0,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let scaled = pct * i64::from(total);
            let r = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(r).unwrap_or(i32::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(labels: Value, selector: Value, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}
        })
    }

    #[test]
    fn defaults_are_applied() {
        let d = prepare(
            Kind::Deployment,
            &deployment(json!({"app": "web"}), json!({"app": "web"}), "web:1"),
            None,
        )
        .unwrap();
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
    }

    #[test]
    fn selector_must_match_and_image_is_required() {
        let err = prepare(
            Kind::Deployment,
            &deployment(json!({"app": "x"}), json!({"app": "web"}), ""),
            None,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("does not match template"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("image: Required value"),
            "{}",
            err.message
        );
        let bad_type = json!({"metadata": {"name": "x"}, "spec": {"replicas": "three"}});
        assert_eq!(
            prepare(Kind::Deployment, &bad_type, None).unwrap_err().code,
            400
        );
    }

    #[test]
    fn percentages() {
        let p = IntOrString::String("25%".into());
        assert_eq!(resolve_int_or_percent(Some(&p), 3, true), 1);
        assert_eq!(resolve_int_or_percent(Some(&p), 3, false), 0);
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("reg:5000/nginx:1.2"), "IfNotPresent");
        assert_eq!(default_pull_policy("reg:5000/nginx"), "Always");
    }
}
