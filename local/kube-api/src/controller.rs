//! A deployment controller that keeps revisions the way kube-controller-manager's does
//! (pkg/controller/deployment: sync.go, progress.go, util/deployment_util.go), plus a pod
//! simulation: a ReplicaSet's status follows its spec — at once by default, or one pod per
//! `step()` when a test wants to watch a rollout progress — and its pods (`pods`) follow its
//! status, each pulling its images when created.
//!
//! Reconciliation runs synchronously under the store lock after every write, so a client
//! that writes and then reads sees the controller's result (which tests rely on) while
//! watchers still see the intermediate objects as separate events.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::meta::{self, Selector};
use crate::objects::{self, from_value, to_value};
use crate::store::{Kind, Store};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The controller keeps revision-history under this many characters, like the real one's default.
const REVISION_HISTORY_LIMIT_CHARS: usize = 2000;

const PROGRESSING: &str = "Progressing";
const AVAILABLE: &str = "Available";
pub const REASON_NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const REASON_FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const REASON_RS_UPDATED: &str = "ReplicaSetUpdated";
pub const REASON_NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const REASON_TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const REASON_PAUSED: &str = "DeploymentPaused";
pub const REASON_RESUMED: &str = "DeploymentResumed";

/// Bring every Deployment (and stand-alone ReplicaSet) to its desired state.
pub fn reconcile(store: &mut Store) {
    let keys: Vec<(String, String)> = store
        .list(Kind::Deployment, None)
        .into_iter()
        .map(meta::ns_name)
        .collect();
    for (ns, name) in keys {
        sync_deployment(store, &ns, &name);
    }
    // ReplicaSets nobody controls still get "pods".
    let orphans: Vec<Value> = store
        .list(Kind::ReplicaSet, None)
        .into_iter()
        .filter(|rs| controller_uid(rs).is_none())
        .cloned()
        .collect();
    let auto = store.sim.auto_progress;
    for rs in orphans {
        if let Ok(mut typed) = from_value::<ReplicaSet>(Kind::ReplicaSet, &rs) {
            observe(&mut typed, auto);
            commit_rs(store, &typed);
        }
    }
    // Pods follow their ReplicaSets' counts, pulling their images when created.
    crate::pods::sync(store);
}

/// One unit of simulated pod progress for every ReplicaSet (a pod created, became ready, or
/// terminated), then a reconcile so Deployments' status follows. Returns whether anything moved.
pub fn step(store: &mut Store) -> bool {
    let all: Vec<Value> = store
        .list(Kind::ReplicaSet, None)
        .into_iter()
        .cloned()
        .collect();
    let mut moved = false;
    for rs in all {
        let Ok(mut typed) = from_value::<ReplicaSet>(Kind::ReplicaSet, &rs) else {
            continue;
        };
        let want = typed.spec.replicas.unwrap_or(1);
        let status = typed.status.get_or_insert_with(Default::default);
        let ready = status.ready_replicas.unwrap_or(0);
        if status.replicas < want {
            status.replicas += 1; // a pod was created; it is not ready yet
        } else if status.replicas > want {
            status.replicas -= 1; // a pod terminated
            status.ready_replicas = Some(ready.min(status.replicas));
        } else if ready < status.replicas {
            status.ready_replicas = Some(ready + 1);
        } else {
            continue;
        }
        status.available_replicas = status.ready_replicas;
        status.fully_labeled_replicas = Some(status.replicas);
        moved = true;
        commit_rs(store, &typed);
    }
    reconcile(store);
    moved
}

/// The RS controller's view: it always observes the latest generation; pods match the spec
/// at once when `auto` (otherwise `step` moves them).
fn observe(rs: &mut ReplicaSet, auto: bool) {
    let want = rs.spec.replicas.unwrap_or(1);
    let generation = rs.metadata.generation;
    let status = rs.status.get_or_insert_with(Default::default);
    if auto {
        status.replicas = want;
        status.fully_labeled_replicas = Some(want);
        status.ready_replicas = Some(want);
        status.available_replicas = Some(want);
    }
    status.observed_generation = generation;
}

fn commit_rs(store: &mut Store, rs: &ReplicaSet) {
    if let Ok(value) = to_value(rs) {
        let value = clean_status(value);
        store.update(Kind::ReplicaSet, value);
    }
}

