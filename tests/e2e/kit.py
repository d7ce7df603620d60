"""What the end-to-end tier does to a running local cluster: import the images, install the chart,
run CLI Jobs, send traffic through Services, and read the inference log.

Everything here talks to real things: containerd's image store, helm against the API server,
the Services' cluster IPs over the bridge, PostgreSQL over its Service.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event, Thread
from typing import Any

import httpx
import pandas as pd

from tests.cluster.conftest import LocalCluster, kube_bin_dir
from tests.processes import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CRI_SOCK = "/run/driftline-cluster/containerd/containerd.sock"
VERSION = "0.1.0"
IMAGES = ("operator", "inference", "trainer", "postgresql")
TRAINER = f"driftline/trainer:{VERSION}"
INFERENCE = f"driftline/inference:{VERSION}"
# Built by scripts/build-node-images.sh with the cluster.
BUSYBOX = "localhost/driftline/busybox:1.35"


def step(text: str, started: float) -> None:
    """Print one progress line with the seconds since ``started`` (pytest -s shows them)."""
    print(f"e2e: {time.monotonic() - started:7.1f}s {text}", flush=True)


def import_images(names: Iterable[str]) -> dict[str, float]:
    """Copy Docker's images into the node's containerd (``docker save | ctr import``).

    Returns seconds per image. Raises AssertionError naming an image that Docker does not have
    (run ``make images``) or that containerd refused.
    """
    seconds = {}
    for name in names:
        ref = f"driftline/{name}:{VERSION}"
        start = time.monotonic()
        save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE)
        load = subprocess.run(
            ["ctr", "--address", CRI_SOCK, "-n", "k8s.io", "images", "import", "-"],
            stdin=save.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        if save.stdout is not None:
            save.stdout.close()
        if save.wait() != 0:
            raise AssertionError(f"docker save {ref} failed: build the images first (make images)")
        if load.returncode != 0:
            raise AssertionError(f"ctr import of {ref} failed: {load.stderr.strip()}")
        seconds[ref] = time.monotonic() - start
    return seconds


def helm(cluster: LocalCluster, *args: str, timeout: float = 600) -> str:
    """Run helm against the cluster; raise with its output when it fails."""
    result = subprocess.run(
        [str(kube_bin_dir() / "helm"), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


@dataclass
class Namespace:
    """kubectl scoped to one namespace, with the waits the loop needs."""

    cluster: LocalCluster
    name: str

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        """kubectl -n <name> ..."""
        return self.cluster.kubectl("-n", self.name, *args, stdin=stdin, timeout=timeout)

    def get(self, *args: str) -> Any:
        """kubectl get ... -o json, parsed (raises when the object is missing)."""
        return json.loads(self.kubectl("get", *args, "-o", "json"))

    def apply(self, *objects: dict[str, Any]) -> None:
        """kubectl apply of the objects into this namespace."""
        for obj in objects:
            obj.setdefault("metadata", {})["namespace"] = self.name
        self.cluster.apply(*objects)

    def status(self, kind: str, name: str) -> dict[str, Any]:
        """The object's status (empty when not written yet)."""
        return dict(self.get(kind, name).get("status") or {})

    def cluster_ip(self, service: str) -> str:
        """The Service's cluster IP: the host reaches it over the bridge and kube-proxy's rules."""
        return str(self.get("service", service)["spec"]["clusterIP"])

    def rollout_done(self, deployment: str, timeout: float) -> None:
        """Wait until every replica of the Deployment runs its latest template and is ready."""
        self.kubectl(
            "rollout", "status", f"deployment/{deployment}", f"--timeout={int(timeout)}s",
            timeout=timeout + 10,
        )  # fmt: skip

    def events(self, involved: str) -> list[dict[str, Any]]:
        """Events about the named object, oldest first."""
        items = self.get("events", "--field-selector", f"involvedObject.name={involved}")["items"]
        return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def logs(self, selector: str, tail: int = 60) -> str:
        """The last lines of every container selected (for failure messages)."""
        try:
            return self.kubectl("logs", "-l", selector, "--all-containers", f"--tail={tail}")
        except AssertionError as exc:
            return str(exc)

    def run_job(self, name: str, image: str, args: list[str], timeout: float) -> str:
        """Run ``driftline <args>`` as a Job (one attempt), wait for it and return its logs.

        Raises AssertionError with the pod's logs when the Job fails or times out.
        """
        self.apply(cli_job(name, image, args))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status("job", name)
            if status.get("succeeded"):
                return self.kubectl("logs", f"job/{name}")
            if status.get("failed"):
                break
            time.sleep(2)
        raise AssertionError(
            f"Job {name} did not succeed in {timeout:.0f}s: {self.status('job', name)}\n"
            f"{self.logs(f'job-name={name}', 80)}"
        )


