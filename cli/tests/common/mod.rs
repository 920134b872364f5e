//! What the drill test binaries share: their options and the release tags' digests.

// Each test binary uses a part.
#![allow(dead_code)]

use std::time::Duration;

use rollbackctl::drill::{Drill, DrillOptions};

/// A quiet drill without PostgreSQL, its output in a temporary directory named after the test
/// binary, `name` and the process.
pub fn options(name: &str) -> DrillOptions {
    DrillOptions {
        output_dir: std::env::temp_dir().join(format!(
            "rollback-{}-{name}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        )),
        timeout: Duration::from_secs(300),
        quiet: true,
        postgres: false,
        ..Default::default()
    }
}

/// The digest `repository:prod` points at in moto's ECR; `Ok(None)` when it points nowhere.
pub async fn prod_digest(drill: &Drill, repository: &str) -> Result<Option<String>, String> {
    let images = aws_sdk_ecr::Client::new(&drill.stack.sdk)
        .describe_images()
        .repository_name(repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag("prod")
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("{repository}:prod does not resolve: {e}"))?;
    Ok(images
        .image_details()
        .first()
        .and_then(|d| d.image_digest())
        .map(str::to_owned))
}
