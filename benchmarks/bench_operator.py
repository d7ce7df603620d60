"""Operator latency and memory: CR applied -> every child exists, over 100 ModelDeployments.

Starts the kube tier's control plane (etcd, kube-apiserver, kube-controller-manager), a real
MLflow server with one model (champion and challenger set), and `driftline operator` as its
own ServiceAccount with the default 30 s resync. ModelDeployments are created one after the
other; each latency is from the create call returning to the last of its seven children (the
stable Service, applied last) being readable. RSS is the operator's after the 100 and after a
full resync round. Writes benchmarks/results/operator.json. Needs the kube binaries
(scripts/build-kube-bins.sh) like the kube tests.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import kubernetes

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.kube.cluster import KubeCluster  # noqa: E402
from tests.kube.operator_fixtures import (  # noqa: E402
    Models,
    OperatorProcess,
    install_crds,
    model_deployment,
    write_operator_kubeconfig,
)
from tests.processes import start_mlflow_server, stop, wait_for  # noqa: E402

RESULTS = Path(__file__).parent / "results"
COUNT = 100
RESYNC_SECONDS = 30.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    uri, mlflow = start_mlflow_server(root)
    try:
        # The tier's default service range (a /24) holds 254 ClusterIPs; 100 ModelDeployments
        # need 300 Services. The later flag wins.
        with KubeCluster(
            extra_apiserver_args=["--service-cluster-ip-range=10.0.0.0/16"]
        ) as cluster:
            install_crds(cluster)
            kubeconfig = write_operator_kubeconfig(cluster, root / "kubeconfig")
            models = Models(uri)
            model = models.create("bench", [0.90, 0.91])
            models.registry().set_challenger(model, "2")
            operator = OperatorProcess(
                kubeconfig, root, {"DRIFTLINE_RESOLVE_INTERVAL_SECONDS": str(RESYNC_SECONDS)}
            )
            operator.start()
            try:
                result = measure(cluster, operator, uri, model)
            except Exception:
                print(operator.output(), file=sys.stderr)
                raise
            finally:
                operator.stop()
    finally:
        stop(mlflow)
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "operator.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def measure(cluster: KubeCluster, operator: OperatorProcess, uri: str, model: str) -> dict:
    client = cluster.api_client()
    core = kubernetes.client.CoreV1Api(client)
    apps = kubernetes.client.AppsV1Api(client)
    custom = kubernetes.client.CustomObjectsApi(client)
    namespace = "bench"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_for(lambda: core.read_namespaced_service_account("default", namespace), 30, "no SA")
    rss_idle = operator.rss_mb()
    latencies: list[float] = []
    for i in range(COUNT):
        name = f"md-{i:03d}"
        body = model_deployment(name, model, uri, traffic={"challengerPercent": 10})
        custom.create_namespaced_custom_object(
            "driftline.dev", "v1alpha1", namespace, "modeldeployments", body
        )
        started = time.monotonic()
        wait_for(lambda n=name: core.read_namespaced_service(n, namespace), 30,
                 f"{name}: no stable Service", interval=0.01)  # fmt: skip
        latencies.append(time.monotonic() - started)
    deployments = len(apps.list_namespaced_deployment(namespace).items)
    rss_after_create = operator.rss_mb()
    time.sleep(RESYNC_SECONDS + 5)  # one full resync round of all 100 timers
    status = Path(f"/proc/{operator.process.pid}/status").read_text()
    peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) / 1024
    return {
        "model_deployments": COUNT,
        "deployments_created": deployments,
        "latency_seconds": {
            "p50": round(statistics.median(latencies), 3),
            "p95": round(percentile(latencies, 0.95), 3),
            "max": round(max(latencies), 3),
        },
        "operator_rss_mb": {
            "idle": round(rss_idle, 1),
            "after_create": round(rss_after_create, 1),
            "after_resync": round(operator.rss_mb(), 1),
            "peak": round(peak, 1),
        },
        "goals": {"p95_seconds": 1.5, "rss_mb": 150},
    }


if __name__ == "__main__":
    main()
