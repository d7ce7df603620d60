"""The operator's wiring: the only module with kopf decorators.

Handlers are thin: they read the body, call ``model_deployment.reconcile`` or
``drift_policy.reconcile_policy``, write the returned status and post its Events. Errors map
here, once: MLflow or the API server unavailable -> a ``Degraded`` condition and
``kopf.TemporaryError`` (retry with back-off, children left running); a stored spec the API
types refuse -> ``Degraded`` (InvalidSpec) and ``kopf.PermanentError`` (the timers try again);
anything else is a bug and kopf's own back-off applies.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf
import kubernetes
from prometheus_client import start_http_server

from driftline.api.v1alpha1 import RESOURCES
from driftline_operator import drift_policy, model_deployment, names, rollout, specs
from driftline_operator.alerts import Alert
from driftline_operator.conditions import degraded_status
from driftline_operator.context import Context
from driftline_operator.kube import Kube, KubeTemporaryError
from driftline_operator.metrics import OperatorMetrics, operator_metrics
from driftline_operator.mlflow_rest import MlflowNotFoundError, MlflowRest, MlflowUnavailableError
from driftline_operator.outcome import Outcome
from driftline_operator.peering import TIEBREAKS, seniority_priority
from driftline_operator.prediction_log import PredictionLog
from driftline_operator.router_scrape import RouterScrape
from driftline_operator.settings import OperatorSettings
from driftline_operator.webhooks import Receiver, Webhooks

MD = (names.GROUP, names.VERSION, names.MODEL_DEPLOYMENTS)
DP = (names.GROUP, names.VERSION, names.DRIFT_POLICIES)
PLURALS = {resource.kind: resource.plural for resource in RESOURCES}
# Errors that mean "try again later", with the condition reason each is reported under.
TEMPORARY: dict[type[Exception], str] = {
    MlflowUnavailableError: "MlflowUnavailable",
    MlflowNotFoundError: "ModelNotFound",
    model_deployment.NoChampionError: "NoChampion",
    drift_policy.ModelDeploymentMissingError: "ModelDeploymentNotFound",
    KubeTemporaryError: "ApiServerUnavailable",
}


def now() -> datetime:
    """The operator's clock (UTC)."""
    return datetime.now(UTC)


