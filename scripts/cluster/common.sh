# Shared settings and helpers of scripts/cluster-up.sh and scripts/cluster-down.sh.
# Sourced, never run. Every address below is local to this machine: the bridge and its pod
# range, the service range routed onto the bridge, and loopback.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings are used by the scripts that source this file

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER_SCRIPTS="$REPO_ROOT/scripts/cluster"

# Persistent directory: cluster state (wiped by cluster-down) and component logs (kept
# until the next cluster-up, so a failed run can be read afterwards).
STATE=${DRIFTLINE_CLUSTER_DIR:-/var/lib/driftline-cluster}
RUN_STATE="$STATE/run"      # etcd, PKI, kubeconfigs, kubelet, containerd store: wiped on down
LOGS="$STATE/logs"
SAVED="$STATE/saved"        # host values to restore (sysctls, pre-existing paths)
PIDS="$RUN_STATE/pids"
# Volatile directory for sockets and runtime state (short: unix socket paths are limited).
VOLATILE=/run/driftline-cluster
CRI_SOCK="$VOLATILE/containerd/containerd.sock"

NODE_NAME=driftline-node
BRIDGE=dl-cni0
NODE_IP=10.244.0.1           # the bridge's address: node InternalIP, apiserver, kubelet
POD_CIDR=10.244.0.0/24
SVC_CIDR=10.96.0.0/24
KUBE_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
API_PORT=6443
ETCD_PORT=12379
ETCD_PEER_PORT=12380
ETCD_METRICS_PORT=12381
KCM_PORT=20257
SCHED_PORT=20259
KUBELET_HEALTHZ_PORT=10248
PROXY_HEALTHZ_PORT=10256
PROXY_METRICS_PORT=10249
# containerd gets this as its proxy for every registry request: a closed loopback port.
# A pod naming an image that was not imported fails at once ("connection refused")
# instead of resolving and contacting a registry off the machine.
NO_PULL_PROXY=http://127.0.0.1:9

# Components in start order; cluster-down stops them in reverse.
COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

# Sysctls that cluster-up or the components change: ip_forward (forwarding between pods
# and to service IPs), bridge-nf-call-iptables (kube-proxy rules on bridged traffic), and
# what the kubelet sets itself with protectKernelDefaults=false (overcommit_memory,
# panic, panic_on_oops) or kube-proxy would (route_localnet, conntrack limits; both are
# configured not to, the values are saved anyway as a safety net).
SAVED_SYSCTLS=(
    net.ipv4.ip_forward
    net.bridge.bridge-nf-call-iptables
    net.bridge.bridge-nf-call-ip6tables
    vm.overcommit_memory
    vm.panic_on_oom
    kernel.panic
    kernel.panic_on_oops
    kernel.keys.root_maxkeys
    kernel.keys.root_maxbytes
    net.ipv4.conf.all.route_localnet
    net.netfilter.nf_conntrack_max
    net.netfilter.nf_conntrack_tcp_timeout_established
    net.netfilter.nf_conntrack_tcp_timeout_close_wait
)

# Host paths that the kubelet, containerd or the CNI plugins create outside the state
# dir whatever they are told: removed by cluster-down when they did not exist before.
# Fixed in the code, not configurable: the kubelet's device-plugin socket dir
# (/var/lib/kubelet/device-plugins) and the runc shims' socket dir (/run/containerd/s).
HOST_PATHS=(/var/log/containers /var/log/pods /var/lib/cni /var/lib/kubelet /run/containerd /run/netns)

log() { echo "cluster: $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# Wall time since the script started, for stage timings.
SCRIPT_START=$(date +%s.%N)
elapsed() { awk -v s="$SCRIPT_START" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }'; }
stage() { log "$(printf '%6ss' "$(elapsed)") $*"; }

pid_of() { # NAME -> prints the recorded PID of a component (nothing when none)
    local f="$PIDS/$1.pid"
    [[ -f $f ]] && cat "$f"
    return 0
}

alive() { # NAME: true when the component's recorded process runs
    local pid
    pid=$(pid_of "$1")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# wait_until SECONDS DESCRIPTION COMMAND...: poll every 0.25 s; false on timeout.
wait_until() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${seconds}s waiting for $what"
            return 1
        fi
        sleep 0.25
    done
}

# wait_ready NAME SECONDS DESCRIPTION COMMAND...: as wait_until, but give up at once when the
# component NAME has exited (a port in use, a bad flag) instead of waiting for the timeout.
wait_ready() {
    local name=$1 seconds=$2 what=$3
    shift 3
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ! alive "$name"; then
            log "$name exited while waiting for $what (see $LOGS/$name.log)"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "timed out after ${seconds}s waiting for $what"
            return 1
        fi
        sleep 0.25
    done
}

# Tails of every component log, for failure reports.
print_log_tails() {
    local lines=${1:-30} f
    for f in "$LOGS"/*.log; do
        [[ -f $f ]] || continue
        echo "----- last $lines lines of $f" >&2
        tail -n "$lines" "$f" >&2 || true
    done
}

kube_bin_dir() { "$REPO_ROOT/scripts/build-kube-bins.sh" --print-dir; }
node_bin_dir() { "$REPO_ROOT/scripts/build-node-bins.sh" --print-dir; }
