//! The three patch formats kubectl and client libraries send.
//!
//! - JSON merge patch (RFC 7386): `application/merge-patch+json`.
//! - JSON patch (RFC 6902): `application/json-patch+json` — what `kubectl rollout undo` sends.
//! - Strategic merge patch: `application/strategic-merge-patch+json` — kubectl's default for
//!   `patch`, `set image`, `rollout pause/resume/restart`. Only the subset that Deployments and
//!   ReplicaSets need: lists with a known merge key (containers by name, env by name, ...) are
//!   merged item by item, other lists are replaced, and the `$patch` / `$setElementOrder` /
//!   `$retainKeys` / `$deleteFromPrimitiveList` directives are honoured or dropped.

use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// Which patch format a request body is in, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> ApiResult<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Ok(PatchKind::Json),
            "application/merge-patch+json" => Ok(PatchKind::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
            // Server-side apply would need managed fields; say so instead of guessing.
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }
}

/// Apply `patch` (raw body) to `target` in the given format.
pub fn apply(kind: PatchKind, target: &Value, patch: &[u8]) -> ApiResult<Value> {
    let patch: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            let mut out = target.clone();
            merge_patch(&mut out, &patch);
            Ok(out)
        }
        PatchKind::Json => json_patch(target, &patch),
        PatchKind::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "strategic merge patch must be a JSON object",
                ));
            }
            let mut out = target.clone();
            strategic_merge(&mut out, &patch)?;
            Ok(out)
        }
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if value.is_null() {
            target_map.remove(key);
        } else {
            merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// RFC 6902 JSON patch. Applied to a copy, so a failing operation changes nothing.
pub fn json_patch(target: &Value, patch: &Value) -> ApiResult<Value> {
    let ops = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("JSON patch must be an array of operations"))?;
    let mut doc = target.clone();
    for (i, op) in ops.iter().enumerate() {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_op(i, "missing \"op\""))?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_op(i, "missing \"path\""))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| bad_op(i, "missing \"value\""))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_op(i, "missing \"from\""))
        };
        match name {
            "add" => pointer_add(&mut doc, path, value()?).map_err(|e| bad_op(i, &e))?,
            "remove" => {
                pointer_remove(&mut doc, path).map_err(|e| bad_op(i, &e))?;
            }
            "replace" => {
                // replace = the target must exist, then it is swapped.
                pointer_remove(&mut doc, path).map_err(|e| bad_op(i, &e))?;
                pointer_add(&mut doc, path, value()?).map_err(|e| bad_op(i, &e))?;
            }
            "move" => {
                let v = pointer_remove(&mut doc, from()?).map_err(|e| bad_op(i, &e))?;
                pointer_add(&mut doc, path, v).map_err(|e| bad_op(i, &e))?;
            }
            "copy" => {
                let v = doc
                    .pointer(from()?)
                    .cloned()
                    .ok_or_else(|| bad_op(i, "\"from\" does not exist"))?;
                pointer_add(&mut doc, path, v).map_err(|e| bad_op(i, &e))?;
            }
            "test" => {
                let expected = value()?;
                if doc.pointer(path) != Some(&expected) {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: testing value {path} failed"
                        ),
                    ));
                }
            }
            other => return Err(bad_op(i, &format!("unknown op {other:?}"))),
        }
    }
    Ok(doc)
}

fn bad_op(index: usize, message: &str) -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        format!(
            "the server rejected our request due to an error in our request: JSON patch operation {index}: {message}"
        ),
    )
}

/// Split "/a/b~1c" into ["a", "b/c"].
fn pointer_tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("path {path:?} must start with '/'"))?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent_mut<'a>(
    doc: &'a mut Value,
    tokens: &[String],
    path: &str,
) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path {path:?} does not exist"))?;
    }
    Ok(cur)
}

fn pointer_add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let tokens = pointer_tokens(path)?;
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let i: usize = last
                .parse()
                .map_err(|_| format!("bad array index in {path:?}"))?;
            if i > a.len() {
                return Err(format!("array index out of range in {path:?}"));
            }
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("path {path:?} does not name a container")),
    }
}

