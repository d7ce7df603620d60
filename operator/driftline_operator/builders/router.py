"""Builders of the canary router: its Deployment, the stable Service and the split ConfigMap (pure).

The split lives in a ConfigMap mounted as a file the router re-reads, so changing the traffic
share never restarts the router.
"""

from __future__ import annotations

from typing import Any

from driftline_operator import names
from driftline_operator.builders import pods
from driftline_operator.builders.serving import build_service
from driftline_operator.names import Owner
from driftline_operator.settings import OperatorSettings
from driftline_operator.specs import ModelDeploymentObject

SPLIT_VOLUME = "split"


def split_basis_points(percent: int, has_challenger: bool) -> int:
    """The challenger's share in basis points; 0 when there is no challenger to send to."""
    return percent * 100 if has_challenger else 0


def build_split_configmap(owner: Owner, basis_points: int) -> dict[str, Any]:
    """The ConfigMap the router reads its split from (basis points, 0..10000)."""
    md_name = owner.name
    labels = names.managed_labels(names.COMPONENT_ROUTER, **{names.LABEL_MODEL_DEPLOYMENT: md_name})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": names.child_metadata(owner, names.split_configmap_name(md_name), labels),
        "data": {names.SPLIT_KEY: str(basis_points)},
    }


def build_router_deployment(
    md: ModelDeploymentObject, has_challenger: bool, settings: OperatorSettings
) -> dict[str, Any]:
    """The router Deployment: hashes request ids to champion or challenger Services.

    The image is the spec's ``router.image``, else the operator's ``inference_image``.
    """
    md_name = md.owner.name
    router = md.spec.router
    selector = {names.LABEL_MODEL_DEPLOYMENT: md_name, names.LABEL_COMPONENT: "router"}
    labels = names.managed_labels(names.COMPONENT_ROUTER, **selector)
    args = [
        "router",
        "--host",
        "0.0.0.0",
        "--port",
        str(names.SERVING_PORT),
        "--champion",
        _service_url(md_name, names.CHAMPION),
        "--split-file",
        f"{names.SPLIT_MOUNT}/{names.SPLIT_KEY}",
    ]
    if has_challenger:
        args[-2:-2] = ["--challenger", _service_url(md_name, names.CHALLENGER)]
        shadow = md.spec.traffic.shadow_percent
        if shadow:
            args += ["--shadow-bps", str(shadow * 100)]
    container = {
        "name": "router",
        "image": router.image or settings.inference_image,
        "args": args,
        "ports": [{"name": "http", "containerPort": names.SERVING_PORT}],
        "env": [{"name": "HOME", "value": pods.TMP_PATH}, pods.drain_env()],
        "resources": {
            "requests": {"cpu": "100m", "memory": "96Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
        "securityContext": pods.container_security_context(),
        "volumeMounts": [
            pods.tmp_mount(),
            {"name": SPLIT_VOLUME, "mountPath": names.SPLIT_MOUNT, "readOnly": True},
        ],
        "livenessProbe": pods.http_probe("/health", names.SERVING_PORT, 10, 3),
        "readinessProbe": pods.http_probe("/ready", names.SERVING_PORT, 5, 3),
    }
    volumes = [
        pods.tmp_volume(),
        {"name": SPLIT_VOLUME, "configMap": {"name": names.split_configmap_name(md_name)}},
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": names.child_metadata(md.owner, names.router_name(md_name), labels),
        "spec": {
            "replicas": router.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pods.pod_security_context(),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def build_router_service(owner: Owner) -> dict[str, Any]:
    """The stable Service named after the ModelDeployment: what clients call."""
    selector = {names.LABEL_MODEL_DEPLOYMENT: owner.name, names.LABEL_COMPONENT: "router"}
    labels = names.managed_labels(names.COMPONENT_ROUTER, **selector)
    return build_service(owner, owner.name, labels, selector)


def _service_url(md_name: str, variant: str) -> str:
    # Same namespace: the short Service name resolves through the pod's DNS search path.
    return f"http://{names.variant_name(md_name, variant)}:{names.SERVICE_PORT}"
