#!/usr/bin/env bash
# Build the extra binaries of the local single-node cluster (make cluster-up) from source.
#
# The cluster needs three tools beyond the Kubernetes binaries of scripts/build-kube-bins.sh:
# crictl (to clean up pod sandboxes on cluster-down), and CoreDNS and metrics-server, which
# run as pods from images packed from these binaries (scripts/build-node-images.sh). Nothing
# can be pulled from a registry here, so they are compiled through the Go module proxy and
# cached in
#   ${DRIFTLINE_BIN_CACHE:-$HOME/.cache/driftline/bin}/node-tools/
# Each binary carries a stamp naming the module version and link flags it was built with, so
# bumping one pin below rebuilds only that binary; a warm run takes well under a second.
#
# Usage:
#   scripts/build-node-bins.sh              build what is missing; last stdout line = bin dir
#   scripts/build-node-bins.sh --print-dir  print the bin dir and exit, building nothing
#   scripts/build-node-bins.sh --force      rebuild everything
#
# Progress and stage timings go to stderr; stdout carries only the bin dir.
# Pins can be overridden through the environment (DRIFTLINE_CRICTL_VERSION,
# DRIFTLINE_COREDNS_VERSION, DRIFTLINE_METRICS_SERVER_VERSION).
set -euo pipefail

# crictl v1.33.x (the release matching Kubernetes 1.33) is refused by the module proxy
# ("403 This module version is not available"); v1.34.0 speaks CRI v1 to containerd 1.6.
CRICTL_VERSION=${DRIFTLINE_CRICTL_VERSION:-v1.34.0}
COREDNS_VERSION=${DRIFTLINE_COREDNS_VERSION:-v1.12.4}
METRICS_SERVER_VERSION=${DRIFTLINE_METRICS_SERVER_VERSION:-v0.8.0}

CACHE_ROOT=${DRIFTLINE_BIN_CACHE:-$HOME/.cache/driftline/bin}
BIN_DIR="$CACHE_ROOT/node-tools"

SCRIPT_NAME=build-node-bins
# shellcheck source=scripts/lib/go-bins.sh
source "$(dirname "$0")/lib/go-bins.sh"
parse_common_args "$@"
go_build_env

mkdir -p "$BIN_DIR"
# Its own lock: this script may run while build-kube-bins.sh holds the other one.
exec 9>"$CACHE_ROOT/.node-tools.lock"
flock 9
rm -rf "$BIN_DIR"/.build.*

total_start=$(date +%s)

go_install crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" \
    "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
go_install coredns github.com/coredns/coredns "$COREDNS_VERSION" "-s -w"
go_install metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "$METRICS_SERVER_VERSION" \
    "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"

log "all node tools ready in $(($(date +%s) - total_start))s: $BIN_DIR"
echo "$BIN_DIR"
