#!/usr/bin/env bash
# Build the images of the local cluster (make cluster-up) without any registry.
#
# Each image is one layer packed from files on this machine by scripts/cluster/docker_archive.py
# into the `docker save` format, which `ctr -n k8s.io images import` loads:
#   pause          the pod sandbox, scripts/cluster/pause.c compiled static (about 800 KB)
#   coredns        the CoreDNS binary of scripts/build-node-bins.sh, nothing else
#   metrics-server the metrics-server binary of scripts/build-node-bins.sh, nothing else
#   busybox        Debian's busybox-static with its applets: a shell and tools for tests
# Archives are cached in ${DRIFTLINE_IMAGE_CACHE:-$HOME/.cache/driftline/node-images}; each
# carries a stamp (sha256 of its inputs and reference), so an unchanged image is not rebuilt.
#
# Usage:
#   scripts/build-node-images.sh              build what is missing; last stdout line = dir
#   scripts/build-node-images.sh --print-dir  print the archive dir and exit
#   scripts/build-node-images.sh --refs       print "NAME REF" per image and exit
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT_DIR=${DRIFTLINE_IMAGE_CACHE:-$HOME/.cache/driftline/node-images}
PYTHON=${PYTHON:-python3}

# Image references. Tags follow the versions pinned in build-node-bins.sh.
PAUSE_REF=localhost/driftline/pause:3.10
COREDNS_REF=localhost/driftline/coredns:1.12.4
METRICS_SERVER_REF=localhost/driftline/metrics-server:0.8.0
BUSYBOX_REF=localhost/driftline/busybox:1.35

case "${1:-}" in
    --print-dir)
        echo "$OUT_DIR"
        exit 0
        ;;
    --refs)
        printf '%s %s\n' pause "$PAUSE_REF" coredns "$COREDNS_REF" \
            metrics-server "$METRICS_SERVER_REF" busybox "$BUSYBOX_REF"
        exit 0
        ;;
    "") ;;
    *)
        echo "build-node-images: unknown argument: $1" >&2
        exit 2
        ;;
esac

log() { echo "build-node-images: $*" >&2; }

"$HERE/cluster/ensure-packages.sh"  # gcc and busybox-static, among the node's packages
for tool in "$PYTHON" sha256sum; do
    command -v "$tool" >/dev/null || { log "$tool is not on PATH"; exit 1; }
done

mkdir -p "$OUT_DIR"
exec 9>"$OUT_DIR/.lock"
flock 9

tools=$("$HERE/build-node-bins.sh" | tail -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# inputs_stamp REF FILE...: one line that changes whenever an input or the packer changes.
inputs_stamp() {
    local ref=$1
    shift
    printf '%s %s\n' "$ref" "$(cat "$@" "$HERE/cluster/docker_archive.py" | sha256sum | cut -d' ' -f1)"
}

# pack NAME REF STAMP ROOTFS ARGS...: archive ROOTFS as NAME.tar unless its stamp matches.
pack() {
    local name=$1 ref=$2 stamp=$3 rootfs=$4
    shift 4
    local start
    start=$(date +%s.%N)
    "$PYTHON" "$HERE/cluster/docker_archive.py" "$rootfs" "$ref" "$OUT_DIR/$name.tar" "$@" >/dev/null
    printf '%s\n' "$stamp" >"$OUT_DIR/.$name.stamp"
    log "$name: $ref packed in $(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }')s" \
        "($(du -h "$OUT_DIR/$name.tar" | cut -f1))"
}

fresh() { # NAME STAMP: true when NAME.tar exists and was built from STAMP
    [[ -f "$OUT_DIR/$1.tar" && -f "$OUT_DIR/.$1.stamp" && "$(cat "$OUT_DIR/.$1.stamp")" == "$2" ]]
}

# A minimal /etc for images whose process looks up users (nobody = 65534).
minimal_etc() {
    mkdir -p "$1/etc" "$1/tmp"
    chmod 1777 "$1/tmp"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$1/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$1/etc/group"
}

# pause
stamp=$(inputs_stamp "$PAUSE_REF" "$HERE/cluster/pause.c")
if ! fresh pause "$stamp"; then
    mkdir -p "$work/pause"
    gcc -static -Os -s -Wall -Werror -o "$work/pause/pause" "$HERE/cluster/pause.c"
    pack pause "$PAUSE_REF" "$stamp" "$work/pause" --entrypoint '["/pause"]' --user 65534
fi

# coredns and metrics-server: the static binary alone, run as nobody.
for name in coredns metrics-server; do
    ref=$COREDNS_REF
    [[ $name == metrics-server ]] && ref=$METRICS_SERVER_REF
    stamp=$(inputs_stamp "$ref" "$tools/$name")
    fresh "$name" "$stamp" && continue
    rootfs="$work/$name"
    minimal_etc "$rootfs"
    mkdir -p "$rootfs/bin"
    cp "$tools/$name" "$rootfs/bin/$name"
    pack "$name" "$ref" "$stamp" "$rootfs" --entrypoint "[\"/bin/$name\"]" --user 65534
done

# busybox: Debian's static build and one symlink per applet.
stamp=$(inputs_stamp "$BUSYBOX_REF" /bin/busybox)
if ! fresh busybox "$stamp"; then
    rootfs="$work/busybox"
    minimal_etc "$rootfs"
    mkdir -p "$rootfs/bin" "$rootfs/root"
    cp /bin/busybox "$rootfs/bin/busybox"
    for applet in $("$rootfs/bin/busybox" --list); do
        [[ $applet == busybox ]] || ln -s busybox "$rootfs/bin/$applet"
    done
    pack busybox "$BUSYBOX_REF" "$stamp" "$rootfs" --cmd '["/bin/sh"]' --env PATH=/bin
fi

echo "$OUT_DIR"
