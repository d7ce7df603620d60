"""Every constrained field of both CRDs at its boundaries, against the real API server.

A value the API server admits must be one its consumers accept: the operator's builders and
decisions, the API server itself when the operator creates the children (dry run), and the
Job CLIs parsing the arguments the builders put into the Jobs. A value just past a boundary
must be refused at admission (422) with the field named.

The schema walk makes the table complete: a new constraint in crds/ without boundary values
here fails ``test_every_constrained_field_has_boundaries``. The CRDs are generated from the API
types (driftline.api), so the first consumer of an admitted object is the spec model itself,
and the defaults the API server fills in must be the models' (``test_server_defaults_...``).
"""

from __future__ import annotations

import copy
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes
import numpy as np
import pytest
import yaml
from kubernetes.client.rest import ApiException
from mlflow.utils.validation import _validate_model_name

from driftline.api.v1alpha1 import (
    DriftPolicySpec,
    LastCheck,
    LastPerformance,
    ModelDeploymentSpec,
)
from driftline.job_contracts import PerformanceRule
from driftline_cli import drift_cmd, train_cmd
from driftline_cli.main import build_parser
from driftline_cli.settings import CliSettings
from driftline_operator import names, specs
from driftline_operator.analysis import Predictions, analyse, behaviour_gates, shadow_gates
from driftline_operator.builders.children import desired_children
from driftline_operator.builders.drift import build_drift_cronjob, build_training_job
from driftline_operator.conditions import rfc3339
from driftline_operator.decisions import decide_auto_promotion, decide_retrain
from driftline_operator.prometheus_query import PrometheusQuery
from driftline_operator.rollout import Requests, advance
from driftline_operator.settings import OperatorSettings
from driftline_operator.traffic import TrafficWindow, VariantWindow
from driftline_serving.settings import ServingSettings
from tests.kube.cluster import REPO_ROOT, KubeCluster
from tests.kube.operator_fixtures import CRD_DIR
from tests.kube.prometheus_server import prometheus

NAMESPACE = "default"
CASES = REPO_ROOT / "tests/kube/cases"
# The key a ``*`` (any resource name) in a path stands for.
ANY_KEY = "cpu"
CONSTRAINTS = frozenset(
    {
        "minimum",
        "maximum",
        "pattern",
        "enum",
        "minLength",
        "maxLength",
        "maxItems",
        "x-kubernetes-validations",
    }
)

MD_BASE: dict[str, Any] = {
    "apiVersion": names.API_VERSION,
    "kind": "ModelDeployment",
    "metadata": {"name": "adult-income"},
    "spec": {
        "model": {
            "name": "adult-income",
            "trackingUri": "http://mlflow.mlops:5000",
            "credentialsSecretRef": {"name": "mlflow-auth"},
        },
        "serving": {
            "autoscaling": {"minReplicas": 1, "maxReplicas": 100},
            "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}},
        },
        "traffic": {"challengerPercent": 10, "shadowPercent": 10},
        "promotion": {"mode": "auto"},
        "rollout": {
            "steps": [{"challengerPercent": 10, "pause": "1m"}, {"challengerPercent": 100}]
        },
        "analysis": {"prometheus": {"url": "http://prometheus.monitoring:9090"}},
        "logging": {"storeRef": {"secretName": "inference-log-db"}},
    },
}
DP_BASE: dict[str, Any] = {
    "apiVersion": names.API_VERSION,
    "kind": "DriftPolicy",
    "metadata": {"name": "adult-income-drift"},
    "spec": {
        "modelDeploymentRef": {"name": "adult-income"},
        "performance": {"floor": 0.5},
        "retrain": {
            "args": ["--data", "/data/train.csv"],
            "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}},
        },
    },
}
BASES = {"ModelDeployment": MD_BASE, "DriftPolicy": DP_BASE}
SPECS = {"ModelDeployment": ModelDeploymentSpec, "DriftPolicy": DriftPolicySpec}
SETTINGS = OperatorSettings()
PLURALS = {"ModelDeployment": names.MODEL_DEPLOYMENTS, "DriftPolicy": names.DRIFT_POLICIES}


@dataclass(frozen=True)
class Boundary:
    """Values of one field the API server must admit, and values it must refuse."""

    kind: str
    path: str
    accepted: tuple[Any, ...]
    rejected: tuple[Any, ...]
    # Constrained paths inside list items that this boundary's whole-list values exercise.
    covers: tuple[str, ...] = ()


