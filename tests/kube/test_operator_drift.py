"""DriftPolicy on the real tier: the operator owns the CronJob, reads a finished drift Job's
summary from its Pod's termination message, and creates exactly one training Job per breach
outside the cooldown, across an operator restart.

The tier has no kubelet, so the test plays the kubelet: it writes the drift Pod's status
(phase Succeeded, the summary as termination message) and the real Job controller then
completes the Job. The training Job is completed the same way. The messages are built with the
contract models the Jobs write them with (driftline.job_contracts)."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import socket
import threading
import time
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
    PerformanceRule,
    PerformanceSummary,
    PredictionSummary,
    TrainingResult,
    VariantPerformance,
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
# No drift, but the champion's labelled AUC fell far below its floor.
PERFORMANCE_BREACH = DriftCheckSummary(
    status="no_drift",
    drifted=False,
    reason="no feature drifted",
    samples={"reference": 1000, "current": 800},
    max_psi=0.02,
    thresholds=DriftThresholds(min_samples=200),
    features_checked=14,
    features_drifted=0,
    features_omitted=14,
    features=[],
    prediction=PredictionSummary(checked=False, drifted=None, note="no probabilities"),
    performance=PerformanceSummary(
        status="breach",
        breached=True,
        reason="roc_auc 0.31 (95% interval 0.27 to 0.35) of version 1 is below 0.85",
        metric="roc_auc",
        version="1",
        value=0.31,
        low=0.27,
        high=0.35,
        limit=0.85,
        reference=0.93,
        labelled=600,
        variants=[
            VariantPerformance(
                version="1", variant="champion", served=800, labelled=600, coverage=0.75,
                roc_auc=0.31, accuracy=0.4, roc_auc_estimated=0.9, accuracy_estimated=0.85,
            ),
            VariantPerformance(
                version="2", variant="challenger", served=80, labelled=10, coverage=0.125,
                roc_auc=None, accuracy=None, roc_auc_estimated=0.91, accuracy_estimated=0.86,
            ),
        ],
    ),
).model_dump_json()  # fmt: skip
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


def start_policy(
    models: Models,
    mlflow_server: MlflowServer,
    kubectl: Kubectl,
    api_client: kubernetes.client.ApiClient,
    namespace: str,
    model_prefix: str,
    policy: str,
    spec: dict[str, Any],
) -> tuple[str, Any]:
    """A logging ModelDeployment ``income`` of a new model and a DriftPolicy on it with
    ``spec``; the registered model's name and the policy's CronJob."""
    model = models.create(model_prefix, [0.9])
    logging = {"storeRef": {"secretName": "inference-log-db"}}
    apply(kubectl, namespace, model_deployment("income", model, mlflow_server.uri, logging=logging))
    body = {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": policy},
        # A schedule that never fires during the test: the test starts the runs itself.
        "spec": {"modelDeploymentRef": {"name": "income"}, "schedule": "0 0 1 1 *", **spec},
    }
    apply(kubectl, namespace, body)
    batch = kubernetes.client.BatchV1Api(api_client)
    cronjob = wait_for(
        lambda: batch.read_namespaced_cron_job(f"{policy}-drift", namespace), 5, "no CronJob"
    )
    return model, cronjob


def test_breach_trains_once_and_cooldown_holds_across_restart(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    model, cronjob = start_policy(
        models, mlflow_server, kubectl, api_client, namespace, "drift", "income-drift",
        {"window": {"lookback": "30m", "minSamples": 200},
         "retrain": {"cooldown": "1h", "args": ["--folds", "2"]}},
    )  # fmt: skip
    batch = kubernetes.client.BatchV1Api(api_client)
    core = kubernetes.client.CoreV1Api(api_client)
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


def test_a_performance_breach_trains_once_and_says_so(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    _, cronjob = start_policy(
        models, mlflow_server, kubectl, api_client, namespace, "performance", "income-truth",
        {"performance": {"floor": 0.85, "lookback": "2d", "minLabels": 300},
         "retrain": {"cooldown": "1h"}},
    )  # fmt: skip
    batch = kubernetes.client.BatchV1Api(api_client)
    core = kubernetes.client.CoreV1Api(api_client)
    args = cronjob.spec.job_template.spec.template.spec.containers[0].args
    rule = PerformanceRule.model_validate_json(args[args.index("--performance") + 1])
    assert rule == PerformanceRule(floor=0.85, lookback_seconds=172_800, min_labels=300)

    run_drift_job(batch, core, namespace, cronjob, "truth-1", PERFORMANCE_BREACH)
    dp = wait_status(
        api_client, namespace, "driftpolicies", "income-truth",
        lambda o: o.get("status", {}).get("lastRetrain", {}).get("state") == "Running",
        15, "no training Job after a performance breach",
    )  # fmt: skip
    check, retrain = dp["status"]["lastCheck"], dp["status"]["lastRetrain"]
    assert check["drifted"] is False
    assert check["performance"]["status"] == "breach"
    assert (check["performance"]["high"], check["performance"]["limit"]) == (0.35, 0.85)
    assert (retrain["cause"], retrain["trigger"]) == ("performance", "truth-1")
    jobs = batch.list_namespaced_job(namespace, label_selector=TRAIN_SELECTOR).items
    assert [j.metadata.name for j in jobs] == [retrain["job"]]
    events = {e.reason: e for e in core.list_namespaced_event(namespace).items}
    assert events["PerformanceChecked"].type == "Warning"
    assert "roc_auc 0.31" in events["RetrainStarted"].message
    printed = kubectl("get", "driftpolicy", "income-truth", "-n", namespace).stdout
    assert "PERFORMANCE" in printed.splitlines()[0] and "breach" in printed

    samples = {
        (s.name, s.labels.get("version"), s.labels.get("variant"), s.labels.get("metric")): s.value
        for family in text_string_to_metric_families(httpx.get(operator.metrics_url).text)
        for s in family.samples
        if s.labels.get("policy") == "income-truth"
    }
    assert samples[("driftline_performance_realised", "1", "champion", "roc_auc")] == 0.31
    assert samples[("driftline_performance_estimated", "1", "champion", "roc_auc")] == 0.9
    assert samples[("driftline_label_coverage", "1", "champion", None)] == 0.75
    realised_challenger = samples[("driftline_performance_realised", "2", "challenger", "roc_auc")]
    assert realised_challenger != realised_challenger  # NaN: below minLabels

    # A second breach while the first training runs starts nothing more.
    run_drift_job(batch, core, namespace, cronjob, "truth-2", PERFORMANCE_BREACH)
    dp = wait_status(
        api_client, namespace, "driftpolicies", "income-truth",
        lambda o: o["status"]["lastCheck"]["job"] == "truth-2",
        15, "the second check was not recorded",
    )  # fmt: skip
    skipped = dp["status"]["lastRetrain"]["skippedReason"]
    assert skipped == "performance breach; a training Job is already running"
    assert len(batch.list_namespaced_job(namespace, label_selector=TRAIN_SELECTOR).items) == 1


class Receiver:
    """A real HTTP receiver on loopback: records each POST; the first one to /hooks gets a 500.

    Two receivers may post here at once (/hooks and /chat), in either order: only the path
    decides which POST fails.
    """

    def __init__(self) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                # HTTP header names are case-insensitive (urllib sends "Content-type").
                headers = {k.lower(): v for k, v in self.headers.items()}
                received.append(({**headers, "path": self.path}, body))
                hooks = sum(1 for seen, _ in received if seen["path"] == "/hooks")
                self.send_response(500 if self.path == "/hooks" and hooks == 1 else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_alerts_reach_a_webhook_signed_retried_and_a_dead_one_costs_nothing(
    operator: OperatorProcess,
    models: Models,
    mlflow_server: MlflowServer,
    api_client: kubernetes.client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    receiver = Receiver()
    # A dead receiver: it accepts connections (the kernel's backlog) and never answers.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(16)
    secret = "s3cret-for-tests"
    webhooks = [
        {"name": "ops", "url": receiver.url},
        {"name": "dead-end", "url": f"http://127.0.0.1:{dead.getsockname()[1]}/"},
        {"name": "chat", "url": receiver.url.replace("/hooks", "/chat"), "payload": "slack",
         "types": ["dev.driftline.retrain.started"]},
    ]  # fmt: skip
    saved = dict(operator.env_overrides)
    operator.env_overrides.update(
        DRIFTLINE_WEBHOOKS=json.dumps(webhooks),
        DRIFTLINE_WEBHOOK_SECRET_OPS=secret,
        DRIFTLINE_WEBHOOK_TIMEOUT_SECONDS="2",
        DRIFTLINE_WEBHOOK_ATTEMPTS="3",
    )
    try:
        operator.restart()
        _, cronjob = start_policy(
            models, mlflow_server, kubectl, api_client, namespace, "alerts", "income-alerts",
            {"retrain": {"cooldown": "1h"}},
        )  # fmt: skip
        batch = kubernetes.client.BatchV1Api(api_client)
        core = kubernetes.client.CoreV1Api(api_client)
        run_drift_job(batch, core, namespace, cronjob, "alerts-1", BREACH)
        started = time.monotonic()
        wait_status(
            api_client, namespace, "driftpolicies", "income-alerts",
            lambda o: o.get("status", {}).get("lastRetrain", {}).get("state") == "Running",
            15, "no training Job recorded after a breach",
        )  # fmt: skip
        # The dead receiver's 2 s timeouts and back-off did not hold the status up.
        assert time.monotonic() - started < 5

        def cloudevents() -> list[dict[str, Any]]:
            return [
                json.loads(body)
                for headers, body in receiver.received
                if headers["content-type"] == "application/cloudevents+json"
            ]

        wait_for(lambda: len(cloudevents()) >= 3, 20, "alerts not delivered (with one retry)")
        types = [event["type"] for event in cloudevents()]
        # The first POST got a 500 and was sent again: the drift alert arrives twice.
        assert types[:2] == ["dev.driftline.drift.detected"] * 2
        assert "dev.driftline.retrain.started" in types
        for headers, body in receiver.received:
            if headers["content-type"] != "application/cloudevents+json":
                continue
            expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers["x-driftline-signature"], expected)
        drift = cloudevents()[0]
        assert drift["specversion"] == "1.0" and drift["subject"] == "income-alerts"
        assert drift["source"].endswith(f"/namespaces/{namespace}/driftpolicies/income-alerts")
        assert drift["data"]["severity"] == "Warning"
        # The chat receiver takes one type, as Slack text, unsigned (it has no secret).
        slack = [(h, json.loads(b)) for h, b in receiver.received if "cloudevents" not in str(h)]
        assert [body["text"].split("*")[1] for _, body in slack] == ["RetrainStarted"]
        assert all("x-driftline-signature" not in headers for headers, _ in slack)

        def deliveries() -> dict[tuple[str, str], float]:
            return {
                (s.labels["webhook"], s.labels["outcome"]): s.value
                for family in text_string_to_metric_families(httpx.get(operator.metrics_url).text)
                for s in family.samples
                if s.name == "driftline_webhook_deliveries_total"
            }

        wait_for(lambda: deliveries().get(("dead-end", "failed"), 0) >= 1, 30, "dead not failed")
        assert deliveries()[("ops", "delivered")] >= 2
    finally:
        operator.env_overrides.clear()
        operator.env_overrides.update(saved)
        operator.restart()
        receiver.server.shutdown()
        dead.close()
