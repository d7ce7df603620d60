"""Secure pod defaults shared by every container the operator creates (pure).

Pods run as a non-root user on a read-only root filesystem with no Linux capabilities and the
runtime's default seccomp profile; the only writable path is an emptyDir on ``/tmp``.
"""

from __future__ import annotations

from typing import Any

from driftline.api.v1alpha1 import Logging, ModelRef

RUN_AS_USER = 10001
TMP_VOLUME = "tmp"
TMP_PATH = "/tmp"
TMP_SIZE_LIMIT = "1Gi"

# Seconds a terminating serving or router pod keeps answering (see drain_env); well inside
# the default 30 s grace period.
DRAIN_SECONDS = 5


def pod_security_context() -> dict[str, Any]:
    """Pod-level: non-root user and group, seccomp RuntimeDefault."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level: read-only root, no privilege escalation, every capability dropped."""
    return {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def drain_env() -> dict[str, Any]:
    """``DRIFTLINE_DRAIN_SECONDS``: on SIGTERM the server keeps answering this long.

    A terminating pod leaves its Service's endpoints at once, but kube-proxy rewrites its rules
    some moments later and clients keep sending on their keep-alive connections; the server
    answers through the drain with ``Connection: close`` (driftline_serving.drain), then stops.
    """
    return {"name": "DRIFTLINE_DRAIN_SECONDS", "value": str(DRAIN_SECONDS)}


def tmp_volume() -> dict[str, Any]:
    """The writable scratch space (model cache, MLflow downloads)."""
    return {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": TMP_SIZE_LIMIT}}


def tmp_mount() -> dict[str, Any]:
    """Mount of ``tmp_volume`` at ``/tmp``."""
    return {"name": TMP_VOLUME, "mountPath": TMP_PATH}


def secret_env(name: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    """An environment variable read from a Secret key: secrets never appear in a spec."""
    return {
        "name": name,
        "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": optional}},
    }


def mlflow_env(model: ModelRef) -> list[dict[str, Any]]:
    """Tracking URI and, when a credentials Secret is named, MLflow basic-auth by reference."""
    env: list[dict[str, Any]] = [{"name": "MLFLOW_TRACKING_URI", "value": model.tracking_uri}]
    credentials = model.credentials_secret_ref
    if credentials is not None:
        env += [
            secret_env("MLFLOW_TRACKING_USERNAME", credentials.name, credentials.username_key),
            secret_env("MLFLOW_TRACKING_PASSWORD", credentials.name, credentials.password_key),
        ]
    return env


def log_store_env(logging: Logging | None) -> list[dict[str, Any]]:
    """``DRIFTLINE_LOG_STORE`` from the logging Secret, when one is named."""
    store = logging.store_ref if logging is not None else None
    if store is None:
        return []
    return [secret_env("DRIFTLINE_LOG_STORE", store.secret_name, store.key)]


def serving_log_env(logging: Logging | None, retention_days: int) -> list[dict[str, Any]]:
    """What an inference pod logs: the store, the row sample rate, sketch buckets, retention.

    ``retention_days`` is the operator's (a store-wide choice). The pod's own name (downward
    API) labels its sketch rows, so a check can count pods.
    """
    env = [
        *log_store_env(logging),
        {"name": "DRIFTLINE_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "DRIFTLINE_LOG_RETENTION_DAYS", "value": str(retention_days)},
    ]
    if logging is not None:
        bucket = str(logging.sketch_bucket_seconds)
        env += [
            {"name": "DRIFTLINE_LOG_SAMPLE_RATE", "value": f"{logging.sample_rate:g}"},
            {"name": "DRIFTLINE_SKETCH_BUCKET_SECONDS", "value": bucket},
        ]
    return env


def http_probe(path: str, port: int, period: int, failures: int) -> dict[str, Any]:
    """An HTTP GET probe."""
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }
