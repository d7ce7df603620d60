"""A stand-in for a router pod in the kube tier, where no kubelet runs.

A real `driftline router` process on loopback, announced to the operator by a Pod object whose
status is set by hand (Running, IP 127.0.0.1, its container port the router's): the operator
finds it by label and scrapes its /metrics as it would in a cluster. The router's upstreams are
FAKE inference servers (tests/integration/fake_upstream.py), so a challenger can fail or be slow
on cue. A FAKE kubelet copies the split ConfigMap into the router's split file and reports the
variant pods the ReplicaSets create as running and ready, so their Deployments become available.
Used by the kube tier's rollout tests and benchmarks/bench_rollout.py.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import kubernetes

from driftline_operator.conditions import rfc3339
from tests.integration.fake_upstream import FakeUpstream
from tests.processes import free_port, stop, wait_http


@dataclass
class RouterStandIn:
    """A real router for one ModelDeployment, its FAKE upstreams, traffic and split sync."""

    core: kubernetes.client.CoreV1Api
    namespace: str
    md: str
    workdir: Path
    champion: FakeUpstream = field(default_factory=lambda: FakeUpstream().start())
    challenger: FakeUpstream = field(default_factory=lambda: FakeUpstream().start())
    pace: float = 0.01  # seconds between two client requests
    applied: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, bps)
    answers: list[int] = field(default_factory=list)  # status codes the clients got
    _stop: threading.Event = field(default_factory=threading.Event)
    _process: subprocess.Popen[bytes] | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def splits(self) -> list[int]:
        """Every split the FAKE kubelet applied, in order (basis points)."""
        return [bps for _, bps in self.applied]

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
            if not self.applied or self.applied[-1][1] != bps:
                split_file.write_text(str(bps))
                self.applied.append((time.monotonic(), bps))

    def _ready_variant_pods(self) -> None:
        selector = f"driftline.dev/model-deployment={self.md},driftline.dev/variant"
        for pod in self.core.list_namespaced_pod(self.namespace, label_selector=selector).items:
            if pod.status.phase == "Running" or pod.metadata.deletion_timestamp:
                continue
            ready = {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": rfc3339(datetime.now(UTC)),
            }
            status = {"phase": "Running", "podIP": "127.0.0.3", "conditions": [ready]}
            with contextlib.suppress(kubernetes.client.ApiException):
                self.core.patch_namespaced_pod_status(
                    pod.metadata.name, self.namespace, {"status": status}
                )

    def _traffic(self, _: Path) -> None:
        """Steady client traffic with fresh request ids (``pace`` apart: 100 a second at most)."""
        with httpx.Client(base_url=self.url, timeout=5) as client:
            n = 0
            while not self._stop.wait(self.pace):
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
