//! Just enough of the Kubernetes protobuf encoding to read a `SelfSubjectAccessReview`:
//! kubectl's built-in clients send built-in types as `application/vnd.kubernetes.protobuf`
//! (the `k8s\0` magic, then a `runtime.Unknown` whose `raw` field holds the object). Answers
//! go back as JSON, which those clients also accept.

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One field of a message: (number, bytes of a length-delimited value); varints and fixed
/// widths are skipped (no field read here uses them).
fn fields(mut buf: &[u8]) -> Result<Vec<(u64, &[u8])>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        match key & 7 {
            0 => {
                varint(&mut buf)?;
            }
            1 => buf = buf.get(8..).ok_or("truncated fixed64")?,
            5 => buf = buf.get(4..).ok_or("truncated fixed32")?,
            2 => {
                let len = usize::try_from(varint(&mut buf)?).map_err(|_| "length overflow")?;
                let (value, rest) = (
                    buf.get(..len).ok_or("truncated field")?,
                    buf.get(len..).unwrap_or_default(),
                );
                out.push((key >> 3, value));
                buf = rest;
            }
            other => return Err(format!("unsupported wire type {other}")),
        }
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().ok_or("truncated varint")?;
        *buf = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn field<'a>(fields: &[(u64, &'a [u8])], n: u64) -> Option<&'a [u8]> {
    fields.iter().rev().find(|(k, _)| *k == n).map(|(_, v)| *v)
}

/// The string fields `names` (numbered from 1) of a message, as a JSON object.
fn strings(buf: &[u8], names: &[&str]) -> Result<Value, String> {
    let fields = fields(buf)?;
    let mut out = Map::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(v) = field(&fields, i as u64 + 1) {
            out.insert((*name).into(), json!(String::from_utf8_lossy(v)));
        }
    }
    Ok(Value::Object(out))
}

/// A protobuf `SelfSubjectAccessReview` as its JSON form (apiVersion, kind, spec).
pub fn self_subject_access_review(body: &[u8]) -> Result<Value, String> {
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or("protobuf body without the k8s magic prefix")?;
    let unknown = fields(unknown)?;
    let raw = field(&unknown, 2).ok_or("protobuf envelope without raw")?;
    let review = fields(raw)?;
    let mut spec = Map::new();
    if let Some(spec_bytes) = field(&review, 2) {
        let spec_fields = fields(spec_bytes)?;
        if let Some(r) = field(&spec_fields, 1) {
            spec.insert(
                "resourceAttributes".into(),
                strings(
                    r,
                    &[
                        "namespace",
                        "verb",
                        "group",
                        "version",
                        "resource",
                        "subresource",
                        "name",
                    ],
                )?,
            );
        }
        if let Some(n) = field(&spec_fields, 2) {
            spec.insert(
                "nonResourceAttributes".into(),
                strings(n, &["path", "verb"])?,
            );
        }
    }
    Ok(json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {},
        "spec": spec,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(fields: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, bytes) in fields {
            out.push(((n << 3) | 2) as u8);
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn reads_what_kubectl_auth_can_i_sends() {
        let attrs = message(&[
            (1, b"mint".to_vec()),
            (2, b"update".to_vec()),
            (3, b"apps".to_vec()),
            (5, b"deployments".to_vec()),
        ]);
        let spec = message(&[(1, attrs)]);
        let review = message(&[(1, Vec::new()), (2, spec), (3, Vec::new())]);
        let type_meta = message(&[
            (1, b"authorization.k8s.io/v1".to_vec()),
            (2, b"SelfSubjectAccessReview".to_vec()),
        ]);
        let mut body = MAGIC.to_vec();
        body.extend(message(&[(1, type_meta), (2, review)]));
        let json = self_subject_access_review(&body).unwrap();
        assert_eq!(
            json["spec"]["resourceAttributes"],
            json!({"namespace": "mint", "verb": "update", "group": "apps", "resource": "deployments"})
        );
        assert!(self_subject_access_review(b"{}").is_err());
    }
}
