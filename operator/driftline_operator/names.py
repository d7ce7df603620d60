"""Names the operator shares with the cluster: API group, labels, annotations, child names (pure).

Everything the operator stamps on objects lives under ``driftline.dev/`` so that it never
collides with another controller's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Re-exported: the operator's modules name everything the cluster sees through this module.
from driftline.api.v1alpha1 import API_VERSION as API_VERSION
from driftline.api.v1alpha1 import DRIFT_POLICY, MODEL_DEPLOYMENT
from driftline.api.v1alpha1 import GROUP as GROUP
from driftline.api.v1alpha1 import VERSION as VERSION
from driftline.registry_conventions import CHALLENGER as CHALLENGER
from driftline.registry_conventions import CHAMPION as CHAMPION
from driftline.registry_conventions import VARIANTS as VARIANTS

MODEL_DEPLOYMENTS = MODEL_DEPLOYMENT.plural
MODEL_DEPLOYMENT_KIND = MODEL_DEPLOYMENT.kind
DRIFT_POLICIES = DRIFT_POLICY.plural

FIELD_MANAGER = "driftline-operator"
FINALIZER = f"{GROUP}/finalizer"
PROMOTE_ANNOTATION = f"{GROUP}/promote"
ABORT_ANNOTATION = f"{GROUP}/abort"
RETRY_ANNOTATION = f"{GROUP}/retry"

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MODEL_DEPLOYMENT = f"{GROUP}/model-deployment"
LABEL_DRIFT_POLICY = f"{GROUP}/drift-policy"
LABEL_VARIANT = f"{GROUP}/variant"
LABEL_TRIGGER = f"{GROUP}/trigger"
ANNOTATION_VERSION = f"{GROUP}/model-version"

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


@dataclass(frozen=True)
class Owner:
    """The custom resource that owns a child: what its metadata and owner reference need."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Owner:
        """The owner identity of a ModelDeployment or DriftPolicy body (KeyError if partial)."""
        meta = body["metadata"]
        return cls(
            api_version=body.get("apiVersion", API_VERSION),
            kind=body["kind"],
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
        )

    def reference(self) -> dict[str, Any]:
        """The controller owner reference to this resource (garbage collection)."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def child_metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """Metadata of a child of a ModelDeployment or DriftPolicy: namespace, labels, owner."""
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner.reference()],
    }
