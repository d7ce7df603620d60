#!/usr/bin/env bash
# Start a real single-node Kubernetes on this machine: no kind, no registry, no pulls.
#
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy
# (Kubernetes 1.33, built by scripts/build-kube-bins.sh) and Debian's containerd run as
# plain processes with their PIDs in files; CoreDNS and metrics-server run as pods from
# images built locally (scripts/build-node-images.sh). See the README, "Local cluster".
#
# Containment: pods get an address on the bridge and routes to the pod and service ranges
# only (no default route); the FORWARD chain drops anything forwarded into or out of the
# bridge from or to another interface; pods get an empty resolv.conf; CoreDNS has no
# upstream; containerd's registry traffic goes to a closed loopback port, so a missing image
# fails at once instead of being pulled.
#
# Idempotent: on a healthy running cluster this is a no-op; leftovers of a failed or
# interrupted run are torn down first (scripts/cluster-down.sh). On failure it prints the
# tail of every component log, tears down and exits 1; the logs stay in $STATE/logs.
#
# Usage: scripts/cluster-up.sh     (root; prints the admin kubeconfig path on success)
set -euo pipefail

# shellcheck source=scripts/cluster/common.sh
. "$(dirname "$0")/cluster/common.sh"

[[ $EUID == 0 ]] || die "must run as root (containerd, kubelet and the bridge need it)"

# ---------------------------------------------------------------- state checks
cluster_healthy() {
    [[ -f "$RUN_STATE/up.done" ]] || return 1
    local c
    for c in "${COMPONENTS[@]}"; do alive "$c" || return 1; done
    "$KUBECTL" --request-timeout=5s get --raw /readyz >/dev/null 2>&1 || return 1
    node_ready
}

