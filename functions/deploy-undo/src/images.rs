//! Does a revision run the stable images? Compares container image references with retag's
//! resolved digests.

use rollback_core::resolved::ImageResolution;

/// `registry/path:tag@digest` split into its parts.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageName<'a> {
    pub path: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

pub fn parse(image: &str) -> ImageName<'_> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[slash..].rfind(':') {
        Some(i) => ImageName {
            path: &rest[..slash + i],
            tag: Some(&rest[slash + i + 1..]),
            digest,
        },
        None => ImageName {
            path: rest,
            tag: None,
            digest,
        },
    }
}

fn same_repository(path: &str, repository: &str) -> bool {
    path == repository || path.ends_with(&format!("/{repository}"))
}

/// A release tag the retag moves back to the stable digest (mutable tags, retag needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedTag {
    pub repository: String,
    pub tag: String,
}

/// The release tags the retag will move: from retag's resolutions when given, else every plan
/// image's release tag (assumed mutable, as retag resolve has not said otherwise).
pub fn moved_tags(
    resolved: &[ImageResolution],
    plan: &[rollback_core::plan::ImageRef],
) -> Vec<MovedTag> {
    if resolved.is_empty() {
        return plan
            .iter()
            .map(|i| MovedTag {
                repository: i.repository.clone(),
                tag: i.release_tag.clone(),
            })
            .collect();
    }
    resolved
        .iter()
        .filter(|r| r.retag_needed && !r.immutable_tags)
        .map(|r| MovedTag {
            repository: r.repository.clone(),
            tag: r.release_tag.clone(),
        })
        .collect()
}

/// The moved tag `image` references by tag alone (no digest), if any.
pub fn moved_tag<'a>(image: &str, moved: &'a [MovedTag]) -> Option<&'a MovedTag> {
    let name = parse(image);
    if name.digest.is_some() {
        return None;
    }
    let tag = name.tag.unwrap_or("latest");
    moved
        .iter()
        .find(|m| m.tag == tag && same_repository(name.path, &m.repository))
}

/// The pull policy the API server gives a container without one: `Always` for `:latest` and
/// untagged images, `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let name = parse(image);
    match (name.digest, name.tag) {
        (Some(_), _) => "IfNotPresent",
        (None, None | Some("latest")) => "Always",
        (None, Some(_)) => "IfNotPresent",
    }
}

/// `None` when no image belongs to a plan repository; else whether all of them are the stable
/// image, with one sentence per problem.
pub fn check(images: &[String], resolved: &[ImageResolution]) -> (Option<bool>, Vec<String>) {
    let mut related = false;
    let mut problems = Vec::new();
    for image in images {
        let name = parse(image);
        let Some(r) = resolved
            .iter()
            .find(|r| same_repository(name.path, &r.repository))
        else {
            continue;
        };
        related = true;
        match (name.digest, name.tag.unwrap_or("latest")) {
            (Some(digest), _) if digest == r.stable_digest => {}
            (Some(digest), _) => problems.push(format!(
                "{image} pins {digest}, not the stable digest {} of {}:{}{}",
                r.stable_digest,
                r.repository,
                r.stable_tag,
                if r.release_digest.as_deref() == Some(digest) {
                    " — it is the bad release's own digest"
                } else {
                    ""
                }
            )),
            (None, tag) if tag == r.stable_tag => {}
            (None, tag) if tag == r.release_tag && !r.immutable_tags => {}
            (None, tag) if tag == r.release_tag => problems.push(format!(
                "{image} uses the release tag {tag:?}, which cannot be moved back (immutable tags), \
                 so it keeps running {}",
                r.release_digest.as_deref().unwrap_or("the bad release")
            )),
            (None, tag) => problems.push(format!(
                "{image} uses tag {tag:?}, which is neither the stable tag {:?} nor the release tag \
                 {:?}: it cannot be confirmed to be the stable digest {}",
                r.stable_tag, r.release_tag, r.stable_digest
            )),
        }
    }
    (related.then_some(problems.is_empty()), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolution() -> ImageResolution {
        ImageResolution {
            repository: "mint/backend".into(),
            release_tag: "prod".into(),
            stable_tag: "stable".into(),
            stable_digest: "sha256:good".into(),
            release_digest: Some("sha256:bad".into()),
            stable_pushed_at: None,
            release_pushed_at: None,
            retag_needed: true,
            immutable_tags: false,
            note: None,
        }
    }

    #[test]
    fn moved_tags_are_mutable_release_tags_by_tag_only() {
        let mut frozen = resolution();
        frozen.repository = "mint/frontend".into();
        frozen.immutable_tags = true;
        let moved = moved_tags(&[resolution(), frozen], &[]);
        assert_eq!(moved.len(), 1, "immutable tags are not moved: {moved:?}");
        let reg = "123.dkr.ecr.us-east-1.amazonaws.com";
        assert!(moved_tag(&format!("{reg}/mint/backend:prod"), &moved).is_some());
        assert!(moved_tag(&format!("{reg}/mint/backend:stable"), &moved).is_none());
        assert!(moved_tag(&format!("{reg}/mint/backend:prod@sha256:good"), &moved).is_none());
        assert!(moved_tag(&format!("{reg}/mint/frontend:prod"), &moved).is_none());
        let mut done = resolution();
        done.retag_needed = false;
        assert!(moved_tags(&[done], &[]).is_empty(), "nothing to move");
        assert_eq!(default_pull_policy("repo:prod"), "IfNotPresent");
        assert_eq!(default_pull_policy("repo:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/repo"), "Always");
        assert_eq!(default_pull_policy("repo@sha256:ab"), "IfNotPresent");
    }

    #[test]
    fn parses_references() {
        assert_eq!(
            parse("123.dkr.ecr.us-east-1.amazonaws.com/mint/backend@sha256:ab"),
            ImageName {
                path: "123.dkr.ecr.us-east-1.amazonaws.com/mint/backend",
                tag: None,
                digest: Some("sha256:ab")
            }
        );
        assert_eq!(
            parse("localhost:5000/app:v1"),
            ImageName {
                path: "localhost:5000/app",
                tag: Some("v1"),
                digest: None
            }
        );
        assert_eq!(parse("localhost:5000/app").tag, None);
    }

    #[test]
    fn stable_digest_and_tags_match_other_digests_do_not() {
        let r = [resolution()];
        let reg = "123.dkr.ecr.us-east-1.amazonaws.com";
        assert_eq!(
            check(&[format!("{reg}/mint/backend@sha256:good")], &r),
            (Some(true), vec![])
        );
        assert_eq!(
            check(&[format!("{reg}/mint/backend:stable")], &r).0,
            Some(true)
        );
        assert_eq!(
            check(&[format!("{reg}/mint/backend:prod")], &r).0,
            Some(true)
        );
        let (ok, why) = check(&[format!("{reg}/mint/backend@sha256:bad")], &r);
        assert_eq!(ok, Some(false));
        assert!(why[0].contains("bad release's own digest"), "{why:?}");
        assert_eq!(
            check(&[format!("{reg}/mint/backend:v7")], &r).0,
            Some(false)
        );
        assert_eq!(check(&["nginx:1".to_string()], &r), (None, vec![]));
        assert_eq!(
            check(&[format!("{reg}/other/backend@sha256:good")], &r).0,
            None
        );
        let mut immutable = resolution();
        immutable.immutable_tags = true;
        assert_eq!(
            check(&[format!("{reg}/mint/backend:prod")], &[immutable]).0,
            Some(false)
        );
    }
}
