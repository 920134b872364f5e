//! `resolve`: what the release and stable tags point at now. Changes nothing.

use rollback_core::RollbackError;
use rollback_core::contract::retag::ResolveOutput;
use rollback_core::plan::{ImageRef, Plan};
use rollback_core::resolved::ImageResolution;

use crate::Clients;
use crate::ecr;

pub async fn resolve(clients: &Clients, plan: &Plan) -> Result<ResolveOutput, RollbackError> {
    let mut images = Vec::with_capacity(plan.images.len());
    for image in &plan.images {
        images.push(resolve_one(clients, image).await?);
    }
    Ok(ResolveOutput { images })
}

pub(crate) async fn resolve_one(
    clients: &Clients,
    image: &ImageRef,
) -> Result<ImageResolution, RollbackError> {
    let mutability = ecr::mutability(&clients.ecr, image).await?;
    let stable = ecr::describe_tag(&clients.ecr, image, &image.stable_tag)
        .await?
        .ok_or_else(|| {
            RollbackError::StableImageNotFound(format!(
                "ECR repository {} has no image tagged {:?} (the plan's stable_tag): there is \
                 nothing known-good to roll back to; tag the last good image {:?} and retry",
                image.repository, image.stable_tag, image.stable_tag
            ))
        })?;
    let release = ecr::describe_tag(&clients.ecr, image, &image.release_tag).await?;
    let retag_needed = release.as_ref().map(|r| &r.digest) != Some(&stable.digest);
    let note = if !retag_needed {
        Some(format!(
            "{}:{} already points at the stable digest: nothing to retag",
            image.repository, image.release_tag
        ))
    } else if mutability.immutable {
        Some(format!(
            "tags in {} are immutable ({}): {:?} cannot be moved back to the stable digest. \
             Roll back by deployment only (the previous revision must pin {}@{}) or make the \
             tags mutable; retag apply will refuse",
            image.repository,
            mutability.setting,
            image.release_tag,
            image.repository,
            stable.digest
        ))
    } else if release.is_none() {
        Some(format!(
            "{}:{} does not exist; apply will create it on the stable digest",
            image.repository, image.release_tag
        ))
    } else {
        None
    };
    Ok(ImageResolution {
        repository: image.repository.clone(),
        release_tag: image.release_tag.clone(),
        stable_tag: image.stable_tag.clone(),
        stable_digest: stable.digest,
        release_digest: release.as_ref().map(|r| r.digest.clone()),
        stable_pushed_at: stable.pushed_at,
        release_pushed_at: release.and_then(|r| r.pushed_at),
        retag_needed,
        immutable_tags: mutability.immutable,
        note,
    })
}
