"""Names the operator shares with the cluster: API group, labels, annotations, child names (pure).

Everything the operator stamps on objects lives under ``driftline.dev/`` so that it never
collides with another controller's keys.
"""

from __future__ import annotations

from typing import Any

GROUP = "driftline.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MODEL_DEPLOYMENTS = "modeldeployments"
DRIFT_POLICIES = "driftpolicies"

FIELD_MANAGER = "driftline-operator"
FINALIZER = f"{GROUP}/finalizer"
PROMOTE_ANNOTATION = f"{GROUP}/promote"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MODEL_DEPLOYMENT = f"{GROUP}/model-deployment"
LABEL_DRIFT_POLICY = f"{GROUP}/drift-policy"
LABEL_VARIANT = f"{GROUP}/variant"
LABEL_TRIGGER = f"{GROUP}/trigger"
ANNOTATION_VERSION = f"{GROUP}/model-version"

CHAMPION = "champion"
CHALLENGER = "challenger"
VARIANTS = (CHAMPION, CHALLENGER)

COMPONENT_SERVING = "serving"
COMPONENT_ROUTER = "router"
COMPONENT_DRIFT = "drift-check"
COMPONENT_TRAIN = "train"

SERVING_PORT = 8080
SERVICE_PORT = 80
SPLIT_KEY = "split_bps"
SPLIT_MOUNT = "/etc/driftline/split"


def variant_name(deployment: str, variant: str) -> str:
    """Deployment, Service and HPA name of one variant."""
    return f"{deployment}-{variant}"


def router_name(deployment: str) -> str:
    """The router Deployment's name; its Service is named after the resource itself."""
    return f"{deployment}-router"


def split_configmap_name(deployment: str) -> str:
    """The ConfigMap holding the router's split."""
    return f"{deployment}-split"


def cronjob_name(policy: str) -> str:
    """The drift-check CronJob of a policy."""
    return f"{policy}-drift"


def managed_labels(component: str, **extra: str) -> dict[str, str]:
    """Labels on every child: who manages it and what part it is."""
    return {
        LABEL_MANAGED_BY: FIELD_MANAGER,
        LABEL_NAME: "driftline",
        LABEL_COMPONENT: component,
        **extra,
    }


def owner_reference(owner: dict[str, object]) -> dict[str, object]:
    """The controller owner reference to a custom resource body (garbage collection)."""
    metadata = owner["metadata"]
    assert isinstance(metadata, dict)
    return {
        "apiVersion": owner.get("apiVersion", API_VERSION),
        "kind": owner["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(
    owner: dict[str, Any], name: str, labels: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """Metadata of a child of a ModelDeployment or DriftPolicy: namespace, labels, owner."""
    return {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": labels,
        "ownerReferences": [owner_reference(owner)],
        **extra,
    }