fn pointer_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let tokens = pointer_tokens(path)?;
    let Some((last, parents)) = tokens.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    match parent_mut(doc, parents, path)? {
        Value::Object(m) => m
            .remove(last)
            .ok_or_else(|| format!("path {path:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("bad array index in {path:?}"))?;
            if i >= a.len() {
                return Err(format!("array index out of range in {path:?}"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("path {path:?} does not exist")),
    }
}

/// The patchMergeKey of list fields in the pod template and object metadata, by field name.
/// (Field names are unique enough within Deployments/ReplicaSets for this to be exact.)
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" => "name",
        "env" | "volumes" | "imagePullSecrets" | "resourceClaims" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Primitive lists the API merges as sets (patchStrategy: merge without a key).
fn is_primitive_merge_list(field: &str) -> bool {
    field == "finalizers"
}

/// Strategic merge of `patch` into `target` (both objects).
pub fn strategic_merge(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    // `$patch: replace` on a map replaces it whole; `$patch: delete` removes it (handled by caller).
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch.clone();
        strip_directives(&mut replaced);
        *target = replaced;
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return Ok(());
    };

    for (key, value) in patch_map {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            // Ordering hints and key retention only matter for apply's exact semantics.
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(existing)), Value::Array(remove)) =
                (target_map.get_mut(field), value)
            {
                existing.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            return Err(ApiError::bad_request(format!(
                "unknown strategic merge patch directive {key:?}"
            )));
        }
        if value.is_null() {
            target_map.remove(key);
            continue;
        }
        match value {
            Value::Object(obj) if obj.get("$patch").and_then(Value::as_str) == Some("delete") => {
                target_map.remove(key);
            }
            Value::Object(_) => {
                strategic_merge(target_map.entry(key.clone()).or_insert(Value::Null), value)?;
            }
            Value::Array(items) => {
                let merged = match (merge_key(key), target_map.get(key)) {
                    (Some(mk), Some(Value::Array(existing))) => {
                        merge_keyed_list(existing, items, mk)?
                    }
                    (None, Some(Value::Array(existing))) if is_primitive_merge_list(key) => {
                        let mut out = existing.clone();
                        for item in items {
                            if !out.contains(item) {
                                out.push(item.clone());
                            }
                        }
                        out
                    }
                    _ => {
                        // No existing list (or a replace-strategy list): the patch's list, minus directives.
                        let mut list: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                            .cloned()
                            .collect();
                        list.iter_mut().for_each(strip_directives);
                        list
                    }
                };
                target_map.insert(key.clone(), Value::Array(merged));
            }
            _ => {
                target_map.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

/// Merge a list of maps identified by `key`: matching items merge, `$patch: delete` removes,
/// new items are appended, and `[{"$patch": "replace"}, ...]` replaces the whole list.
fn merge_keyed_list(existing: &[Value], patch: &[Value], key: &str) -> ApiResult<Vec<Value>> {
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        let mut list: Vec<Value> = patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        list.iter_mut().for_each(strip_directives);
        return Ok(list);
    }
    let mut out = existing.to_vec();
    for item in patch {
        let id = item.get(key).ok_or_else(|| {
            ApiError::bad_request(format!("map in list has no merge key {key:?}: {item}"))
        })?;
        let pos = out.iter().position(|e| e.get(key) == Some(id));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                out.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => strategic_merge(&mut out[p], item)?,
            (None, false) => {
                let mut fresh = item.clone();
                strip_directives(&mut fresh);
                out.push(fresh);
            }
        }
    }
    Ok(out)
}

/// Remove `$...` directive keys at every depth, so they never reach storage.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_deletes_with_null_and_replaces_lists() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_replace_add_remove_and_test() {
        let t = json!({"spec": {"template": {"x": 1}}, "metadata": {"annotations": {"a": "1"}}});
        let p = json!([
            {"op": "replace", "path": "/spec/template", "value": {"y": 2}},
            {"op": "add", "path": "/metadata/labels", "value": {"k": "v"}},
            {"op": "remove", "path": "/metadata/annotations/a"},
            {"op": "test", "path": "/spec/template/y", "value": 2}
        ]);
        let out = json_patch(&t, &p).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"template": {"y": 2}}, "metadata": {"annotations": {}, "labels": {"k": "v"}}})
        );
        let err =
            json_patch(&t, &json!([{"op": "replace", "path": "/nope", "value": 1}])).unwrap_err();
        assert_eq!(err.code, 422);
        let err = json_patch(
            &t,
            &json!([{"op": "test", "path": "/spec/template/x", "value": 9}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "side", "image": "s:1"}
        ]}});
        let p = json!({"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
        "containers": [
            {"name": "app", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
            {"name": "side", "$patch": "delete"},
            {"name": "new", "image": "n:1"}
        ]}});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(
            t,
            json!({"spec": {"containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                {"name": "new", "image": "n:1"}
            ]}})
        );
    }

    #[test]
    fn strategic_merge_replace_directive_and_unknown_lists() {
        let mut t = json!({"args": ["a", "b"], "m": {"k": 1, "j": 2}});
        strategic_merge(
            &mut t,
            &json!({"args": ["c"], "m": {"$patch": "replace", "z": 0}}),
        )
        .unwrap();
        assert_eq!(t, json!({"args": ["c"], "m": {"z": 0}}));
        assert!(strategic_merge(&mut t, &json!({"$bogus": 1})).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            PatchKind::from_content_type("application/strategic-merge-patch+json").unwrap(),
            PatchKind::Strategic
        );
        assert_eq!(
            PatchKind::from_content_type("application/apply-patch+yaml")
                .unwrap_err()
                .code,
            415
        );
    }
}
