"""Fixtures of the operator tests: the CRDs, the operator's own identity (its ServiceAccount
token, bound by k8s/base/rbac.yaml), a real MLflow server with models registered on demand,
and the operator itself as a ``driftline operator`` subprocess.

Imported by tests/kube/conftest.py so pytest registers them for the kube tier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from tests.integration.conftest import MlflowServer, mlflow_server  # noqa: F401 (fixture)
from tests.kube.cluster import REPO_ROOT, KubeCluster, Kubectl
from tests.kube.router_standin import RouterStandIn
from tests.processes import free_port, log_tail, stop, wait_for, wait_http

CRD_DIR = REPO_ROOT / "crds"
RBAC = REPO_ROOT / "k8s" / "base" / "rbac.yaml"
OPERATOR_SA = ("driftline-system", "driftline-operator")
# Short intervals so the timer-driven behaviour shows within a test's patience.
RESOLVE_INTERVAL = 2.0
TEST_INTERVALS = {
    "DRIFTLINE_RESOLVE_INTERVAL_SECONDS": str(RESOLVE_INTERVAL),
    "DRIFTLINE_DRIFT_POLL_SECONDS": "1",
    "DRIFTLINE_RETRY_DELAY_SECONDS": "2",
    "DRIFTLINE_ROLLOUT_INTERVAL_SECONDS": "1",
}


def install_crds(cluster: KubeCluster) -> None:
    """Apply the CRDs from crds/ and wait until they are Established."""
    kubectl = Kubectl(cluster)
    kubectl("apply", "--server-side", "-f", str(CRD_DIR))
    for path in sorted(CRD_DIR.glob("*.yaml")):
        name = path.name.removesuffix(".yaml")
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")


@pytest.fixture(scope="session")
def crds(kube_cluster: KubeCluster) -> None:
    """The CRDs from crds/ applied and Established."""
    install_crds(kube_cluster)


def write_operator_kubeconfig(kube_cluster: KubeCluster, path: Path) -> Path:
    """A kubeconfig holding a token of the operator's ServiceAccount (k8s/base/rbac.yaml):
    the operator under test has exactly the permissions the ClusterRole grants."""
    kubectl = Kubectl(kube_cluster)
    kubectl("apply", "-f", str(RBAC))
    namespace, account = OPERATOR_SA
    token = kubectl("create", "token", account, "-n", namespace, "--duration=4h").stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": kube_cluster.server,
                    "certificate-authority": str(kube_cluster.ca_file),
                },
            }
        ],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": account}}],
        "current-context": "test",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def operator_kubeconfig(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The operator's own identity, for the session."""
    return write_operator_kubeconfig(
        kube_cluster, tmp_path_factory.mktemp("operator") / "kubeconfig"
    )


