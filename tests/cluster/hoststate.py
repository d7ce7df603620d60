"""A snapshot of the host state that the local cluster touches, and the difference of two.

``cluster-down`` must leave the host as ``cluster-up`` found it. A snapshot records, as sets
of normalised lines per category: network links, addresses, routes and policy rules,
iptables and ip6tables rules (counters dropped), sysctls, mounts, network namespaces,
cgroups, the cluster's processes, and host paths that the kubelet, containerd or CNI
create. Values that change on their own (random pools, counters, per-interface sysctls
whose links are compared anyway) are left out, and so is what other tenants of the machine
do meanwhile (a dockerd started by another test suite), so a difference is a leak.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Lines of other tenants of this machine (Docker's bridge, veths, chains, cgroups, mounts).
OTHER_TENANTS = re.compile(r"docker|DOCKER|\bbr-[0-9a-f]{12}\b|containerd/io\.containerd|/moby")

# Sysctls that change on their own.
VOLATILE_SYSCTLS = re.compile(
    r"^(kernel\.random\.|kernel\.ns_last_pid|kernel\.pty\.nr|fs\.dentry-state|fs\.inode-"
    r"|fs\.file-nr|fs\.quota\.|net\.netfilter\.nf_conntrack_count|kernel\.sched_domain"
    r"|net\.ipv4\.tcp_mem|net\.ipv4\.udp_mem|vm\.nr_|fs\.aio-nr|kernel\.tainted"
    r"|net\.ipv4\.route\.gc_|fs\.binfmt_misc\.)"
)
# Per-interface sysctls: they come and go with their links, which are compared directly.
INTERFACE_SYSCTL = re.compile(r"^net\.ipv[46]\.(conf|neigh)\.(?!all\.|default\.)")

# Host paths the cluster's components create outside its state directory when unchecked.
WATCHED_PATHS = (
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/etc/cni",
    "/etc/kubernetes",
    "/opt/cni",
    "/opt/containerd",
    "/run/containerd",
    "/run/netns",
    "/run/driftline-cluster",
)
# Process names that only the cluster's pods and runtime run.
CLUSTER_COMMANDS = frozenset({"containerd-shim", "containerd-shim-runc-v2", "pause", "coredns"})


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return result.stdout


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def links() -> set[str]:
    """``name master=<bridge>`` per link; indexes, states and counters are left out."""
    out: set[str] = set()
    for line in _run("ip", "-o", "link", "show").splitlines():
        match = re.match(r"\d+: ([^:@]+)(?:@[^:]+)?: ", line)
        if match:
            master = re.search(r" master (\S+)", line)
            out.add(f"{match.group(1)} master={master.group(1) if master else '-'}")
    return out


def addresses() -> set[str]:
    """``interface family address`` per address."""
    out: set[str] = set()
    for line in _run("ip", "-o", "addr", "show").splitlines():
        parts = line.split()
        if len(parts) >= 4:
            out.add(f"{parts[1]} {parts[2]} {parts[3]}")
    return out


def routes() -> set[str]:
    """Every IPv4 and IPv6 route in every table, and the policy rules."""
    return (
        {f"v4 {line}" for line in _lines(_run("ip", "route", "show", "table", "all"))}
        | {f"v6 {line}" for line in _lines(_run("ip", "-6", "route", "show", "table", "all"))}
        | {f"rule {line}" for line in _lines(_run("ip", "rule"))}
        | {f"rule6 {line}" for line in _lines(_run("ip", "-6", "rule"))}
    )


def normalise_iptables(text: str) -> set[str]:
    """``table line`` per chain and rule of ``iptables-save`` output, without counters.

    A table whose chains are all built-in with policy ACCEPT and which holds no rule does
    nothing: it is treated like an absent one (iptables-nft creates a table on first use,
    and iptables has no command that removes it again).
    """
    tables: dict[str, list[str]] = {}
    table = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
            tables.setdefault(table, [])
            continue
        tables.setdefault(table, []).append(re.sub(r" \[\d+:\d+\]$", "", line))
    out: set[str] = set()
    for name, entries in tables.items():
        inert = all(
            entry.startswith(":")
            and entry[1:].split()[0] in _BUILTIN_CHAINS
            and entry.split()[1] == "ACCEPT"
            for entry in entries
        )
        if not inert:
            out.update(f"{name} {entry}" for entry in entries)
    return out


_BUILTIN_CHAINS = frozenset({"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"})


def iptables() -> set[str]:
    """IPv4 and IPv6 rules and chains, see ``normalise_iptables``."""
    return {f"v4 {line}" for line in normalise_iptables(_run("iptables-save"))} | {
        f"v6 {line}" for line in normalise_iptables(_run("ip6tables-save"))
    }


def nft_tables() -> set[str]:
    """The nf_tables tables (iptables-nft leaves empty ones behind unless they are deleted)."""
    return _lines(_run("nft", "list", "tables")) if shutil.which("nft") else set()


def read_sysctls() -> dict[str, str]:
    """``sysctl -a`` as a mapping, without volatile and per-interface keys."""
    values = {}
    for line in _run("sysctl", "-a").splitlines():
        key, sep, value = line.partition(" = ")
        if sep and not VOLATILE_SYSCTLS.match(key) and not INTERFACE_SYSCTL.match(key):
            values[key] = " ".join(value.split())
    return values


def mounts() -> set[str]:
    """``mount point, type, source`` per mount."""
    out: set[str] = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        point = before.split()[4]
        fstype, source = [*after.split(), "", ""][:2]
        out.add(f"{point} {fstype} {source}")
    return out


def cgroups() -> set[str]:
    """Top-level cgroups of every hierarchy (the kubelet creates ``kubepods`` in each)."""
    root = Path("/sys/fs/cgroup")
    out: set[str] = set()
    for hierarchy in root.iterdir() if root.is_dir() else ():
        if hierarchy.is_dir() and not hierarchy.is_symlink():
            out.update(f"{hierarchy.name}/{d.name}" for d in hierarchy.iterdir() if d.is_dir())
    return out


def cluster_processes(markers: Iterable[str]) -> set[str]:
    """Processes of the cluster: command line naming one of ``markers`` (its directories),
    a name only the cluster runs, or membership of a pod cgroup."""
    marks = tuple(markers)
    out: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            comm = (proc / "comm").read_text().strip()
            cgroup = (proc / "cgroup").read_text()
        except OSError:
            continue
        if any(m in argv for m in marks) or comm in CLUSTER_COMMANDS or "/kubepods" in cgroup:
            out.add(f"{proc.name} {comm} {argv.strip()[:200]}")
    return out


def paths() -> set[str]:
    """Which watched host paths exist, and the entries of the kubelet's log directories."""
    out: set[str] = set()
    for name in WATCHED_PATHS:
        path = Path(name)
        if path.exists() or path.is_symlink():
            out.add(name)
            if name.startswith("/var/log/") and path.is_dir():
                out.update(str(entry) for entry in path.iterdir())
    return out