def cli_job(name: str, image: str, args: list[str]) -> dict[str, Any]:
    """A one-attempt Job running ``driftline <args>``, non-root and read-only like the chart's."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [
                        {
                            "name": "driftline",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": args,
                            "securityContext": {
                                "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                }
            },
        },
    }


def feature_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready feature rows: missing values become null."""
    rows = frame.to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in rows
    ]


@dataclass
class Answer:
    """One request's outcome through a Service."""

    request_id: str
    status: int
    variant: str = ""
    version: str = ""
    error: str = ""


def predict(client: httpx.Client, url: str, record: dict[str, Any], request_id: str) -> Answer:
    """POST one record to ``url``/predict; a transport error is an Answer with status 0."""
    try:
        response = client.post(
            f"{url}/predict", json={"features": record}, headers={"x-request-id": request_id}
        )
    except httpx.HTTPError as exc:
        return Answer(request_id, 0, error=f"{type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return Answer(request_id, response.status_code, error=response.text[:300])
    body = response.json()
    return Answer(request_id, 200, body["variant"], body["version"])


def send(url: str, records: list[dict[str, Any]], prefix: str, workers: int = 8) -> list[Answer]:
    """Send each record once with request id ``<prefix>-<i>``, ``workers`` at a time."""

    chunks = [range(w, len(records), workers) for w in range(workers)]

    def run(chunk: range) -> list[Answer]:
        with httpx.Client(timeout=10) as client:
            return [predict(client, url, records[i], f"{prefix}-{i}") for i in chunk]

    with ThreadPoolExecutor(workers) as pool:
        return [a for part in pool.map(run, chunks) for a in part]


@dataclass
class LoadLoop:
    """Requests sent back to back from threads until stopped; every outcome is kept."""

    url: str
    records: list[dict[str, Any]]
    prefix: str
    answers: list[Answer] = field(default_factory=list)

    def failures(self) -> list[Answer]:
        """Answers that were not 200."""
        return [a for a in self.answers if a.status != 200]

    def report(self) -> str:
        """``N requests, M failed``, for a progress line."""
        return f"{len(self.answers)} requests, {len(self.failures())} failed"

    def assert_none_failed(self) -> None:
        """Raise AssertionError (with the first failures) unless requests ran and all got 200."""
        failures = self.failures()
        assert self.answers and not failures, f"{self.report()}: {failures[:5]}"


@contextmanager
def load_loop(
    url: str, records: list[dict[str, Any]], prefix: str, workers: int = 2
) -> Iterator[LoadLoop]:
    """Run a ``LoadLoop`` in ``workers`` threads for the duration of the block."""
    loop = LoadLoop(url, records, prefix)
    stop = Event()

    def worker(w: int) -> None:
        i = 0
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                record = records[(i * workers + w) % len(records)]
                loop.answers.append(predict(client, url, record, f"{prefix}-{w}-{i}"))
                i += 1

    threads = [Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
    for thread in threads:
        thread.start()
    try:
        yield loop
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)


def served(version: str, variant: str = "champion") -> Any:
    """A ModelDeployment status check: ``variant`` serves ``version`` with ready pods."""

    def check(status: dict[str, Any]) -> bool:
        entry = status.get(variant) or {}
        return bool(entry.get("version") == version and entry.get("ready"))

    return check


def roll_champion_under_load(
    ns: Namespace,
    md: str,
    url: str,
    records: list[dict[str, Any]],
    prefix: str,
    move: Any,
    version: str,
) -> tuple[float, LoadLoop]:
    """Call ``move()`` under a load loop and wait until the champion serves ``version``.

    Waits for the ModelDeployment status, the champion Deployment's rollout and every answer
    coming from ``version``. Returns the seconds it took and the load loop (its answers).
    """
    start = time.monotonic()
    with load_loop(url, records, prefix) as load:
        move()
        wait_status(ns, "md", md, served(version), 300, f"the champion did not move to {version}")
        ns.rollout_done(f"{md}-champion", 180)
        wait_value(lambda: versions_answering(url, records[0]), {version}, 120)
    return time.monotonic() - start, load


def wait_status(
    ns: Namespace, kind: str, name: str, check: Any, timeout: float, what: str
) -> dict[str, Any]:
    """Wait until ``check(status)`` is truthy; return that status (the message has the last)."""
    try:
        return dict(wait_until(lambda: ns.status(kind, name), check, timeout))
    except AssertionError as exc:
        raise AssertionError(f"{what}: {exc}") from exc


def wait_until(probe: Any, accept: Any, timeout: float) -> Any:
    """Poll ``probe()`` until ``accept(value)``; return that value (the message has the last)."""
    last: list[Any] = [None]

    def check() -> bool:
        last[0] = probe()
        return bool(accept(last[0]))

    try:
        wait_for(check, timeout, "value not reached", interval=1.0)
    except AssertionError as exc:
        raise AssertionError(f"not reached within {timeout:.0f}s, last {last[0]!r}") from exc
    return last[0]


def wait_value(probe: Any, expected: Any, timeout: float) -> Any:
    """Poll ``probe()`` until it returns ``expected``."""
    return wait_until(probe, lambda value: value == expected, timeout)


def toolbox(ns: Namespace) -> str:
    """A running busybox pod in the namespace to send requests from; its name."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "toolbox"},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": BUSYBOX,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sleep", "86400"],
                }
            ],
        },
    }
    ns.apply(pod)
    ns.kubectl("wait", "--for=condition=Ready", "pod/toolbox", "--timeout=60s", timeout=70)
    return "toolbox"


def exec_predict(
    ns: Namespace, pod: str, url: str, record: dict[str, Any], request_id: str
) -> dict[str, Any]:
    """POST one record from inside ``pod`` with busybox wget; the parsed answer."""
    out = ns.kubectl(
        "exec", pod, "--", "wget", "-qO-", "--header", "Content-Type: application/json",
        "--header", f"x-request-id: {request_id}",
        "--post-data", json.dumps({"features": record}), url,
    )  # fmt: skip
    return dict(json.loads(out))


def wait_challenger_share(url: str, record: dict[str, Any], timeout: float = 120) -> float:
    """Wait until the router sends a challenger-hashed id to the challenger; seconds waited.

    The router reads its split from a mounted ConfigMap, which the kubelet refreshes on its own
    period, so a new split reaches it some seconds after the operator wrote it.
    """
    from driftline.registry_conventions import CHALLENGER
    from driftline_serving.split import choose

    ids = (f"probe-{i}" for i in range(10**6))
    probe_id = next(i for i in ids if choose(i, 1) == CHALLENGER)
    start = time.monotonic()
    with httpx.Client(timeout=10) as client:
        wait_value(lambda: predict(client, url, record, probe_id).variant, CHALLENGER, timeout)
    return time.monotonic() - start


def versions_answering(url: str, record: dict[str, Any], count: int = 20) -> set[str]:
    """The versions that answer ``count`` requests with fresh ids."""
    with httpx.Client(timeout=10) as client:
        answers = [predict(client, url, record, f"probe-{time.time_ns()}") for _ in range(count)]
    return {a.version for a in answers}


def drift_jobs(ns: Namespace, policy: str, component: str) -> list[dict[str, Any]]:
    """The policy's Jobs of one component (``drift-check`` or ``train``)."""
    selector = f"driftline.dev/drift-policy={policy},app.kubernetes.io/component={component}"
    return list(ns.get("jobs", "-l", selector)["items"])
