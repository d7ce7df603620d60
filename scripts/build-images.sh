#!/usr/bin/env bash
# Build the operator, inference and trainer images, and the PostgreSQL image of the chart's
# optional database, with Debian's docker.io from a locally built base
# (scripts/build-base-image.sh). Prints each image's build time and size.
# Usage: scripts/build-images.sh [operator|inference|trainer|postgresql ...]   (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
REGISTRY=${DRIFTLINE_IMAGE_PREFIX:-driftline}
declare -A DOCKERFILES=([operator]=operator/Dockerfile [inference]=inference_image/Dockerfile
                        [trainer]=trainer_image/Dockerfile
                        [postgresql]=scripts/images/postgresql/Dockerfile)
images=("$@")
((${#images[@]})) || images=(operator inference trainer postgresql)

scripts/ensure-dockerd.sh
base=$(scripts/build-base-image.sh | tail -1)
# pip inside the build stage trusts what this machine trusts (PyPI may sit behind a proxy CA).
mkdir -p .build
cp /etc/ssl/certs/ca-certificates.crt .build/ca.crt

for name in "${images[@]}"; do
  tag="$REGISTRY/$name:$VERSION"
  t0=$(date +%s)
  # Host network: the build reaches PyPI the way this machine does.
  docker build --network host --build-arg BASE_IMAGE="$base" --build-arg VERSION="$VERSION" \
    -f "${DOCKERFILES[$name]}" -t "$tag" . >&2
  size=$(docker image inspect "$tag" --format '{{.Size}}')
  echo "::: $tag built in $(( $(date +%s) - t0 )) s, $(( size / 1024 / 1024 )) MB"
done
