//! Thin, typed wrappers over the ECR calls retag makes.

use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability as TagMutability};
use chrono::{DateTime, Utc};
use rollback_core::RollbackError;
use rollback_core::plan::ImageRef;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Every manifest media type retag moves as-is.
pub const ACCEPTED_MEDIA_TYPES: [&str; 4] = [
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
];

/// What one tag points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    pub digest: String,
    pub pushed_at: Option<DateTime<Utc>>,
}

/// A manifest exactly as ECR stores it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub body: String,
    pub media_type: String,
}

/// Whether tags in the repository can be moved, and why not.
#[derive(Debug, Clone)]
pub struct Mutability {
    pub immutable: bool,
    pub setting: String,
}

fn registry(image: &ImageRef) -> Option<String> {
    image.registry_id.clone()
}

/// The repository's tag mutability as it applies to `image.release_tag`.
pub async fn mutability(client: &Client, image: &ImageRef) -> Result<Mutability, RollbackError> {
    let out = client
        .describe_repositories()
        .set_registry_id(registry(image))
        .repository_names(&image.repository)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_not_found_exception())
            {
                RollbackError::StableImageNotFound(format!(
                    "ECR repository {} does not exist{}; check the plan's images",
                    image.repository,
                    in_registry(image)
                ))
            } else {
                RollbackError::from_sdk("ecr:DescribeRepositories", e)
            }
        })?;
    let repo = out.repositories().first().ok_or_else(|| {
        RollbackError::StableImageNotFound(format!(
            "ECR repository {} does not exist{}",
            image.repository,
            in_registry(image)
        ))
    })?;
    let setting = repo
        .image_tag_mutability()
        .cloned()
        .unwrap_or(TagMutability::Mutable);
    let excluded = repo
        .image_tag_mutability_exclusion_filters()
        .iter()
        .any(|f| wildcard_match(f.filter(), &image.release_tag));
    // The *_WITH_EXCLUSION settings flip the base rule for tags matching a filter.
    let immutable = match setting {
        TagMutability::Immutable => true,
        TagMutability::Mutable => false,
        TagMutability::ImmutableWithExclusion => !excluded,
        TagMutability::MutableWithExclusion => excluded,
        _ => false,
    };
    Ok(Mutability {
        immutable,
        setting: setting.as_str().to_owned(),
    })
}

/// ECR exclusion filters: literal text with `*` wildcards.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// The digest and push time behind `tag`, or `None` when the tag does not exist.
pub async fn describe_tag(
    client: &Client,
    image: &ImageRef,
    tag: &str,
) -> Result<Option<TagInfo>, RollbackError> {
    let out = client
        .describe_images()
        .set_registry_id(registry(image))
        .repository_name(&image.repository)
        .image_ids(ImageIdentifier::builder().image_tag(tag).build())
        .send()
        .await;
    let out = match out {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_image_not_found_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(RollbackError::from_sdk("ecr:DescribeImages", e)),
    };
    let Some(detail) = out.image_details().first() else {
        return Ok(None);
    };
    let digest = detail.image_digest().map(str::to_owned).ok_or_else(|| {
        RollbackError::Internal(format!(
            "ECR described {}:{tag} without a digest",
            image.repository
        ))
    })?;
    let pushed_at = detail
        .image_pushed_at()
        .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
    Ok(Some(TagInfo { digest, pushed_at }))
}

