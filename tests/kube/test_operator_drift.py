"""DriftPolicy on the real tier: the operator owns the CronJob, reads a finished drift Job's
summary from its Pod's termination message, and creates exactly one training Job per breach
outside the cooldown, across an operator restart.

The tier has no kubelet, so the test plays the kubelet: it writes the drift Pod's status
(phase Succeeded, the summary as termination message) and the real Job controller then
completes the Job. The training Job is completed the same way. The messages are built with the
contract models the Jobs write them with (driftline.job_contracts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import kubernetes
import pytest
from prometheus_client.parser import text_string_to_metric_families

from driftline.job_contracts import (
    DriftCheckSummary,
    DriftThresholds,
    FeatureSummary,
    PredictionSummary,
    TrainingResult,
)
from tests.integration.conftest import MlflowServer
from tests.kube.cluster import Kubectl
from tests.kube.operator_fixtures import Models, OperatorProcess, model_deployment, wait_status
from tests.kube.test_operator import apply
from tests.processes import wait_for

pytestmark = pytest.mark.kube

BREACH = DriftCheckSummary(
    status="drift",
    drifted=True,
    reason="1 of 14 features drifted",
    samples={"reference": 1000, "current": 800},
    max_psi=0.41,
    thresholds=DriftThresholds(min_samples=200),
    features_checked=14,
    features_drifted=1,
    features_omitted=12,
    features=[
        FeatureSummary(
            name="age", test="ks", psi=0.41, p_value=1e-6, p_adjusted=1e-5, drifted=True
        ),
        FeatureSummary(
            name="hours-per-week", test="ks", psi=0.05, p_value=0.2, p_adjusted=0.6, drifted=False
        ),
    ],
    prediction=PredictionSummary(checked=False, drifted=None, note="no probabilities"),
).model_dump_json()
# A summary cut short (or written by another version): the check is Failed, not a KeyError.
UNREADABLE = '{"contract_version": 1, "status": "drift", "drifted": tr'  # fmt: skip
TRAIN_SELECTOR = "app.kubernetes.io/component=train"


def finish_pod(core: Any, namespace: str, job: str, message: str) -> None:
    """Play the kubelet: the Job's Pod ran and exited 0, leaving ``message``."""
    (pod,) = wait_for(
        lambda: core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items,
        30,
        f"the Job controller created no Pod for {job}",
    )
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    container = pod.spec.containers[0]
    terminated = {"exitCode": 0, "reason": "Completed", "message": message,
                  "startedAt": now, "finishedAt": now}  # fmt: skip
    core.patch_namespaced_pod_status(
        pod.metadata.name,
        namespace,
        {"status": {"phase": "Succeeded", "containerStatuses": [
            {"name": container.name, "image": container.image, "imageID": "", "ready": False,
             "restartCount": 0, "state": {"terminated": terminated}}]}},
    )  # fmt: skip


def run_drift_job(
    batch: Any, core: Any, namespace: str, cronjob: Any, name: str, summary: str
) -> None:
    """What the CronJob controller would start, run to completion with ``summary``."""
    template = cronjob.spec.job_template
    owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob.metadata.name,
             "uid": cronjob.metadata.uid, "controller": True}  # fmt: skip
    api = kubernetes.client.ApiClient()
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": template.metadata.labels, "ownerReferences": [owner]},
        "spec": api.sanitize_for_serialization(template.spec),
    }
    batch.create_namespaced_job(namespace, job)
    finish_pod(core, namespace, name, summary)
    wait_for(
        lambda: any(c.type == "Complete" and c.status == "True"
                    for c in batch.read_namespaced_job(name, namespace).status.conditions or []),
        30, f"the Job controller did not complete {name}",
    )  # fmt: skip


