"""The Driftline loop end to end in real pods, one step per test, in order (issue 11, steps 1-7).

Each step prints its timing. The steps share the release and the model's history: a failing
step makes the later ones fail too (``make test-e2e`` stops at the first failure).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pandas as pd
import pytest

from driftline_serving.split import choose
from tests.e2e import kit
from tests.e2e.conftest import DB_SECRET, MD, MLFLOW_URL, MODEL, Release

pytestmark = pytest.mark.cluster

DP = "adult-income-drift"
SPLIT_PERCENT = 30
TRAIN_TIMEOUT = 900.0
SPLIT_REQUESTS = 3_000
SHIFTED_REQUESTS = 2_000
# The HPA condition of a controller that measures CPU.
VALID_METRIC = ("True", "ValidMetricFound")


def model_deployment() -> dict[str, Any]:
    """The ModelDeployment under test: ONNX serving, 30% canary, HPA on CPU, logging to PG."""
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": MD},
        "spec": {
            "model": {"name": MODEL, "trackingUri": MLFLOW_URL},
            "serving": {
                "runtime": "onnx",
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "512Mi"},
                },
                "autoscaling": {
                    "minReplicas": 1,
                    "maxReplicas": 2,
                    "targetCPUUtilizationPercentage": 50,
                },
            },
            "traffic": {"challengerPercent": SPLIT_PERCENT},
            "promotion": {"mode": "manual"},
            "logging": {"storeRef": {"secretName": DB_SECRET}},
        },
    }


def drift_policy() -> dict[str, Any]:
    """A check every minute over the last hour; one retraining per hour at most."""
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": DP},
        "spec": {
            "modelDeploymentRef": {"name": MD},
            "schedule": "* * * * *",
            "window": {"lookback": "1h", "minSamples": 500},
            "retrain": {
                "enabled": True,
                "cooldown": "1h",
                "args": ["--folds", "2", "--seed", "3"],
                "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                    "limits": {"cpu": "2", "memory": "2Gi"},
                },
            },
        },
    }


def train_args(seed: int, alias: str) -> list[str]:
    """``driftline train`` registering a version of the model under ``alias``."""
    return [
        "train", "--tracking-uri", MLFLOW_URL, "--register", MODEL, "--alias", alias,
        "--seed", str(seed), "--folds", "2", "--json",
    ]  # fmt: skip


def test_1_champion_serves_through_the_stable_service(
    release: Release, adult_test: pd.DataFrame
) -> None:
    ns = release.ns
    t0 = time.monotonic()
    ns.run_job("train-v1", kit.TRAINER, train_args(1, "champion"), TRAIN_TIMEOUT)
    release.progress(
        f"step 1: training Job registered v1 as champion in {time.monotonic() - t0:.0f}s"
    )
    t0 = time.monotonic()
    ns.apply(model_deployment())
    kit.wait_status(ns, "md", MD, kit.served("1"), 300, "the champion (v1) did not become ready")
    ns.rollout_done(f"{MD}-router", 120)
    release.progress(f"step 1: champion pods ready in {time.monotonic() - t0:.0f}s")
    (record,) = kit.feature_records(adult_test.head(1))
    with httpx.Client(timeout=10) as client:
        answer = kit.predict(client, release.router_url(), record, "e2e-host-1")
    assert (answer.status, answer.variant, answer.version) == (200, "champion", "1"), answer
    toolbox = kit.toolbox(ns)
    body = kit.exec_predict(ns, toolbox, f"http://{MD}/predict", record, "e2e-pod-1")
    assert body["variant"] == "champion" and body["version"] == "1", body
    release.progress("step 1: /predict answered through the Service from the host and a pod")


def test_2_challenger_rolls_out_and_the_split_follows_the_request_id(
    release: Release, adult_test: pd.DataFrame
) -> None:
    ns = release.ns
    t0 = time.monotonic()
    ns.run_job("train-v2", kit.TRAINER, train_args(2, "challenger"), TRAIN_TIMEOUT)
    kit.wait_status(
        ns, "md", MD, kit.served("2", "challenger"), 300, "the challenger (v2) did not roll out"
    )
    release.progress(
        f"step 2: v2 trained and rolled out as challenger in {time.monotonic() - t0:.0f}s"
    )
    records = kit.feature_records(adult_test.head(SPLIT_REQUESTS))
    t0 = time.monotonic()
    # The router reads its split from a mounted ConfigMap: wait until v2 is being answered.
    wait_probe = kit.wait_challenger_share(release.router_url(), records[0])
    answers = kit.send(release.router_url(), records, "e2e-split")
    seconds = time.monotonic() - t0
    failed = [a for a in answers if a.status != 200]
    assert not failed, failed[:5]
    expected = {a.request_id: choose(a.request_id, SPLIT_PERCENT * 100) for a in answers}
    wrong = [a for a in answers if a.variant != expected[a.request_id]]
    assert not wrong, f"{len(wrong)} requests met the other variant: {wrong[:5]}"
    share = Counter(a.variant for a in answers)["challenger"] / len(answers)
    assert abs(share - SPLIT_PERCENT / 100) <= 0.02, share
    versions = {(a.variant, a.version) for a in answers}
    assert versions == {("champion", "1"), ("challenger", "2")}, versions
    again = kit.send(release.router_url(), records[:300], "e2e-split")
    first = {a.request_id: a.variant for a in answers}
    assert len(again) == 300 and all(first[a.request_id] == a.variant for a in again)
    release.progress(
        f"step 2: {len(answers)} requests in {seconds:.1f}s (+{wait_probe:.0f}s for the split "
        f"file), challenger share {share:.3f} (setting {SPLIT_PERCENT / 100}), "
        f"every id on its hashed variant, repeats stable"
    )


def test_3_every_answered_request_is_a_row_in_the_in_cluster_log(release: Release) -> None:
    t0 = time.monotonic()
    # 3,000 distinct ids answered in step 2, plus 300 repeats of the first ids.
    expected = SPLIT_REQUESTS + 300
    # Exactly: more rows than requests would fail as surely as fewer.
    rows = kit.wait_value(lambda: release.log_rows("e2e-split-"), expected, 60)
    release.progress(
        f"step 3: {rows} rows = requests in PostgreSQL after {time.monotonic() - t0:.1f}s"
    )


def test_4_drift_check_in_a_pod_names_the_shifted_features(
    release: Release, adult_test: pd.DataFrame
) -> None:
    ns = release.ns
    t0 = time.monotonic()
    ns.apply(drift_policy())
    first = kit.wait_status(
        ns, "driftpolicy", DP,
        lambda s: (s.get("lastCheck") or {}).get("state") == "Succeeded", 240,
        "no drift check finished",
    )["lastCheck"]  # fmt: skip
    assert first["drifted"] is False, first
    release.progress(
        f"step 4: first check ({first['samples']} rows of normal traffic): no drift, "
        f"after {time.monotonic() - t0:.0f}s"
    )
    older = adult_test[adult_test["age"] >= 55]
    shifted = kit.feature_records(older.head(SHIFTED_REQUESTS))
    answers = kit.send(release.router_url(), shifted, "e2e-shifted")
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} failed: {failed[:5]}"
    sent_at = time.monotonic()
    check = kit.wait_status(
        ns, "driftpolicy", DP,
        lambda s: (s.get("lastCheck") or {}).get("drifted") is True, 240,
        "the shifted traffic was not found drifted",
    )["lastCheck"]  # fmt: skip
    assert "age" in check["features"], check
    release.progress(
        f"step 4: {len(shifted)} requests aged 55+; drift found {time.monotonic() - sent_at:.0f}s "
        f"later in features {check['features']}: {check['reason'][:120]}"
    )


def test_5_one_training_job_registers_a_challenger_that_rolls_out(release: Release) -> None:
    ns = release.ns
    t0 = time.monotonic()
    status = kit.wait_status(
        ns, "driftpolicy", DP,
        lambda s: (s.get("lastRetrain") or {}).get("state") in ("Succeeded", "Failed"),
        TRAIN_TIMEOUT, "the retraining Job did not finish",
    )  # fmt: skip
    assert status["lastRetrain"]["state"] == "Succeeded", status["lastRetrain"]
    kit.wait_status(
        ns,
        "md",
        MD,
        kit.served("3", "challenger"),
        300,
        "the retrained challenger (v3) did not roll out",
    )
    release.progress(
        f"step 5: retrained v3 rolled out as challenger in {time.monotonic() - t0:.0f}s"
    )
    # A later check still sees drift; the cooldown keeps it at one Job.
    known = (status["lastRetrain"]["trigger"], status["lastCheck"]["job"])
    later = kit.wait_status(
        ns, "driftpolicy", DP,
        lambda s: (s.get("lastCheck") or {}).get("job") not in known,
        150, "no later drift check finished",
    )["lastCheck"]  # fmt: skip
    assert later["drifted"] is True, later
    trainings = kit.drift_jobs(ns, DP, "train")
    assert len(trainings) == 1, [j["metadata"]["name"] for j in trainings]
    release.progress("step 5: a later check found drift again and started no second training Job")


def test_6_promotion_and_rollback_roll_the_champion_without_failed_requests(
    release: Release, records: list[dict[str, Any]]
) -> None:
    ns = release.ns
    url = release.router_url()

    def promote() -> None:
        ns.kubectl("annotate", "md", MD, f"driftline.dev/promote={time.time():.0f}", "--overwrite")

    def rollback() -> None:
        ns.run_job("rollback", kit.TRAINER, ["rollback", MODEL, "--tracking-uri", MLFLOW_URL], 300)

    for what, move, version in (("promoted", promote, "3"), ("rolled back to", rollback, "1")):
        seconds, load = kit.roll_champion_under_load(
            ns, MD, url, records, f"e2e-{what.split()[0]}", move, version
        )
        release.progress(f"step 6: {what} v{version} in {seconds:.0f}s under load: {load.report()}")
        load.assert_none_failed()


def test_7_hpa_scales_the_champion_on_cpu_and_the_operator_keeps_it(
    release: Release, records: list[dict[str, Any]]
) -> None:
    ns = release.ns
    # The HPA and the Deployment it scales share the name.
    hpa = champion = f"{MD}-champion"

    def cpu_rescale() -> str | None:
        # The HPA's own record that it scaled up on measured CPU (steps 5-6 may already have
        # loaded it: the event stays, so the evidence does not depend on when it happened).
        for event in ns.events(hpa):
            message = event.get("message", "")
            if event.get("reason") == "SuccessfulRescale" and "cpu" in message:
                return str(message)
        return None

    t0 = time.monotonic()
    with kit.load_loop(release.router_url(), records, "e2e-hpa", workers=6) as load:
        kit.wait_value(lambda: ns.get("deployment", champion)["spec"]["replicas"] >= 2, True, 300)
        rescale = kit.wait_until(cpu_rescale, bool, 120)
        scaled = time.monotonic() - t0

        def scaling_active() -> dict[str, Any]:
            conditions = {c["type"]: c for c in ns.status("hpa", hpa).get("conditions", [])}
            return dict(conditions.get("ScalingActive", {}))

        # A replica it just added has no CPU sample yet (FailedGetResourceMetric until the
        # metrics-server's next scrape): the HPA must be measuring again soon after.
        kit.wait_until(
            scaling_active, lambda c: (c.get("status"), c.get("reason")) == VALID_METRIC, 90
        )
        # Four resolve intervals, read every second: an operator reset to one replica would
        # show here even if the HPA scaled back up at its next sync.
        seen = []
        for _ in range(20):
            seen.append(ns.get("deployment", champion)["spec"]["replicas"])
            time.sleep(1)
        replicas = min(seen)
    release.progress(
        f"step 7: HPA at {replicas} replicas {scaled:.0f}s into the load ({load.report()}); "
        f"event: {rescale}; the operator left it there"
    )
    assert replicas >= 2, replicas
    load.assert_none_failed()