/// The manifest behind `digest`, in its own media type.
pub async fn get_manifest(
    client: &Client,
    image: &ImageRef,
    digest: &str,
) -> Result<Manifest, RollbackError> {
    let mut request = client
        .batch_get_image()
        .set_registry_id(registry(image))
        .repository_name(&image.repository)
        .image_ids(ImageIdentifier::builder().image_digest(digest).build());
    for media_type in ACCEPTED_MEDIA_TYPES {
        request = request.accepted_media_types(media_type);
    }
    let out = request
        .send()
        .await
        .map_err(|e| RollbackError::from_sdk("ecr:BatchGetImage", e))?;
    let Some(found) = out
        .images()
        .iter()
        .find(|i| i.image_id().and_then(|id| id.image_digest()) == Some(digest))
        .or_else(|| out.images().first())
    else {
        let why = out
            .failures()
            .first()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.failure_code().map(|c| c.as_str()).unwrap_or("Unknown"),
                    f.failure_reason().unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "no image returned".into());
        return Err(RollbackError::StableImageNotFound(format!(
            "could not read the manifest of {}@{digest}: {why}",
            image.repository
        )));
    };
    let body = found.image_manifest().unwrap_or_default().to_owned();
    if body.is_empty() {
        return Err(RollbackError::RetagFailed(format!(
            "ECR returned an empty manifest for {}@{digest}",
            image.repository
        )));
    }
    // Older images may lack the field; the manifest names its own type then.
    let media_type = match found.image_manifest_media_type() {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .ok_or_else(|| {
                RollbackError::RetagFailed(format!(
                    "the manifest of {}@{digest} does not say its media type; \
                     retag it by hand with `docker buildx imagetools create`",
                    image.repository
                ))
            })?,
    };
    if !ACCEPTED_MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(RollbackError::RetagFailed(format!(
            "{}@{digest} has manifest media type {media_type}, which retag does not move \
             (supported: {}); retag it by hand",
            image.repository,
            ACCEPTED_MEDIA_TYPES.join(", ")
        )));
    }
    Ok(Manifest { body, media_type })
}

/// Outcome of putting a manifest under a tag.
#[derive(Debug, PartialEq, Eq)]
pub enum Put {
    Written,
    /// ECR said the tag already names this manifest (a retried attempt got there first).
    AlreadyThere,
}

/// Puts `manifest` (the image `digest`) under `tag`. "Already exists" is success when the tag
/// really points at `digest` now, which makes retries harmless.
pub async fn put_tag(
    client: &Client,
    image: &ImageRef,
    manifest: &Manifest,
    digest: &str,
    tag: &str,
) -> Result<Put, RollbackError> {
    let result = client
        .put_image()
        .set_registry_id(registry(image))
        .repository_name(&image.repository)
        .image_manifest(&manifest.body)
        .image_manifest_media_type(&manifest.media_type)
        .image_digest(digest)
        .image_tag(tag)
        .send()
        .await;
    match result {
        Ok(_) => Ok(Put::Written),
        Err(e) => {
            let exists = e.as_service_error().is_some_and(|s| {
                s.is_image_already_exists_exception() || s.is_image_tag_already_exists_exception()
            });
            if !exists {
                return Err(RollbackError::from_sdk("ecr:PutImage", e));
            }
            match describe_tag(client, image, tag).await? {
                Some(now) if now.digest == digest => Ok(Put::AlreadyThere),
                Some(now) => Err(RollbackError::RetagFailed(format!(
                    "ECR refused to move {}:{tag} to {digest}: the tag is immutable and points at {}. \
                     Make the repository's tags mutable, or roll back by deployment only \
                     (the previous revision must pin the stable digest)",
                    image.repository, now.digest
                ))),
                None => Err(RollbackError::RetagFailed(format!(
                    "ECR refused to tag {}@{digest} as {tag} ({}) yet the tag does not exist",
                    image.repository,
                    e.into_service_error()
                ))),
            }
        }
    }
}

fn in_registry(image: &ImageRef) -> String {
    image
        .registry_id
        .as_deref()
        .map(|r| format!(" in registry {r}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn exclusion_filters_are_wildcards() {
        assert!(wildcard_match("prod", "prod"));
        assert!(!wildcard_match("prod", "prod2"));
        assert!(wildcard_match("prod*", "prod-1"));
        assert!(wildcard_match("*-latest", "app-latest"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXcYYb"));
        assert!(!wildcard_match("ab*ba", "aba"));
    }
}