/// Zero counts are omitted in the API's JSON (omitempty); keep stored objects the same shape.
fn clean_status(mut value: Value) -> Value {
    if let Some(Value::Object(status)) = value.get_mut("status") {
        status.retain(|k, val| k == "replicas" || !(val == &Value::from(0)));
    }
    value
}

fn controller_uid(obj: &Value) -> Option<String> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|o| o.get("controller") == Some(&Value::Bool(true)))
        .and_then(|o| o.get("uid")?.as_str().map(str::to_string))
}

pub fn revision_of(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// A template with the pod-template-hash label removed, normalized for comparison.
fn template_without_hash(t: Option<&PodTemplateSpec>) -> Value {
    let mut template = serde_json::to_value(t).unwrap_or(Value::Null);
    if let Some(Value::Object(labels)) = template.pointer_mut("/metadata/labels") {
        labels.remove(POD_TEMPLATE_HASH);
    }
    meta::normalized(&template)
}

/// ComputeHash: a stable hash of the template (and the collision count), rendered with the
/// same "safe" alphabet the real controller uses so names look familiar (`web-6d4b5c7f9`).
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: i32) -> String {
    let canonical = template_without_hash(Some(template)).to_string();
    let mut hasher = Sha256::new();
    hasher.update(canonical.as_bytes());
    if collision_count > 0 {
        hasher.update(collision_count.to_le_bytes());
    }
    let digest = hasher.finalize();
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    n.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

fn set_condition(
    status: &mut DeploymentStatus,
    type_: &str,
    cond_status: &str,
    reason: &str,
    message: String,
) {
    let now = meta::now();
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(existing) = conditions
        .iter_mut()
        .find(|c| c.type_.as_deref() == Some(type_))
    {
        if existing.status.as_deref() == Some(cond_status)
            && existing.reason.as_deref() == Some(reason)
        {
            return;
        }
        let transition = if existing.status.as_deref() == Some(cond_status) {
            existing.last_transition_time.clone()
        } else {
            Some(now.clone())
        };
        *existing = DeploymentCondition {
            type_: Some(type_.into()),
            status: Some(cond_status.into()),
            reason: Some(reason.into()),
            message: Some(message),
            last_update_time: Some(now),
            last_transition_time: transition,
        };
    } else {
        conditions.push(DeploymentCondition {
            type_: Some(type_.into()),
            status: Some(cond_status.into()),
            reason: Some(reason.into()),
            message: Some(message),
            last_update_time: Some(now.clone()),
            last_transition_time: Some(now),
        });
    }
}

fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(type_))
}

/// Deployment annotations that are copied to the new ReplicaSet (all but the controller's own).
fn copyable(key: &str) -> bool {
    !matches!(
        key,
        LAST_APPLIED | REVISION | REVISION_HISTORY | DESIRED_REPLICAS | MAX_REPLICAS
    ) && key != "deprecated.deployment.rollback.to"
}

/// SetNewReplicaSetAnnotations: copy the deployment's annotations and move the revision up
/// to `new_revision`, remembering the revisions this template had before.
fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64) {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if copyable(k) {
            annotations.insert(k.clone(), v.clone());
        }
    }
    let old = annotations.get(REVISION).cloned();
    let old_rev: i64 = old.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0);
    if old_rev < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        if let Some(old) = old {
            // Rolling back to this ReplicaSet: keep the revisions it used to be.
            let history = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            let mut revs: Vec<String> = history
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            revs.push(old);
            while revs.join(",").len() > REVISION_HISTORY_LIMIT_CHARS && revs.len() > 1 {
                revs.remove(0);
            }
            annotations.insert(REVISION_HISTORY.into(), revs.join(","));
        }
    }
}

/// syncDeployment, in the upstream controller's phases: claim the ReplicaSets
/// (getReplicaSetsForDeployment), then scale a paused Deployment (sync) or roll it out
/// (rolloutRolling), persist the ReplicaSets, calculateStatus, syncRolloutStatus, write the
/// Deployment, and cleanupDeployment once the rollout is complete.
fn sync_deployment(store: &mut Store, ns: &str, name: &str) {
    let Some(mut s) = DeploymentSync::load(store, ns, name) else {
        return;
    };
    let old_status = s.status.clone();
    let paused = s.d.spec.paused.unwrap_or(false);
    if paused {
        s.sync();
    } else {
        s.rollout_rolling(store);
    }
    s.persist_replica_sets(store);
    s.calculate_status();
    let complete = s.deployment_complete();
    if !paused && s.has_deadline {
        s.sync_rollout_status(store, &old_status, complete);
    }
    s.write_deployment(store);
    if paused || complete {
        s.cleanup_deployment(store);
    }
}

