"""The operator's only door to the API server: one apply function and a few generic reads.

Every child is converged by server-side apply with the field manager ``driftline-operator`` and
``force=True`` (the operator is the authority on what it builds). Fields it does not send, such
as a Deployment's ``spec.replicas`` when an HPA owns it, stay with whoever set them.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes

from driftline_operator import names

# kind -> (API path prefix, plural)
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Pod": ("/api/v1", "pods"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "CronJob": ("/apis/batch/v1", "cronjobs"),
    "Job": ("/apis/batch/v1", "jobs"),
    "ModelDeployment": (f"/apis/{names.API_VERSION}", names.MODEL_DEPLOYMENTS),
    "DriftPolicy": (f"/apis/{names.API_VERSION}", names.DRIFT_POLICIES),
}
AUTH = ["BearerToken"]


class KubeTemporaryError(Exception):
    """The API server is unavailable or throttling: retry later."""


class Kube:
    """Generic JSON calls through an authenticated ``kubernetes.client.ApiClient``."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        """Wrap a configured client (in-cluster or from a kubeconfig)."""
        self._client = client

    def apply(self, obj: dict[str, Any], *, drop_replicas: bool = False) -> dict[str, Any]:
        """Make the object equal to ``obj`` for every field the operator manages.

        ``drop_replicas`` leaves ``spec.replicas`` out, so an HPA's scaling is never reverted.
        """
        if drop_replicas:
            obj = {**obj, "spec": {k: v for k, v in obj["spec"].items() if k != "replicas"}}
        meta = obj["metadata"]
        return self._call(
            "PATCH",
            self._path(obj["kind"], meta["namespace"], meta["name"]),
            query=[("fieldManager", names.FIELD_MANAGER), ("force", "true")],
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge ``status`` into the status subresource (``None`` values delete fields)."""
        self._call(
            "PATCH",
            self._path(kind, namespace, name) + "/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    def create(self, obj: dict[str, Any]) -> bool:
        """Create an object; False when one of that name already exists (idempotent retries)."""
        meta = obj["metadata"]
        try:
            self._call("POST", self._path(obj["kind"], meta["namespace"]), body=obj)
        except kubernetes.client.ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist."""
        try:
            return self._call("GET", self._path(kind, namespace, name))
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def select(self, kind: str, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        """Objects of a kind in a namespace matching every label in ``selector``."""
        labels = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        found = self._call("GET", self._path(kind, namespace), query=[("labelSelector", labels)])
        return list(found.get("items", []))

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete in the background (dependents by GC); False when it was already gone."""
        try:
            self._call(
                "DELETE",
                self._path(kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except kubernetes.client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    @staticmethod
    def _path(kind: str, namespace: str, name: str | None = None) -> str:
        prefix, plural = KINDS[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{path}/{name}" if name else path

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        try:
            response = self._client.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body,
                auth_settings=AUTH,
                _preload_content=False,
                _request_timeout=30,
            )
        except kubernetes.client.ApiException as exc:
            if exc.status in (429, 500, 502, 503, 504):
                raise KubeTemporaryError(f"API server {exc.status} on {method} {path}") from exc
            raise
        except OSError as exc:
            raise KubeTemporaryError(f"API server unreachable: {exc}") from exc
        data = response.data if hasattr(response, "data") else response[0].data
        return dict(json.loads(data or b"{}"))
