"""Faults in real pods, after the loop (test_1_loop.py) has run: operator failover, an inference
pod killed under load, PostgreSQL and MLflow restarted under load (issue 11, "Faults").

Each test measures and prints what users would ask about: failed requests, rows lost and how
the loss was counted, takeover and recovery times.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftline_operator.builders.pods import DRAIN_SECONDS
from tests.e2e import kit
from tests.e2e.conftest import MD, MLFLOW_URL, MODEL, RELEASE, Release

pytestmark = pytest.mark.cluster

OPERATOR_SELECTOR = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
SERVING_SELECTOR = f"driftline.dev/model-deployment={MD},app.kubernetes.io/component=serving"


def acting_operator(release: Release) -> tuple[str, list[str]]:
    """The pod that acts (highest live priority in the peering record) and all live pods."""
    peering = release.ns.cluster.get("clusterkopfpeering", RELEASE)
    peers: dict[str, dict[str, Any]] = peering.get("status") or {}
    pods = release.ns.get("pods", "-l", OPERATOR_SELECTOR)["items"]
    running = {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}
    live = {name: rec for name, rec in peers.items() if name in running}
    if len(live) < 2:
        raise AssertionError(f"expected two operator replicas in the peering, got {peers}")
    leader = max(live, key=lambda name: int(live[name]["priority"]))
    return leader, sorted(live)


def serving_pods(release: Release) -> list[dict[str, Any]]:
    """Serving pods of the ModelDeployment that are not terminating."""
    pods = release.ns.get("pods", "-l", SERVING_SELECTOR)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def log_counters(release: Release) -> dict[str, float]:
    """Sum over live serving pods of the log writer's written and dropped row counters."""
    totals = {"written": 0.0, "dropped": 0.0}
    for pod in serving_pods(release):
        text = httpx.get(f"http://{pod['status']['podIP']}:8080/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "driftline_log_written_rows_total":
                    totals["written"] += sample.value
                elif sample.name == "driftline_log_dropped_rows_total":
                    totals["dropped"] += sample.value
    return totals


def test_operator_failover_mid_rollout(release: Release, records: list[dict[str, Any]]) -> None:
    ns = release.ns
    leader, replicas = acting_operator(release)
    killed = [0.0]
    at_kill: list[dict[str, Any]] = [{}]

    def move_then_kill_the_leader() -> None:
        # A rollout only the operator can finish: the champion alias moved to v3 in MLflow.
        ns.run_job(
            "promote-v3", kit.TRAINER,
            ["promote", MODEL, "--tracking-uri", MLFLOW_URL, "--version", "3", "--force"], 300,
        )  # fmt: skip
        kit.wait_value(
            lambda: ns.get("deployment", f"{MD}-champion")["spec"]["template"]["metadata"][
                "annotations"
            ]["driftline.dev/model-version"],
            "3",
            60,
        )
        # The new pods cannot be ready yet, so the status that reports v3 ready (awaited
        # below) can only be written after the kill, by the other replica.
        at_kill[0] = ns.status("md", MD)
        ns.kubectl("delete", "pod", leader, "--grace-period=0", "--force", "--wait=false")
        killed[0] = time.monotonic()

    _, load = kit.roll_champion_under_load(
        ns, MD, release.router_url(), records, "e2e-failover", move_then_kill_the_leader, "3"
    )
    completed = time.monotonic() - killed[0]
    new_leader, _ = kit.wait_until(lambda: acting_operator(release), bool, 120)
    release.progress(
        f"faults: killed the acting operator {leader} mid-rollout; {new_leader} finished it "
        f"{completed:.0f}s later; {load.report()}"
    )
    assert not kit.served("3")(at_kill[0]), at_kill[0]
    assert new_leader != leader and new_leader in replicas, (leader, new_leader, replicas)
    load.assert_none_failed()


def test_an_inference_pod_killed_under_load_fails_no_request(
    release: Release, records: list[dict[str, Any]]
) -> None:
    ns = release.ns
    ns.kubectl(
        "patch", "md", MD, "--type=merge",
        "-p", '{"spec":{"serving":{"autoscaling":{"minReplicas":2,"maxReplicas":2}}}}',
    )  # fmt: skip
    kit.wait_value(lambda: len(serving_pods(release)), 2, 120)
    ns.rollout_done(f"{MD}-champion", 180)
    with kit.load_loop(release.router_url(), records, "e2e-podkill") as load:
        time.sleep(3)
        victim = serving_pods(release)[0]["metadata"]["name"]
        t0 = time.monotonic()
        ns.kubectl("delete", "pod", victim, "--wait=true", timeout=90)
        gone = time.monotonic() - t0
        ns.rollout_done(f"{MD}-champion", 180)
        time.sleep(3)
    release.progress(
        f"faults: deleted serving pod {victim} under load (gone after {gone:.1f}s, drained): "
        f"{load.report()}"
    )
    assert gone >= DRAIN_SECONDS, f"the pod stopped after {gone:.1f}s, before its drain period"
    load.assert_none_failed()


def test_postgres_restart_under_load_loses_only_counted_rows(
    release: Release, records: list[dict[str, Any]]
) -> None:
    ns = release.ns
    before = log_counters(release)
    (pg,) = ns.get("pods", "-l", "app.kubernetes.io/component=postgresql")["items"]
    name = pg["metadata"]["name"]

    def container() -> dict[str, Any]:
        return dict(ns.get("pod", name)["status"]["containerStatuses"][0])

    restarts = container()["restartCount"]
    with kit.load_loop(release.router_url(), records, "e2e-pgrestart") as load:
        time.sleep(3)
        t0 = time.monotonic()
        # A crash of the server: the postmaster quits without a shutdown checkpoint; the
        # container ends with it (tini, PID 1, exits when its child does) and the exec session
        # dies too (exit 137), so the restart count below is the proof that it went down.
        with contextlib.suppress(AssertionError):
            ns.kubectl(
                "exec", name, "--", "pg_ctl", "stop", "-m", "immediate",
                "-D", "/var/lib/postgresql/data/pgdata",
            )  # fmt: skip
        kit.wait_until(container, lambda c: c["restartCount"] > restarts and c["ready"], 120)
        back = time.monotonic() - t0
        time.sleep(5)
    load.assert_none_failed()
    answered = len(load.answers)
    # The writers flush on their own period: wait until written + dropped covers every request.
    after = kit.wait_until(
        lambda: log_counters(release),
        lambda c: (
            (c["written"] - before["written"]) + (c["dropped"] - before["dropped"]) >= answered
        ),
        90,
    )
    rows = release.log_rows("e2e-pgrestart-")
    dropped = after["dropped"] - before["dropped"]
    release.progress(
        f"faults: PostgreSQL restarted under load (ready again after {back:.1f}s): "
        f"{answered} requests answered, {rows} rows, {dropped:.0f} counted as dropped"
    )
    assert rows + dropped == answered, (rows, dropped, answered)


def test_mlflow_outage_degrades_the_deployment_and_it_recovers(
    release: Release, records: list[dict[str, Any]]
) -> None:
    ns = release.ns
    mlflow = f"{RELEASE}-mlflow"

    def degraded(status: dict[str, Any]) -> bool:
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        return conditions.get("Degraded", {}).get("status") == "True"

    with kit.load_loop(release.router_url(), records, "e2e-mlflow") as load:
        t0 = time.monotonic()
        # Last test on purpose: the chart keeps MLflow's artifacts on the pod's emptyDir, which
        # goes with the pod (the registry itself is in PostgreSQL and stays).
        ns.kubectl("scale", "deployment", mlflow, "--replicas=0")
        status = kit.wait_status(ns, "md", MD, degraded, 120, "the outage was not reported")
        reported = time.monotonic() - t0
        reason = {c["type"]: c for c in status["conditions"]}["Degraded"]["reason"]
        ns.kubectl("scale", "deployment", mlflow, "--replicas=1")
        ns.rollout_done(mlflow, 180)
        t1 = time.monotonic()
        kit.wait_status(ns, "md", MD, lambda s: not degraded(s), 120, "no recovery")
        recovered = time.monotonic() - t1
    release.progress(
        f"faults: MLflow down -> Degraded ({reason}) after {reported:.0f}s, serving went on "
        f"({load.report()}); recovered {recovered:.0f}s after MLflow was back"
    )
    load.assert_none_failed()
