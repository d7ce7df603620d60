"""Step-wise rollout on the real API server tier, against a real MLflow server.

The router pod is stood in for by a real router process with FAKE upstreams and a FAKE kubelet
(tests/kube/router_standin.py); the operator finds and scrapes it as in a cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.kube.cluster import KubeCluster, Kubectl
from tests.kube.operator_fixtures import (
    Models,
    OperatorProcess,
    events,
    wait_status,
)
from tests.kube.prometheus_server import prometheus
from tests.processes import free_port, wait_for

pytestmark = pytest.mark.kube
FAST_ANALYSIS = {"interval": "1s", "minRequests": 20}


@pytest.fixture
def rollout(routed: Any) -> Any:
    """``routed`` with a fast analysis: starts a ModelDeployment of ``spec`` behind a router
    stand-in; returns (model name, stand-in)."""
    return lambda name, **spec: routed(name, analysis=FAST_ANALYSIS, **spec)


def driftline(cluster: KubeCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a person runs it, with the cluster's admin kubeconfig."""
    executable = str(Path(sys.executable).parent / "driftline")
    return subprocess.run(
        [executable, *args], env=cluster.env, capture_output=True, text=True, timeout=60
    )


def rollout_of(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status", {}).get("rollout") or {}


def reasons(api_client: kubernetes.client.ApiClient, namespace: str, name: str) -> list[str]:
    return [e.reason for e in events(api_client, namespace, name)]


def test_steps_advance_on_passing_analysis_and_promote_at_the_end(
    operator: OperatorProcess,
    models: Models,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
    rollout: Any,
) -> None:
    """10% -> 50% -> 100%, each step analysed on the router's figures, then auto promotion."""
    steps = [{"challengerPercent": p, "pause": "3s"} for p in (10, 50, 100)]
    model, router = rollout("steps", rollout={"steps": steps}, promotion={"mode": "auto"})
    md = wait_status(
        api_client, namespace, "modeldeployments", "steps",
        lambda o: rollout_of(o).get("phase") == "Promoted",
        120, "the rollout did not reach Promoted",
    )  # fmt: skip
    assert models.aliases(model) == {"champion": "2"}
    assert md["status"]["champion"]["version"] == "2"
    assert rollout_of(md)["version"] == "2"
    # The router really moved through every step's share, in order.
    assert [s for s in router.splits if s] == [1000, 5000, 10000], router.splits
    got = reasons(api_client, namespace, "steps")
    assert got.count("RolloutStepAdvanced") == 2 and "RolloutPromoted" in got, got
    assert router.challenger.requests > 40 and set(router.answers) == {200}


def test_a_failing_challenger_is_aborted_rejected_and_not_rolled_out_again(
    operator: OperatorProcess,
    models: Models,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
    rollout: Any,
    kube_cluster: KubeCluster,
) -> None:
    """Every challenger answer a 500: the first analysis fails, the split goes to 0, the version
    is tagged rejected and stays out; `driftline.dev/retry` starts the rollout again."""
    steps = [{"challengerPercent": 25, "pause": "1m"}, {"challengerPercent": 100}]
    model, router = rollout("abort", rollout={"steps": steps}, promotion={"mode": "auto"})
    router.challenger.fail_every = 1
    wait_for(lambda: 2500 in router.splits, 30, "the first step's split never applied")
    md = wait_status(
        api_client, namespace, "modeldeployments", "abort",
        lambda o: rollout_of(o).get("phase") == "Aborted",
        60, "the failing challenger was not aborted",
    )  # fmt: skip
    rollout = rollout_of(md)
    assert rollout["percent"] == 0 and md["status"]["challenger"]["trafficPercent"] == 0
    failed = [g for g in rollout["lastAnalysis"]["gates"] if g["verdict"] == "Failed"]
    assert "errorRate" in {g["name"] for g in failed}
    assert all(g["value"] is not None and g["threshold"] is not None for g in failed)
    wait_for(lambda: router.splits[-1] == 0, 10, "the split did not go to 0")
    client = models.registry()._client
    tags = client.get_model_version(model, "2").tags
    assert "errorRate" in tags["driftline.rejected"], tags
    progressing = next(c for c in md["status"]["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "RolloutAborted" and "error rate" in progressing["message"]
    aborted = [e for e in events(api_client, namespace, "abort") if e.reason == "RolloutAborted"]
    assert len(aborted) == 1 and "error rate" in aborted[0].message
    assert models.aliases(model) == {"champion": "1", "challenger": "2"}
    # Still out a while later: the champion untouched, no second abort, no new rollout.
    time.sleep(4)
    again = wait_status(api_client, namespace, "modeldeployments", "abort", lambda o: True, 5, "")
    assert rollout_of(again)["phase"] == "Aborted" and router.splits[-1] == 0
    assert reasons(api_client, namespace, "abort").count("RolloutAborted") == 1
    # `driftline status` shows the failed gate against its bound, and the recent Events.
    shown = driftline(kube_cluster, "status", "abort", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert "Aborted at step 1/2 (0%)" in shown.stdout and "Failed" in shown.stdout, shown.stdout
    assert "errorRate" in shown.stdout and "vs at most 0.01" in shown.stdout
    assert "RolloutStarted" in shown.stdout and "RolloutAborted" in shown.stdout
    missing = driftline(kube_cluster, "abort", "no-such-md", "-n", namespace)
    assert missing.returncode == 9 and "no ModelDeployment 'no-such-md'" in missing.stderr
    # Requests the operator would ignore are refused, not reported as done.
    again = driftline(kube_cluster, "abort", "abort", "-n", namespace)
    assert again.returncode == 2 and "no rollout in progress" in again.stderr
    # `driftline retry`, on purpose: the tag goes and step 0 starts again.
    router.challenger.fail_every = 0
    retried = driftline(kube_cluster, "retry", "abort", "-n", namespace)
    assert retried.returncode == 0, retried.stderr
    wait_status(
        api_client, namespace, "modeldeployments", "abort",
        lambda o: rollout_of(o).get("phase") in ("Progressing", "Analysing"),
        30, "the retry did not restart the rollout",
    )  # fmt: skip
    assert "driftline.rejected" not in client.get_model_version(model, "2").tags
    wait_for(lambda: router.splits[-1] == 2500, 30, "the retried rollout's split never applied")
    retried_twice = driftline(kube_cluster, "retry", "abort", "-n", namespace)
    assert retried_twice.returncode == 2 and "only an aborted rollout" in retried_twice.stderr


def test_a_manual_step_waits_for_promote_and_survives_an_operator_restart(
    operator: OperatorProcess,
    models: Models,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
    rollout: Any,
) -> None:
    """A step without a pause holds (Paused) until the promote annotation; a restarted
    operator resumes at the same step; in manual mode the end waits for a second go-ahead."""
    steps = [{"challengerPercent": 20}, {"challengerPercent": 60, "pause": "2s"}]
    model, router = rollout("paused", rollout={"steps": steps})

    def paused_at(step: int) -> Any:
        return lambda o: rollout_of(o).get("phase") == "Paused" and rollout_of(o)["step"] == step

    wait_status(
        api_client, namespace, "modeldeployments", "paused", paused_at(0),
        60, "the manual step did not pause after passing analysis",
    )  # fmt: skip
    md = wait_status(api_client, namespace, "modeldeployments", "paused", paused_at(0), 5, "")
    assert rollout_of(md)["percent"] == 20 and router.splits[-1] == 2000
    kubectl("annotate", "md", "paused", "-n", namespace, "driftline.dev/promote=go")
    wait_status(
        api_client, namespace, "modeldeployments", "paused", paused_at(1),
        60, "the second step did not pass and wait for promotion",
    )  # fmt: skip
    assert models.aliases(model) == {"champion": "1", "challenger": "2"}
    assert 6000 in router.splits
    # A restart in the middle: the same step, the same step start, no new rollout.
    before = rollout_of(
        wait_status(api_client, namespace, "modeldeployments", "paused", paused_at(1), 5, "")
    )
    operator.restart()
    time.sleep(3)
    after = rollout_of(
        wait_status(api_client, namespace, "modeldeployments", "paused", paused_at(1), 10, "")
    )
    assert after["stepStartedAt"] == before["stepStartedAt"] and after["version"] == "2"
    assert reasons(api_client, namespace, "paused").count("RolloutStarted") == 1
    kubectl("annotate", "--overwrite", "md", "paused", "-n", namespace, "driftline.dev/promote=now")
    wait_status(
        api_client, namespace, "modeldeployments", "paused",
        lambda o: rollout_of(o).get("phase") == "Promoted",
        30, "the go-ahead did not promote",
    )  # fmt: skip
    assert models.aliases(model) == {"champion": "2"}
    printed = kubectl("get", "md", "paused", "-n", namespace).stdout
    assert "Promoted" in printed and "2/2" in printed, printed


def test_analysis_through_prometheus_aborts_a_failing_challenger(
    operator: OperatorProcess,
    models: Models,
    api_client: kubernetes.client.ApiClient,
    namespace: str,
    routed: Any,
    kube_cluster: KubeCluster,
    tmp_path: Path,
) -> None:
    """spec.analysis.prometheus: the operator reads the router's figures from a real Prometheus
    that scrapes the router stand-in (labelled as the chart's ServiceMonitor labels targets),
    and aborts a failing challenger on them. Until Prometheus answers, analyses are
    inconclusive, not passed."""
    port = free_port()
    analysis = {"interval": "2s", "minRequests": 20,
                "prometheus": {"url": f"http://127.0.0.1:{port}"}}  # fmt: skip
    steps = [{"challengerPercent": 50, "pause": "10m"}]
    model, router = routed("prom", rollout={"steps": steps}, analysis=analysis)
    router.challenger.fail_every = 1
    unreachable = wait_status(
        api_client, namespace, "modeldeployments", "prom",
        lambda o: (rollout_of(o).get("lastAnalysis") or {}).get("verdict") == "Inconclusive",
        60, "no inconclusive analysis while Prometheus is down",
    )  # fmt: skip
    assert "Prometheus" in json.dumps(rollout_of(unreachable)["lastAnalysis"])
    target = {
        router.url.removeprefix("http://"): {"namespace": namespace, "model_deployment": "prom"}
    }
    with prometheus(kube_cluster.bin_dir, tmp_path, target, port):
        md = wait_status(
            api_client, namespace, "modeldeployments", "prom",
            lambda o: rollout_of(o).get("phase") == "Aborted",
            90, "the failing challenger was not aborted on Prometheus's figures",
        )  # fmt: skip
    gates = {g["name"]: g for g in rollout_of(md)["lastAnalysis"]["gates"]}
    assert gates["errorRate"]["verdict"] == "Failed" and gates["errorRate"]["value"] > 0.9
    assert gates["requests"]["value"] >= 20
    tags = models.registry()._client.get_model_version(model, "2").tags
    assert "errorRate" in tags["driftline.rejected"]
