//! The REST semantics of the stored kinds: create/update/patch/delete with the API server's
//! checks (namespace and name agreement, resourceVersion preconditions, immutable identity,
//! status ignored on the main resource), `dryRun=All`, and the `scale` and `status`
//! subresources. Every committed write is followed by a controller pass.

use serde_json::{Value, json};

use crate::controller;
use crate::error::{ApiError, ApiResult};
use crate::meta::{self, FieldSelector, Selector};
use crate::objects;
use crate::patch::{self, PatchKind};
use crate::store::{Kind, Store};

/// Options shared by the write verbs.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate, default, answer — and store nothing.
    pub dry_run: bool,
}

fn rv_of(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn get(store: &Store, kind: Kind, ns: &str, name: &str) -> ApiResult<Value> {
    store
        .get(kind, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&kind.resource(), name))
}

/// A `…List` of the matching objects, with the list's resourceVersion (where watches resume).
pub fn list(
    store: &Store,
    kind: Kind,
    ns: Option<&str>,
    labels: &Selector,
    fields: &FieldSelector,
) -> Value {
    let items: Vec<Value> = store
        .list(kind, ns)
        .into_iter()
        .filter(|o| labels.matches(&meta::labels_of(o)) && fields.matches(o))
        .cloned()
        .collect();
    json!({
        "kind": format!("{}List", kind.kind()),
        "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": store.resource_version().to_string()},
        "items": items,
    })
}

fn set_type_meta(obj: &mut Value, kind: Kind) {
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), json!(kind.api_version()));
        m.insert("kind".into(), json!(kind.kind()));
    }
}

pub fn create(
    store: &mut Store,
    kind: Kind,
    ns: &str,
    mut body: Value,
    opts: WriteOptions,
) -> ApiResult<Value> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let (body_ns, mut name) = meta::ns_name(&body);
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if !rv_of(&body).is_empty() {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if name.is_empty() {
        let prefix = body
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                kind.kind(),
                "",
                &[(
                    "metadata.name".into(),
                    "Required value: name or generateName is required".into(),
                )],
            ));
        }
        let suffix: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .filter(char::is_ascii_lowercase)
            .take(5)
            .collect();
        name = format!("{prefix}{suffix}");
    }
    {
        let m = meta::metadata_mut(&mut body);
        m.insert("name".into(), json!(name));
        m.insert("namespace".into(), json!(ns));
        for f in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "managedFields",
        ] {
            m.remove(f);
        }
    }
    // Status is the controller's: a create ignores it (where status is a subresource).
    if kind.has_status_subresource() {
        body.as_object_mut().map(|m| m.remove("status"));
    }
    set_type_meta(&mut body, kind);
    let prepared = objects::prepare(kind, &body, None)?;
    if store.get(kind, ns, &name).is_some() {
        return Err(ApiError::already_exists(&kind.resource(), &name));
    }
    if opts.dry_run {
        let mut out = prepared;
        let m = meta::metadata_mut(&mut out);
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(meta::now_string()));
        m.insert("generation".into(), json!(1));
        return Ok(out);
    }
    let created = store.create(kind, prepared);
    controller::reconcile(store);
    Ok(created)
}

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but status.
    Main,
    /// The status subresource: only status.
    Status,
}

/// Replace an object (PUT), with the optimistic-concurrency check on resourceVersion.
pub fn update(
    store: &mut Store,
    kind: Kind,
    ns: &str,
    name: &str,
    mut body: Value,
    part: Part,
    opts: WriteOptions,
) -> ApiResult<Value> {
    let existing = get(store, kind, ns, name)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let (body_ns, body_name) = meta::ns_name(&body);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let body_rv = rv_of(&body);
    if !body_rv.is_empty() && body_rv != rv_of(&existing) {
        return Err(ApiError::conflict(&kind.resource(), name));
    }
    {
        let m = meta::metadata_mut(&mut body);
        m.insert("name".into(), json!(name));
        m.insert("namespace".into(), json!(ns));
        for f in [
            "uid",
            "creationTimestamp",
            "generation",
            "resourceVersion",
            "deletionTimestamp",
        ] {
            match existing.pointer(&format!("/metadata/{f}")) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
    }
    let merged = match part {
        // Without a status subresource the main resource carries status like any field.
        Part::Main if !kind.has_status_subresource() => body,
        Part::Main => {
            let mut b = body;
            match existing.get("status") {
                Some(s) => b["status"] = s.clone(),
                None => {
                    b.as_object_mut().map(|m| m.remove("status"));
                }
            }
            b
        }
        Part::Status => {
            let mut b = existing.clone();
            b["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            b
        }
    };
    let mut merged = merged;
    set_type_meta(&mut merged, kind);
    let prepared = objects::prepare(kind, &merged, Some(&existing))?;
    if opts.dry_run {
        let mut out = prepared;
        if out.get("spec") != existing.get("spec") {
            let g = existing
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            meta::metadata_mut(&mut out).insert("generation".into(), json!(g + 1));
        }
        return Ok(out);
    }
    let updated = store.update(kind, prepared);
    controller::reconcile(store);
    Ok(updated)
}

/// PATCH in any of the three formats, then the same path as an update.
pub fn patch(
    store: &mut Store,
    kind: Kind,
    ns: &str,
    name: &str,
    (patch_kind, body): (PatchKind, &[u8]),
    part: Part,
    opts: WriteOptions,
) -> ApiResult<Value> {
    let existing = get(store, kind, ns, name)?;
    let patched = patch::apply(patch_kind, &existing, body)?;
    // A patch that sets metadata.resourceVersion is a precondition; otherwise it carries the
    // current one through and cannot conflict.
    update(store, kind, ns, name, patched, part, opts)
}

/// Delete, cascading to owned ReplicaSets (background propagation, the apps/v1 default)
/// unless `propagationPolicy=Orphan`.
pub fn delete(
    store: &mut Store,
    kind: Kind,
    ns: &str,
    name: &str,
    orphan: bool,
    opts: WriteOptions,
) -> ApiResult<Value> {
    let existing = get(store, kind, ns, name)?;
    if opts.dry_run {
        return Ok(existing);
    }
    let uid = existing
        .pointer("/metadata/uid")
        .cloned()
        .unwrap_or(Value::Null);
    let deleted = store.delete(kind, ns, name).unwrap_or(existing);
    if kind == Kind::Deployment {
        let owned: Vec<Value> = store
            .list(Kind::ReplicaSet, Some(ns))
            .into_iter()
            .filter(|rs| {
                rs.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r.get("uid") == Some(&uid)))
            })
            .cloned()
            .collect();
        for mut rs in owned {
            let (_, rs_name) = meta::ns_name(&rs);
            if orphan {
                if let Some(refs) = rs
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r.get("uid") != Some(&uid));
                }
                store.update(Kind::ReplicaSet, rs);
            } else {
                store.delete(Kind::ReplicaSet, ns, &rs_name);
            }
        }
    }
    controller::reconcile(store);
    Ok(deleted)
}

