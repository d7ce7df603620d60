"""Step-wise rollout timings: alias move -> promotion, and first failing request -> split 0.

Starts the kube tier's control plane, a real MLflow server and `driftline operator` (as its own
ServiceAccount), and stands in for the router pod as the kube tests do (a real router process,
FAKE upstreams, a FAKE kubelet: tests/kube/router_standin.py), with steady traffic of about 100
requests a second.
- Promotion: a ModelDeployment with steps 10, 25, 50, 100 % and a pause of PAUSE each, auto
  promotion; the clock starts when the `challenger` alias moves and stops when the champion
  alias is the new version. Each step change is timed from the split the router applied.
- Abort: a healthy challenger at its first step (a long pause) starts answering 500; the clock
  starts at its first failing answer and stops when the operator's split ConfigMap says 0, and
  again when the router applied it (FAKE kubelet sync and router poll, 0.2 s each, included).
The operator runs with DRIFTLINE_ROLLOUT_INTERVAL_SECONDS=1 and the ModelDeployments with
analysis.interval 1s: the abort time is bounded by those two plus one API round trip.
Writes benchmarks/results/rollout.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kubernetes
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.kube.cluster import KubeCluster, Kubectl  # noqa: E402
from tests.kube.operator_fixtures import (  # noqa: E402
    Models,
    OperatorProcess,
    install_crds,
    model_deployment,
    write_operator_kubeconfig,
)
from tests.kube.router_standin import RouterStandIn  # noqa: E402
from tests.processes import start_mlflow_server, stop, wait_for  # noqa: E402

RESULTS = Path(__file__).parent / "results"
PAUSE = "2s"
STEPS = (10, 25, 50, 100)
ANALYSIS = {"interval": "1s", "minRequests": 20}
SETTINGS = {"DRIFTLINE_ROLLOUT_INTERVAL_SECONDS": "1", "DRIFTLINE_RESOLVE_INTERVAL_SECONDS": "2"}


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    uri, mlflow = start_mlflow_server(root)
    try:
        with KubeCluster() as cluster:
            install_crds(cluster)
            kubeconfig = write_operator_kubeconfig(cluster, root / "kubeconfig")
            Kubectl(cluster)("create", "namespace", "bench")
            operator = OperatorProcess(kubeconfig, root, SETTINGS)
            operator.start()
            try:
                result = {
                    "settings": {**SETTINGS, "pause": PAUSE, "steps": STEPS, "analysis": ANALYSIS},
                    "promotion": promotion(cluster, Models(uri), uri, root),
                    "abort": abort(cluster, Models(uri), uri, root),
                }
            except Exception:
                print(operator.output(), file=sys.stderr)
                raise
            finally:
                operator.stop()
    finally:
        stop(mlflow)
        shutil.rmtree(root, ignore_errors=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rollout.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def stand_in(cluster: KubeCluster, name: str, root: Path) -> RouterStandIn:
    core = kubernetes.client.CoreV1Api(cluster.api_client())
    workdir = root / name
    workdir.mkdir()
    return RouterStandIn(core, "bench", name, workdir).start()


def deploy(cluster: KubeCluster, name: str, model: str, uri: str, steps: list[Any]) -> None:
    manifest = model_deployment(
        name, model, uri, rollout={"steps": steps}, analysis=ANALYSIS, promotion={"mode": "auto"}
    )
    Kubectl(cluster)("apply", "-n", "bench", "-f", "-", input=yaml.safe_dump(manifest))


def promotion(cluster: KubeCluster, models: Models, uri: str, root: Path) -> dict[str, Any]:
    """Seconds from the challenger alias move to the champion alias move, per step too."""
    model = models.create("promote", [0.80, 0.90])
    router = stand_in(cluster, "promote", root)
    try:
        deploy(cluster, "promote", model, uri, [
            {"challengerPercent": p, "pause": PAUSE} for p in STEPS
        ])  # fmt: skip
        time.sleep(3)  # the ModelDeployment settles on the champion alone
        moved = time.monotonic()
        models.registry().set_challenger(model, "2")
        wait_for(lambda: models.aliases(model).get("champion") == "2", 180, "no promotion in 3 min")
        promoted = time.monotonic()
        changes = [(t, bps) for t, bps in router.applied if t >= moved and bps]
    finally:
        router.stop()
    return {
        "alias_move_to_promotion_seconds": round(promoted - moved, 2),
        "split_applied_at_seconds": {str(bps // 100): round(t - moved, 2) for t, bps in changes},
        "requests_sent": len(router.answers),
        "non_200_answers": sum(code != 200 for code in router.answers),
    }


def abort(cluster: KubeCluster, models: Models, uri: str, root: Path) -> dict[str, Any]:
    """Seconds from the challenger's first failing answer to split 0 (operator, router)."""
    model = models.create("abort", [0.80, 0.90])
    models.registry().set_challenger(model, "2")
    router = stand_in(cluster, "abort", root)
    core = kubernetes.client.CoreV1Api(cluster.api_client())
    try:
        deploy(cluster, "abort", model, uri, [{"challengerPercent": 25, "pause": "1h"}])
        wait_for(lambda: 2500 in router.splits, 60, "the first step never applied")
        time.sleep(3)  # a few passing analyses first
        router.challenger.fail_every = 1

        def configmap_zero() -> float | None:
            found = core.read_namespaced_config_map("abort-split", "bench").data or {}
            return time.monotonic() if found.get("split_bps") == "0" else None

        decided = wait_for(configmap_zero, 60, "the operator never set the split to 0", 0.02)
        wait_for(lambda: router.splits[-1] == 0, 10, "the router never applied 0")
        first = router.challenger.first_failure_at
        assert first is not None
        applied = next(t for t, bps in router.applied if bps == 0 and t >= first)
    finally:
        router.stop()
    return {
        "first_failure_to_split_0_configmap_seconds": round(decided - first, 2),
        "first_failure_to_split_0_router_seconds": round(applied - first, 2),
    }


if __name__ == "__main__":
    main()