@dataclass
class OperatorProcess:
    """``driftline operator`` running as its ServiceAccount; restartable."""

    kubeconfig: Path
    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    metrics_url: str = ""

    @property
    def log(self) -> Path:
        return self.workdir / f"operator-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        port, metrics_port = free_port(), free_port()
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")},
            "KUBECONFIG": str(self.kubeconfig),
            **TEST_INTERVALS,
            "DRIFTLINE_LIVENESS_PORT": str(port),
            "DRIFTLINE_METRICS_PORT": str(metrics_port),
            **self.env_overrides,
        }
        executable = Path(sys.executable).parent / "driftline"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(executable), "operator"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
            )
        wait_http(f"http://127.0.0.1:{port}/healthz", self.process, self.log, timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def output(self) -> str:
        return log_tail(self.log, 60)

    def rss_mb(self) -> float:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024


@pytest.fixture(scope="session")
def health_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The SQLite inference log the operator reads auto promotion's online health from."""
    return f"sqlite:///{tmp_path_factory.mktemp('log') / 'inference_log.db'}"


@pytest.fixture(scope="session")
def operator(
    crds: None,
    operator_kubeconfig: Path,
    mlflow_server: MlflowServer,  # noqa: F811
    health_log: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator, watching the whole cluster for the session."""
    running = OperatorProcess(
        operator_kubeconfig,
        tmp_path_factory.mktemp("operator-run"),
        {"DRIFTLINE_HEALTH_LOG_STORE": health_log},
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Models:
    """Registers models in the real MLflow server: versions are runs with a test metric and no
    artifacts (pods never start in this tier, so nothing downloads them)."""

    uri: str
    counter: int = 0

    def registry(self) -> Any:
        from mlflow import MlflowClient

        from driftline.registry import ModelRegistry

        return ModelRegistry(MlflowClient(self.uri, self.uri))

    def create(self, prefix: str, metrics: list[float]) -> str:
        """A new model with one version per metric (test_roc_auc); version 1 is champion."""
        self.counter += 1
        name = f"{prefix}-{self.counter}"
        registry = self.registry()
        for metric in metrics:
            self.add_version(name, metric)
        registry.make_champion(name, "1")
        return name

    def add_version(self, name: str, roc_auc: float) -> str:
        client = self.registry()._client
        experiment = client.get_experiment_by_name("operator-tests")
        experiment_id = (
            experiment.experiment_id if experiment else client.create_experiment("operator-tests")
        )
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "test_roc_auc", roc_auc)
        client.set_terminated(run.info.run_id)
        if not self.registry().has_model(name):
            client.create_registered_model(name)
        version = client.create_model_version(
            name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )
        return str(version.version)

    def aliases(self, name: str) -> dict[str, str]:
        return {
            k: str(v) for k, v in self.registry()._client.get_registered_model(name).aliases.items()
        }


@pytest.fixture(scope="session")
def models(mlflow_server: MlflowServer) -> Models:  # noqa: F811
    """Model registration helper bound to the session's MLflow server."""
    return Models(mlflow_server.uri)


def model_deployment(name: str, model: str, tracking_uri: str, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment manifest."""
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"name": model, "trackingUri": tracking_uri}, **spec},
    }


def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


def events(api_client: kubernetes.client.ApiClient, namespace: str, name: str) -> list[Any]:
    """Events about one object, oldest first."""
    core = kubernetes.client.CoreV1Api(api_client)
    found = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    ).items
    return sorted(found, key=lambda e: e.metadata.creation_timestamp)


def wait_status(
    api_client: kubernetes.client.ApiClient,
    namespace: str,
    plural: str,
    name: str,
    predicate: Any,
    timeout: float,
    message: str,
) -> dict[str, Any]:
    """Poll a custom object until ``predicate(obj)`` holds; return the object."""

    def check() -> dict[str, Any] | None:
        obj = custom(api_client).get_namespaced_custom_object(
            "driftline.dev", "v1alpha1", namespace, plural, name
        )
        return obj if predicate(obj) else None

    return wait_for(check, timeout, message)


@pytest.fixture
def routed(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,  # noqa: F811
    api_client: kubernetes.client.ApiClient,
    kube_cluster: KubeCluster,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Any]:
    """Starts a served model: champion 1 and challenger 2 with the given test_roc_auc, the
    router stand-in (tests/kube/router_standin.py) and a ModelDeployment of ``spec``; returns
    (model name, stand-in). ``pace`` spaces the stand-in's client requests. Stand-ins stop at
    the end of the test."""
    started: list[RouterStandIn] = []

    def start(
        name: str, metrics: tuple[float, float] = (0.80, 0.90), pace: float = 0.01, **spec: Any
    ) -> tuple[str, RouterStandIn]:
        model = models.create(name, list(metrics))
        models.registry().set_challenger(model, "2")
        core = kubernetes.client.CoreV1Api(api_client)
        router = RouterStandIn(core, namespace, name, tmp_path / name, pace=pace)
        router.workdir.mkdir()
        started.append(router.start())
        manifest = model_deployment(name, model, mlflow_server.uri, **spec)
        Kubectl(kube_cluster)("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
        return model, router

    yield start
    for router in started:
        router.stop()