def _resources(kind: str, prefix: str) -> tuple[Boundary, ...]:
    """A container's requests and limits (base: requests cpu 250m, limits cpu 1)."""
    bad_quantities = ("-1", -1, "1 cpu", "lots", "1.5Gb", "")
    return (
        Boundary(
            kind,
            prefix,
            ({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": 1, "memory": "1Gi"}},),
            (
                {"requests": {"cpu": "1001m"}, "limits": {"cpu": "1"}},
                {"requests": {"memory": "1Gi"}, "limits": {"memory": "1G"}},
            ),
        ),
        Boundary(
            kind,
            f"{prefix}.requests",
            ({"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"},),
            ({"gpu": 1}, {"nvidia.com/gpu": 1}),
        ),
        Boundary(kind, f"{prefix}.requests.*", ("0", 0, "250m", 1, "1e0", ".5"), bad_quantities),
        Boundary(
            kind,
            f"{prefix}.limits",
            ({"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"},),
            ({"gpu": 1},),
        ),
        Boundary(kind, f"{prefix}.limits.*", ("250m", 2, "1e3", "1Ki", "1.5"), bad_quantities),
    )


def _names(kind: str, path: str, longest: int, *, letter_first: bool) -> Boundary:
    """A DNS label of at most ``longest`` characters (DNS-1035 when ``letter_first``)."""
    digit = ("1a",) if letter_first else ()
    return Boundary(
        kind,
        path,
        ("a", "a-1", "a" * longest, *(() if letter_first else ("1", "1a"))),
        ("", "a" * (longest + 1), *digit, "-a", "a.b", "a-", "A"),
    )


_SECRET_NAME = (("a", "a.b-c", "a" * 253), ("", "A", "a_b", "a" * 254, "-a"))
_SECRET_KEY = (("u", ".env", "a.B_-1", "k" * 253), ("", ".", "..", "..a", "a b", "a/b", "k" * 254))
_IMAGE = (("x", "registry:5000/a/b:1@sha256:abc"), ("", " x", "x ", "x y"))
_ENV_ITEMS = tuple(
    f"spec.serving.env[].{field}".rstrip(".")
    for field in (
        "",
        "name",
        "value",
        "valueFrom",
        "valueFrom.secretKeyRef.name",
        "valueFrom.secretKeyRef.key",
        "valueFrom.configMapKeyRef.name",
        "valueFrom.configMapKeyRef.key",
    )
)
_ENV = Boundary(
    "ModelDeployment",
    "spec.serving.env",
    (
        [],
        [{"name": "DRIFTLINE_ONNX_THREADS", "value": "2"}],
        [{"name": "A_b.c-1", "value": "x" * 4096}, {"name": "B", "value": ""}],
        [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "a.b", "key": ".env"}}}],
        [{"name": "C",
          "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k", "optional": True}}}],
        [{"name": f"V{i}", "value": str(i)} for i in range(64)],
    ),
    (
        [{"name": "HOME", "value": "/"}],
        [{"name": "MLFLOW_TRACKING_PASSWORD", "value": "p"}],
        [{"name": "A"}],
        [{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        [{"name": "A", "valueFrom": {}}],
        [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"},
                                     "configMapKeyRef": {"name": "c", "key": "k"}}}],
        [{"name": "1A", "value": "1"}],
        [{"name": "", "value": "1"}],
        [{"name": "A" * 129, "value": "1"}],
        [{"name": "A", "value": "x" * 4097}],
        [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "S", "key": "k"}}}],
        [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a/b"}}}],
        [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "-c", "key": "k"}}}],
        [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c", "key": ""}}}],
        [{"name": f"V{i}", "value": str(i)} for i in range(65)],
    ),
    _ENV_ITEMS,
)  # fmt: skip
_LOOKBACK_OK = ("1s", "90s", "15m", "1h", "2d", "999999999d")
_PAUSE = (("1s", "90s", "15m", "1h", "9999999h"), ("0s", "-1s", "1.5m", "1d", "1 s", "10", ""))
_SHARE = ((0, 0.5, 1), (-0.1, 1.1))
_STEP_ITEMS = ("spec.rollout.steps[].challengerPercent", "spec.rollout.steps[].pause")
_ROLLOUT = (
    Boundary(
        "ModelDeployment",
        "spec.rollout",
        (
            {"steps": [{"challengerPercent": 100}]},
            {"steps": [{"challengerPercent": 1, "pause": "1s"}, {"challengerPercent": 2}]},
        ),
        (
            {"steps": [{"challengerPercent": 50}, {"challengerPercent": 50}]},
            {"steps": [{"challengerPercent": 60}, {"challengerPercent": 20}]},
        ),
    ),
    Boundary(
        "ModelDeployment",
        "spec.rollout.steps",
        (
            [{"challengerPercent": 1}],
            [{"challengerPercent": 100, "pause": "9999999h"}],
            [{"challengerPercent": 5 * i, "pause": "1s"} for i in range(1, 21)],
        ),
        (
            [],
            [{"challengerPercent": i} for i in range(1, 22)],
            [{"challengerPercent": 0}],
            [{"challengerPercent": 101}],
            [{"pause": "1m"}],
            *([{"challengerPercent": 10, "pause": bad}] for bad in _PAUSE[1]),
        ),
        _STEP_ITEMS,
    ),
    Boundary("ModelDeployment", "spec.rollout.failureLimit", (1, 10), (0, 11)),
    Boundary("ModelDeployment", "spec.analysis.interval", *_PAUSE),
    Boundary("ModelDeployment", "spec.analysis.minRequests", (1, 10**6), (0, 10**6 + 1)),
    Boundary("ModelDeployment", "spec.analysis.maxErrorRate", *_SHARE),
    Boundary("ModelDeployment", "spec.analysis.maxErrorRateIncrease", *_SHARE),
    Boundary("ModelDeployment", "spec.analysis.maxLatencyP95Ms", (0.001, 10**6), (0, -1)),
    Boundary("ModelDeployment", "spec.analysis.maxLatencyP95IncreaseMs", (0, 10**6), (-1,)),
    Boundary("ModelDeployment", "spec.analysis.maxPredictionPsi", (0, 100), (-0.1,)),
    Boundary("ModelDeployment", "spec.analysis.maxPredictionKs", *_SHARE),
    Boundary("ModelDeployment", "spec.analysis.maxPositiveRateDifference", *_SHARE),
    Boundary("ModelDeployment", "spec.analysis.minShadowAgreement", *_SHARE),
    Boundary("ModelDeployment", "spec.analysis.maxShadowProbabilityDifference", *_SHARE),
    Boundary(
        "ModelDeployment",
        "spec.analysis.prometheus.url",
        ("http://p", "https://prometheus.monitoring:9090/prefix"),
        ("", "p:9090", "ftp://p", "http://", "http://p/ x"),
    ),
    Boundary(
        "ModelDeployment",
        "spec.analysis.prometheus.selector",
        (
            'job="router"',
            'namespace="a b",model_deployment=~"b.*"',
            'a!="",b!~"y|z"',
            'a="' + "x" * 496 + '"',
        ),
        ("", '{job="r"}', "job=router", 'job="r",', 'job="r" ', '1a="x"', 'a="' + "x" * 497 + '"'),
    ),
)
_DURATION_BAD = ("-1h", "1.5h", "00h", "1 h", "1w", "h", "1000000000s", "")

