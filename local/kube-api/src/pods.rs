//! Pods, simulated just enough to show which image a pod runs.
//!
//! Every ReplicaSet has as many pods as its `status.replicas` says (the controller's pod
//! simulation moves that count), each created when the count goes up and removed (newest
//! first) when it goes down. A pod resolves its containers' images **once, when it is
//! created**, the way a kubelet pulls:
//!
//! - a registry: tag reference → digest (`repo:prod` → `sha256:…`), set by the test or drill
//!   with [`crate::LocalKube::set_image_digest`] (the drill copies ECR's digests from moto); a
//!   reference it does not know resolves to a fixed digest derived from the reference (a tag
//!   that never moves);
//! - one node with an image cache (reference → digest it pulled): `imagePullPolicy: Always`
//!   asks the registry and refreshes the cache; `IfNotPresent` (the API server's default for a
//!   tag other than `latest`) uses the cached digest when there is one; `Never` uses only the
//!   cache; an image pinned by digest runs that digest.
//!
//! The digest shows in `status.containerStatuses[].imageID` (`repo@sha256:…`, as containerd
//! reports it), served by `GET /api/v1/namespaces/{ns}/pods` (label and field selectors) and
//! [`crate::LocalKube::pods`]. Not modelled: scheduling, several nodes, image pull errors, pod
//! events and watches (a pods watch stays empty), restarts of containers.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::meta;
use crate::store::{Kind, Store};

/// The one node pods run on.
pub const NODE: &str = "local-node";

#[derive(Debug, Clone, Default)]
pub struct PodSim {
    /// Tag reference → the digest the registry serves for it.
    pub registry: BTreeMap<String, String>,
    /// Reference → the digest the node pulled for it (its image cache).
    pub node_cache: BTreeMap<String, String>,
    /// (namespace, ReplicaSet) → its pods, oldest first.
    pods: BTreeMap<(String, String), Vec<SimPod>>,
    created: u64,
}

#[derive(Debug, Clone)]
struct SimPod {
    name: String,
    uid: String,
    created_at: String,
    /// (container, image, imageID).
    containers: Vec<(String, String, String)>,
}

/// `repo:tag` for a tag reference (`:latest` when untagged); `None` for a digest reference.
fn tag_reference(image: &str) -> Option<String> {
    if image.contains('@') {
        return None;
    }
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    Some(if image[slash..].contains(':') {
        image.to_owned()
    } else {
        format!("{image}:latest")
    })
}

/// The repository part of a reference (no tag, no digest).
fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let slash = no_digest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match no_digest[slash..].rfind(':') {
        Some(i) => &no_digest[..slash + i],
        None => no_digest,
    }
}

impl PodSim {
    /// What the registry serves for a tag reference now.
    fn registry_digest(&self, reference: &str) -> String {
        self.registry.get(reference).cloned().unwrap_or_else(|| {
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(reference.as_bytes()))
            )
        })
    }

    /// The kubelet's pull for one container: the `imageID` it ends up running.
    fn pull(&mut self, image: &str, policy: &str) -> String {
        let Some(reference) = tag_reference(image) else {
            let digest = image.split_once('@').map(|(_, d)| d).unwrap_or_default();
            return format!("{}@{digest}", repository(image));
        };
        let digest = match policy {
            "Always" => {
                let d = self.registry_digest(&reference);
                self.node_cache.insert(reference.clone(), d.clone());
                d
            }
            "Never" => match self.node_cache.get(&reference) {
                Some(d) => d.clone(),
                // ErrImageNeverPull: the container never starts, so it has no image ID.
                None => return String::new(),
            },
            _ => match self.node_cache.get(&reference) {
                Some(d) => d.clone(),
                None => {
                    let d = self.registry_digest(&reference);
                    self.node_cache.insert(reference.clone(), d.clone());
                    d
                }
            },
        };
        format!("{}@{digest}", repository(image))
    }

    fn next_name(&mut self, rs: &str) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        self.created += 1;
        let mut n = self.created;
        let mut suffix = String::new();
        for _ in 0..5 {
            suffix.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
            n /= ALPHABET.len() as u64;
        }
        format!("{rs}-{suffix}")
    }
}

/// (container, image, imagePullPolicy) of a pod template.
type Containers = Vec<(String, String, String)>;

