#!/usr/bin/env bash
# Try Driftline on kind: create a cluster, load the three images, install the chart and the
# samples. For a machine with Docker and internet (kind pulls its node image); nothing here
# reaches a registry for Driftline's own images, they are built locally and loaded.
#
# Usage: scripts/kind-up.sh          (re-running reuses the cluster and upgrades the release)
# Needs docker, kind, kubectl and helm on PATH. Every kubectl/helm call names the kind
# context, so another current context is never touched.
#
# Environment: DRIFTLINE_KIND_CLUSTER (default driftline), DRIFTLINE_IMAGE_PREFIX (driftline).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${DRIFTLINE_KIND_CLUSTER:-driftline}
PREFIX=${DRIFTLINE_IMAGE_PREFIX:-driftline}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
CONTEXT="kind-$CLUSTER"
NAMESPACE=driftline-system

log() { echo "kind-up: $*" >&2; }
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { log "$tool is not on PATH"; exit 1; }
done

# 1. Images: build the ones missing (make images builds all three from a local Debian base).
missing=()
for name in operator inference trainer; do
  docker image inspect "$PREFIX/$name:$VERSION" >/dev/null 2>&1 || missing+=("$name")
done
if ((${#missing[@]})); then
  log "building ${missing[*]}"
  scripts/build-images.sh "${missing[@]}"
fi

# 2. The cluster.
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  log "cluster $CLUSTER exists"
else
  kind create cluster --name "$CLUSTER" --config k8s/kind-config.yaml --wait 180s
fi

# 3. The images into the node (pull policy Never below: a pull would fail, nothing is pushed).
kind load docker-image --name "$CLUSTER" \
  "$PREFIX/operator:$VERSION" "$PREFIX/inference:$VERSION" "$PREFIX/trainer:$VERSION"

# 4. A throwaway MLflow at http://mlflow.mlops:5000, the tracking URI the samples use.
kubectl --context "$CONTEXT" apply -f k8s/overlays/dev/mlflow.yaml

# 5. The chart: CRDs, RBAC and the operator.
helm --kube-context "$CONTEXT" upgrade --install driftline charts/driftline \
  --namespace "$NAMESPACE" --create-namespace \
  --set images.operator.repository="$PREFIX/operator" \
  --set images.inference.repository="$PREFIX/inference" \
  --set images.trainer.repository="$PREFIX/trainer" \
  --set images.operator.pullPolicy=Never \
  --wait --timeout 5m
kubectl --context "$CONTEXT" -n mlops rollout status deployment/mlflow --timeout=5m

# 6. The samples: a ModelDeployment and its DriftPolicy. Until a model is registered with the
# alias "champion" the ModelDeployment reports Degraded/NoChampion, which is the expected state.
kubectl --context "$CONTEXT" apply -n default -f k8s/samples/
kubectl --context "$CONTEXT" get modeldeployments,driftpolicies -A
log "done: kubectl --context $CONTEXT -n $NAMESPACE logs deploy/driftline-operator -f"
