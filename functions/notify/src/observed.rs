//! The contingency notice's "what is live now": only what the failure path just observed
//! through each function's read-only action, never what the rollback assumes it did.

use rollback_core::contract::notify::{LiveState, Observed, RevertSummary};
use rollback_core::contract::restore::RevertState;

use crate::text::{clean, short_digest};

/// One line per database identifier, release tag and deployment, as observed.
pub fn live_lines(live: &LiveState) -> Vec<String> {
    let mut lines = Vec::new();
    let at = live
        .at
        .map(|t| format!(" at {}", crate::render::fmt_time(t)))
        .unwrap_or_default();
    lines.push(format!("(observed{at}, after the failure)"));
    database_lines(&mut lines, live);
    image_lines(&mut lines, live);
    deployment_lines(&mut lines, live);
    gitops_lines(&mut lines, live);
    lines
}

/// Each database identifier as observed, or that they were not.
fn database_lines(lines: &mut Vec<String>, live: &LiveState) {
    match &live.databases {
        Observed::Seen(out) => {
            for db in &out.databases {
                lines.push(format!(
                    "database {} ({}): {}",
                    clean(&db.database, 63),
                    db.kind.as_str(),
                    clean(&db.summary, 400)
                ));
            }
        }
        Observed::NotSeen { not_observed } => lines.push(format!(
            "databases: NOT OBSERVED ({}) - check them with aws rds describe-db-instances / \
             describe-db-clusters",
            clean(not_observed, 300)
        )),
    }
}

/// Each release tag and the digest it points at, or that they were not observed.
fn image_lines(lines: &mut Vec<String>, live: &LiveState) {
    match &live.images {
        Observed::Seen(out) => {
            for image in &out.images {
                let now = image
                    .release_digest
                    .as_deref()
                    .map(short_digest)
                    .unwrap_or_else(|| "nothing (the tag does not exist)".into());
                let which = match image.release_digest.as_deref() {
                    Some(d) if d == image.stable_digest => "the stable image",
                    Some(_) => "NOT the stable image",
                    None => "no image",
                };
                lines.push(format!(
                    "ecr {}:{} points at {now}: {which} ({} is {})",
                    clean(&image.repository, 120),
                    clean(&image.release_tag, 128),
                    clean(&image.stable_tag, 128),
                    short_digest(&image.stable_digest)
                ));
            }
        }
        Observed::NotSeen { not_observed } => lines.push(format!(
            "release tags: NOT OBSERVED ({}) - check with aws ecr describe-images",
            clean(not_observed, 300)
        )),
    }
}

/// Each deployment's revision, images and replicas, or that they were not observed.
fn deployment_lines(lines: &mut Vec<String>, live: &LiveState) {
    match &live.deployments {
        Observed::Seen(out) => {
            for d in &out.deployments {
                let paused = d
                    .paused_replicas
                    .map(|n| format!("; PAUSED by the rollback (was {n} replicas)"))
                    .unwrap_or_default();
                lines.push(format!(
                    "deployment {}/{}: revision {}, image {}, {} of {} replicas available{paused}",
                    clean(&d.namespace, 63),
                    clean(&d.name, 253),
                    d.revision
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "?".into()),
                    clean(&d.images.join(", "), 300),
                    d.available_replicas,
                    d.replicas
                ));
            }
        }
        Observed::NotSeen { not_observed } => lines.push(format!(
            "deployments: NOT OBSERVED ({}) - check with kubectl rollout status",
            clean(not_observed, 300)
        )),
    }
}

/// What each GitOps source said, observed with the deployments.
fn gitops_lines(lines: &mut Vec<String>, live: &LiveState) {
    if let Observed::Seen(out) = &live.deployments {
        for g in &out.gitops {
            lines.push(format!(
                "gitops {}: {}",
                clean(&g.describe(), 400),
                clean(&g.message, 400)
            ));
        }
    }
}

/// What the failure path's revert did to each database, and the commands where it could not.
pub fn revert_lines(reverted: &RevertSummary) -> Vec<String> {
    let mut lines = Vec::new();
    for db in &reverted.databases {
        let what = match db.state {
            RevertState::Back if db.reverted => "REVERTED: back under its identifier",
            RevertState::Back => "never moved",
            RevertState::Reverting => "STILL BEING RENAMED BACK (check again in a few minutes)",
            RevertState::KeptSwap => "the swap had completed and is kept",
            RevertState::NeedsPerson => "NEEDS A PERSON NOW",
            RevertState::SkippedDrill => "drill: nothing renamed",
        };
        lines.push(format!(
            "{}: {what} - {}",
            clean(&db.database, 63),
            clean(&db.observed.summary, 400)
        ));
        for c in &db.commands {
            lines.push(format!("    {}", clean(c, 300)));
        }
    }
    lines
}

/// `kubectl scale` for each deployment the rollback left paused.
pub fn resume_commands(live: &LiveState) -> Vec<String> {
    let Observed::Seen(out) = &live.deployments else {
        return Vec::new();
    };
    out.deployments
        .iter()
        .filter_map(|d| {
            let n = d.paused_replicas?;
            Some(format!(
                "kubectl -n {} scale deployment/{} --replicas={n}",
                clean(&d.namespace, 63),
                clean(&d.name, 253)
            ))
        })
        .collect()
}