def netns() -> set[str]:
    """Named network namespaces."""
    return _lines(_run("ip", "netns", "list"))


@dataclass
class HostState:
    """One snapshot; ``diff`` against a later one lists what changed, per category."""

    categories: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def take(cls, markers: Iterable[str], unstable_sysctls: Iterable[str] = ()) -> HostState:
        """Snapshot now; ``markers`` identify the cluster's processes by their command line."""
        skip = set(unstable_sysctls)
        sysctls = {f"{k} = {v}" for k, v in read_sysctls().items() if k not in skip}
        return cls(
            {
                "links": links(),
                "addresses": addresses(),
                "routes": routes(),
                "iptables": iptables(),
                "nft-tables": nft_tables(),
                "sysctls": sysctls,
                "mounts": mounts(),
                "netns": netns(),
                "cgroups": cgroups(),
                "processes": cluster_processes(markers),
                "paths": paths(),
            }
        )

    def diff(self, later: HostState) -> dict[str, tuple[set[str], set[str]]]:
        """``{category: (added, removed)}`` for every category that changed, other tenants'
        lines left out."""
        changes = {}
        for name, before in self.categories.items():
            after = later.categories.get(name, set())
            added = {line for line in after - before if not OTHER_TENANTS.search(line)}
            removed = {line for line in before - after if not OTHER_TENANTS.search(line)}
            if added or removed:
                changes[name] = (added, removed)
        return changes


def unstable_sysctls(samples: int = 3, pause: float = 0.5) -> set[str]:
    """Sysctls whose value changes between a few reads a moment apart (left out of diffs)."""
    reads = []
    for _ in range(samples):
        reads.append(read_sysctls())
        time.sleep(pause)
    keys = set().union(*reads)
    return {k for k in keys if len({r.get(k) for r in reads}) > 1}


def describe(changes: dict[str, tuple[set[str], set[str]]]) -> str:
    """A readable report of ``HostState.diff`` output."""
    lines = []
    for name, (added, removed) in sorted(changes.items()):
        lines.append(f"{name}:")
        lines.extend(f"  + {line}" for line in sorted(added))
        lines.extend(f"  - {line}" for line in sorted(removed))
    return "\n".join(lines)
