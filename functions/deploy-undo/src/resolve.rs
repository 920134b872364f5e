//! `resolve`: current and target revision of every plan deployment. Changes nothing.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use rollback_core::RollbackError;
use rollback_core::contract::deploy_undo::{PAUSED_REPLICAS, ResolveOutput};
use rollback_core::plan::ImageRef;
use rollback_core::resolved::{DeploymentResolution, ImageResolution};

use crate::cluster::Cluster;
use crate::history::{self, History, annotation, revision_of, rs_template};
use crate::images::{self, MovedTag};

pub async fn resolve(
    cluster: &Cluster,
    deployments: &[String],
    resolved_images: &[ImageResolution],
    plan_images: &[ImageRef],
    to_revision: Option<i64>,
) -> Result<ResolveOutput, RollbackError> {
    let client = cluster.client().await?;
    let moved = images::moved_tags(resolved_images, plan_images);
    let mut out = Vec::with_capacity(deployments.len());
    let mut warnings = Vec::new();
    for name in deployments {
        let history = History::load(&client, &cluster.namespace, name).await?;
        let resolution = resolve_one(
            &cluster.namespace,
            &history,
            resolved_images,
            &moved,
            to_revision,
        );
        if let Some(note) = &resolution.note {
            warnings.push(format!("{}/{name}: {note}", cluster.namespace));
        }
        out.push(resolution);
    }
    let release_time = out.iter().filter_map(|d| d.current_rolled_out_at).min();
    Ok(ResolveOutput {
        restart_needed: out.iter().any(|d| d.restart_needed),
        deployments: out,
        release_time,
        warnings,
    })
}

/// What the retag's moving tags mean for one deployment: the target revision's containers
/// that reference a moved tag with the same reference as now (undo leaves them as they are,
/// so only a restart makes their pods pull again), and the containers whose pull policy keeps
/// a node's cached image under a moved tag.
struct TagPinning {
    restart_needed: bool,
    pull_policy_keeps_cache: bool,
}

fn tag_pinning(
    current: &PodTemplateSpec,
    target: &PodTemplateSpec,
    moved: &[MovedTag],
) -> TagPinning {
    let containers = |t: &PodTemplateSpec| {
        t.spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default()
    };
    let now = containers(current);
    let mut out = TagPinning {
        restart_needed: false,
        pull_policy_keeps_cache: false,
    };
    for c in containers(target) {
        let Some(image) = c.image.as_deref() else {
            continue;
        };
        if images::moved_tag(image, moved).is_none() {
            continue;
        }
        let unchanged = now
            .iter()
            .any(|n| n.name == c.name && n.image.as_deref() == Some(image));
        out.restart_needed |= unchanged;
        // The API server stores the default, so a manifest without a policy reads as one.
        let policy = c
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| images::default_pull_policy(image).to_owned());
        out.pull_policy_keeps_cache |= policy != "Always";
    }
    out
}

fn resolve_one(
    namespace: &str,
    history: &History,
    resolved_images: &[ImageResolution],
    moved: &[MovedTag],
    to_revision: Option<i64>,
) -> DeploymentResolution {
    let name = history.name();
    let current = history.current();
    let current_revision = history.current_revision().unwrap_or(0);
    let target = match to_revision {
        Some(r) => history.by_revision(r),
        None => history.previous(),
    };
    let target_images = history::images(target.and_then(rs_template));
    let mut notes = Vec::new();
    let (matches_stable, problems) = if target.is_some() {
        images::check(&target_images, resolved_images)
    } else {
        (None, Vec::new())
    };
    if matches_stable == Some(false) {
        notes.push(format!(
            "MISMATCH: the revision undo would restore does not run the stable images: {}",
            problems.join("; ")
        ));
    }
    match (target, to_revision) {
        (None, Some(r)) => notes.push(format!(
            "revision {r} is not in the history (revisions kept: {}); undo would fail with \
             Rollback.NoRolloutHistory",
            revisions(history)
        )),
        (None, None) => notes.push(format!(
            "no earlier revision in the ReplicaSet history (revisionHistoryLimit: {}); undo would \
             fail with Rollback.NoRolloutHistory",
            history.revision_history_limit()
        )),
        _ => {}
    }
    let spec = &history.deployment.spec;
    if spec.paused == Some(true) {
        notes.push(format!(
            "the deployment is paused (kubectl rollout pause); undo refuses it until \
             `kubectl rollout resume deployment/{name}`"
        ));
    }
    let pinning = target
        .and_then(rs_template)
        .map(|t| tag_pinning(&spec.template, t, moved));
    let (restart_needed, pull_policy_keeps_cache) = pinning
        .map(|p| (p.restart_needed, p.pull_policy_keeps_cache))
        .unwrap_or_default();
    // One short sentence each (the approval email spells them out).
    if restart_needed {
        notes.push(
            "TAG-PINNED: undo keeps the tag reference, so the pods restart after the retag."
                .to_owned(),
        );
    }
    if pull_policy_keeps_cache {
        notes.push(
            "PULL POLICY keeps cached images: pin by digest or set imagePullPolicy: Always."
                .to_owned(),
        );
    }
    let recorded = annotation(&history.deployment.metadata, PAUSED_REPLICAS)
        .and_then(|r| r.parse::<i32>().ok());
    let replicas = recorded.unwrap_or_else(|| spec.replicas.unwrap_or(1));
    DeploymentResolution {
        name,
        namespace: namespace.to_owned(),
        current_revision,
        target_revision: target.and_then(revision_of),
        current_images: history::images(history.template()),
        target_images,
        current_rolled_out_at: current
            .and_then(|rs| rs.metadata.creation_timestamp.as_ref())
            .and_then(|t| history::to_chrono(&t.0)),
        replicas,
        matches_stable,
        restart_needed,
        pull_policy_keeps_cache,
        note: (!notes.is_empty()).then(|| notes.join(" ")),
    }
}

fn revisions(history: &History) -> String {
    let list: Vec<String> = history
        .replica_sets
        .iter()
        .filter_map(revision_of)
        .map(|r| r.to_string())
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}
