"""The local-cluster tier: one real single-node cluster per session (scripts/cluster-up.sh).

The session takes a snapshot of the host first, brings the cluster up, and hands the tests
a ``LocalCluster``; the last test tears it down and compares the host with the snapshot.
A cluster that does not start is a failure carrying the component logs, never a skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.hoststate import HostState, unstable_sysctls

REPO_ROOT = Path(__file__).resolve().parents[2]
UP = REPO_ROOT / "scripts" / "cluster-up.sh"
DOWN = REPO_ROOT / "scripts" / "cluster-down.sh"
STATE = Path(os.environ.get("DRIFTLINE_CLUSTER_DIR", "/var/lib/driftline-cluster"))
VOLATILE = Path("/run/driftline-cluster")
# Command lines naming these belong to the cluster (see hoststate.cluster_processes).
MARKERS = (f"{STATE}/", f"{VOLATILE}/")
NODE_NAME = "driftline-node"
# A cold run builds every binary first (Kubernetes alone takes most of an hour on 2 cores).
UP_TIMEOUT = float(os.environ.get("DRIFTLINE_CLUSTER_UP_TIMEOUT", "3600"))
DOWN_TIMEOUT = 180.0
KEEP = os.environ.get("DRIFTLINE_KEEP_CLUSTER") == "1"


class ClusterStartError(AssertionError):
    """cluster-up failed; the message holds its output with every component's log tail."""


def run_script(script: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a cluster script; return the result (stdout and stderr merged) and its duration."""
    start = time.monotonic()
    result = subprocess.run(
        ["bash", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, time.monotonic() - start


def kube_bin_dir() -> Path:
    """The Kubernetes binaries' directory, as scripts/build-kube-bins.sh names it."""
    out = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "build-kube-bins.sh"), "--print-dir"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return Path(out.strip().splitlines()[-1])


@dataclass
class LocalCluster:
    """The running cluster: kubectl against it, the host snapshot taken before it started."""

    kubeconfig: Path
    kubectl_bin: Path
    before: HostState
    unstable: set[str]
    up_seconds: float
    is_down: bool = False

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        """Run kubectl; raise with its output when it fails."""
        result = subprocess.run(
            [str(self.kubectl_bin), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result.stdout

    def apply(self, *manifests: dict[str, Any]) -> None:
        """``kubectl apply`` the given objects."""
        body = {"apiVersion": "v1", "kind": "List", "items": list(manifests)}
        self.kubectl("apply", "-f", "-", stdin=json.dumps(body))

    def get(self, *args: str) -> Any:
        """``kubectl get ... -o json``, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def down(self) -> tuple[subprocess.CompletedProcess[str], float]:
        """Run cluster-down (idempotent); the session's finaliser then does nothing more."""
        result, seconds = run_script(DOWN, DOWN_TIMEOUT)
        self.is_down = True
        return result, seconds


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    """A fresh local cluster for the session, started from a clean host."""
    if os.geteuid() != 0:
        raise ClusterStartError("the local cluster needs root (containerd, kubelet, bridge)")
    # The snapshot must be of a host without the cluster: stop one left running.
    result, _ = run_script(DOWN, DOWN_TIMEOUT)
    if result.returncode != 0:
        raise ClusterStartError(f"cluster-down before the session failed:\n{result.stdout}")
    unstable = unstable_sysctls()
    before = HostState.take(MARKERS, unstable)
    result, seconds = run_script(UP, UP_TIMEOUT)
    if result.returncode != 0:
        run_script(DOWN, DOWN_TIMEOUT)
        raise ClusterStartError(
            f"cluster-up exited {result.returncode} after {seconds:.1f}s:\n{result.stdout}"
        )
    print(f"\ncluster-up: {seconds:.1f}s\n{result.stdout}")
    kubeconfig = Path(result.stdout.strip().splitlines()[-1])
    cluster = LocalCluster(kubeconfig, kube_bin_dir() / "kubectl", before, unstable, seconds)
    try:
        yield cluster
    finally:
        # make demo-cluster keeps the cluster for the person watching (make cluster-down ends it).
        if not cluster.is_down and not KEEP:
            cluster.down()
