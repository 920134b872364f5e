//! Contract of the `retag` function: ECR tags of the plan's images.
//!
//! - `resolve` reads, per plan image, the digests behind `stable_tag` and `release_tag`, their
//!   push times, whether a retag is needed and whether the repository's tags are immutable
//!   (→ [`ResolveOutput`]). Changes nothing. Missing stable tag → `Rollback.StableImageNotFound`.
//! - `apply` takes the approved resolutions back (`images`, the `images` of resolve's output),
//!   checks the stable tag still points at the approved digest (else `Rollback.PlanDrifted`),
//!   keeps the release tag's digest under [`rolled_back_tag`], then points the release tag at
//!   the stable manifest (BatchGetImage + PutImage of the same bytes and media type)
//!   (→ [`ApplyOutput`]). In drill mode it writes only [`drill_tag`].

use serde::{Deserialize, Serialize};

use crate::ids::ExecutionId;
use crate::resolved::ImageResolution;

/// The actions the state machine may call on this function.
pub const ACTIONS: &[&str] = &["resolve", "apply"];

/// The input of one `retag` invocation, tagged by `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RetagAction {
    /// Read the digests behind each plan image's stable and release tags; changes nothing.
    Resolve,
    /// Point each release tag at its stable digest (or write a drill tag in drill mode).
    Apply {
        /// The approved `resolve` output, one entry per plan image (matched by repository).
        images: Vec<ImageResolution>,
    },
}

/// Output of `resolve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolveOutput {
    /// One resolution per plan image.
    pub images: Vec<ImageResolution>,
}

/// Output of `apply`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyOutput {
    /// The execution ran in drill mode (only drill tags were written).
    pub drill: bool,
    /// One result per plan image.
    pub images: Vec<RetagResult>,
}

/// What `apply` did to one repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetagResult {
    /// The ECR repository.
    pub repository: String,
    /// The tag written: the release tag, or `drill-<execution>` in drill mode.
    pub tag: String,
    /// Whether a tag was written.
    pub outcome: RetagOutcome,
    /// The digest the stable tag points at (what the release tag now points at).
    pub stable_digest: String,
    /// What `tag` pointed at before this step (`None`: the tag did not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_digest: Option<String>,
    /// The tag that keeps the bad digest for inspection (`rolled-back-<execution>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_as: Option<String>,
    /// Manifest media type of the stable image (kept as it was).
    pub media_type: String,
    /// Human-readable line for the notice and the report.
    pub message: String,
}

/// What `apply` did to one image's tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetagOutcome {
    /// The release tag now points at the stable digest.
    Retagged,
    /// It already did: nothing was written.
    AlreadyStable,
    /// Drill: only the drill tag was written.
    DrillTagged,
}

/// Tag that keeps the bad release's digest: `rolled-back-<execution name>`.
///
/// The full execution name is used so the tag says which rollback moved it (Step Functions
/// names are at most 80 characters, so this fits ECR's 128). Characters a tag cannot hold are
/// replaced by `-`, and then the execution's short hash is appended to stay unique.
pub fn rolled_back_tag(execution: &ExecutionId) -> String {
    exec_tag("rolled-back-", execution)
}

/// Tag a drill writes instead of moving the release tag: `drill-<execution name>`.
pub fn drill_tag(execution: &ExecutionId) -> String {
    exec_tag("drill-", execution)
}

fn exec_tag(prefix: &str, execution: &ExecutionId) -> String {
    let name = execution.as_str();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut tag = if clean == name {
        format!("{prefix}{clean}")
    } else {
        format!("{prefix}{clean}-{}", execution.short())
    };
    if tag.len() > 128 {
        tag = format!("{prefix}{}", execution.short());
    }
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::rules::IMAGE_TAG;

    #[test]
    fn tags_are_valid_and_name_the_execution() {
        let exec = ExecutionId::new("alarm-mint-replica-5xx-20240501T120000Z");
        assert_eq!(
            rolled_back_tag(&exec),
            "rolled-back-alarm-mint-replica-5xx-20240501T120000Z"
        );
        assert_eq!(
            drill_tag(&exec),
            "drill-alarm-mint-replica-5xx-20240501T120000Z"
        );
        let odd = ExecutionId::new("manual:é+x");
        for tag in [
            rolled_back_tag(&odd),
            drill_tag(&odd),
            rolled_back_tag(&ExecutionId::new("x".repeat(200))),
        ] {
            assert!(IMAGE_TAG.is_valid(&tag), "{tag}");
        }
        assert_ne!(
            rolled_back_tag(&ExecutionId::new("a:b")),
            rolled_back_tag(&ExecutionId::new("a/b"))
        );
    }

    #[test]
    fn apply_reads_its_approved_images() {
        let action: RetagAction = serde_json::from_value(serde_json::json!({
            "action": "apply",
            "images": [{"repository": "r1", "release_tag": "prod", "stable_tag": "stable",
                        "stable_digest": "sha256:aa", "retag_needed": true, "immutable_tags": false}]
        }))
        .unwrap();
        let RetagAction::Apply { images } = action else {
            panic!("not apply")
        };
        assert_eq!(images[0].stable_digest, "sha256:aa");
    }
}