/// One syncDeployment pass over a Deployment: what it read, the ReplicaSets it owns, and the
/// status it is computing.
struct DeploymentSync<'a> {
    ns: &'a str,
    name: &'a str,
    d: Deployment,
    /// The Deployment as stored (written back only if it changed).
    stored: Value,
    desired: i32,
    has_deadline: bool,
    /// The simulated progress deadline expired (and no new rollout started since).
    expired: bool,
    owned: Vec<ReplicaSet>,
    /// `owned` as read, to persist only what changed (ReplicaSets past its end are new).
    originals: Vec<Value>,
    /// The ReplicaSet in `owned` with the Deployment's template.
    new_idx: Option<usize>,
    status: DeploymentStatus,
}

impl<'a> DeploymentSync<'a> {
    fn load(store: &Store, ns: &'a str, name: &'a str) -> Option<Self> {
        let stored = store.get(Kind::Deployment, ns, name).cloned()?;
        let d = from_value::<Deployment>(Kind::Deployment, &stored).ok()?;
        if d.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let spec = &d.spec;
        let selector = Selector::from_label_selector(&spec.selector)?;
        let owned = get_replica_sets_for_deployment(store, &d, &selector, ns);
        let originals: Vec<Value> = owned.iter().filter_map(|rs| to_value(rs).ok()).collect();
        let wanted = template_without_hash(Some(&spec.template));
        let new_idx = owned
            .iter()
            .position(|rs| template_without_hash(rs.spec.template.as_ref()) == wanted);
        let has_deadline = spec
            .progress_deadline_seconds
            .is_some_and(|s| s != i32::MAX);
        let expired = store
            .sim
            .deadline_expired
            .contains(&(ns.to_string(), name.to_string()));
        Some(DeploymentSync {
            ns,
            name,
            status: d.status.clone().unwrap_or_default(),
            desired: spec.replicas.unwrap_or(1),
            d,
            stored,
            has_deadline,
            expired,
            owned,
            originals,
            new_idx,
        })
    }

    /// maxSurge (rounded up) or maxUnavailable (rounded down), resolved against the desired
    /// replicas (MaxSurge / MaxUnavailable in deployment_util).
    fn rolling_limit(&self, surge: bool) -> i32 {
        let rolling = self
            .d
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        let limit = if surge {
            rolling.and_then(|r| r.max_surge.as_ref())
        } else {
            rolling.and_then(|r| r.max_unavailable.as_ref())
        };
        objects::resolve_int_or_percent(limit, self.desired, surge)
    }

    fn progressing_reason(&self) -> Option<&str> {
        condition(&self.status, PROGRESSING).and_then(|c| c.reason.as_deref())
    }

    /// sync: a paused Deployment is only scaled (no new ReplicaSet, no rollout).
    fn sync(&mut self) {
        let active: Vec<usize> = (0..self.owned.len())
            .filter(|i| replicas(&self.owned[*i]) > 0)
            .collect();
        let target = match (self.new_idx, active.as_slice()) {
            (Some(n), a) if a.iter().all(|i| *i == n) => Some(n),
            (_, [only]) => Some(*only),
            _ => None,
        };
        if let Some(t) = target {
            set_replicas(&mut self.owned[t], self.desired);
        }
        if self.progressing_reason() != Some(REASON_PAUSED) {
            set_condition(
                &mut self.status,
                PROGRESSING,
                "Unknown",
                REASON_PAUSED,
                "Deployment is paused".into(),
            );
        }
    }