/// The autoscaling/v1 Scale view of a Deployment or ReplicaSet.
pub fn get_scale(store: &Store, kind: Kind, ns: &str, name: &str) -> ApiResult<Value> {
    let obj = get(store, kind, ns, name)?;
    Ok(scale_of(kind, &obj))
}

fn scale_of(kind: Kind, obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .map(|s| meta::selector_string(&s))
        .unwrap_or_default();
    let m = &obj["metadata"];
    let _ = kind;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// PUT on /scale: only spec.replicas is taken from the body.
pub fn update_scale(
    store: &mut Store,
    kind: Kind,
    ns: &str,
    name: &str,
    body: &Value,
    opts: WriteOptions,
) -> ApiResult<Value> {
    let existing = get(store, kind, ns, name)?;
    let body_rv = rv_of(body);
    if !body_rv.is_empty() && body_rv != rv_of(&existing) {
        return Err(ApiError::conflict(&kind.resource(), name));
    }
    let replicas = match body.pointer("/spec/replicas") {
        None | Some(Value::Null) => 0, // omitted means 0 in autoscaling/v1
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| ApiError::bad_request(format!("Scale in version \"v1\" cannot be handled as a Scale: spec.replicas: {v} is not an integer")))?,
    };
    if replicas < 0 {
        return Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            ),
        ));
    }
    let mut obj = existing;
    obj["spec"]["replicas"] = json!(replicas);
    let updated = update(store, kind, ns, name, obj, Part::Main, opts)?;
    let current = if opts.dry_run {
        updated
    } else {
        get(store, kind, ns, name)?
    };
    Ok(scale_of(kind, &current))
}

pub fn patch_scale(
    store: &mut Store,
    kind: Kind,
    ns: &str,
    name: &str,
    patch_kind: PatchKind,
    body: &[u8],
    opts: WriteOptions,
) -> ApiResult<Value> {
    let scale = get_scale(store, kind, ns, name)?;
    let patched = patch::apply(patch_kind, &scale, body)?;
    update_scale(store, kind, ns, name, &patched, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str, image: &str) -> Value {
        json!({
            "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}
        })
    }

    #[test]
    fn crud_conflict_and_dry_run() {
        let mut s = Store::new();
        let created = create(
            &mut s,
            Kind::Deployment,
            "ns",
            deployment("web", "web:1"),
            WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(
            create(
                &mut s,
                Kind::Deployment,
                "ns",
                deployment("web", "web:1"),
                WriteOptions::default()
            )
            .unwrap_err()
            .code,
            409
        );
        let mut stale = created.clone();
        stale["spec"]["replicas"] = json!(5);
        // The controller has written status since, so the create's resourceVersion is stale.
        assert_eq!(
            update(
                &mut s,
                Kind::Deployment,
                "ns",
                "web",
                stale,
                Part::Main,
                WriteOptions::default()
            )
            .unwrap_err()
            .code,
            409
        );

        let before = get(&s, Kind::Deployment, "ns", "web").unwrap();
        let dry = WriteOptions { dry_run: true };
        let out = patch(
            &mut s,
            Kind::Deployment,
            "ns",
            "web",
            (PatchKind::Merge, br#"{"spec":{"replicas":7}}"#),
            Part::Main,
            dry,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 7);
        assert_eq!(
            get(&s, Kind::Deployment, "ns", "web").unwrap(),
            before,
            "dry run changed nothing"
        );

        let scaled = update_scale(
            &mut s,
            Kind::Deployment,
            "ns",
            "web",
            &json!({"spec": {"replicas": 0}}),
            WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(scaled["spec"]["replicas"], 0);
        assert_eq!(scaled["status"]["selector"], "app=web");
        delete(
            &mut s,
            Kind::Deployment,
            "ns",
            "web",
            false,
            WriteOptions::default(),
        )
        .unwrap();
        assert!(
            s.list(Kind::ReplicaSet, Some("ns")).is_empty(),
            "owned ReplicaSets are collected"
        );
    }
}
