#!/usr/bin/env bash
# Stop the local cluster and restore the host, whatever state a run left it in.
#
# Safe to run at any time, as often as wanted: after a healthy cluster, a failed or
# interrupted cluster-up, or nothing at all. In order: pods are stopped through CRI while
# containerd still runs (so the CNI plugins release their addresses and links); every
# component is stopped by the PID in its file; processes left in the pod cgroups and
# containerd shims of this cluster are killed by PID; mounts under the state dirs and the
# pods' network namespaces are unmounted; the KUBE-* and CNI-* iptables chains (IPv4 and
# IPv6), the FORWARD guard, the bridge, conntrack entries of the cluster's ranges, the
# kubelet's /var/log/containers symlinks, the pod cgroups and host paths the components
# created are removed; the sysctls saved by cluster-up are written back. Component logs
# stay in $STATE/logs until the next cluster-up.
#
# Exits 1 when something could not be restored, naming it.
#
# Usage: scripts/cluster-down.sh
set -euo pipefail

# shellcheck source=scripts/cluster/common.sh
. "$(dirname "$0")/cluster/common.sh"

[[ $EUID == 0 ]] || die "must run as root"

problems=0
warn() {
    log "WARNING: $*"
    problems=$((problems + 1))
}

cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true; }

# PIDs of processes whose command line names one of this cluster's directories.
our_pids() {
    local dir p
    for dir in /proc/[0-9]*; do
        p=${dir#/proc/}
        [[ $p == "$$" ]] && continue
        case "$(cmdline "$p")" in
            *"$STATE/"* | *"$VOLATILE/"*) echo "$p" ;;
        esac
    done
}

# terminate PID...: SIGTERM, wait up to 10 s for all, then SIGKILL the rest.
terminate() {
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    local deadline=$((SECONDS + 10)) p left
    while ((SECONDS < deadline)); do
        left=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && left=1; done
        ((left)) || return 0
        sleep 0.2
    done
    for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
}

