#!/usr/bin/env bash
# Build the binaries of the real-API-server test tier (tests/kube) from source.
#
# Nothing can be pulled from container registries or GitHub release downloads here, so
# kube-apiserver & co. are compiled from the Go module proxy. Binaries are cached in
#   ${DRIFTLINE_BIN_CACHE:-$HOME/.cache/driftline/bin}/k8s-<version>/
# together with etcd, helm, kubeconform and prometheus, and reused on later runs (a warm run takes
# well under a second). Each binary carries a stamp naming the version it was built
# from, so bumping one pin below rebuilds only that binary.
#
# Usage:
#   scripts/build-kube-bins.sh              build what is missing; last stdout line = bin dir
#   scripts/build-kube-bins.sh --without-node  skip kubelet and kube-proxy (the tier runs
#                                              no nodes; they add ~30-60 s to a cold build)
#   scripts/build-kube-bins.sh --print-dir  print the bin dir and exit, building nothing
#   scripts/build-kube-bins.sh --force      rebuild everything
#
# Progress and stage timings go to stderr; stdout carries only the bin dir, so both
# BIN=$(scripts/build-kube-bins.sh) and BIN=$(scripts/build-kube-bins.sh | tail -1) work.
#
# Pins can be overridden through the environment (DRIFTLINE_K8S_VERSION,
# DRIFTLINE_ETCD_VERSION, DRIFTLINE_HELM_VERSION, DRIFTLINE_KUBECONFORM_VERSION,
# DRIFTLINE_PROMETHEUS_VERSION).
set -euo pipefail

# Kubernetes 1.33 is the newest 1.33.x on the module proxy; etcd 3.5.24 is the etcd that
# this release's own hack/lib/etcd.sh and kubeadm default to.
K8S_VERSION=${DRIFTLINE_K8S_VERSION:-v1.33.13}
ETCD_VERSION=${DRIFTLINE_ETCD_VERSION:-v3.5.24}
HELM_VERSION=${DRIFTLINE_HELM_VERSION:-v3.22.0}
KUBECONFORM_VERSION=${DRIFTLINE_KUBECONFORM_VERSION:-v0.8.0}
# Prometheus 3.16 (its Go module is tagged v0.316): the rollout tests read router figures
# through its HTTP API as spec.analysis.prometheus does.
PROMETHEUS_VERSION=${DRIFTLINE_PROMETHEUS_VERSION:-v0.316.0}

CACHE_ROOT=${DRIFTLINE_BIN_CACHE:-$HOME/.cache/driftline/bin}
BIN_DIR="$CACHE_ROOT/k8s-${K8S_VERSION#v}"
WORK_ROOT="$CACHE_ROOT/.work"

with_node=1
extra_arg() {
    [[ $1 == --without-node ]] || return 1
    with_node=0
}
SCRIPT_NAME=build-kube-bins
# shellcheck source=scripts/lib/go-bins.sh
source "$(dirname "$0")/lib/go-bins.sh"
parse_common_args "$@"
# GOMODCACHE and GOCACHE stay at their defaults so the other Go work on this machine shares them.
go_build_env
command -v python3 >/dev/null || { log "python3 is not on PATH"; exit 1; }

mkdir -p "$BIN_DIR" "$WORK_ROOT"
# Two test runs starting at once must not both compile into the same dir.
exec 9>"$CACHE_ROOT/.lock"
flock 9
# Leftovers of a build that was interrupted; safe to drop while holding the lock.
rm -rf "$BIN_DIR"/.build.*

total_start=$(date +%s)
stage_start=0
stage() {
    stage_name=$1
    stage_start=$(date +%s)
    log "--- $stage_name"
}
stage_done() {
    log "--- $stage_name took $(($(date +%s) - stage_start))s"
}

# install_from TMPDIR NAME STAMP: move a freshly built binary into place atomically, so
# a reader never sees a half-written file.
install_from() {
    mv -f "$1/$2" "$BIN_DIR/$2"
    write_stamp "$2" "$3"
}

# ---------------------------------------------------------------- Kubernetes
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
if [[ $with_node == 1 ]]; then
    k8s_bins+=(kubelet kube-proxy)
fi
k8s_stamp="k8s.io/kubernetes@$K8S_VERSION"
k8s_todo=()
for b in "${k8s_bins[@]}"; do
    stamp_ok "$b" "$k8s_stamp" || k8s_todo+=("$b")
done