    /// rolloutRolling, collapsed: the new ReplicaSet (found or created) gets every replica and
    /// the old ones none; with auto progress off, pods (status) catch up one `step()` at a time.
    fn rollout_rolling(&mut self, store: &mut Store) {
        if self.progressing_reason() == Some(REASON_PAUSED) {
            set_condition(
                &mut self.status,
                PROGRESSING,
                "Unknown",
                REASON_RESUMED,
                "Deployment is resumed".into(),
            );
        }
        let new_idx = self.get_new_replica_set(store);
        for (i, rs) in self.owned.iter_mut().enumerate() {
            set_replicas(rs, if i == new_idx { self.desired } else { 0 });
        }
    }

    /// getNewReplicaSet: the ReplicaSet with the Deployment's template, its revision moved up
    /// past the old ones', or a new one (which starts a new progress deadline).
    fn get_new_replica_set(&mut self, store: &mut Store) -> usize {
        let max_old_revision = self
            .owned
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.new_idx)
            .map(|(_, rs)| revision_of(&rs.metadata))
            .max()
            .unwrap_or(0);
        let new_revision = max_old_revision + 1;
        if let Some(i) = self.new_idx {
            set_new_rs_annotations(&self.d, &mut self.owned[i], new_revision);
            if self.has_deadline && condition(&self.status, PROGRESSING).is_none() {
                let msg = format!(
                    "Found new replica set {:?}",
                    self.owned[i].metadata.name.clone().unwrap_or_default()
                );
                set_condition(
                    &mut self.status,
                    PROGRESSING,
                    "True",
                    REASON_FOUND_NEW_RS,
                    msg,
                );
            }
            return i;
        }
        let max_surge = self.rolling_limit(true);
        let rs = new_replica_set(
            &self.d,
            store,
            self.ns,
            &mut self.status,
            new_revision,
            self.desired,
            max_surge,
        );
        let msg = format!(
            "Created new replica set {:?}",
            rs.metadata.name.clone().unwrap_or_default()
        );
        if self.has_deadline {
            set_condition(
                &mut self.status,
                PROGRESSING,
                "True",
                REASON_NEW_RS_CREATED,
                msg,
            );
        }
        // A new rollout starts a new deadline.
        store
            .sim
            .deadline_expired
            .remove(&(self.ns.to_string(), self.name.to_string()));
        self.expired = false;
        self.owned.push(rs);
        let i = self.owned.len() - 1;
        self.new_idx = Some(i);
        i
    }

    /// Persist the ReplicaSets: the new one is created, changed ones updated.
    fn persist_replica_sets(&mut self, store: &mut Store) {
        let auto = store.sim.auto_progress;
        for (i, rs) in self.owned.iter_mut().enumerate() {
            let before = self.originals.get(i);
            if let Some(before) = before {
                let before_spec = before.get("spec").cloned();
                if to_value(&rs.spec).ok() != before_spec {
                    rs.metadata.generation = Some(rs.metadata.generation.unwrap_or(1) + 1);
                }
            } else {
                rs.metadata.generation = Some(1);
            }
            observe(rs, auto);
            let Ok(value) = to_value(rs) else { continue };
            let value = clean_status(value);
            if before.is_none() {
                let created = store.create(Kind::ReplicaSet, value);
                if let Ok(c) = from_value::<ReplicaSet>(Kind::ReplicaSet, &created) {
                    *rs = c;
                }
            } else if before != Some(&value) {
                store.update(Kind::ReplicaSet, value);
            }
        }
    }

    /// calculateStatus: the counts summed over the ReplicaSets, and the Available condition.
    fn calculate_status(&mut self) {
        let owned = &self.owned;
        let total_spec: i32 = owned.iter().map(replicas).sum();
        let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
        let available: i32 = owned
            .iter()
            .map(|rs| status_of(rs).available_replicas.unwrap_or(0))
            .sum();
        let status = &mut self.status;
        status.observed_generation = self.d.metadata.generation;
        status.replicas = Some(owned.iter().map(|rs| status_of(rs).replicas).sum());
        status.updated_replicas = Some(
            self.new_idx
                .map(|i| status_of(&owned[i]).replicas)
                .unwrap_or(0),
        );
        status.ready_replicas = Some(
            owned
                .iter()
                .map(|rs| status_of(rs).ready_replicas.unwrap_or(0))
                .sum(),
        );
        status.available_replicas = Some(available);
        status.unavailable_replicas = Some((total_spec - available).max(0));
        if available >= self.desired - self.rolling_limit(false) {
            set_condition(
                &mut self.status,
                AVAILABLE,
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            );
        } else {
            set_condition(
                &mut self.status,
                AVAILABLE,
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            );
        }
    }

    /// DeploymentComplete: every replica updated and available, the latest generation seen.
    fn deployment_complete(&self) -> bool {
        let status = &self.status;
        status.updated_replicas == Some(self.desired)
            && status.replicas == Some(self.desired)
            && status.available_replicas == Some(self.desired)
            && status.observed_generation >= self.d.metadata.generation
    }

    /// syncRolloutStatus: the Progressing condition — complete, progressing (the counts moved
    /// since `old_status`), or timed out.
    fn sync_rollout_status(
        &mut self,
        store: &mut Store,
        old_status: &DeploymentStatus,
        complete: bool,
    ) {
        let current = condition(&self.status, PROGRESSING).cloned();
        let already_complete = self.status.replicas == self.status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(REASON_NEW_RS_AVAILABLE);
        if already_complete {
            return;
        }
        let deadline_passed = current
            .as_ref()
            .and_then(|c| c.last_update_time.as_ref())
            .is_some_and(|t| {
                let deadline = i64::from(self.d.spec.progress_deadline_seconds.unwrap_or(i32::MAX));
                t.0.as_second().saturating_add(deadline) < meta::now_seconds()
            });
        let name = self.name;
        let rs_label = self
            .new_idx
            .and_then(|i| self.owned[i].metadata.name.clone())
            .map(|n| format!("ReplicaSet {n:?}"))
            .unwrap_or_else(|| format!("Deployment {name:?}"));
        let key = (self.ns.to_string(), name.to_string());
        if complete {
            set_condition(
                &mut self.status,
                PROGRESSING,
                "True",
                REASON_NEW_RS_AVAILABLE,
                format!("{rs_label} has successfully progressed."),
            );
            store.sim.deadline_expired.remove(&key);
        } else if has_progressed(old_status, &self.status) {
            // Progress refreshes lastUpdateTime even with the same reason (the special case
            // in progress.go), keeping lastTransitionTime while the status stays True.
            let transition = current
                .as_ref()
                .filter(|c| c.status.as_deref() == Some("True"))
                .and_then(|c| c.last_transition_time.clone());
            let now = meta::now();
            let conds = self.status.conditions.get_or_insert_with(Vec::new);
            conds.retain(|c| c.type_.as_deref() != Some(PROGRESSING));
            conds.push(DeploymentCondition {
                type_: Some(PROGRESSING.into()),
                status: Some("True".into()),
                reason: Some(REASON_RS_UPDATED.into()),
                message: Some(format!("{rs_label} is progressing.")),
                last_update_time: Some(now.clone()),
                last_transition_time: transition.or(Some(now)),
            });
            store.sim.deadline_expired.remove(&key);
        } else if self.expired || deadline_passed {
            set_condition(
                &mut self.status,
                PROGRESSING,
                "False",
                REASON_TIMED_OUT,
                format!("{rs_label} has timed out progressing."),
            );
        }
    }

    /// Write the Deployment back, with the new ReplicaSet's revision and the status, if either
    /// changed.
    fn write_deployment(&self, store: &mut Store) {
        let mut new_d = self.d.clone();
        if let Some(i) = self.new_idx {
            let rev = revision_of(&self.owned[i].metadata);
            if rev > 0 {
                new_d
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(REVISION.into(), rev.to_string());
            }
        }
        new_d.status = Some(self.status.clone());
        if let Ok(value) = to_value(&new_d) {
            let value = clean_status(value);
            if value != self.stored {
                store.update(Kind::Deployment, value);
            }
        }
    }

    /// cleanupDeployment (called only once the rollout is complete, or while paused): delete
    /// the oldest ReplicaSets beyond revisionHistoryLimit, never the new ReplicaSet, never one
    /// that still has pods.
    fn cleanup_deployment(&self, store: &mut Store) {
        let limit = self
            .d
            .spec
            .revision_history_limit
            .unwrap_or(objects::DEFAULT_REVISION_HISTORY_LIMIT);
        let mut old: Vec<&ReplicaSet> = self
            .owned
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.new_idx)
            .map(|(_, rs)| rs)
            .collect();
        let excess = old
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        old.sort_by_key(|rs| revision_of(&rs.metadata));
        for rs in old.into_iter().take(excess) {
            let status_replicas = rs.status.as_ref().map(|s| s.replicas).unwrap_or(0);
            if replicas(rs) == 0
                && status_replicas == 0
                && let Some(n) = rs.metadata.name.as_deref()
            {
                store.delete(Kind::ReplicaSet, self.ns, n);
            }
        }
    }
}

