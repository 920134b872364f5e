//! `apply`: point the release tag at the approved stable digest, keeping the bad digest under
//! `rolled-back-<execution>`. Drill mode only writes `drill-<execution>`.

use rollback_core::contract::retag::{
    ApplyOutput, RetagOutcome, RetagResult, drill_tag, rolled_back_tag,
};
use rollback_core::plan::{ImageRef, Plan};
use rollback_core::resolved::ImageResolution;
use rollback_core::{ExecutionId, Mode, RollbackError};

use crate::Clients;
use crate::ecr;

pub async fn apply(
    clients: &Clients,
    plan: &Plan,
    execution: &ExecutionId,
    mode: Mode,
    approved: &[ImageResolution],
) -> Result<ApplyOutput, RollbackError> {
    // Validate every image before writing anything.
    let mut pairs = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        let resolution = approved
            .iter()
            .find(|r| r.repository == image.repository)
            .ok_or_else(|| {
                RollbackError::InvalidInput(format!(
                    "images: no approved resolution for repository {}; pass retag resolve's \
                     `images` output",
                    image.repository
                ))
            })?;
        if resolution.release_tag != image.release_tag || resolution.stable_tag != image.stable_tag
        {
            return Err(RollbackError::PlanDrifted(format!(
                "the approved resolution of {} is for tags {}/{}, the plan now says {}/{}",
                image.repository,
                resolution.release_tag,
                resolution.stable_tag,
                image.release_tag,
                image.stable_tag
            )));
        }
        check_stable(clients, image, resolution).await?;
        if !mode.is_drill() {
            let mutability = ecr::mutability(&clients.ecr, image).await?;
            let release = ecr::describe_tag(&clients.ecr, image, &image.release_tag).await?;
            let at_stable = release.as_ref().map(|r| &r.digest) == Some(&resolution.stable_digest);
            if mutability.immutable && !at_stable {
                return Err(RollbackError::RetagFailed(format!(
                    "tags in ECR repository {} are immutable ({}), so {:?} cannot be moved to \
                     the stable digest {}. Roll back by deployment only (the previous revision \
                     must pin {}@{}), or make the tags mutable and retry",
                    image.repository,
                    mutability.setting,
                    image.release_tag,
                    resolution.stable_digest,
                    image.repository,
                    resolution.stable_digest
                )));
            }
        }
        pairs.push((image, resolution));
    }
    let mut results = Vec::with_capacity(pairs.len());
    for (image, resolution) in pairs {
        let result = if mode.is_drill() {
            drill_one(clients, image, resolution, execution).await?
        } else {
            apply_one(clients, image, resolution, execution).await?
        };
        tracing::info!(
            repository = %result.repository,
            tag = %result.tag,
            outcome = ?result.outcome,
            "retag"
        );
        results.push(result);
    }
    Ok(ApplyOutput {
        drill: mode.is_drill(),
        images: results,
    })
}

/// The stable tag must still name the digest the approver saw.
async fn check_stable(
    clients: &Clients,
    image: &ImageRef,
    approved: &ImageResolution,
) -> Result<(), RollbackError> {
    match ecr::describe_tag(&clients.ecr, image, &image.stable_tag).await? {
        None => Err(RollbackError::StableImageNotFound(format!(
            "ECR repository {} no longer has an image tagged {:?} (approved: {})",
            image.repository, image.stable_tag, approved.stable_digest
        ))),
        Some(now) if now.digest != approved.stable_digest => {
            Err(RollbackError::PlanDrifted(format!(
                "{}:{} now points at {}, but the approved plan rolls back to {}; resolve again and \
             re-approve",
                image.repository, image.stable_tag, now.digest, approved.stable_digest
            )))
        }
        Some(_) => Ok(()),
    }
}