def test_breach_trains_once_and_cooldown_holds_across_restart(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    model = models.create("drift", [0.9])
    logging = {"storeRef": {"secretName": "inference-log-db"}}
    apply(kubectl, namespace, model_deployment("income", model, mlflow_server.uri, logging=logging))
    policy = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": "income-drift"},
        # A schedule that never fires during the test: the test starts the runs itself.
        "spec": {"modelDeploymentRef": {"name": "income"}, "schedule": "0 0 1 1 *",
                 "window": {"lookback": "30m", "minSamples": 200},
                 "retrain": {"cooldown": "1h", "args": ["--folds", "2"]}},
    }  # fmt: skip
    apply(kubectl, namespace, policy)
    batch = kubernetes.client.BatchV1Api(api_client)
    core = kubernetes.client.CoreV1Api(api_client)
    cronjob = wait_for(
        lambda: batch.read_namespaced_cron_job("income-drift-drift", namespace), 5, "no CronJob"
    )
    assert cronjob.spec.concurrency_policy == "Forbid"
    args = cronjob.spec.job_template.spec.template.spec.containers[0].args
    assert args[:4] == ["drift-check", "--json", "--termination-log", "/dev/termination-log"]
    assert args[args.index("--lookback") + 1] == "30m"
    thresholds = DriftThresholds.model_validate_json(args[args.index("--thresholds") + 1])
    assert thresholds == DriftThresholds(min_samples=200)
    env = cronjob.spec.job_template.spec.template.spec.containers[0].env
    store = next(e for e in env if e.name == "DRIFTLINE_LOG_STORE")
    assert store.value is None and store.value_from.secret_key_ref.name == "inference-log-db"

    def training_jobs() -> list[Any]:
        return batch.list_namespaced_job(namespace, label_selector=TRAIN_SELECTOR).items

    run_drift_job(batch, core, namespace, cronjob, "drift-1", BREACH)
    dp = wait_status(
        api_client, namespace, "driftpolicies", "income-drift",
        lambda o: o.get("status", {}).get("lastRetrain", {}).get("state") == "Running",
        15, "no training Job recorded after a breach",
    )  # fmt: skip
    check = dp["status"]["lastCheck"]
    assert (check["job"], check["drifted"], check["samples"], check["features"]) == (
        "drift-1",
        True,
        800,
        ["age"],
    )
    (training,) = training_jobs()
    assert dp["status"]["lastRetrain"]["job"] == training.metadata.name
    # The scores of the check the operator read are exported for Prometheus.
    samples = {
        (s.name, s.labels.get("feature")): s.value
        for family in text_string_to_metric_families(httpx.get(operator.metrics_url).text)
        for s in family.samples
        if s.labels.get("namespace") == namespace and s.labels.get("policy") == "income-drift"
    }
    assert samples[("driftline_drift_feature_psi", "age")] == 0.41
    assert samples[("driftline_drift_max_psi", None)] == 0.41
    assert samples[("driftline_drift_detected", None)] == 1.0
    train_args = training.spec.template.spec.containers[0].args
    assert train_args == ["train", "--register", model, "--alias", "challenger", "--json",
                          "--termination-log", "/dev/termination-log", "--folds", "2"]  # fmt: skip
    assert training.metadata.owner_references[0].kind == "DriftPolicy"

    trained = TrainingResult(model_name=model, version="7", run_id="r", roc_auc=0.93)
    finish_pod(core, namespace, training.metadata.name, trained.model_dump_json())
    dp = wait_status(
        api_client, namespace, "driftpolicies", "income-drift",
        lambda o: o["status"]["lastRetrain"]["state"] == "Succeeded",
        30, "the training outcome was not recorded",
    )  # fmt: skip
    assert dp["status"]["lastRetrain"]["registeredVersion"] == "7"

    operator.restart()
    run_drift_job(batch, core, namespace, cronjob, "drift-2", BREACH)
    dp = wait_status(
        api_client, namespace, "driftpolicies", "income-drift",
        lambda o: o["status"]["lastCheck"]["job"] == "drift-2",
        15, "the second check was not recorded",
    )  # fmt: skip
    assert "cooldown" in dp["status"]["lastRetrain"]["skippedReason"]
    assert len(training_jobs()) == 1, "a breach inside the cooldown started another training"
    reasons = [e.reason for e in core.list_namespaced_event(namespace).items]
    assert reasons.count("RetrainStarted") == 1

    run_drift_job(batch, core, namespace, cronjob, "drift-3", UNREADABLE)
    dp = wait_status(
        api_client, namespace, "driftpolicies", "income-drift",
        lambda o: o["status"]["lastCheck"]["job"] == "drift-3",
        15, "the unreadable check was not recorded",
    )  # fmt: skip
    check = dp["status"]["lastCheck"]
    assert check["state"] == "Failed" and "DriftCheckSummary does not parse" in check["reason"]
    assert "drifted" not in check and "features" not in check, "stale fields of drift-2 kept"
    (degraded,) = [c for c in dp["status"]["conditions"] if c["type"] == "Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "DriftSummaryUnreadable")
    assert operator.output().count("Traceback") == 0