stop_components() { # NAME...: by the PIDs in their files, together, if still our processes
    local name pid pids=() names=()
    for name in "$@"; do
        pid=$(pid_of "$name")
        rm -f "$PIDS/$name.pid"
        if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then continue; fi
        case "$(cmdline "$pid")" in
            *"$STATE/"*)
                pids+=("$pid")
                names+=("$name ($pid)")
                ;;
            *) log "$name: PID $pid now belongs to another process; left alone" ;;
        esac
    done
    ((${#pids[@]})) || return 0
    terminate "${pids[@]}"
    log "stopped ${names[*]}"
}

stage "cluster-down"

# ---------------------------------------------------------------- node and pods
stop_components kube-proxy kubelet
if [[ -S $CRI_SOCK ]]; then
    crictl=""
    tools=$(node_bin_dir)
    [[ -x "$tools/crictl" ]] && crictl="$tools/crictl"
    if [[ -n $crictl ]]; then
        cri=("$crictl" --runtime-endpoint "unix://$CRI_SOCK" --image-endpoint "unix://$CRI_SOCK" --timeout 20s)
        for sandbox in $("${cri[@]}" pods -q 2>/dev/null || true); do
            "${cri[@]}" stopp "$sandbox" >/dev/null 2>&1 || warn "could not stop pod sandbox $sandbox"
            "${cri[@]}" rmp -f "$sandbox" >/dev/null 2>&1 || warn "could not remove pod sandbox $sandbox"
        done
        stage "pod sandboxes stopped and removed"
    else
        log "no crictl ($tools): pods are killed below without CNI teardown"
    fi
fi

# Processes still in the pod cgroups (containers whose sandbox could not be stopped).
cgroup_pids() {
    local h
    for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
        [[ -d $h ]] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null
    done | sort -u
}
mapfile -t leftover < <(cgroup_pids)
if ((${#leftover[@]})); then
    log "killing ${#leftover[@]} processes left in the pod cgroups"
    terminate "${leftover[@]}"
fi

# ---------------------------------------------------------------- control plane, runtime
# The API clients first (the apiserver takes a few seconds of graceful termination), then
# the store, then the runtime; whatever else is in COMPONENTS goes last.
stop_components kube-scheduler kube-controller-manager kube-apiserver
stop_components etcd
stop_components containerd
stop_components "${COMPONENTS[@]}"
# containerd's shims outlive it by design (they are reparented to init); ours name our socket.
mapfile -t leftover < <(our_pids)
if ((${#leftover[@]})); then
    log "stopping ${#leftover[@]} leftover processes of this cluster (shims): ${leftover[*]}"
    terminate "${leftover[@]}"
fi
stage "processes stopped"

# ---------------------------------------------------------------- mounts and namespaces
mapfile -t mounts < <(awk -v a="$STATE/" -v b="$VOLATILE/" '
    index($5, a) == 1 || index($5, b) == 1 || $5 ~ "^(/var)?/run/netns/cni-" { print $5 }' \
    /proc/self/mountinfo | sort -r -u)
for m in "${mounts[@]}"; do
    m=$(printf '%b' "$m") # mountinfo escapes spaces as \040
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "cannot unmount $m"
done
for ns in /run/netns/cni-* /var/run/netns/cni-*; do
    [[ -e $ns ]] && { rm -f "$ns" || warn "cannot remove $ns"; }
done
((${#mounts[@]} == 0)) || stage "${#mounts[@]} mounts removed"

# ---------------------------------------------------------------- iptables
# Our guard rules (delete until gone: a crashed run may have inserted them twice).
guard_rules=(
    "mangle FORWARD -i $BRIDGE ! -o $BRIDGE -j DROP"
    "mangle FORWARD ! -i $BRIDGE -o $BRIDGE -j DROP"
    "filter FORWARD -i $BRIDGE -o $BRIDGE -j ACCEPT"
)
for rule in "${guard_rules[@]}"; do
    read -r -a spec <<<"$rule"
    while iptables -w -t "${spec[0]}" -C "${spec[@]:1}" 2>/dev/null; do
        iptables -w -t "${spec[0]}" -D "${spec[@]:1}" || { warn "cannot delete: $rule"; break; }
    done
done

# kube-proxy's and the kubelet's chains (KUBE-*) and the CNI plugins' (CNI-*), in both
# families: rules in other chains that jump to them are deleted, then the chains are
# flushed and removed, one iptables-restore --noflush transaction per table.
remove_chains() { # iptables|ip6tables
    local family=$1 table script
    for table in $("$family-save" 2>/dev/null | sed -n 's/^\*//p'); do
        script=$("$family-save" -t "$table" | awk '
            /^:(KUBE-|CNI-)/ { sub(/^:/, ""); chains[++n] = $1; next }
            /^-A / && ($2 !~ /^(KUBE-|CNI-)/) && / -[jg] (KUBE-|CNI-)/ { sub(/^-A/, "-D"); print }
            END { for (i = 1; i <= n; i++) print "-F " chains[i]
                  for (i = 1; i <= n; i++) print "-X " chains[i] }')
        [[ -n $script ]] || continue
        printf '*%s\n%s\nCOMMIT\n' "$table" "$script" | "$family-restore" -w --noflush ||
            warn "$family: could not remove the KUBE-/CNI- chains of table $table"
    done
}
remove_chains iptables
remove_chains ip6tables
# iptables-nft creates an nf_tables table (ip filter, ip6 nat, ...) on first use and has no
# command to delete it. Tables that did not exist before cluster-up and hold no rule and no
# DROP policy now are deleted; any other is left to whoever uses it.
if [[ -f "$SAVED/nft-tables" ]] && command -v nft >/dev/null; then
    while read -r _ family name; do
        grep -qxF "table $family $name" "$SAVED/nft-tables" && continue
        listing=$(nft -a list table "$family" "$name" 2>/dev/null) || continue
        if grep -vE '^\s*(table|chain) ' <<<"$listing" | grep -qE '# handle|policy drop'; then
            log "nf_tables table $family $name is in use by someone else; left in place"
            continue
        fi
        nft delete table "$family" "$name" || warn "cannot delete nf_tables table $family $name"
    done < <(nft list tables)
fi
stage "iptables rules and chains removed"

# ---------------------------------------------------------------- links, conntrack
if ip link show "$BRIDGE" >/dev/null 2>&1; then
    for port in $(ip -o link show master "$BRIDGE" | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
        ip link del "$port" 2>/dev/null || true
    done
    ip link del "$BRIDGE" || warn "cannot delete the bridge $BRIDGE"
fi
for range in "$POD_CIDR" "$SVC_CIDR"; do
    conntrack -D -s "$range" >/dev/null 2>&1 || true
    conntrack -D -d "$range" >/dev/null 2>&1 || true
done

# ---------------------------------------------------------------- files and cgroups
for link in /var/log/containers/*.log; do
    [[ -L $link ]] || continue
    case "$(readlink "$link")" in "$RUN_STATE"/* | /var/log/pods/*) rm -f "$link" ;; esac
done
rm -f /var/lib/cni/results/driftline-* /var/lib/kubelet/device-plugins/kubelet.sock 2>/dev/null || true
# Only with cluster-up's record of what existed before; without it nothing is removed.
[[ -f "$SAVED/paths" ]] || HOST_PATHS=()
for p in "${HOST_PATHS[@]}"; do
    grep -qxF "$p" "$SAVED/paths" && continue
    [[ -d $p && ! -L $p ]] || continue
    # Created by this cluster: remove its empty directories only (another runtime, a
    # dockerd's containerd say, may have put something there meanwhile).
    find "$p" -depth -type d -empty -delete 2>/dev/null || true
    [[ -e $p ]] && warn "$p was created by the cluster but is not empty; left in place"
done
for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
    [[ -d $h ]] || continue
    find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $h ]] && warn "cgroup $h still exists (a process is still in it?)"
done

# ---------------------------------------------------------------- sysctls
if [[ -f "$SAVED/sysctl.conf" ]]; then
    while IFS='=' read -r key value; do
        [[ "$(sysctl -n "$key" 2>/dev/null)" == "$value" ]] && continue
        sysctl -qw "$key=$value" || warn "cannot restore $key=$value"
        log "restored $key=$value"
    done <"$SAVED/sysctl.conf"
fi

# ---------------------------------------------------------------- state
rm -rf "$RUN_STATE" "$VOLATILE"
[[ $problems == 0 ]] && rm -rf "$SAVED"

# ---------------------------------------------------------------- check
mapfile -t leftover < <(our_pids)
((${#leftover[@]} == 0)) || warn "processes of the cluster still run: ${leftover[*]}"
if grep -qE " ($STATE|$VOLATILE)/" /proc/self/mountinfo; then warn "mounts remain under $STATE or $VOLATILE"; fi
if ip link show "$BRIDGE" >/dev/null 2>&1; then warn "the bridge $BRIDGE still exists"; fi
for family in iptables ip6tables; do
    if "$family-save" 2>/dev/null | grep -qE '^:(KUBE-|CNI-)'; then warn "$family chains KUBE-/CNI- remain"; fi
done

if ((problems)); then
    log "down with $problems problem(s) after $(elapsed)s; saved host values kept in $SAVED"
    exit 1
fi
stage "down; host restored (logs kept in $LOGS)"