/// getReplicaSetsForDeployment (ClaimReplicaSets): the ReplicaSets the Deployment controls,
/// adopting those that match its selector and have no controller.
fn get_replica_sets_for_deployment(
    store: &Store,
    d: &Deployment,
    selector: &Selector,
    ns: &str,
) -> Vec<ReplicaSet> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let mut owned: Vec<ReplicaSet> = Vec::new();
    for rsv in store.list(Kind::ReplicaSet, Some(ns)) {
        let Ok(mut rs) = from_value::<ReplicaSet>(Kind::ReplicaSet, rsv) else {
            continue;
        };
        match controller_uid(rsv) {
            Some(owner) if owner == uid => owned.push(rs),
            Some(_) => {}
            None if selector.matches(&meta::labels_of(rsv)) => {
                rs.metadata
                    .owner_references
                    .get_or_insert_with(Vec::new)
                    .push(owner_ref(d));
                owned.push(rs);
            }
            None => {}
        }
    }
    owned
}

/// Whether the rollout progressed between two statuses (DeploymentProgressing).
fn has_progressed(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let counts = |status: &DeploymentStatus| {
        (
            status.replicas.unwrap_or(0),
            status.updated_replicas.unwrap_or(0),
            status.ready_replicas.unwrap_or(0),
            status.available_replicas.unwrap_or(0),
        )
    };
    let (old_replicas, old_updated, old_ready, old_available) = counts(old);
    let (new_replicas, new_updated, new_ready, new_available) = counts(new);
    new_updated > old_updated
        || (new_replicas - new_updated) < (old_replicas - old_updated)
        || new_ready > old_ready
        || new_available > old_available
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(1)
}

