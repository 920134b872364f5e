//! Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), so
//! `kubectl get deploy` shows READY / UP-TO-DATE / AVAILABLE like against a real cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use crate::meta;
use crate::store::Kind;

/// Whether the client asked for a Table (kubectl get does; other clients do not).
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn column(name: &str, type_: &str, format: &str, priority: u8, description: &str) -> Value {
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn age_column() -> Value {
    column(
        "Age",
        "string",
        "",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    )
}

fn columns(kind: Kind) -> Vec<Value> {
    let mut cols = vec![column(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace.",
    )];
    if kind.is_custom() {
        // A CRD without additionalPrinterColumns: the API server prints NAME and AGE.
        cols.push(age_column());
        return cols;
    }
    match kind {
        Kind::Deployment => cols.extend([
            column("Ready", "string", "", 0, "Number of the pod with ready state"),
            column("Up-to-date", "string", "", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            column("Available", "string", "", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
        ]),
        Kind::ReplicaSet => cols.extend([
            column("Desired", "integer", "", 0, "Replicas is the number of desired replicas."),
            column("Current", "integer", "", 0, "Replicas is the most recently observed number of replicas."),
            column("Ready", "integer", "", 0, "The number of ready replicas for this replica set."),
        ]),
        Kind::Application | Kind::Kustomization => {}
    }
    cols.extend([
        age_column(),
        column(
            "Containers",
            "string",
            "",
            1,
            "Names of each container in the template.",
        ),
        column(
            "Images",
            "string",
            "",
            1,
            "Images referenced by each container in the template.",
        ),
        column("Selector", "string", "", 1, "Label selector for pods."),
    ]);
    cols
}

fn row(kind: Kind, obj: &Value, include_object: &str) -> Value {
    let num = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let age = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(|t| serde_json::from_value::<Time>(t.clone()).ok())
        .map(|t| meta::human_age(&t))
        .unwrap_or_else(|| "<unknown>".into());
    let containers = obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| serde_json::from_value(s.clone()).ok())
        .map(|s| meta::selector_string(&s))
        .unwrap_or_default();
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let mut cells = vec![name];
    if kind.is_custom() {
        cells.push(json!(age));
    }
    match kind {
        Kind::Deployment => cells.extend([
            json!(format!(
                "{}/{}",
                num("/status/readyReplicas"),
                num("/spec/replicas")
            )),
            json!(num("/status/updatedReplicas")),
            json!(num("/status/availableReplicas")),
        ]),
        Kind::ReplicaSet => cells.extend([
            json!(num("/spec/replicas")),
            json!(num("/status/replicas")),
            json!(num("/status/readyReplicas")),
        ]),
        Kind::Application | Kind::Kustomization => {}
    }
    if !kind.is_custom() {
        cells.extend([
            json!(age),
            json!(names.join(",")),
            json!(images.join(",")),
            json!(selector),
        ]);
    }
    let object = match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
        }
    };
    json!({"cells": cells, "object": object})
}

/// A Table of `objects`; `include_object` is the `includeObject` query parameter.
pub fn table(kind: Kind, objects: &[Value], resource_version: &str, include_object: &str) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns(kind),
        "rows": objects.iter().map(|o| row(kind, o, include_object)).collect::<Vec<_>>(),
    })
}
