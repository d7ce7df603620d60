#!/usr/bin/env bash
# Build the operator, inference and trainer images (targets of the root Dockerfile), and the
# PostgreSQL image of the chart's optional database, with Debian's docker.io from a locally built
# base (scripts/build-base-image.sh). Prints each image's build time and size.
# Usage: scripts/build-images.sh [operator|inference|trainer|postgresql ...]   (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
REGISTRY=${DRIFTLINE_IMAGE_PREFIX:-driftline}
# Per Driftline image: the dependency group it installs and the description of its label.
declare -A EXTRAS=([operator]=operator [inference]=serving [trainer]=training)
declare -A DESCRIPTIONS=([operator]="Driftline Kubernetes operator"
                         [inference]="Driftline inference server and canary router"
                         [trainer]="Driftline training and drift-check jobs")
images=("$@")
((${#images[@]})) || images=(operator inference trainer postgresql)
for name in "${images[@]}"; do
  [[ $name == postgresql || -v "EXTRAS[$name]" ]] || {
    echo "unknown image $name (operator, inference, trainer, postgresql)" >&2; exit 2; }
done

scripts/ensure-dockerd.sh
base=$(scripts/build-base-image.sh | tail -1)
# pip inside the build stage trusts what this machine trusts (PyPI may sit behind a proxy CA).
mkdir -p .build
cp /etc/ssl/certs/ca-certificates.crt .build/ca.crt

for name in "${images[@]}"; do
  tag="$REGISTRY/$name:$VERSION"
  if [[ $name == postgresql ]]; then
    args=(-f scripts/images/postgresql/Dockerfile)
  else
    args=(-f Dockerfile --target "$name" --build-arg EXTRAS="${EXTRAS[$name]}"
          --build-arg TITLE="driftline-$name" --build-arg DESCRIPTION="${DESCRIPTIONS[$name]}")
  fi
  t0=$(date +%s)
  # Host network: the build reaches PyPI the way this machine does.
  docker build --network host --build-arg BASE_IMAGE="$base" --build-arg VERSION="$VERSION" \
    "${args[@]}" -t "$tag" . >&2
  size=$(docker image inspect "$tag" --format '{{.Size}}')
  echo "::: $tag built in $(( $(date +%s) - t0 )) s, $(( size / 1024 / 1024 )) MB"
done

# Every build leaves the images it replaced, and the build stages of multi-stage builds,
# untagged. Keep the newest build's (the layer cache of the next one) and drop older ones: a
# disk that fills up makes the kubelet taint the node (DiskPressure) and leaves every pod of
# the cluster tiers Pending.
docker image prune --force --filter "until=30m" >/dev/null