if ((${#k8s_todo[@]})); then
    stage "kubernetes $K8S_VERSION: wrapper module"
    k8s_work="$WORK_ROOT/k8s-$K8S_VERSION"
    mkdir -p "$k8s_work"
    # k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at v0.0.0 and
    # replaces them with ./staging paths that a module zip does not carry, which is why
    # `go install k8s.io/kubernetes/cmd/...@v` fails. A wrapper main module may replace
    # them with their published v0.<minor>.<patch> tags instead; the list is read from
    # the release's own go.mod so that it can never drift from it.
    k8s_json=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION")
    k8s_gomod=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])' \
        <<<"$k8s_json")
    k8s_time=$(python3 -c 'import json,sys; print(json.load(open(json.load(sys.stdin)["Info"]))["Time"])' \
        <<<"$k8s_json")
    staging_version="v0.${K8S_VERSION#v1.}"
    # Lines of output: "go X", "godebug K=V", "replace MODULE" (one per staging module).
    edits=$(go mod edit -json "$k8s_gomod" | python3 -c '
import json, sys
m = json.load(sys.stdin)
print("go", m["Go"])
for g in m.get("Godebug") or []:
    print("godebug", "%s=%s" % (g["Key"], g["Value"]))
for r in m.get("Require") or []:
    if r["Path"].startswith("k8s.io/") and r["Version"] == "v0.0.0":
        print("replace", r["Path"])
')
    edit_args=()
    n_replace=0
    while read -r kind value; do
        case "$kind" in
            go) edit_args+=("-go=$value") ;;
            godebug) edit_args+=("-godebug=$value") ;;
            replace)
                edit_args+=("-replace=$value=$value@$staging_version")
                n_replace=$((n_replace + 1))
                ;;
        esac
    done <<<"$edits"
    ((n_replace > 0)) || { log "no staging modules found in $k8s_gomod"; exit 1; }
    log "replacing $n_replace staging modules with $staging_version"

    rm -f "$k8s_work/go.mod" "$k8s_work/go.sum"
    (
        cd "$k8s_work"
        go mod init driftline.invalid/kubebins >/dev/null 2>&1
        # `tool` lines keep the cmd packages in the module graph, so `go mod tidy` records
        # every checksum they need without a tools.go.
        tool_args=()
        for b in "${k8s_bins[@]}"; do tool_args+=("-tool=k8s.io/kubernetes/cmd/$b"); done
        go mod edit "${edit_args[@]}" "-require=k8s.io/kubernetes@$K8S_VERSION" "${tool_args[@]}"
        nice -n 10 go mod tidy
    )
    stage_done

    stage "kubernetes $K8S_VERSION: compile ${k8s_todo[*]}"
    minor=${K8S_VERSION#v1.}
    minor=${minor%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.buildDate=$k8s_time -X $pkg.gitTreeState=clean"
    done
    pkgs=()
    for b in "${k8s_todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    tmp_out=$(mktemp -d "$BIN_DIR/.build.XXXXXX")
    # One go build for all commands: packages they share compile once.
    (cd "$k8s_work" && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$tmp_out/" "${pkgs[@]}")
    for b in "${k8s_todo[@]}"; do install_from "$tmp_out" "$b" "$k8s_stamp"; done
    rmdir "$tmp_out"
    stage_done
else
    log "kubernetes $K8S_VERSION: ${k8s_bins[*]} cached"
fi

# ---------------------------------------------------------------- etcd
etcd_stamp="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
if ! stamp_ok etcd "$etcd_stamp"; then
    stage "etcd $ETCD_VERSION"
    etcd_work="$WORK_ROOT/etcd-$ETCD_VERSION"
    mkdir -p "$etcd_work"
    rm -f "$etcd_work/go.mod" "$etcd_work/go.sum"
    # etcd's own main package lives in a module (go.etcd.io/etcd/v3) that replaces its
    # siblings with local paths, so it cannot be `go install`ed; etcdmain can be imported.
    cat >"$etcd_work/main.go" <<'EOF'
// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3/etcdmain.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
EOF
    (
        cd "$etcd_work"
        go mod init driftline.invalid/etcdbin >/dev/null 2>&1
        go mod edit "-require=go.etcd.io/etcd/server/v3@$ETCD_VERSION"
        nice -n 10 go mod tidy
        # tidy may raise the server module through MVS; the pin must hold exactly.
        got=$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)
        [[ "$got" == "$ETCD_VERSION" ]] || {
            echo "etcd server resolved to $got, not $ETCD_VERSION" >&2
            exit 1
        }
        tmp_out=$(mktemp -d "$BIN_DIR/.build.XXXXXX")
        nice -n 10 go build -trimpath -ldflags "-s -w" -o "$tmp_out/etcd" .
        mv -f "$tmp_out/etcd" "$BIN_DIR/etcd"
        rmdir "$tmp_out"
    )
    write_stamp etcd "$etcd_stamp"
    stage_done
else
    log "etcd $ETCD_VERSION cached"
fi

# ---------------------------------------------------------------- helm, kubeconform, prometheus
go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
    "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
go_install kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" \
    "-s -w -X main.version=${KUBECONFORM_VERSION#v}"
go_install prometheus github.com/prometheus/prometheus/cmd/prometheus "$PROMETHEUS_VERSION" "-s -w"

log "all binaries ready in $(($(date +%s) - total_start))s: $BIN_DIR"
echo "$BIN_DIR"
