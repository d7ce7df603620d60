"""Fixtures of the real-API-server tier: one control plane per session (see cluster.py).

Binaries come from ``$DRIFTLINE_KUBE_BIN_DIR`` or ``scripts/build-kube-bins.sh --print-dir``;
when they are missing the session errors out rather than skipping.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import kubernetes
import pytest

from tests.kube.cluster import KubeCluster, Kubectl
from tests.processes import wait_for


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """A running etcd + kube-apiserver + kube-controller-manager, shared by the session."""
    with KubeCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def api_client(kube_cluster: KubeCluster) -> Iterator[kubernetes.client.ApiClient]:
    """An admin ``kubernetes.client.ApiClient`` for the session cluster."""
    client = kube_cluster.api_client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def kubectl(kube_cluster: KubeCluster) -> Kubectl:
    """Callable running kubectl against the session cluster: ``kubectl("get", "ns")``."""
    return Kubectl(kube_cluster)


@pytest.fixture
def namespace(
    request: pytest.FixtureRequest, api_client: kubernetes.client.ApiClient
) -> Iterator[str]:
    """A fresh namespace named after the test, deleted (without waiting) afterwards."""
    core = kubernetes.client.CoreV1Api(api_client)
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{secrets.token_hex(3)}"
    core.create_namespace(kubernetes.client.V1Namespace(metadata={"name": name}))
    # Pods and controllers acting in the namespace need its "default" ServiceAccount.
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        30,
        f"ServiceAccount default in namespace {name} was not created",
    )
    try:
        yield name
    finally:
        # The namespace controller finishes the deletion in the background; waiting for it
        # would only slow the session down.
        core.delete_namespace(name, propagation_policy="Background")


# The operator tier's fixtures live in their own module; importing them registers them here.
from tests.kube.operator_fixtures import (  # noqa: E402, F401
    crds,
    health_log,
    mlflow_server,
    models,
    operator,
    operator_kubeconfig,
    routed,
)
