#!/usr/bin/env bash
# ecr-move-tag.sh REPOSITORY DIGEST TAG: point TAG at the image DIGEST in the ECR repository,
# as the rollback's retag does in reverse: the manifest is read with BatchGetImage and put back
# under TAG with PutImage, same bytes and media type, so no layer is pulled or pushed and the
# digest does not change (--image-digest makes ECR refuse anything else). A TAG already on
# DIGEST is left alone. Needs the AWS CLI and jq; ecr:DescribeImages, ecr:BatchGetImage and
# ecr:PutImage on the repository (the stack's PipelineSnapshotPolicyArn grants them).
#
#   infra/release/ecr-move-tag.sh mint-replica-backend sha256:4f1c… prod     # deploy
#   infra/release/ecr-move-tag.sh mint-replica-backend sha256:4f1c… stable   # once healthy
set -euo pipefail

if [[ $# -ne 3 || $2 != sha256:* ]]; then
  echo "usage: $0 REPOSITORY sha256:DIGEST TAG" >&2
  exit 2
fi
repository=$1 digest=$2 tag=$3

current=$(aws ecr describe-images --repository-name "$repository" --image-ids imageTag="$tag" \
  --query 'imageDetails[0].imageDigest' --output text 2>/dev/null || true)
if [[ $current == "$digest" ]]; then
  echo "$repository:$tag is already $digest"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
aws ecr batch-get-image --repository-name "$repository" --image-ids imageDigest="$digest" \
  --accepted-media-types application/vnd.docker.distribution.manifest.v2+json \
    application/vnd.docker.distribution.manifest.list.v2+json \
    application/vnd.oci.image.manifest.v1+json application/vnd.oci.image.index.v1+json \
  --output json >"$work/image.json"
if [[ $(jq '.images | length' "$work/image.json") -ne 1 ]]; then
  echo "$repository has no image $digest: $(jq -c '.failures' "$work/image.json")" >&2
  exit 1
fi
# -j: the manifest's exact bytes (no newline added), so its digest stays the same.
jq -j '.images[0].imageManifest' "$work/image.json" >"$work/manifest.json"
aws ecr put-image --repository-name "$repository" --image-tag "$tag" --image-digest "$digest" \
  --image-manifest-media-type "$(jq -r '.images[0].imageManifestMediaType' "$work/image.json")" \
  --image-manifest "file://$work/manifest.json" --output text --query 'image.imageId.imageDigest' >/dev/null
echo "$repository:$tag -> $digest (was ${current:-no such tag})"