async fn apply_one(
    clients: &Clients,
    image: &ImageRef,
    approved: &ImageResolution,
    execution: &ExecutionId,
) -> Result<RetagResult, RollbackError> {
    let stable = &approved.stable_digest;
    let keep_tag = rolled_back_tag(execution);
    let release = ecr::describe_tag(&clients.ecr, image, &image.release_tag).await?;
    let current = release.map(|r| r.digest);
    let manifest = ecr::get_manifest(&clients.ecr, image, stable).await?;

    if current.as_deref() == Some(stable.as_str()) {
        // Already there: either it was never moved, or an earlier attempt of this step moved it.
        let kept = ecr::describe_tag(&clients.ecr, image, &keep_tag).await?;
        let kept_as = kept
            .filter(|k| &k.digest != stable)
            .map(|_| keep_tag.clone());
        let message = match &kept_as {
            Some(tag) => format!(
                "{}:{} already points at {stable}; the bad digest is kept as {tag}",
                image.repository, image.release_tag
            ),
            None => format!(
                "{}:{} already points at the stable digest {stable}: nothing to do",
                image.repository, image.release_tag
            ),
        };
        return Ok(RetagResult {
            repository: image.repository.clone(),
            tag: image.release_tag.clone(),
            outcome: RetagOutcome::AlreadyStable,
            stable_digest: stable.clone(),
            previous_digest: current,
            kept_as,
            media_type: manifest.media_type,
            message,
        });
    }
    if current != approved.release_digest {
        return Err(RollbackError::PlanDrifted(format!(
            "{}:{} now points at {}, but the approved plan saw {}: something was pushed since \
             approval; resolve again and re-approve",
            image.repository,
            image.release_tag,
            current.as_deref().unwrap_or("nothing"),
            approved.release_digest.as_deref().unwrap_or("no such tag")
        )));
    }

    // Keep the bad image tagged before the release tag leaves it (an untagged image may be
    // expired by a lifecycle policy).
    let kept_as = match &current {
        Some(bad) => {
            let bad_manifest = ecr::get_manifest(&clients.ecr, image, bad).await?;
            ecr::put_tag(&clients.ecr, image, &bad_manifest, bad, &keep_tag).await?;
            Some(keep_tag)
        }
        None => None,
    };
    ecr::put_tag(&clients.ecr, image, &manifest, stable, &image.release_tag).await?;
    verify(clients, image, &image.release_tag, stable).await?;
    Ok(RetagResult {
        repository: image.repository.clone(),
        tag: image.release_tag.clone(),
        outcome: RetagOutcome::Retagged,
        stable_digest: stable.clone(),
        message: format!(
            "{}:{} moved from {} to the stable digest {stable}{}",
            image.repository,
            image.release_tag,
            current.as_deref().unwrap_or("nothing"),
            kept_as
                .as_deref()
                .map(|t| format!("; the bad digest is kept as {t}"))
                .unwrap_or_default()
        ),
        previous_digest: current,
        kept_as,
        media_type: manifest.media_type,
    })
}

async fn drill_one(
    clients: &Clients,
    image: &ImageRef,
    approved: &ImageResolution,
    execution: &ExecutionId,
) -> Result<RetagResult, RollbackError> {
    let stable = &approved.stable_digest;
    let tag = drill_tag(execution);
    let manifest = ecr::get_manifest(&clients.ecr, image, stable).await?;
    let previous = ecr::describe_tag(&clients.ecr, image, &tag)
        .await?
        .map(|t| t.digest);
    ecr::put_tag(&clients.ecr, image, &manifest, stable, &tag).await?;
    verify(clients, image, &tag, stable).await?;
    Ok(RetagResult {
        repository: image.repository.clone(),
        tag: tag.clone(),
        outcome: RetagOutcome::DrillTagged,
        stable_digest: stable.clone(),
        previous_digest: previous,
        kept_as: None,
        media_type: manifest.media_type,
        message: format!(
            "drill: tagged the stable digest {stable} as {}:{tag}; {:?} was not touched",
            image.repository, image.release_tag
        ),
    })
}

async fn verify(
    clients: &Clients,
    image: &ImageRef,
    tag: &str,
    digest: &str,
) -> Result<(), RollbackError> {
    match ecr::describe_tag(&clients.ecr, image, tag).await? {
        Some(now) if now.digest == digest => Ok(()),
        other => Err(RollbackError::RetagFailed(format!(
            "after PutImage, {}:{tag} points at {} instead of {digest}",
            image.repository,
            other.map(|o| o.digest).unwrap_or_else(|| "nothing".into())
        ))),
    }
}
