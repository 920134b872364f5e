//! Reading what a build wrote under its artifact key (`s3://bucket/key/<name>`).

use aws_sdk_s3::error::ProvideErrorMetadata;
use rollback_core::RollbackError;
use rollback_core::contract::infra::BuildRef;

use crate::Clients;

/// Why an artifact could not be read.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// Not there, or not readable: without `s3:ListBucket` (the role has none) S3 answers a
    /// missing key with AccessDenied. Holds S3's error code.
    Missing(String),
    TooLarge {
        bytes: i64,
        limit: usize,
    },
    Failed(RollbackError),
}

/// `s3://<build's bucket>/<build's key>/<name>`, at most `limit` bytes.
pub(crate) async fn read(
    clients: &Clients,
    build: &BuildRef,
    name: &str,
    limit: usize,
) -> Result<Vec<u8>, Unreadable> {
    let key = format!("{}/{name}", build.artifact_key);
    let object = match clients
        .s3
        .get_object()
        .bucket(&build.artifact_bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(object) => object,
        Err(e) => {
            return Err(match e.code() {
                Some(code @ ("NoSuchKey" | "AccessDenied")) => Unreadable::Missing(code.to_owned()),
                _ => Unreadable::Failed(RollbackError::from_sdk("GetObject", e)),
            });
        }
    };
    let bytes = object.content_length().unwrap_or_default();
    if usize::try_from(bytes).unwrap_or(usize::MAX) > limit {
        return Err(Unreadable::TooLarge { bytes, limit });
    }
    let body = object.body.collect().await.map_err(|e| {
        Unreadable::Failed(RollbackError::Transient {
            operation: "GetObject".into(),
            message: format!("reading s3://{}/{key}: {e}", build.artifact_bucket),
        })
    })?;
    Ok(body.into_bytes().to_vec())
}

/// `s3://bucket/key/name` of `build`, for messages.
pub(crate) fn uri(build: &BuildRef, name: &str) -> String {
    format!(
        "s3://{}/{}/{name}",
        build.artifact_bucket, build.artifact_key
    )
}
