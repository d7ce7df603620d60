"""Step-wise rollout on the real API server tier, against a real MLflow server.

No kubelet runs in this tier, so the test stands in for the router pod: a real `driftline
router` process on loopback, announced to the operator by a Pod object whose status the test
sets (Running, IP 127.0.0.1, its container port the router's). The operator finds it by label
and scrapes its /metrics as it would in a cluster. The router's upstreams are FAKE inference
servers (tests/integration/fake_upstream.py), so a challenger can fail or be slow on cue. A
FAKE kubelet copies the split ConfigMap into the router's split file and reports the variant
pods the ReplicaSets create as running and ready, so their Deployments become available.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kubernetes
import pytest

from driftline_operator.conditions import rfc3339
from driftline_operator.main import now
from tests.integration.conftest import MlflowServer
from tests.integration.fake_upstream import FakeUpstream
from tests.kube.cluster import KubeCluster, Kubectl
from tests.kube.operator_fixtures import (
    Models,
    OperatorProcess,
    events,
    model_deployment,
    wait_status,
)
from tests.kube.test_operator import apply
from tests.processes import free_port, stop, wait_for, wait_http

pytestmark = pytest.mark.kube
FAST_ANALYSIS = {"interval": "1s", "minRequests": 20}


@dataclass
class RouterStandIn:
    """A real router for one ModelDeployment, its FAKE upstreams, traffic and split sync."""

    core: kubernetes.client.CoreV1Api
    namespace: str
    md: str
    workdir: Path
    champion: FakeUpstream = field(default_factory=lambda: FakeUpstream().start())
    challenger: FakeUpstream = field(default_factory=lambda: FakeUpstream().start())
    splits: list[int] = field(default_factory=list)  # every split the sync applied, in order
    answers: list[int] = field(default_factory=list)  # status codes the clients got
    _stop: threading.Event = field(default_factory=threading.Event)
    _process: subprocess.Popen[bytes] | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> RouterStandIn:
        port = free_port()
        split_file = self.workdir / "split_bps"
        split_file.write_text("0")
        log = self.workdir / "router.log"
        argv = [
            str(Path(sys.executable).parent / "driftline"), "router",
            "--champion", self.champion.url, "--challenger", self.challenger.url,
            "--split-file", str(split_file), "--port", str(port),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")}
        env["DRIFTLINE_ROUTER_SPLIT_POLL_SECONDS"] = "0.2"
        with log.open("wb") as out:
            self._process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{port}"
        wait_http(self.url + "/ready", self._process, log, timeout=60)
        self._announce(port)
        for target in (self._sync, self._traffic):
            thread = threading.Thread(target=target, args=(split_file,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _announce(self, port: int) -> None:
        """The Pod object the operator discovers (no pod-template-hash: no ReplicaSet adopts it)."""
        name = f"{self.md}-router-standin"
        labels = {
            "driftline.dev/model-deployment": self.md,
            "app.kubernetes.io/component": "router",
        }
        container = {
            "name": "router",
            "image": "driftline/inference:standin",
            "ports": [{"name": "http", "containerPort": port}],
        }
        pod = {"metadata": {"name": name, "labels": labels}, "spec": {"containers": [container]}}
        self.core.create_namespaced_pod(self.namespace, pod)
        status = {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}
        self.core.patch_namespaced_pod_status(name, self.namespace, {"status": status})

    def _sync(self, split_file: Path) -> None:
        """FAKE kubelet: the split ConfigMap's value into the router's file, as it changes;
        the variant pods reported ready."""
        while not self._stop.wait(0.2):
            self._ready_variant_pods()
            try:
                found = self.core.read_namespaced_config_map(f"{self.md}-split", self.namespace)
            except kubernetes.client.ApiException:
                continue
            bps = int((found.data or {}).get("split_bps", "0"))
            if not self.splits or self.splits[-1] != bps:
                split_file.write_text(str(bps))
                self.splits.append(bps)

    def _ready_variant_pods(self) -> None:
        selector = f"driftline.dev/model-deployment={self.md},driftline.dev/variant"
        for pod in self.core.list_namespaced_pod(self.namespace, label_selector=selector).items:
            if pod.status.phase == "Running" or pod.metadata.deletion_timestamp:
                continue
            ready = {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(now())}
            status = {"phase": "Running", "podIP": "127.0.0.3", "conditions": [ready]}
            with contextlib.suppress(kubernetes.client.ApiException):
                self.core.patch_namespaced_pod_status(
                    pod.metadata.name, self.namespace, {"status": status}
                )

    def _traffic(self, _: Path) -> None:
        """Steady client traffic with fresh request ids (about 100 requests a second)."""
        with httpx.Client(base_url=self.url, timeout=5) as client:
            n = 0
            while not self._stop.wait(0.01):
                n += 1
                answer = client.post("/predict", json={"features": {}, "request_id": f"r{n}"})
                self.answers.append(answer.status_code)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        if self._process is not None:
            stop(self._process)
        self.champion.stop()
        self.challenger.stop()


@pytest.fixture
def rollout(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Any]:
    """Starts a rollout: a model with champion 1 and challenger 2, the router stand-in, and a
    ModelDeployment of ``spec`` (fast analysis); returns (model name, stand-in)."""
    started: list[RouterStandIn] = []

    def start(name: str, **spec: Any) -> tuple[str, RouterStandIn]:
        model = models.create(name, [0.80, 0.90])
        models.registry().set_challenger(model, "2")
        core = kubernetes.client.CoreV1Api(api_client)
        router = RouterStandIn(core, namespace, name, tmp_path / name)
        router.workdir.mkdir()
        started.append(router.start())
        manifest = model_deployment(name, model, mlflow_server.uri, analysis=FAST_ANALYSIS, **spec)
        apply(kubectl, namespace, manifest)
        return model, router

    yield start
    for router in started:
        router.stop()


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
    # `driftline status` shows the failed gate against its bound.
    shown = driftline(kube_cluster, "status", "abort", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert "Aborted at step 1/2 (0%)" in shown.stdout and "Failed" in shown.stdout, shown.stdout
    assert "errorRate" in shown.stdout and "vs at most 0.01" in shown.stdout
    missing = driftline(kube_cluster, "abort", "no-such-md", "-n", namespace)
    assert missing.returncode == 9 and "no ModelDeployment 'no-such-md'" in missing.stderr
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
    operator.restart()
    time.sleep(3)
    md = wait_status(
        api_client, namespace, "modeldeployments", "paused", paused_at(0), 10, "lost its step"
    )
    assert rollout_of(md)["percent"] == 20 and router.splits[-1] == 2000
    kubectl("annotate", "md", "paused", "-n", namespace, "driftline.dev/promote=go")
    wait_status(
        api_client, namespace, "modeldeployments", "paused", paused_at(1),
        60, "the second step did not pass and wait for promotion",
    )  # fmt: skip
    assert models.aliases(model) == {"champion": "1", "challenger": "2"}
    assert 6000 in router.splits
    kubectl("annotate", "--overwrite", "md", "paused", "-n", namespace, "driftline.dev/promote=now")
    wait_status(
        api_client, namespace, "modeldeployments", "paused",
        lambda o: rollout_of(o).get("phase") == "Promoted",
        30, "the go-ahead did not promote",
    )  # fmt: skip
    assert models.aliases(model) == {"champion": "2"}
    printed = kubectl("get", "md", "paused", "-n", namespace).stdout
    assert "Promoted" in printed and "2/2" in printed, printed
