"""A real single-node cluster: it starts, answers DNS in pods, serves metrics, refuses to pull,
and leaves the host exactly as it found it (scripts/cluster-up.sh, scripts/cluster-down.sh).

The tests run in file order; the last one tears the cluster down.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.conftest import DOWN, MARKERS, NODE_NAME, UP, LocalCluster, run_script
from tests.cluster.hoststate import HostState, describe
from tests.processes import wait_for

pytestmark = pytest.mark.cluster

NAMESPACE = "driftline-cluster-test"
BUSYBOX = "localhost/driftline/busybox:1.35"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_SERVICE_IP = "10.96.0.10"
BRIDGE_IP = "10.244.0.1"
# Routes a pod may have: the pod range on its link and the service range via the bridge.
ALLOWED_POD_ROUTES = re.compile(r"^10\.96\.0\.0/24 via 10\.244\.0\.1 |^10\.244\.0\.0/24 dev eth0 ")


def pod(name: str, image: str, command: list[str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "containers": [container],
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
        },
    }


@pytest.fixture(scope="module")
def toolbox(local_cluster: LocalCluster) -> Iterator[str]:
    """A running busybox pod to exec into; its name."""
    local_cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
    )
    wait_for(
        lambda: local_cluster.kubectl("-n", NAMESPACE, "get", "serviceaccount", "default"),
        30,
        f"the default ServiceAccount of {NAMESPACE} was not created",
    )
    local_cluster.apply(pod("toolbox", BUSYBOX, ["sleep", "3600"]))
    local_cluster.kubectl(
        "-n", NAMESPACE, "wait", "--for=condition=Ready", "pod/toolbox", "--timeout=60s",
        timeout=70,
    )  # fmt: skip
    yield "toolbox"


def exec_in(cluster: LocalCluster, pod_name: str, *command: str) -> str:
    return cluster.kubectl("-n", NAMESPACE, "exec", pod_name, "--", *command)


def test_node_is_ready(local_cluster: LocalCluster) -> None:
    node = local_cluster.get("node", NODE_NAME)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.33.13"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == "10.244.0.1"
    print(f"\nnode Ready; cluster-up took {local_cluster.up_seconds:.1f}s")


def test_cluster_up_on_a_running_cluster_is_a_no_op(local_cluster: LocalCluster) -> None:
    pids = sorted(HostState.take(MARKERS).categories["processes"])
    result, seconds = run_script(UP, 120)
    assert result.returncode == 0, result.stdout
    assert "already up" in result.stdout
    assert sorted(HostState.take(MARKERS).categories["processes"]) == pids
    assert seconds < 15, f"a no-op cluster-up took {seconds:.1f}s"


def test_coredns_answers_cluster_names_from_a_pod(
    local_cluster: LocalCluster, toolbox: str
) -> None:
    out = wait_for(
        lambda: exec_in(local_cluster, toolbox, "nslookup", "kubernetes.default.svc.cluster.local"),
        60,
        "CoreDNS did not answer kubernetes.default.svc.cluster.local from a pod",
    )
    assert f"Address: {KUBERNETES_SERVICE_IP}" in out, out
    out = exec_in(local_cluster, toolbox, "nslookup", "kube-dns.kube-system.svc.cluster.local")
    assert f"Address: {DNS_SERVICE_IP}" in out, out


def test_names_outside_the_cluster_are_not_resolved(
    local_cluster: LocalCluster, toolbox: str
) -> None:
    """CoreDNS has no upstream: any other name is NXDOMAIN at once, never forwarded."""
    start = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        exec_in(local_cluster, toolbox, "nslookup", "example.com")
    assert "NXDOMAIN" in str(failure.value)
    assert time.monotonic() - start < 10


def test_pods_route_only_to_the_cluster_ranges(local_cluster: LocalCluster, toolbox: str) -> None:
    routes = exec_in(local_cluster, toolbox, "ip", "route").strip().splitlines()
    assert routes, "the pod has no routes at all"
    assert all(ALLOWED_POD_ROUTES.match(r) for r in routes), routes
    resolv = exec_in(local_cluster, toolbox, "cat", "/etc/resolv.conf")
    assert re.findall(r"^nameserver (\S+)", resolv, re.M) == [DNS_SERVICE_IP], resolv


def test_no_pod_traffic_left_the_cluster_ranges(local_cluster: LocalCluster, toolbox: str) -> None:
    """After the DNS, route and pull checks: the FORWARD guard exists and dropped nothing,
    and conntrack saw no connection from a pod to an address outside the cluster."""
    # A route lookup only (nothing is sent): outside addresses are unreachable from a pod.
    with pytest.raises(AssertionError, match=r"(?i)unreachable"):
        exec_in(local_cluster, toolbox, "ip", "route", "get", "192.0.2.1")
    guard = subprocess.run(
        ["iptables", "-w", "-t", "mangle", "-L", "FORWARD", "-v", "-n", "-x"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    drops = [line.split() for line in guard.splitlines() if "DROP" in line and "dl-cni0" in line]
    assert len(drops) == 2, guard
    assert all(fields[0] == "0" for fields in drops), guard
    entries = subprocess.run(
        ["conntrack", "-L", "-s", "10.244.0.0/24"], capture_output=True, text=True, check=False
    ).stdout
    outside = [
        line
        for line in entries.splitlines()
        if (src := re.search(r"src=(\S+)", line))
        and (dst := re.search(r"dst=(\S+)", line))
        # The bridge's own address is the host, not a pod: its kernel sends IGMP reports
        # (dst 224.0.0.22) on the link when the bridge comes up.
        and src.group(1) != BRIDGE_IP
        and not dst.group(1).startswith(("10.244.0.", "10.96.0.", "127."))
    ]
    assert not outside, "pod connections to outside addresses:\n" + "\n".join(outside)


def test_kubectl_top_shows_node_and_pods(local_cluster: LocalCluster) -> None:
    nodes = wait_for(
        lambda: local_cluster.kubectl("top", "node", "--no-headers"),
        120,
        "kubectl top node returned no metrics (metrics-server)",
    )
    assert nodes.split()[0] == NODE_NAME, nodes
    pods = wait_for(
        lambda: local_cluster.kubectl("top", "pod", "-n", "kube-system", "--no-headers"),
        120,
        "kubectl top pod returned no metrics (metrics-server)",
    )
    assert "coredns-" in pods and "metrics-server-" in pods, pods


@pytest.mark.parametrize(
    "image",
    ["driftline/not-imported:0.0.0", "localhost/driftline/not-imported:0.0.0"],
    ids=["registry-name", "localhost-name"],
)
def test_a_missing_image_fails_fast_without_a_pull(local_cluster: LocalCluster, image: str) -> None:
    """Nothing is pulled: containerd's registry traffic goes to a closed loopback port."""
    name = "missing-" + ("localhost" if image.startswith("localhost/") else "registry")
    local_cluster.apply(pod(name, image))
    start = time.monotonic()

    def waiting() -> dict[str, str] | None:
        status = local_cluster.get("-n", NAMESPACE, "pod", name)["status"]
        for container in status.get("containerStatuses", []):
            state = container.get("state", {}).get("waiting", {})
            if state.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
                return dict(state)
        return None

    state = wait_for(waiting, 30, f"pod {name} with image {image} did not fail to pull")
    seconds = time.monotonic() - start
    print(f"\n{image}: {state['reason']} after {seconds:.1f}s: {state.get('message', '')}")
    message = state.get("message", "")
    assert image.split(":")[0].split("/")[-1] in message, message
    assert "connection refused" in message and "127.0.0.1" in message, message
    local_cluster.kubectl("-n", NAMESPACE, "delete", "pod", name, "--wait=false")


def test_cluster_down_restores_the_host(local_cluster: LocalCluster) -> None:
    """Must stay last: tears the cluster down and compares the host with the snapshot."""
    result, seconds = local_cluster.down()
    assert result.returncode == 0, result.stdout
    print(f"\ncluster-down: {seconds:.1f}s")
    after = HostState.take(MARKERS, local_cluster.unstable)
    changes = local_cluster.before.diff(after)
    assert not changes, "the host differs after cluster-down:\n" + describe(changes)
    again, _ = run_script(DOWN, 60)
    assert again.returncode == 0, f"a second cluster-down failed:\n{again.stdout}"