def build_registry(
    settings: OperatorSettings, kube: Kube, metrics: OperatorMetrics
) -> kopf.OperatorRegistry:
    """Register every handler with the intervals and clients from ``settings``."""
    registry = kopf.OperatorRegistry()
    webhooks = Webhooks(
        receivers(settings, dict(os.environ)),
        metrics.webhook_deliveries,
        timeout=settings.webhook_timeout_seconds,
        attempts=settings.webhook_attempts,
    )
    log = PredictionLog(settings.health_log_store) if settings.health_log_store else None
    traffic = RouterScrape(kube, settings.scrape_timeout_seconds)
    mlflow = MlflowRest(settings.mlflow_timeout_seconds)
    context = Context(kube, mlflow, settings, traffic, log, now)
    peering_lifetime = settings.peering_lifetime_seconds

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        """Keep kopf's own bookkeeping under driftline.dev/ and out of status."""
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=names.GROUP, key="last-handled-configuration"
        )
        settings.persistence.finalizer = names.FINALIZER
        # Handler logs stay in the operator's log; Events are posted explicitly.
        settings.posting.level = logging.ERROR
        settings.execution.max_workers = 8
        settings.peering.lifetime = peering_lifetime
        webhooks.start()

    @kopf.on.cleanup(registry=registry)
    def stop_webhooks(**_: Any) -> None:
        """Stop the webhook workers (alerts not yet sent are logged as lost by count)."""
        webhooks.stop()

    def post(body: kopf.Body, events: list[tuple[str, str, str]]) -> None:
        """Post the Events, and send those that are alerts to the webhooks (queued only)."""
        kind, namespace, name = body["kind"], body.metadata.namespace or "", body.metadata.name
        plural = PLURALS[kind]
        for severity, reason, message in events:
            kopf.event(body, type=severity, reason=reason, message=message)
            alert = Alert(kind, namespace, name or "", severity, reason, message, now())
            webhooks.send(alert, plural)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """The same credentials as ``api_client()``: in-cluster, else the kubeconfig."""
        return kopf.login_via_client(**kwargs)

    @kopf.on.create(*MD, registry=registry)
    @kopf.on.update(*MD, registry=registry)
    @kopf.on.resume(*MD, registry=registry)
    def model_deployment_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Spec or annotations changed (or the operator started): converge fully."""
        _run(
            memo,
            body,
            lambda fresh: model_deployment.reconcile(context, fresh, converge=True),
        )

    def rollout_active(status: kopf.Status, **_: Any) -> bool:
        return (status.get("rollout") or {}).get("phase") in rollout.ACTIVE

    @kopf.timer(
        *MD,
        id="resync",
        interval=settings.resolve_interval_seconds,
        initial_delay=settings.resolve_interval_seconds,
        registry=registry,
    )
    # A step-wise rollout in progress is analysed and stepped more often than the resync.
    @kopf.timer(
        *MD,
        id="rollout",
        interval=settings.rollout_interval_seconds,
        when=rollout_active,
        registry=registry,
    )
    def model_deployment_resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """MLflow has no watch: re-resolve aliases; roll out only when something moved."""
        _run(
            memo,
            body,
            lambda fresh: model_deployment.reconcile(context, fresh, converge=False),
        )

    @kopf.on.delete(*MD, optional=True, registry=registry)
    def model_deployment_deleted(body: kopf.Body, **_: Any) -> None:
        """Forget its router scrapes (its children go by garbage collection)."""
        traffic.forget(names.Owner.of(dict(body)))

    @kopf.on.create(*DP, registry=registry)
    @kopf.on.update(*DP, registry=registry)
    @kopf.on.resume(*DP, registry=registry)
    @kopf.timer(*DP, interval=settings.drift_poll_seconds, registry=registry)
    def drift_policy_reconcile(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
        """Own the CronJob; account for finished checks and training Jobs."""
        _run(
            memo,
            body,
            lambda fresh: drift_policy.reconcile_policy(kube, fresh, settings, now()),
        )

    def _run(memo: kopf.Memo, body: kopf.Body, step: Callable[[dict[str, Any]], Outcome]) -> None:
        # Handlers and the timer of one object run in worker threads: one at a time per object,
        # each on a fresh read, since the body kopf passed may predate the previous one's write.
        kind, namespace, name = body["kind"], body.metadata.namespace or "", body.metadata.name
        lock = memo.setdefault("lock", threading.Lock())
        with lock:
            fresh = kube.get(kind, namespace, name or "")
            if fresh is None:
                return
            metrics.reconciles.labels(kind).inc()
            try:
                outcome = step(fresh)
            except tuple(TEMPORARY) as exc:
                reason = next(r for t, r in TEMPORARY.items() if isinstance(exc, t))
                _degrade(body, fresh, reason, exc)
                raise kopf.TemporaryError(str(exc), delay=settings.retry_delay_seconds) from exc
            except specs.InvalidSpecError as exc:
                _degrade(body, fresh, "InvalidSpec", exc)
                raise kopf.PermanentError(str(exc)) from exc
            except Exception:
                metrics.reconcile_errors.labels(kind, "Unexpected").inc()
                raise
            # Status is written here, inside the lock (not through kopf's patch after the
            # handler returns), so the next run's fresh read already sees it.
            kube.patch_status(kind, namespace, name or "", outcome.status)
            post(body, outcome.events)
            last_check = outcome.status.get("lastCheck") or {}
            if last_check.get("drifted") is not None:
                metrics.drift_detected.labels(namespace, name).set(int(last_check["drifted"]))
            metrics.record_drift(namespace, name or "", outcome.drift_scores)
            metrics.record_performance(namespace, name or "", outcome.performance)
            if kind == names.MODEL_DEPLOYMENT_KIND:
                metrics.record_rollout(namespace, name or "", outcome.status.get("rollout"))

    def _degrade(body: kopf.Body, fresh: dict[str, Any], reason: str, exc: Exception) -> None:
        kind, meta = fresh["kind"], fresh["metadata"]
        metrics.reconcile_errors.labels(kind, reason).inc()
        failed = degraded_status(fresh, reason, str(exc), now())
        # Timers keep firing on a lasting error: write and tell only what is news.
        if failed["conditions"] == (fresh.get("status") or {}).get("conditions"):
            return
        kube.patch_status(kind, meta["namespace"], meta["name"], failed)
        post(body, [("Warning", reason, str(exc))])

    return registry


def receivers(settings: OperatorSettings, environ: dict[str, str]) -> list[Receiver]:
    """The configured webhooks, each with its signing secret from ``environ`` (or none)."""
    out = []
    for webhook in settings.webhooks:
        secret = environ.get(webhook.secret_variable())
        out.append(
            Receiver(
                name=webhook.name,
                url=webhook.url,
                payload=webhook.payload,
                secret=secret.encode() if secret else None,
                types=frozenset(webhook.types),
            )
        )
    return out


def api_client() -> kubernetes.client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (``$KUBECONFIG``)."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


def run(settings: OperatorSettings) -> None:
    """Run the operator until it is stopped (blocking)."""
    metrics = operator_metrics()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, registry=metrics.registry)
    registry = build_registry(settings, Kube(api_client()), metrics)
    kopf.configure(verbose=False)
    kopf.run(
        registry=registry,
        # With peering, replicas are ranked by start time: a restarted replica never preempts
        # the one acting, and a tie (which would freeze both) needs the same millisecond and
        # the same random draw.
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=seniority_priority(time.time(), random.randrange(TIEBREAKS)),
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        liveness_endpoint=(
            f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
        ),
    )
