"""Resolving a ModelDeployment to the registered model and MLflow server it serves.

`driftline promote --deployment NAME` and `rollback --deployment NAME` act on what a
ModelDeployment serves without the user repeating its model name and tracking URI.
"""

from __future__ import annotations

GROUP, VERSION, PLURAL = "driftline.dev", "v1alpha1", "modeldeployments"


def model_of_deployment(name: str, namespace: str | None) -> tuple[str, str]:
    """(registered model, tracking URI) of a ModelDeployment; ValueError when it cannot be read.

    Credentials are the pod's service account inside a cluster, else the kubeconfig.
    """
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
        body = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            raise ValueError(f"no ModelDeployment {name!r} in namespace {namespace!r}") from exc
        raise ValueError(f"cannot read ModelDeployment {name!r}: {exc.reason}") from exc
    except OSError as exc:
        raise ValueError(f"the Kubernetes API server is unreachable: {exc}") from exc
    model = body["spec"]["model"]
    return str(model["name"]), str(model["trackingUri"])


def _incluster_namespace() -> str:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    with open(path) as handle:
        return handle.read().strip()