/// Make every ReplicaSet's pods match its `status.replicas` (after each controller pass).
pub fn sync(store: &mut Store) {
    let sets: Vec<(String, String, Containers, usize)> = store
        .list(Kind::ReplicaSet, None)
        .into_iter()
        .map(|rs| {
            let (ns, name) = meta::ns_name(rs);
            let containers = rs
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
                            (
                                s("name").to_owned(),
                                s("image").to_owned(),
                                s("imagePullPolicy").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let count = rs
                .pointer("/status/replicas")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            (ns, name, containers, usize::try_from(count).unwrap_or(0))
        })
        .collect();
    let sim = &mut store.sim.pods;
    let live: Vec<(String, String)> = sets
        .iter()
        .map(|(n, r, _, _)| (n.clone(), r.clone()))
        .collect();
    sim.pods.retain(|key, _| live.contains(key));
    for (ns, rs, containers, count) in sets {
        let mut pods = sim
            .pods
            .remove(&(ns.clone(), rs.clone()))
            .unwrap_or_default();
        pods.truncate(count);
        while pods.len() < count {
            let name = sim.next_name(&rs);
            let containers = containers
                .iter()
                .map(|(c, image, policy)| (c.clone(), image.clone(), sim.pull(image, policy)))
                .collect();
            pods.push(SimPod {
                name,
                uid: uuid::Uuid::new_v4().to_string(),
                created_at: meta::now_string(),
                containers,
            });
        }
        if !pods.is_empty() {
            sim.pods.insert((ns, rs), pods);
        }
    }
}

/// The pods of one namespace (or all), as `v1` Pod objects.
pub fn list(store: &Store, ns: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    for ((pod_ns, rs_name), pods) in &store.sim.pods.pods {
        if ns.is_some_and(|n| n != pod_ns) {
            continue;
        }
        let Some(rs) = store.get(Kind::ReplicaSet, pod_ns, rs_name) else {
            continue;
        };
        let ready = rs
            .pointer("/status/readyReplicas")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let template = rs.pointer("/spec/template").cloned().unwrap_or(Value::Null);
        for (i, pod) in pods.iter().enumerate() {
            let is_ready = (i as u64) < ready;
            let statuses: Vec<Value> = pod
                .containers
                .iter()
                .map(|(name, image, image_id)| {
                    json!({
                        "name": name, "image": image, "imageID": image_id,
                        "ready": is_ready, "started": is_ready, "restartCount": 0,
                        "state": if is_ready {
                            json!({"running": {"startedAt": pod.created_at}})
                        } else {
                            json!({"waiting": {"reason": "ContainerCreating"}})
                        },
                    })
                })
                .collect();
            let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
            spec["nodeName"] = json!(NODE);
            out.push(json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod.name,
                    "namespace": pod_ns,
                    "uid": pod.uid,
                    "creationTimestamp": pod.created_at,
                    "labels": template.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
                    "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or_else(|| json!({})),
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name,
                        "uid": rs.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                        "controller": true, "blockOwnerDeletion": true,
                    }],
                },
                "spec": spec,
                "status": {
                    "phase": if is_ready { "Running" } else { "Pending" },
                    "hostIP": "127.0.0.1",
                    "containerStatuses": statuses,
                },
            }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_and_the_node_cache() {
        let mut sim = PodSim::default();
        sim.registry
            .insert("reg/app:prod".into(), "sha256:bad".into());
        assert_eq!(
            sim.pull("reg/app:prod", "IfNotPresent"),
            "reg/app@sha256:bad"
        );
        // The tag moves: IfNotPresent keeps what the node has, Always pulls again.
        sim.registry
            .insert("reg/app:prod".into(), "sha256:good".into());
        assert_eq!(
            sim.pull("reg/app:prod", "IfNotPresent"),
            "reg/app@sha256:bad"
        );
        assert_eq!(sim.pull("reg/app:prod", "Always"), "reg/app@sha256:good");
        assert_eq!(
            sim.pull("reg/app:prod", "IfNotPresent"),
            "reg/app@sha256:good"
        );
        assert_eq!(
            sim.pull("reg/app@sha256:abc", "Always"),
            "reg/app@sha256:abc"
        );
        assert_eq!(sim.pull("localhost:5000/app", "Never"), "");
        let unknown = sim.pull("localhost:5000/app:v1", "Always");
        assert!(
            unknown.starts_with("localhost:5000/app@sha256:"),
            "{unknown}"
        );
        assert_eq!(
            tag_reference("localhost:5000/app").as_deref(),
            Some("localhost:5000/app:latest")
        );
    }
}