BOUNDARIES: tuple[Boundary, ...] = (
    _names("ModelDeployment", "metadata.name", 52, letter_first=True),
    Boundary(
        "ModelDeployment",
        "spec.model.name",
        ("a", "A" * 200, "adult_income.v2-x", "_x"),
        ("", "a" * 201, "-a", "a/b", "a:b", "..", ".a", "a."),
    ),
    Boundary(
        "ModelDeployment",
        "spec.model.trackingUri",
        ("http://m", "https://mlflow.mlops:5000/prefix"),
        ("http://", "ftp://m", "http:// m", "http://m/ x", "mlflow:5000"),
    ),
    Boundary("ModelDeployment", "spec.model.credentialsSecretRef.name", *_SECRET_NAME),
    Boundary("ModelDeployment", "spec.model.credentialsSecretRef.usernameKey", *_SECRET_KEY),
    Boundary("ModelDeployment", "spec.model.credentialsSecretRef.passwordKey", *_SECRET_KEY),
    Boundary("ModelDeployment", "spec.serving.image", *_IMAGE),
    Boundary("ModelDeployment", "spec.serving.runtime", ("onnx", "native"), ("ONNX", "")),
    Boundary("ModelDeployment", "spec.serving.replicas", (0, 100), (-1, 101)),
    *_resources("ModelDeployment", "spec.serving.resources"),
    _ENV,
    Boundary(
        "ModelDeployment",
        "spec.serving.autoscaling",
        ({"minReplicas": 3, "maxReplicas": 3}, {"minReplicas": 5}, {}),
        ({"minReplicas": 4, "maxReplicas": 3}, {"minReplicas": 6}, {"maxReplicas": 0}),
    ),
    Boundary("ModelDeployment", "spec.serving.autoscaling.minReplicas", (1, 100), (0, 101)),
    Boundary("ModelDeployment", "spec.serving.autoscaling.maxReplicas", (1, 100), (0, 101)),
    Boundary(
        "ModelDeployment",
        "spec.serving.autoscaling.targetCPUUtilizationPercentage",
        (1, 100),
        (0, 101),
    ),
    Boundary("ModelDeployment", "spec.router.image", *_IMAGE),
    Boundary("ModelDeployment", "spec.router.replicas", (1, 20), (0, 21)),
    Boundary("ModelDeployment", "spec.traffic.challengerPercent", (0, 1, 99, 100), (-1, 101)),
    Boundary("ModelDeployment", "spec.traffic.shadowPercent", (0, 1, 100), (-1, 101)),
    *_ROLLOUT,
    Boundary("ModelDeployment", "spec.promotion.mode", ("manual", "auto"), ("Auto", "")),
    Boundary(
        "ModelDeployment",
        "spec.promotion.metric",
        (
            "roc_auc",
            "average_precision",
            "f1",
            "precision",
            "recall",
            "accuracy",
            "log_loss",
            "brier",
        ),
        ("auc", ""),
    ),
    Boundary("ModelDeployment", "spec.promotion.minDelta", (0, 1), (-0.001, 1.001)),
    Boundary("ModelDeployment", "spec.promotion.minRequests", (0, 10**9), (-1,)),
    Boundary("ModelDeployment", "spec.promotion.maxErrorRate", (0, 1), (-0.1, 1.1)),
    Boundary("ModelDeployment", "spec.promotion.maxLatencyMs", (0, 0.5), (-1,)),
    Boundary("ModelDeployment", "spec.promotion.windowMinutes", (1, 10080), (0, 10081)),
    Boundary("ModelDeployment", "spec.logging.storeRef.secretName", *_SECRET_NAME),
    Boundary("ModelDeployment", "spec.logging.storeRef.key", *_SECRET_KEY),
    Boundary("ModelDeployment", "spec.logging.sampleRate", (0, 0.01, 1), (-0.01, 1.01)),
    Boundary("ModelDeployment", "spec.logging.sketchBucketSeconds", (10, 60, 3600), (9, 3601)),
    _names("DriftPolicy", "metadata.name", 46, letter_first=False),
    _names("DriftPolicy", "spec.modelDeploymentRef.name", 52, letter_first=True),
    Boundary(
        "DriftPolicy",
        "spec.schedule",
        (
            "*/15 * * * *",
            "0 0 1 1 0",
            "59 23 31 12 6",
            "0-59/1 0-23 1-31 1-12 0-6",
            "0,30 9-17/2 */2 1,6 1-5",
            "05 09 01 01 00",
            "@hourly",
            "@daily",
            "@yearly",
            "@midnight",
        ),
        (
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * 32 * *",
            "* * * 13 *",
            "* * * * 7",
            "5-2 * * * *",
            "*/0 * * * *",
            "CRON_TZ=UTC * * * * *",
            "@every 1h",
            "@often",
            "*  * * * *",
            "hello world",
            "",
        ),
    ),
    Boundary("DriftPolicy", "spec.image", *_IMAGE),
    Boundary("DriftPolicy", "spec.window.lookback", _LOOKBACK_OK, ("0h", "0s", *_DURATION_BAD)),
    Boundary("DriftPolicy", "spec.window.minSamples", (1, 10**9), (0, -1)),
    Boundary("DriftPolicy", "spec.thresholds.psi", (1e-9, 0.2, 10), (0, -0.1)),
    Boundary("DriftPolicy", "spec.thresholds.pValue", (1e-9, 0.05, 0.999999), (0, 1, 1.5)),
    Boundary("DriftPolicy", "spec.thresholds.predictionPsi", (1e-9, 0.2, 10), (0, -0.1)),
    Boundary(
        "DriftPolicy",
        "spec.performance",
        ({"floor": 0.5}, {"maxDrop": 0.1}, {"floor": 0.8, "maxDrop": 0.02, "metric": "f1"}),
        ({"metric": "f1"}, {}),
    ),
    Boundary(
        "DriftPolicy",
        "spec.performance.metric",
        ("roc_auc", "average_precision", "accuracy", "precision", "recall", "f1"),
        ("log_loss", "brier", "AUC", ""),
    ),
    Boundary("DriftPolicy", "spec.performance.floor", (1e-9, 0.5, 1), (0, -0.1, 1.01)),
    Boundary("DriftPolicy", "spec.performance.maxDrop", (1e-9, 0.5, 0.999), (0, 1, -0.1)),
    Boundary(
        "DriftPolicy", "spec.performance.lookback", _LOOKBACK_OK, ("0h", "0s", *_DURATION_BAD)
    ),
    Boundary("DriftPolicy", "spec.performance.minLabels", (1, 10**9), (0, -1)),
    Boundary(
        "DriftPolicy",
        "spec.retrain.data.recentLookback",
        _LOOKBACK_OK,
        ("0h", "0s", *_DURATION_BAD),
    ),
    Boundary("DriftPolicy", "spec.retrain.data.holdoutFraction", (1e-9, 0.3, 0.999), (0, 1, -1)),
    Boundary("DriftPolicy", "spec.retrain.data.minLabels", (2, 10**9), (1, 0)),
    Boundary("DriftPolicy", "spec.retrain.cooldown", ("0s", "0d", *_LOOKBACK_OK), _DURATION_BAD),
    Boundary("DriftPolicy", "spec.retrain.image", *_IMAGE),
    Boundary("DriftPolicy", "spec.retrain.activeDeadlineSeconds", (60, 10**9), (59, 0)),
    *_resources("DriftPolicy", "spec.retrain.resources"),
)


