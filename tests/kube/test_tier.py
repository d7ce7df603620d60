"""Proof that the kube tier runs a real control plane: CRDs are served and validated,
controllers reconcile, the garbage collector collects, CronJobs fire and server-side
apply tracks field managers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from tests.kube.cluster import KubeCluster, Kubectl, KubectlError
from tests.processes import wait_for

pytestmark = pytest.mark.kube

GROUP = "tier.driftline.dev"
VERSION = "v1alpha1"
PLURAL = "widgets"
CRD_NAME = f"{PLURAL}.{GROUP}"

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD_NAME},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                                    "color": {"type": "string", "enum": ["red", "blue"]},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A Widget custom object."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec,
    }


def owner_ref(obj: Any, kind: str, api_version: str) -> dict[str, Any]:
    """An ownerReference pointing at ``obj`` (a typed client object)."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj.metadata.name,
        "uid": obj.metadata.uid,
    }


def owned_by(obj: Any, uid: str) -> bool:
    """Whether ``obj`` (a typed client object) has an ownerReference with ``uid``."""
    return any(ref.uid == uid for ref in obj.metadata.owner_references or [])


@pytest.fixture(scope="module")
def widget_crd(kube_cluster: KubeCluster, api_client: kubernetes.client.ApiClient) -> Iterator[Any]:
    """The Widget CRD, applied with kubectl and waited on until Established."""
    Kubectl(kube_cluster)("apply", "-f", "-", input=yaml.safe_dump(WIDGET_CRD))
    ext = kubernetes.client.ApiextensionsV1Api(api_client)

    def established() -> Any:
        crd = ext.read_custom_resource_definition(CRD_NAME)
        conditions = {c.type: c.status for c in crd.status.conditions or []}
        return crd if conditions.get("Established") == "True" else None

    crd = wait_for(established, 30, f"CRD {CRD_NAME} never became Established")
    yield crd
    ext.delete_custom_resource_definition(CRD_NAME)


def test_server_is_the_built_version(kubectl: Kubectl, kube_cluster: KubeCluster) -> None:
    """kubectl reaches the apiserver, and both report the version that was built."""
    versions = json.loads(kubectl("version", "-o", "json").stdout)
    server = versions["serverVersion"]["gitVersion"]
    assert server == versions["clientVersion"]["gitVersion"]
    built = subprocess.run(
        [str(kube_cluster.bin_dir / "kube-apiserver"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert built.stdout.split() == ["Kubernetes", server]


def test_rbac_is_enforced(kubectl: Kubectl, namespace: str) -> None:
    """Authorization is RBAC, not allow-all: an unbound user may not read secrets."""
    denied = kubectl(
        "auth", "can-i", "list", "secrets", "-n", namespace, "--as=driftline-nobody", check=False
    )
    assert denied.stdout.strip() == "no", denied
    allowed = kubectl("auth", "can-i", "list", "secrets", "-n", namespace)
    assert allowed.stdout.strip() == "yes"


def test_crd_becomes_servable(
    widget_crd: Any, api_client: kubernetes.client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    """(a) An applied CRD is Established and its custom objects can be created and read."""
    conditions = {c.type: c.status for c in widget_crd.status.conditions}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"

    custom = kubernetes.client.CustomObjectsApi(api_client)
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, widget("alpha", {"size": 3, "color": "red"})
    )
    assert created["metadata"]["uid"]
    fetched = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "alpha")
    assert fetched["spec"] == {"size": 3, "color": "red"}

    # kubectl finds the new type through discovery, like any user would.
    listed = kubectl("get", "widgets", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}")
    assert listed.stdout.split() == ["alpha"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"size": "big"}, "spec.size"),
        ({"size": 11}, "spec.size"),
        ({"size": 2, "color": "green"}, "spec.color"),
        ({"color": "red"}, "spec.size"),
    ],
    ids=["wrong-type", "above-maximum", "not-in-enum", "required-missing"],
)
def test_invalid_custom_object_is_rejected(
    widget_crd: Any,
    api_client: kubernetes.client.ApiClient,
    namespace: str,
    spec: dict[str, Any],
    field: str,
) -> None:
    """(b) The structural schema rejects bad objects with 422 naming the field."""
    custom = kubernetes.client.CustomObjectsApi(api_client)
    with pytest.raises(ApiException) as excinfo:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, widget("bad", spec)
        )
    assert excinfo.value.status == 422
    status = json.loads(excinfo.value.body)
    assert status["reason"] == "Invalid"
    causes = [cause["field"] for cause in status["details"]["causes"]]
    assert field in causes, status


def test_unknown_fields_are_pruned(
    widget_crd: Any, api_client: kubernetes.client.ApiClient, namespace: str
) -> None:
    """(b) Structural schemas also prune fields they do not declare."""
    custom = kubernetes.client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, widget("pruned", {"size": 1, "bogus": True})
    )
    fetched = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "pruned")
    assert fetched["spec"] == {"size": 1}


