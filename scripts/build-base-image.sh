#!/usr/bin/env bash
# Build the Debian bookworm base image locally: no registry is reachable here, so `FROM debian`
# cannot be pulled. debootstrap fetches Debian's packages (the only source needed), the rootfs
# is imported with `docker import`. Reused when the image exists; --force rebuilds it.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${DRIFTLINE_BASE_IMAGE:-driftline/base:bookworm-py311}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# python3 (3.11 on bookworm) and its venv module; ca-certificates for HTTPS at run time.
PACKAGES=python3,python3-venv,ca-certificates,tini

if [[ ${1:-} != --force ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE exists" >&2
  echo "$IMAGE"
  exit 0
fi
rootfs=$(mktemp -d /tmp/driftline-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
t0=$(date +%s)
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$MIRROR" >&2
# A smaller image: no apt lists, docs or caches.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
tar -C "$rootfs" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  - "$IMAGE" >&2
echo "base image $IMAGE built in $(( $(date +%s) - t0 )) s" >&2
echo "$IMAGE"