def constrained_paths(schema: dict[str, Any], path: str = "") -> set[str]:
    """Dotted paths of every field of a CRD spec carrying a constraint (status left out).

    Rules on the root object concern the name, so they are reported as ``metadata.name``;
    ``*`` stands for any key of a map.
    """
    found = {path or "metadata.name"} if CONSTRAINTS & schema.keys() else set()
    for name, child in schema.get("properties", {}).items():
        if not (path == "" and name == "status"):
            found |= constrained_paths(child, f"{path}.{name}".lstrip("."))
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        found |= constrained_paths(extra, f"{path}.*")
    if "items" in schema:
        found |= constrained_paths(schema["items"], f"{path}[]")
    return found


def crd_schemas() -> dict[str, dict[str, Any]]:
    """Kind -> openAPIV3Schema of its one version, from crds/."""
    schemas = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        (version,) = crd["spec"]["versions"]
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def with_value(kind: str, path: str, value: Any) -> dict[str, Any]:
    """The kind's base object with ``path`` set to ``value``."""
    obj = copy.deepcopy(BASES[kind])
    *parents, last = path.replace("*", ANY_KEY).split(".")
    node = obj
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = copy.deepcopy(value)
    return obj


def dry_run_create(api: kubernetes.client.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj`` (a custom resource) with dryRun=All; returns it as admitted (defaulted)."""
    created: dict[str, Any] = kubernetes.client.CustomObjectsApi(
        api
    ).create_namespaced_custom_object(
        names.GROUP, names.VERSION, NAMESPACE, PLURALS[obj["kind"]], obj, dry_run="All"
    )
    # A dry run assigns no uid; the builders put it into owner references.
    created["metadata"].setdefault("uid", "00000000-0000-0000-0000-000000000001")
    return created


def create_children(api: kubernetes.client.ApiClient, objects: list[dict[str, Any]]) -> None:
    """The API server's own validation of what the operator would apply (dry run)."""
    for obj in objects:
        kubernetes.utils.create_from_dict(api, obj, namespace=NAMESPACE, dry_run="All")


def consume_rollout(md: specs.ModelDeploymentObject, prometheus_url: str) -> None:
    """The rollout walks every step to promotion on passing analyses of the admitted gates,
    and a real Prometheus accepts the admitted selector in its queries."""
    spec = md.spec
    assert spec.rollout is not None and spec.analysis.prometheus is not None
    source = PrometheusQuery(prometheus_url, 10, spec.analysis.prometheus.selector)
    now = datetime.now(UTC)
    source.window(md.owner, now - spec.analysis.interval_period(), now)
    rng = np.random.default_rng(0)
    probabilities = rng.uniform(size=spec.analysis.min_requests)
    same = Predictions(
        probabilities, (probabilities > 0.5).astype(float),
        tuple(map(str, range(probabilities.size))), np.ones(probabilities.size, dtype=bool),
    )  # fmt: skip
    behaviour = behaviour_gates(spec.analysis, same, same) + shadow_gates(spec.analysis, same, same)
    healthy = VariantWindow(spec.analysis.min_requests, 0, 0.0)
    window = TrafficWindow(1.0, {"champion": healthy, "challenger": healthy})
    status = advance(
        spec.rollout, auto=True, status=None, challenger="2", rejected=None,
        requests=Requests(), analysis=None, now=now,
    ).status  # fmt: skip
    for _ in spec.rollout.steps:
        assert status is not None and status.step is not None
        pause = spec.rollout.steps[status.step].pause_period()
        now += (pause or timedelta(0)) + timedelta(seconds=1)
        result = analyse(spec.analysis, window, rfc3339(now), behaviour)
        assert result.verdict == "Passed", result
        step = advance(
            spec.rollout, auto=True, status=status, challenger="2", rejected=None,
            requests=Requests(promote=pause is None), analysis=result, now=now,
        )  # fmt: skip
        if step.promote:
            return
        status = step.status
    raise AssertionError(f"the rollout did not reach promotion: {status}")


def consume_model_deployment(
    api: kubernetes.client.ApiClient,
    md: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    prometheus_url: str,
) -> None:
    """Everything that reads a ModelDeployment's spec accepts the admitted object."""
    typed = specs.model_deployment(md)
    spec = typed.spec
    _validate_model_name(spec.model.name)
    assert urllib.parse.urlsplit(spec.model.tracking_uri).hostname
    children = desired_children(typed, "1", "2", spec.traffic.challenger_percent, SETTINGS)
    create_children(api, children.objects)
    health = VariantWindow(requests=10**9, errors=0, latency_p95_ms=0.0)
    for champion, challenger in ((0.5, 0.9), (0.9, 0.5)):  # a win whichever the direction
        decide_auto_promotion(spec.promotion, champion, challenger, health)
    consume_rollout(typed, prometheus_url)
    for obj in children.objects:
        if obj["kind"] == "Deployment" and names.LABEL_VARIANT in obj["metadata"]["labels"]:
            (container,) = obj["spec"]["template"]["spec"]["containers"]
            for env in container["env"]:
                if "value" in env:
                    monkeypatch.setenv(env["name"], env["value"])
            ServingSettings()


def consume_drift_policy(api: kubernetes.client.ApiClient, dp: dict[str, Any]) -> None:
    """The CronJob, the training Job, their CLIs and the retraining decision accept ``dp``."""
    typed = specs.drift_policy(dp)
    md_spec = ModelDeploymentSpec.model_validate(MD_BASE["spec"])
    cronjob = build_drift_cronjob(typed, md_spec, SETTINGS)
    trigger = f"{names.cronjob_name(typed.owner.name)}-1"
    job = build_training_job(typed, md_spec, trigger, SETTINGS)
    create_children(api, [cronjob, job])
    parser = build_parser()
    (check,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    thresholds, lookback = drift_cmd.decision_rule(parser.parse_args(check["args"]))
    assert lookback is not None and lookback > 0
    assert thresholds == typed.spec.drift_thresholds()
    performance = parser.parse_args(check["args"]).performance
    if typed.spec.performance is None:
        assert performance is None
    else:
        rule = PerformanceRule.model_validate_json(performance, extra="forbid")
        assert rule == typed.spec.performance.rule()
    (train,) = job["spec"]["template"]["spec"]["containers"]
    args = parser.parse_args(train["args"])
    training = train_cmd.training_job(
        args, CliSettings(), name=args.register, register=True, alias=args.alias, schema=None
    )
    assert not isinstance(training, int), f"train refused {train['args']}"
    retrain = typed.spec.retrain
    now = datetime.now(UTC)
    decide_retrain(
        LastCheck(drifted=False, performance=LastPerformance(status="breach")),
        enabled=retrain.enabled,
        cooldown=retrain.cooldown_period(),
        last_retrain_at=now - timedelta(seconds=1),
        training_running=False,
        now=now,
    )


def _accepted() -> list[Any]:
    return [
        pytest.param(b.kind, b.path, value, id=f"{b.path}={value!r}")
        for b in BOUNDARIES
        for value in b.accepted
    ]


def _rejected() -> list[Any]:
    return [
        pytest.param(b.kind, b.path, value, id=f"{b.path}={value!r}")
        for b in BOUNDARIES
        for value in b.rejected
    ]


def test_every_constrained_field_has_boundaries() -> None:
    for kind, schema in crd_schemas().items():
        covered = {p for b in BOUNDARIES if b.kind == kind for p in (b.path, *b.covers)}
        assert constrained_paths(schema) == covered, kind


@pytest.mark.parametrize(("kind", "path", "value"), _accepted())
def test_admitted_values_are_accepted_by_their_consumers(
    api_client: kubernetes.client.ApiClient,
    crds: None,
    monkeypatch: pytest.MonkeyPatch,
    prometheus_url: str,
    kind: str,
    path: str,
    value: Any,
) -> None:
    admitted = dry_run_create(api_client, with_value(kind, path, value))
    if kind == "ModelDeployment":
        consume_model_deployment(api_client, admitted, monkeypatch, prometheus_url)
    else:
        consume_drift_policy(api_client, admitted)


@pytest.fixture(scope="module")
def prometheus_url(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Prometheus (no targets): the consumer of spec.analysis.prometheus.selector."""
    with prometheus(kube_cluster.bin_dir, tmp_path_factory.mktemp("prometheus"), {}) as url:
        yield url


# The smallest objects of each kind, with every optional block present but empty, so the API
# server fills in each default it knows.
MINIMAL: dict[str, dict[str, Any]] = {
    "ModelDeployment": {
        "model": {"name": "m", "trackingUri": "http://m", "credentialsSecretRef": {"name": "c"}},
        "serving": {"autoscaling": {}},
        "rollout": {"steps": [{"challengerPercent": 10}]},
        "analysis": {"prometheus": {"url": "http://p"}},
        "logging": {"storeRef": {"secretName": "s"}},
    },
    "DriftPolicy": {
        "modelDeploymentRef": {"name": "m"},
        "performance": {"maxDrop": 0.05},
        "retrain": {"data": {}},
    },
}


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_server_defaults_equal_the_models(
    api_client: kubernetes.client.ApiClient, crds: None, kind: str
) -> None:
    obj = {**copy.deepcopy(BASES[kind]), "spec": copy.deepcopy(MINIMAL[kind])}
    admitted = dry_run_create(api_client, obj)["spec"]
    modelled = (
        SPECS[kind].model_validate(MINIMAL[kind]).model_dump(by_alias=True, exclude_none=True)
    )
    assert admitted == modelled


@pytest.mark.parametrize(("kind", "path", "value"), _rejected())
def test_refused_values_are_refused_at_admission(
    api_client: kubernetes.client.ApiClient, crds: None, kind: str, path: str, value: Any
) -> None:
    with pytest.raises(ApiException) as refused:
        dry_run_create(api_client, with_value(kind, path, value))
    assert refused.value.status == 422, refused.value.body
    field = path.replace("*", ANY_KEY).split(".")[-1]
    assert field in refused.value.body, refused.value.body


def test_zero_lookback_case_is_refused(api_client: kubernetes.client.ApiClient, crds: None) -> None:
    """shared/cases/zero-lookback-policy: every drift Job of this policy exited 2."""
    policy = yaml.safe_load((CASES / "zero-lookback-policy/driftpolicy.yaml").read_text())
    with pytest.raises(ApiException) as refused:
        kubernetes.client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            names.GROUP, names.VERSION, NAMESPACE, names.DRIFT_POLICIES, policy
        )
    assert refused.value.status == 422
    assert "spec.window.lookback" in refused.value.body
    parser = build_parser()
    args = parser.parse_args(["drift-check", "--log-store", "x", "--lookback", "0h"])
    with pytest.raises(ValueError, match="not a positive duration"):
        drift_cmd.decision_rule(args)
