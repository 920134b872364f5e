//! In-memory object storage with the API server's bookkeeping: one global
//! resourceVersion counter, uid/creationTimestamp on create, generation bumps
//! on spec changes, and a bounded event log so watches can resume from a
//! resourceVersion (kubectl's `rollout status` lists, then watches from the
//! list's resourceVersion).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::meta;

/// How many past events a watch can resume from before it gets 410 Gone.
const EVENT_LOG_LEN: usize = 4096;

/// The stored kinds (events are always empty and never stored; pods are simulated, see
/// `pods`). Besides `apps/v1`, two custom resources a rollback suspends: Argo CD Applications
/// and Flux Kustomizations, stored as their CRDs would store them (schemaless beyond the
/// fields `objects::prepare_custom` checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Deployment,
    ReplicaSet,
    /// `argoproj.io/v1alpha1` `applications` (no status subresource, like Argo CD's CRD).
    Application,
    /// `kustomize.toolkit.fluxcd.io/v1` `kustomizations` (with a status subresource).
    Kustomization,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Deployment,
        Kind::ReplicaSet,
        Kind::Application,
        Kind::Kustomization,
    ];

    /// The kind served at `/apis/<group>/<version>/…/<plural>`.
    pub fn from_path(group: &str, version: &str, plural: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.group() == group && k.version() == version && k.plural() == plural)
    }

    /// The kind of an object's `apiVersion` and `kind`.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.kind() == kind)
    }

    pub fn kind(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Application => "Application",
            Kind::Kustomization => "Kustomization",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments",
            Kind::ReplicaSet => "replicasets",
            Kind::Application => "applications",
            Kind::Kustomization => "kustomizations",
        }
    }

    pub fn group(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet => "apps",
            Kind::Application => "argoproj.io",
            Kind::Kustomization => "kustomize.toolkit.fluxcd.io",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet => "v1",
            Kind::Application => "v1alpha1",
            Kind::Kustomization => "v1",
        }
    }

    /// `apps/v1`, `argoproj.io/v1alpha1`, …
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment | Kind::ReplicaSet => "apps/v1",
            Kind::Application => "argoproj.io/v1alpha1",
            Kind::Kustomization => "kustomize.toolkit.fluxcd.io/v1",
        }
    }

    /// A custom resource (no controller, no typed validation).
    pub fn is_custom(self) -> bool {
        matches!(self, Kind::Application | Kind::Kustomization)
    }

    /// Whether `…/status` is a subresource (Argo CD's Application CRD has none).
    pub fn has_status_subresource(self) -> bool {
        !matches!(self, Kind::Application)
    }

    /// "deployments.apps", as used in the API server's error messages.
    pub fn resource(self) -> String {
        format!("{}.{}", self.plural(), self.group())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: Kind,
    pub namespace: String,
    pub event_type: EventType,
    pub object: Arc<Value>,
}

type Key = (Kind, String, String);

/// Controller knobs that tests flip through the handle.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Pods become ready as soon as a ReplicaSet is scaled (the default); when false, only
    /// `LocalKube::step` moves them.
    pub auto_progress: bool,
    /// Deployments whose progress deadline a test declared expired (ns, name).
    pub deadline_expired: BTreeSet<(String, String)>,
    /// The ReplicaSets' pods, the image registry and the node's image cache (see `pods`).
    pub pods: crate::pods::PodSim,
}

pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    log: VecDeque<WatchEvent>,
    /// resourceVersion of the newest event dropped from the log (0: none dropped yet).
    log_floor: u64,
    tx: broadcast::Sender<WatchEvent>,
    pub sim: Simulation,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(EVENT_LOG_LEN);
        Store {
            objects: BTreeMap::new(),
            // Start above 0: resourceVersion "0" means "any version" to clients.
            rv: 1000,
            log: VecDeque::new(),
            log_floor: 0,
            tx,
            sim: Simulation {
                auto_progress: true,
                deadline_expired: BTreeSet::new(),
                pods: crate::pods::PodSim::default(),
            },
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(kind, ns.to_string(), name.to_string()))
    }

    /// Objects of `kind`, in one namespace or all, ordered by (namespace, name).
    pub fn list(&self, kind: Kind, ns: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((k, n, _), _)| *k == kind && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v)
            .collect()
    }

    pub fn namespaces(&self) -> BTreeSet<String> {
        self.objects.keys().map(|(_, ns, _)| ns.clone()).collect()
    }

    /// Store a new object: assigns uid, creationTimestamp, generation 1 and a resourceVersion.
    pub fn create(&mut self, kind: Kind, mut obj: Value) -> Value {
        let (ns, name) = meta::ns_name(&obj);
        let m = meta::metadata_mut(&mut obj);
        m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), json!(meta::now_string()));
        m.insert("generation".into(), json!(1));
        self.commit(kind, ns, name, obj, EventType::Added)
    }

    /// Store a changed version of an existing object. Identity fields come from the stored
    /// copy; generation is bumped exactly when `spec` changed. Writing an identical object is
    /// a no-op that keeps the resourceVersion, as in the real API server.
    pub fn update(&mut self, kind: Kind, mut obj: Value) -> Value {
        let (ns, name) = meta::ns_name(&obj);
        let Some(old) = self.get(kind, &ns, &name).cloned() else {
            return self.create(kind, obj);
        };
        let old_gen = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let generation = if old.get("spec") != obj.get("spec") {
            old_gen + 1
        } else {
            old_gen
        };
        {
            let m = meta::metadata_mut(&mut obj);
            for field in ["uid", "creationTimestamp"] {
                match old.pointer(&format!("/metadata/{field}")) {
                    Some(v) => m.insert(field.into(), v.clone()),
                    None => m.remove(field),
                };
            }
            m.insert("generation".into(), json!(generation));
            m.insert(
                "resourceVersion".into(),
                old["metadata"]["resourceVersion"].clone(),
            );
        }
        if obj == old {
            return old;
        }
        self.commit(kind, ns, name, obj, EventType::Modified)
    }

    pub fn delete(&mut self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .remove(&(kind, ns.to_string(), name.to_string()))?;
        self.rv += 1;
        meta::metadata_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.emit(kind, ns.to_string(), EventType::Deleted, &obj);
        Some(obj)
    }

    fn commit(
        &mut self,
        kind: Kind,
        ns: String,
        name: String,
        mut obj: Value,
        event_type: EventType,
    ) -> Value {
        self.rv += 1;
        meta::metadata_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.emit(kind, ns.clone(), event_type, &obj);
        self.objects.insert((kind, ns, name), obj.clone());
        obj
    }

    fn emit(&mut self, kind: Kind, namespace: String, event_type: EventType, obj: &Value) {
        let event = WatchEvent {
            rv: self.rv,
            kind,
            namespace,
            event_type,
            object: Arc::new(obj.clone()),
        };
        if self.log.len() == EVENT_LOG_LEN
            && let Some(dropped) = self.log.pop_front()
        {
            self.log_floor = dropped.rv;
        }
        self.log.push_back(event.clone());
        // No receivers is normal (nobody watching).
        let _ = self.tx.send(event);
    }

    /// Subscribe to live events and get the logged events after `since` (None when `since` is
    /// older than the log, i.e. the watch must restart with a list: 410 Gone).
    pub fn watch_from(
        &self,
        since: u64,
    ) -> (broadcast::Receiver<WatchEvent>, Option<Vec<WatchEvent>>) {
        let rx = self.tx.subscribe();
        let backlog = if since < self.log_floor {
            None
        } else {
            Some(self.log.iter().filter(|e| e.rv > since).cloned().collect())
        };
        (rx, backlog)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, replicas: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"replicas": replicas}})
    }

    #[test]
    fn generation_and_resource_version() {
        let mut s = Store::new();
        let a = s.create(Kind::Deployment, obj("a", 1));
        assert_eq!(a["metadata"]["generation"], 1);
        let rv1 = a["metadata"]["resourceVersion"].clone();
        let same = s.update(Kind::Deployment, a.clone());
        assert_eq!(
            same["metadata"]["resourceVersion"], rv1,
            "identical write is a no-op"
        );
        let mut b = a.clone();
        b["metadata"]["labels"] = json!({"x": "y"});
        let b = s.update(Kind::Deployment, b);
        assert_eq!(
            b["metadata"]["generation"], 1,
            "metadata change keeps generation"
        );
        assert_ne!(b["metadata"]["resourceVersion"], rv1);
        let c = s.update(Kind::Deployment, obj("a", 3));
        assert_eq!(c["metadata"]["generation"], 2);
        assert_eq!(c["metadata"]["uid"], a["metadata"]["uid"]);
    }

    #[test]
    fn watch_backlog_and_expiry() {
        let mut s = Store::new();
        let start = s.resource_version();
        s.create(Kind::ReplicaSet, obj("a", 1));
        s.delete(Kind::ReplicaSet, "ns", "a");
        let (_rx, backlog) = s.watch_from(start);
        let types: Vec<_> = backlog.unwrap().iter().map(|e| e.event_type).collect();
        assert_eq!(types, vec![EventType::Added, EventType::Deleted]);
    }
}