def test_deployment_gets_a_replicaset(
    api_client: kubernetes.client.ApiClient, namespace: str
) -> None:
    """(c) The controller-manager's deployment controller creates a ReplicaSet."""
    apps = kubernetes.client.AppsV1Api(api_client)
    labels = {"app": "tier-web"}
    deployment = apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]},
                },
            },
        },
    )

    def replicasets() -> list[Any]:
        items = apps.list_namespaced_replica_set(namespace).items
        return [rs for rs in items if owned_by(rs, deployment.metadata.uid)]

    (replicaset,) = wait_for(replicasets, 60, "deployment controller created no ReplicaSet")
    assert replicaset.spec.replicas == 2
    assert replicaset.spec.selector.match_labels["app"] == "tier-web"
    # The replicaset controller acts too: Pods are created (they never run, no nodes).
    core = kubernetes.client.CoreV1Api(api_client)
    wait_for(
        lambda: len(core.list_namespaced_pod(namespace, label_selector="app=tier-web").items) == 2,
        60,
        "replicaset controller did not create 2 Pods",
    )


def test_deleting_owner_collects_children(
    api_client: kubernetes.client.ApiClient, namespace: str
) -> None:
    """(d) The garbage collector deletes dependents of a deleted owner."""
    core = kubernetes.client.CoreV1Api(api_client)
    parent = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "parent"}, "data": {"role": "owner"}}
    )
    for name in ("child-1", "child-2"):
        core.create_namespaced_config_map(
            namespace,
            {
                "metadata": {
                    "name": name,
                    "ownerReferences": [owner_ref(parent, "ConfigMap", "v1")],
                },
                "data": {"role": "dependent"},
            },
        )
    unrelated = core.create_namespaced_config_map(namespace, {"metadata": {"name": "bystander"}})

    core.delete_namespaced_config_map("parent", namespace, propagation_policy="Background")

    def children_gone() -> bool:
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
        return not names & {"parent", "child-1", "child-2"}

    wait_for(children_gone, 60, "garbage collector left the children of a deleted owner")
    still_there = core.read_namespaced_config_map("bystander", namespace)
    assert still_there.metadata.uid == unrelated.metadata.uid


def test_cronjob_creates_a_job(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    """(e) The cronjob controller starts a Job on schedule (within a minute and a bit)."""
    batch = kubernetes.client.BatchV1Api(api_client)
    cronjob = batch.create_namespaced_cron_job(
        namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "*/1 * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [
                                    {"name": "tick", "image": "registry.invalid/tick:1"}
                                ],
                            }
                        }
                    }
                },
            },
        },
    )

    def jobs() -> list[Any]:
        items = batch.list_namespaced_job(namespace).items
        return [job for job in items if owned_by(job, cronjob.metadata.uid)]

    (job, *_) = wait_for(jobs, 150, "cronjob controller created no Job")
    assert job.metadata.name.startswith("tick-")
    refreshed = batch.read_namespaced_cron_job("tick", namespace)
    assert refreshed.status.last_schedule_time is not None


def test_server_side_apply_tracks_field_managers(
    api_client: kubernetes.client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    """(f) Server-side apply: idempotent re-apply, conflicts between managers, and
    managedFields naming each manager."""
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": namespace},
        "data": {"level": "low"},
    }
    apply = ("apply", "--server-side", "-f", "-")

    first = kubectl(*apply, "--field-manager=tier-alpha", input=yaml.safe_dump(manifest))
    assert "serverside-applied" in first.stdout
    again = kubectl(*apply, "--field-manager=tier-alpha", input=yaml.safe_dump(manifest))
    assert "serverside-applied" in again.stdout

    core = kubernetes.client.CoreV1Api(api_client)
    contested = {**manifest, "data": {"level": "high"}}
    with pytest.raises(KubectlError) as excinfo:
        kubectl(*apply, "--field-manager=tier-beta", input=yaml.safe_dump(contested))
    message = excinfo.value.stderr
    assert "conflict" in message.lower()
    assert "tier-alpha" in message
    assert ".data.level" in message
    assert core.read_namespaced_config_map("settings", namespace).data == {"level": "low"}

    # A second manager may co-own a field it sets to the same value, or add its own.
    shared = {**manifest, "data": {"level": "low", "extra": "beta"}}
    kubectl(*apply, "--field-manager=tier-beta", input=yaml.safe_dump(shared))

    configmap = core.read_namespaced_config_map("settings", namespace)
    assert configmap.data == {"level": "low", "extra": "beta"}
    managers = {
        entry.manager: entry.fields_v1
        for entry in configmap.metadata.managed_fields
        if entry.operation == "Apply"
    }
    assert set(managers) == {"tier-alpha", "tier-beta"}
    assert "f:level" in managers["tier-alpha"]["f:data"]
    assert set(managers["tier-beta"]["f:data"]) == {"f:level", "f:extra"}
