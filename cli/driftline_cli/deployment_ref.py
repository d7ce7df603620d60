"""Reaching a ModelDeployment from the command line.

`driftline promote --deployment NAME` and `rollback --deployment NAME` act on what a
ModelDeployment serves without the user repeating its model name and tracking URI;
`driftline abort|retry|status NAME` read it and annotate it. Credentials are the pod's service
account inside a cluster, else the kubeconfig.
"""

from __future__ import annotations

from typing import Any

GROUP, VERSION, PLURAL = "driftline.dev", "v1alpha1", "modeldeployments"


def model_of_deployment(name: str, namespace: str | None) -> tuple[str, str]:
    """(registered model, tracking URI) of a ModelDeployment; ValueError when it cannot be read."""
    body = read_deployment(name, namespace)
    model = body["spec"]["model"]
    return str(model["name"]), str(model["trackingUri"])


def read_deployment(name: str, namespace: str | None) -> dict[str, Any]:
    """The ModelDeployment object; ValueError (one line) when it cannot be read."""
    return _call(name, namespace, lambda api, ns: api.get_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, name
    ))  # fmt: skip


def deployment_events(name: str, namespace: str | None, limit: int = 10) -> list[dict[str, Any]]:
    """The newest Events about the ModelDeployment, oldest first (type, reason, message, time)."""

    def listed(_: Any, ns: str) -> dict[str, Any]:
        import kubernetes

        core = kubernetes.client.CoreV1Api()
        found = core.list_namespaced_event(
            ns, field_selector=f"involvedObject.kind=ModelDeployment,involvedObject.name={name}"
        ).items
        return {"items": [_event(e) for e in found]}

    items = _call(name, namespace, listed)["items"]
    return sorted(items, key=lambda e: e["time"])[-limit:]


def _event(event: Any) -> dict[str, Any]:
    moment = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
    return {
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "count": event.count or 1,
        "time": moment.isoformat() if moment else "",
    }


def annotate_deployment(name: str, namespace: str | None, key: str, value: str) -> None:
    """Set one annotation (a merge patch of metadata only; spec is left as Git has it)."""
    patch = {"metadata": {"annotations": {key: value}}}
    _call(name, namespace, lambda api, ns: api.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, name, patch
    ))  # fmt: skip


def _call(name: str, namespace: str | None, action: Any) -> dict[str, Any]:
    import kubernetes
    from kubernetes.client.exceptions import ApiException

    try:
        kubernetes.config.load_incluster_config()
        namespace = namespace or _incluster_namespace()
    except kubernetes.config.ConfigException:
        try:
            kubernetes.config.load_kube_config()
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise ValueError(f"no Kubernetes credentials: {exc}") from exc
        if namespace is None:
            _, context = kubernetes.config.list_kube_config_contexts()
            namespace = context.get("context", {}).get("namespace") or "default"
    api = kubernetes.client.CustomObjectsApi()
    try:
        return dict(action(api, namespace))
    except ApiException as exc:
        if exc.status == 404:
            raise ValueError(f"no ModelDeployment {name!r} in namespace {namespace!r}") from exc
        raise ValueError(f"ModelDeployment {name!r}: {exc.status} {exc.reason}") from exc
    except OSError as exc:
        raise ValueError(f"the Kubernetes API server is unreachable: {exc}") from exc


def _incluster_namespace() -> str:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    with open(path) as handle:
        return handle.read().strip()
