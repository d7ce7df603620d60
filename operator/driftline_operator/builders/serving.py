"""Builders of one variant's Deployment, Service and HorizontalPodAutoscaler (pure).

The resolved model version is pinned in the pod template (environment and annotation), so an
alias move in MLflow becomes an ordinary rolling update with ReplicaSet history.
"""

from __future__ import annotations

from typing import Any

from driftline_operator import names
from driftline_operator.builders import pods
from driftline_operator.names import Owner
from driftline_operator.settings import OperatorSettings
from driftline_operator.specs import ModelDeploymentObject


def variant_labels(md_name: str, variant: str) -> dict[str, str]:
    """Selector labels of one variant's pods (stable across versions)."""
    return {names.LABEL_MODEL_DEPLOYMENT: md_name, names.LABEL_VARIANT: variant}


def build_variant_deployment(
    md: ModelDeploymentObject, variant: str, version: str, settings: OperatorSettings
) -> dict[str, Any]:
    """The Deployment serving ``version`` of the model as ``variant``.

    ``spec.replicas`` is always set here; ``apply`` leaves it out when an HPA owns it. The
    image is the spec's, else the operator's ``inference_image``.
    """
    md_name, serving = md.owner.name, md.spec.serving
    selector = variant_labels(md_name, variant)
    labels = names.managed_labels(names.COMPONENT_SERVING, **selector)
    env = [
        {"name": "DRIFTLINE_MODEL_NAME", "value": md.spec.model.name},
        {"name": "DRIFTLINE_MODEL_VERSION", "value": version},
        {"name": "DRIFTLINE_VARIANT", "value": variant},
        {"name": "DRIFTLINE_RUNTIME", "value": serving.runtime},
        # The root filesystem is read-only: MLflow downloads and caches go to the emptyDir.
        {"name": "DRIFTLINE_HOME", "value": f"{pods.TMP_PATH}/driftline"},
        {"name": "HOME", "value": pods.TMP_PATH},
        *pods.mlflow_env(md.spec.model),
        *pods.serving_log_env(md.spec.logging, settings.log_retention_days),
        pods.drain_env(),
        *(variable.manifest() for variable in serving.env),
    ]
    container = {
        "name": "inference",
        "image": serving.image or settings.inference_image,
        "args": ["serve", "--host", "0.0.0.0", "--port", str(names.SERVING_PORT)],
        "ports": [{"name": "http", "containerPort": names.SERVING_PORT}],
        "env": env,
        "resources": serving.resources.manifest(),
        "securityContext": pods.container_security_context(),
        "volumeMounts": [pods.tmp_mount()],
        # Liveness only asks "is the process alive"; readiness waits for the model load.
        "livenessProbe": pods.http_probe("/health", names.SERVING_PORT, 10, 3),
        "readinessProbe": pods.http_probe("/ready", names.SERVING_PORT, 5, 3),
        "startupProbe": pods.http_probe("/health", names.SERVING_PORT, 5, 60),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": names.child_metadata(md.owner, names.variant_name(md_name, variant), labels),
        "spec": {
            "replicas": serving.initial_replicas(),
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {names.ANNOTATION_VERSION: version},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pods.pod_security_context(),
                    "containers": [container],
                    "volumes": [pods.tmp_volume()],
                },
            },
        },
    }


def build_variant_service(owner: Owner, variant: str) -> dict[str, Any]:
    """The ClusterIP Service in front of one variant's pods."""
    selector = variant_labels(owner.name, variant)
    labels = names.managed_labels(names.COMPONENT_SERVING, **selector)
    return build_service(owner, names.variant_name(owner.name, variant), labels, selector)


def build_variant_hpa(md: ModelDeploymentObject, variant: str) -> dict[str, Any]:
    """An autoscaling/v2 HPA on CPU utilisation for one variant's Deployment.

    Raises ValueError when the spec sets no autoscaling.
    """
    scaling = md.spec.serving.autoscaling
    if scaling is None:
        raise ValueError("serving.autoscaling is not set")
    name = names.variant_name(md.owner.name, variant)
    labels = names.managed_labels(names.COMPONENT_SERVING, **variant_labels(md.owner.name, variant))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": names.child_metadata(md.owner, name, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def build_service(
    owner: Owner, name: str, labels: dict[str, str], selector: dict[str, str]
) -> dict[str, Any]:
    """A ClusterIP Service on port 80 to the pods' ``http`` port (also used by the router)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.child_metadata(owner, name, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {
                    "name": "http",
                    "port": names.SERVICE_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                }
            ],
        },
    }
