#!/usr/bin/env bash
# Install the Debian packages of the local cluster (scripts/cluster/packages) that are missing.
# Used by cluster-up.sh and build-node-images.sh; a non-root caller gets the apt-get line to run.
set -euo pipefail

missing=()
for pkg in $(grep -v '^#' "$(dirname "$0")/packages"); do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
if [[ $EUID != 0 ]]; then
    echo "missing Debian packages: run as root, or apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
