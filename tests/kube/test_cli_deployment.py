"""`driftline promote|rollback --deployment MD`: alias moves named by a ModelDeployment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.conftest import MlflowServer
from tests.kube.cluster import KubeCluster, Kubectl
from tests.kube.operator_fixtures import Models, model_deployment
from tests.kube.test_operator import apply

DRIFTLINE = str(Path(sys.executable).parent / "driftline")


def cli_env(cluster: KubeCluster) -> dict[str, str]:
    """The CLI's environment: the cluster's kubeconfig and no MLflow URI of its own."""
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    for name in ("MLFLOW_TRACKING_URI", "DRIFTLINE_TRACKING_URI"):
        env.pop(name, None)
    return env


def driftline(cluster: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DRIFTLINE, *args], capture_output=True, text=True, env=cli_env(cluster), timeout=120
    )


def test_promote_and_roll_back_by_model_deployment(
    kube_cluster: KubeCluster,
    kubectl: Kubectl,
    namespace: str,
    models: Models,
    mlflow_server: MlflowServer,
    crds: None,
) -> None:
    model = models.create("by-md", [0.90, 0.95])
    models.registry().set_challenger(model, "2")
    apply(kubectl, namespace, model_deployment("income", model, mlflow_server.uri))

    promoted = driftline(
        kube_cluster, "promote", "--deployment", "income", "-n", namespace, "--json"
    )
    assert promoted.returncode == 0, promoted.stderr
    move = json.loads(promoted.stdout.strip().splitlines()[-1])
    assert (move["model"], move["previous_champion"], move["champion"]) == (model, "1", "2")
    assert models.aliases(model) == {"champion": "2"}

    rolled = driftline(kube_cluster, "rollback", "--deployment", "income", "-n", namespace)
    assert rolled.returncode == 0, rolled.stderr
    assert models.aliases(model) == {"champion": "1"}

    missing = driftline(kube_cluster, "promote", "--deployment", "nope", "-n", namespace)
    assert missing.returncode == 9  # Kubernetes: no such ModelDeployment
    assert missing.stderr.strip() == (
        f"driftline: error: no ModelDeployment 'nope' in namespace '{namespace}'"
    )


def test_concurrent_promotions_move_the_alias_once(
    kube_cluster: KubeCluster,
    kubectl: Kubectl,
    namespace: str,
    models: Models,
    mlflow_server: MlflowServer,
    crds: None,
) -> None:
    model = models.create("race", [0.90, 0.95])
    models.registry().set_challenger(model, "2")
    apply(kubectl, namespace, model_deployment("race", model, mlflow_server.uri))
    command = [DRIFTLINE, "promote", "--deployment", "race", "-n", namespace]
    env = cli_env(kube_cluster)
    racers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    codes = [racer.wait(120) for racer in racers]
    assert sorted(codes) == [0, 6, 6], [r.stderr.read() if r.stderr else b"" for r in racers]
    assert models.aliases(model) == {"champion": "2"}
    assert models.registry().champion_history(model) == ["1", "2"]