node_ready() {
    [[ "$("$KUBECTL" --request-timeout=5s get node "$NODE_NAME" \
        -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

leftovers() {
    compgen -G "$PIDS/*.pid" >/dev/null || [[ -d $SAVED || -d $VOLATILE ]] ||
        ip link show "$BRIDGE" >/dev/null 2>&1
}

export KUBECONFIG="$RUN_STATE/admin.kubeconfig"
KUBECTL="$(kube_bin_dir)/kubectl"

"$REPO_ROOT/scripts/cluster/ensure-packages.sh"
if [[ -x $KUBECTL ]] && cluster_healthy; then
    log "already up (node $NODE_NAME Ready); nothing to do"
    echo "$KUBECONFIG"
    exit 0
fi
if leftovers; then
    log "leftovers of an earlier run found: tearing them down first"
    "$REPO_ROOT/scripts/cluster-down.sh"
fi

# Any failure from here on (a command failing under set -e, or die): print every component's
# log tail, restore the host, exit 1.
up_done=0
on_exit() {
    local status=$?
    ((up_done)) && return 0
    trap - EXIT
    log "FAILED (exit $status) after $(elapsed)s; component logs follow"
    print_log_tails 40
    log "tearing the half-started cluster down (logs are kept in $LOGS)"
    "$REPO_ROOT/scripts/cluster-down.sh" >&2 || log "cluster-down reported problems too"
    exit 1
}
trap on_exit EXIT

# ---------------------------------------------------------------- binaries and images
stage "binaries"
KUBE_BIN=$("$REPO_ROOT/scripts/build-kube-bins.sh" | tail -1)
IMAGES=$("$REPO_ROOT/scripts/build-node-images.sh" | tail -1)
declare -A IMAGE_REF
while read -r name ref; do IMAGE_REF[$name]=$ref; done < <("$REPO_ROOT/scripts/build-node-images.sh" --refs)
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [[ -x "$KUBE_BIN/$b" ]] || die "$KUBE_BIN/$b is missing (scripts/build-kube-bins.sh)"
done
stage "binaries and image archives ready"

rm -rf "$LOGS" "$RUN_STATE"
mkdir -p "$LOGS" "$PIDS" "$SAVED" "$VOLATILE"
chmod 700 "$STATE"

start() { # NAME ARGV...: run detached in its own session, log to $LOGS/NAME.log
    local name=$1
    shift
    setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$name.pid"
}

expect_alive() { # NAME: fail with its log when the process has already died
    alive "$1" || die "$1 exited at start"
}

# ---------------------------------------------------------------- host: save, then network
# Saved once: a second cluster-up after a crash must not save the values it changed.
for s in "${SAVED_SYSCTLS[@]}"; do
    v=$(sysctl -n "$s" 2>/dev/null) || continue
    printf '%s=%s\n' "$s" "$v"
done >"$SAVED/sysctl.conf"
for p in "${HOST_PATHS[@]}"; do [[ -e $p || -L $p ]] && echo "$p"; done >"$SAVED/paths" || true
nft list tables >"$SAVED/nft-tables"

ip link add "$BRIDGE" type bridge
ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Service IPs are virtual: route them onto the bridge so that the host's own traffic to
# them (kube-apiserver to metrics-server, tests) never follows the default route.
ip route add "$SVC_CIDR" dev "$BRIDGE" src "$NODE_IP"
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
# The guard: nothing is forwarded out of the bridge to another interface or into it from
# one (mangle FORWARD runs before any ACCEPT kube-proxy adds to filter FORWARD). Other
# interfaces' forwarding (a dockerd's bridge, say) is left alone.
iptables -w -t mangle -I FORWARD 1 -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
iptables -w -t mangle -I FORWARD 1 ! -i "$BRIDGE" -o "$BRIDGE" -j DROP
# dockerd sets the FORWARD policy to DROP when it enables forwarding itself; traffic
# between pods and from pods to service IPs must still pass.
iptables -w -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT

mkdir -p "$RUN_STATE/cni/net.d" "$RUN_STATE/cni/ipam" "$RUN_STATE/cni/cache"
cat >"$RUN_STATE/cni/net.d/10-driftline.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "driftline",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RUN_STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SVC_CIDR", "gw": "$NODE_IP"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
: >"$RUN_STATE/resolv.conf" # pods never see the host's nameserver
stage "bridge $BRIDGE $NODE_IP, service route, FORWARD guard, CNI config"

# ---------------------------------------------------------------- containerd
cat >"$RUN_STATE/containerd.toml" <<TOML
version = 2
root = "$RUN_STATE/containerd"
state = "$VOLATILE/containerd/state"
[grpc]
  address = "$CRI_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$RUN_STATE/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${IMAGE_REF[pause]}"
  enable_cdi = false
  # Root on this machine kind lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj
  # (sandboxes ask for -998) and RunPodSandbox fails with "can't get final child's PID
  # from pipe: EOF". Clamp every container's value to at least containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$VOLATILE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN_STATE/cni/net.d"
TOML
# Every registry request goes to a closed loopback port (see NO_PULL_PROXY).
start containerd env -u NO_PROXY -u no_proxy \
    HTTP_PROXY="$NO_PULL_PROXY" HTTPS_PROXY="$NO_PULL_PROXY" \
    http_proxy="$NO_PULL_PROXY" https_proxy="$NO_PULL_PROXY" \
    containerd --config "$RUN_STATE/containerd.toml"
wait_ready containerd 30 "containerd's socket" ctr --address "$CRI_SOCK" version
expect_alive containerd
stage "containerd"

for name in pause coredns metrics-server busybox; do
    ctr --address "$CRI_SOCK" -n k8s.io images import "$IMAGES/$name.tar" >/dev/null
done
stage "images imported: ${IMAGE_REF[*]}"

# ---------------------------------------------------------------- PKI and identities
"$CLUSTER_SCRIPTS/pki.sh" "$RUN_STATE" "$NODE_NAME" "$NODE_IP" "$KUBE_SVC_IP" "$API_PORT"
P="$RUN_STATE/pki"
stage "PKI and kubeconfigs"

# ---------------------------------------------------------------- control plane
mkdir -p "$RUN_STATE/etcd" "$RUN_STATE/kcm-certs" "$RUN_STATE/scheduler-certs"
start etcd "$KUBE_BIN/etcd" --name="$NODE_NAME" --data-dir="$RUN_STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="$NODE_NAME=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls="http://127.0.0.1:$ETCD_METRICS_PORT" \
    --unsafe-no-fsync --log-level=warn
wait_ready etcd 30 "etcd /health" curl -sf -m 3 "http://127.0.0.1:$ETCD_PORT/health"
stage "etcd"

# Bound to the bridge address, not loopback: pods reach the API through the kubernetes
# Service, whose endpoint is the advertise address, and pods cannot reach the host's lo.
start kube-apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
    --cert-dir="$P" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --client-ca-file="$P/ca.crt" \
    --requestheader-client-ca-file="$P/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$P/front-proxy-client.crt" \
    --proxy-client-key-file="$P/front-proxy-client.key" \
    --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$P/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$P/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --token-auth-file="$P/tokens.csv" --anonymous-auth=false \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-cluster-ip-range="$SVC_CIDR" --allow-privileged=true --profiling=false --v=1
wait_ready kube-apiserver 60 "kube-apiserver /readyz" "$KUBECTL" --request-timeout=5s get --raw /readyz
stage "kube-apiserver ready on https://$NODE_IP:$API_PORT"

start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig="$RUN_STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$RUN_STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$RUN_STATE/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$RUN_STATE/kcm-certs" \
    --leader-elect=false --controllers='*' --use-service-account-credentials=true \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --service-cluster-ip-range="$SVC_CIDR" --profiling=false --v=1
start kube-scheduler "$KUBE_BIN/kube-scheduler" \
    --kubeconfig="$RUN_STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig="$RUN_STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig="$RUN_STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --cert-dir="$RUN_STATE/scheduler-certs" \
    --leader-elect=false --profiling=false --v=1
wait_ready kube-controller-manager 60 "kube-controller-manager /healthz" curl -skf -m 3 "https://127.0.0.1:$KCM_PORT/healthz"
wait_ready kube-scheduler 60 "kube-scheduler /healthz" curl -skf -m 3 "https://127.0.0.1:$SCHED_PORT/healthz"
stage "kube-controller-manager, kube-scheduler healthy"

# ---------------------------------------------------------------- node
mkdir -p "$RUN_STATE/kubelet" "$RUN_STATE/manifests" "$RUN_STATE/pod-logs"
cat >"$RUN_STATE/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CRI_SOCK
cgroupDriver: cgroupfs           # no systemd here; containerd 1.6 cannot report it over CRI
failCgroupV1: false              # the 1.33 default, written out: this VM is cgroup v1
failSwapOn: false
oomScoreAdj: 0                   # the default -999 needs CAP_SYS_RESOURCE, which root lacks here
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $P/kubelet.crt
tlsPrivateKeyFile: $P/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$DNS_IP]
resolvConf: $RUN_STATE/resolv.conf
staticPodPath: $RUN_STATE/manifests
podLogsDir: $RUN_STATE/pod-logs  # the /var/log/containers symlinks cannot be moved
podCIDR: $POD_CIDR
serializeImagePulls: false
imageGCHighThresholdPercent: 100 # imported images cannot be pulled back: never collect them
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
YAML
start kubelet "$KUBE_BIN/kubelet" --config="$RUN_STATE/kubelet-config.yaml" \
    --kubeconfig="$RUN_STATE/kubelet.kubeconfig" --root-dir="$RUN_STATE/kubelet" \
    --cert-dir="$RUN_STATE/kubelet/pki" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=2

cat >"$RUN_STATE/kube-proxy-config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
oomScoreAdj: 0
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
clientConnection: {kubeconfig: $RUN_STATE/kube-proxy.kubeconfig}
healthzBindAddress: 127.0.0.1:$PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$PROXY_METRICS_PORT
nodePortAddresses: ["$NODE_IP/32"]
# Zeroes: leave the host's conntrack limits and timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
# No NodePorts on 127.0.0.1, so no route_localnet=1 on the host.
iptables: {localhostNodePorts: false, masqueradeAll: false}
YAML
start kube-proxy "$KUBE_BIN/kube-proxy" --config="$RUN_STATE/kube-proxy-config.yaml" --v=2
wait_ready kubelet 60 "node $NODE_NAME Ready" node_ready
expect_alive kubelet
expect_alive kube-proxy
stage "kubelet and kube-proxy; node $NODE_NAME Ready"

# Pods are refused until the service-account controller made the namespace's default SA.
wait_until 60 "the default ServiceAccount" "$KUBECTL" -n default get serviceaccount default
stage "default ServiceAccount"

# ---------------------------------------------------------------- add-ons
sed -e "s|@COREDNS_IMAGE@|${IMAGE_REF[coredns]}|g" \
    -e "s|@METRICS_SERVER_IMAGE@|${IMAGE_REF[metrics-server]}|g" \
    -e "s|@DNS_IP@|$DNS_IP|g" -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" \
    "$CLUSTER_SCRIPTS/addons.yaml" >"$RUN_STATE/addons.yaml"
if grep -v '^ *#' "$RUN_STATE/addons.yaml" | grep -q '@[A-Z_]*@'; then
    die "addons.yaml has a placeholder that cluster-up does not fill"
fi
"$KUBECTL" apply -f "$RUN_STATE/addons.yaml" >"$LOGS/addons-apply.log"
"$KUBECTL" -n kube-system rollout status deployment/coredns --timeout=90s >/dev/null
stage "CoreDNS ready"
"$KUBECTL" -n kube-system rollout status deployment/metrics-server --timeout=90s >/dev/null
"$KUBECTL" wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=90s >/dev/null
stage "metrics-server ready, metrics.k8s.io available"

touch "$RUN_STATE/up.done"
up_done=1
log "up in $(elapsed)s: export KUBECONFIG=$KUBECONFIG  (logs: $LOGS)"
echo "$KUBECONFIG"
