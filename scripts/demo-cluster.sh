#!/usr/bin/env bash
# The Driftline loop in real pods for a person to watch: the steps of tests/e2e/test_1_loop.py
# (train, serve, split, log, drift, retrain, promote, roll back, autoscale) on the local cluster,
# each with a progress line, then a table of what runs. The cluster stays up afterwards; end it
# with `make cluster-down`. Root, like `make cluster-up`.
set -euo pipefail
cd "$(dirname "$0")/.."

export KUBECONFIG=${DRIFTLINE_CLUSTER_DIR:-/var/lib/driftline-cluster}/run/admin.kubeconfig
kubectl="$(scripts/build-kube-bins.sh --print-dir | tail -1)/kubectl"
# Also after a failed step: the cluster is kept either way.
trap 'echo; echo "The cluster is still up: export KUBECONFIG=$KUBECONFIG; make cluster-down ends it."' EXIT

DRIFTLINE_KEEP_CLUSTER=1 .venv/bin/python -m pytest tests/e2e/test_1_loop.py -q -s -x -p no:cacheprovider
echo
"$kubectl" -n driftline-e2e get modeldeployments,driftpolicies,deployments,hpa,jobs
