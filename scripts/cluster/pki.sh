#!/usr/bin/env bash
# Certificates, static tokens and kubeconfigs of the local cluster (openssl, as the kube test
# tier's fixture does). Valid for 7 days; cluster-up makes new ones on every start.
#
# Usage: scripts/cluster/pki.sh DIR NODE_NAME NODE_IP KUBE_SERVICE_IP API_PORT
#   writes DIR/pki/* and DIR/{admin,controller-manager,scheduler,kubelet,kube-proxy}.kubeconfig
set -euo pipefail

(($# == 5)) || { echo "usage: $0 DIR NODE_NAME NODE_IP KUBE_SERVICE_IP API_PORT" >&2; exit 2; }
dir=$1 node=$2 node_ip=$3 svc_ip=$4 port=$5
pki="$dir/pki"
mkdir -p "$pki"
chmod 700 "$pki"
cd "$pki"

ca() { # NAME CN
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -keyout "$1.key" -out "$1.crt" \
        -subj "/CN=$2" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature 2>/dev/null
}

cert() { # NAME SUBJECT CA EXTENDED_USAGE [SUBJECT_ALT_NAMES]
    {
        echo basicConstraints=CA:FALSE
        echo keyUsage=critical,digitalSignature,keyEncipherment
        echo "extendedKeyUsage=$4"
        echo subjectKeyIdentifier=hash
        echo authorityKeyIdentifier=keyid,issuer
        if [[ -n ${5:-} ]]; then echo "subjectAltName=$5"; fi
    } >"$1.ext"
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -set_serial "0x$(openssl rand -hex 8)" \
        -days 7 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca driftline-cluster-ca
cert apiserver /CN=kube-apiserver ca serverAuth \
    "IP:$node_ip,IP:$svc_ip,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# The apiserver's client identity towards kubelets (logs, exec, port-forward, metrics proxy).
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" ca clientAuth
# The kubelet's serving certificate, signed by the cluster CA: the apiserver and
# metrics-server verify it (no --kubelet-insecure-tls anywhere).
cert kubelet "/CN=$node" ca serverAuth "IP:$node_ip,DNS:$node"
ca front-proxy-ca driftline-cluster-front-proxy-ca
cert front-proxy-client /CN=front-proxy-client front-proxy-ca clientAuth
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null

# Static bearer tokens, one identity per component. The node's user and group satisfy the
# Node authorizer and NodeRestriction without TLS bootstrap; system:kube-proxy is bound to
# system:node-proxier by the default RBAC policy.
token() { openssl rand -hex 16; }
declare -A tok
for who in admin controller-manager scheduler kubelet kube-proxy; do tok[$who]=$(token); done
umask 077
cat >tokens.csv <<CSV
${tok[admin]},driftline-admin,driftline-admin,"system:masters"
${tok[controller-manager]},system:kube-controller-manager,system:kube-controller-manager
${tok[scheduler]},system:kube-scheduler,system:kube-scheduler
${tok[kubelet]},system:node:$node,system:node:$node,"system:nodes"
${tok[kube-proxy]},system:kube-proxy,system:kube-proxy
CSV

for who in admin controller-manager scheduler kubelet kube-proxy; do
    cat >"$dir/$who.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: driftline-local
    cluster: {server: "https://$node_ip:$port", certificate-authority: "$pki/ca.crt"}
users:
  - name: $who
    user: {token: "${tok[$who]}"}
contexts:
  - name: driftline-local
    context: {cluster: driftline-local, user: $who}
current-context: driftline-local
KUBECONFIG
done