fn set_replicas(rs: &mut ReplicaSet, n: i32) {
    rs.spec.replicas = Some(n);
    // The controller records what it wanted, for proportional scaling.
    rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
}

fn owner_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: d.metadata.name.clone().unwrap_or_default(),
        uid: d.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Build the ReplicaSet for the deployment's current template (getNewReplicaSet, create path).
fn new_replica_set(
    d: &Deployment,
    store: &Store,
    ns: &str,
    status: &mut DeploymentStatus,
    revision: i64,
    desired: i32,
    max_surge: i32,
) -> ReplicaSet {
    let spec = d.spec.clone();
    let mut collision = status.collision_count.unwrap_or(0);
    let dname = d.metadata.name.clone().unwrap_or_default();
    // A name taken by a ReplicaSet with another template is a hash collision: bump and retry.
    let hash = loop {
        let h = pod_template_hash(&spec.template, collision);
        if store
            .get(Kind::ReplicaSet, ns, &format!("{dname}-{h}"))
            .is_none()
        {
            break h;
        }
        collision += 1;
        status.collision_count = Some(collision);
    };
    let mut template = spec.template.clone();
    let tmeta = template.metadata.get_or_insert_with(Default::default);
    tmeta
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let labels = tmeta.labels.clone();
    let mut rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{dname}-{hash}")),
            namespace: Some(ns.into()),
            labels,
            owner_references: Some(vec![owner_ref(d)]),
            annotations: Some(BTreeMap::from([
                (DESIRED_REPLICAS.to_string(), desired.to_string()),
                (MAX_REPLICAS.to_string(), (desired + max_surge).to_string()),
            ])),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(0),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        },
        status: Some(ReplicaSetStatus::default()),
    };
    set_new_rs_annotations(d, &mut rs, revision);
    rs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_ignores_the_hash_label() {
        let mut t: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}
        }))
        .unwrap();
        let h = pod_template_hash(&t, 0);
        assert_eq!(h, pod_template_hash(&t, 0));
        assert_ne!(h, pod_template_hash(&t, 1));
        t.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH.into(), h.clone());
        assert_eq!(h, pod_template_hash(&t, 0));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
