"""``ModelDeployment`` spec types: one registered model served as champion and challenger."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from driftline.api.k8s_types import (
    ApiModel,
    EnvSource,
    Image,
    ResourceRequirements,
    SecretKey,
    SecretName,
    cel,
    nested,
    resources_field,
)
from driftline.durations import parse_duration

# MLflow refuses '/', ':' and path-like names; a leading '-' would read as a CLI option.
MODEL_NAME = r"^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?$"
TRACKING_URI = r"^https?://[^\s/?#]+(/\S*)?$"
# A ModelDeployment's children are named <name>-challenger: a Service, so a DNS-1035 label.
MODEL_DEPLOYMENT_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
# Environment variables the operator sets itself: an extra variable may not replace them.
RESERVED_ENV = (
    "DRIFTLINE_MODEL_NAME",
    "DRIFTLINE_MODEL_VERSION",
    "DRIFTLINE_VARIANT",
    "DRIFTLINE_RUNTIME",
    "DRIFTLINE_HOME",
    "DRIFTLINE_LOG_STORE",
    "DRIFTLINE_DRAIN_SECONDS",
    "HOME",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# A step's pause and the analysis interval: integer and unit, positive (durations.py parses it).
PAUSE = r"^[1-9][0-9]{0,6}[smh]$"

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=MODEL_NAME)]


class CredentialsSecretRef(ApiModel):
    """Secret with MLflow basic-auth credentials, passed to pods by reference only."""

    name: SecretName = Field(description="Secret name in the same namespace.")
    username_key: SecretKey = Field("username", description="Key holding MLFLOW_TRACKING_USERNAME.")
    password_key: SecretKey = Field("password", description="Key holding MLFLOW_TRACKING_PASSWORD.")


class ModelRef(ApiModel):
    """The registered MLflow model whose aliases champion and challenger are served."""

    name: ModelName = Field(description="Registered model name in the MLflow model registry.")
    tracking_uri: str = Field(
        pattern=TRACKING_URI,
        description="MLflow tracking and registry server URL reachable from the operator and"
        " the pods.",
    )
    credentials_secret_ref: CredentialsSecretRef | None = None


class Autoscaling(ApiModel):
    """When set, an autoscaling/v2 HorizontalPodAutoscaler owns each variant's replicas."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            "!has(self.minReplicas) || !has(self.maxReplicas)"
            " || self.minReplicas <= self.maxReplicas",
            "minReplicas must not exceed maxReplicas",
        )
    )

    min_replicas: int = Field(1, ge=1, le=100, description="Fewest replicas per variant.")
    max_replicas: int = Field(5, ge=1, le=100, description="Most replicas per variant.")
    target_cpu_utilization_percentage: int = Field(
        70,
        ge=1,
        le=100,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU utilisation the autoscaler aims for.",
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class EnvVar(ApiModel):
    """An extra environment variable of the inference container (core/v1 EnvVar's subset)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            "has(self.value) != has(self.valueFrom)",
            "set exactly one of value and valueFrom",
            f"!(self.name in {list(RESERVED_ENV)})",
            "this variable is set by the operator",
        )
    )

    name: str = Field(min_length=1, max_length=128, pattern=ENV_NAME, description="Variable name.")
    value: str | None = Field(None, max_length=4096, description="A literal value.")
    value_from: EnvSource | None = None

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("set exactly one of value and valueFrom")
        if self.name in RESERVED_ENV:
            raise ValueError(f"{self.name} is set by the operator")
        return self

    def manifest(self) -> dict[str, Any]:
        """The container ``env`` entry."""
        return self.model_dump(by_alias=True, exclude_none=True)


class Serving(ApiModel):
    """How each variant's inference pods run."""

    image: Image | None = Field(
        None,
        description="Inference image running `driftline serve`; unset: the operator's"
        " (DRIFTLINE_INFERENCE_IMAGE, the chart's images.inference).",
    )
    runtime: Literal["onnx", "native"] = Field(
        "onnx", description="onnx (fast path) or native (the MLflow model)."
    )
    replicas: int = Field(
        1, ge=0, le=100, description="Replicas per variant when autoscaling is not set."
    )
    resources: ResourceRequirements = resources_field(
        {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
        "Requests and limits of the inference container.",
    )
    autoscaling: Autoscaling | None = None
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description="Extra environment variables of the inference container (for example"
        " DRIFTLINE_ONNX_THREADS); secrets by valueFrom.secretKeyRef only.",
        json_schema_extra={
            "default": [],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )

    def initial_replicas(self) -> int:
        """Replicas of a variant's Deployment: the HPA's minimum when one owns them."""
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas


class Router(ApiModel):
    """The canary router behind the stable Service named after this resource."""

    image: Image | None = Field(
        None,
        description="Image running `driftline router`; unset: the operator's inference image.",
    )
    replicas: int = Field(1, ge=1, le=20, description="Router replicas.")


class Traffic(ApiModel):
    """How requests are split between champion and challenger."""

    challenger_percent: int = Field(
        0,
        ge=0,
        le=100,
        description="Percent of request ids hashed to the challenger (0 when none is set).",
    )
    shadow_percent: int = Field(
        0,
        ge=0,
        le=100,
        description="Percent of the champion's requests whose copy also goes to the challenger"
        " (shadow traffic): its answer is logged as variant shadow, never waited for nor"
        " returned.",
    )


PromotionMetric = Literal[
    "roc_auc", "average_precision", "f1", "precision", "recall", "accuracy", "log_loss", "brier"
]


class Promotion(ApiModel):
    """When the challenger replaces the champion."""

    mode: Literal["manual", "auto"] = Field(
        "manual",
        description="manual (annotation driftline.dev/promote or `driftline promote`) or auto"
        " (criteria below).",
    )
    metric: PromotionMetric = Field(
        "roc_auc", description="Offline test metric the challenger must beat the champion on."
    )
    min_delta: float = Field(0.005, ge=0, le=1, description="Required improvement on the metric.")
    min_requests: int = Field(
        500, ge=0, description="Fewest challenger requests the router sent in the window."
    )
    max_error_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Highest challenger error rate tolerated (5xx, timeouts, unreachable, as the"
        " router saw them).",
    )
    max_latency_ms: float = Field(
        100, ge=0, description="Highest challenger p95 upstream latency tolerated, milliseconds."
    )
    window_minutes: int = Field(
        60,
        ge=1,
        le=10080,
        description="Window of the router's figures auto promotion reads (without spec.rollout),"
        " minutes.",
    )


class LogStoreRef(ApiModel):
    """Secret holding the inference log URL, passed by reference only."""

    secret_name: SecretName = Field(description="Secret name in the same namespace.")
    key: SecretKey = Field("url", description="Key holding the URL.")


class Logging(ApiModel):
    """Where pods append the inference log and their drift sketches, and how much of it."""

    store_ref: LogStoreRef | None = None
    sample_rate: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Share of requests whose rows (features, prediction) are logged, chosen by a"
        " hash of the request id in steps of 0.0001; drift sketches count every request, so drift"
        " checks see all traffic whatever the rate. Labels join sampled rows only.",
    )
    sketch_bucket_seconds: int = Field(
        60,
        ge=10,
        le=3600,
        description="Length of one drift-sketch time bucket: a pod writes one row per version"
        " and bucket, and a live drift window is a whole number of buckets.",
    )


class RolloutStep(ApiModel):
    """One canary step: a challenger share held for a pause while analysis runs."""

    challenger_percent: int = Field(
        ge=1, le=100, description="Percent of request ids hashed to the challenger in this step."
    )
    pause: str | None = Field(
        None,
        pattern=PAUSE,
        description="How long the step lasts (90s, 5m, 1h) before it may advance; unset: the"
        " step waits, in either promotion mode, for a new value of the annotation"
        " driftline.dev/promote (`kubectl annotate --overwrite md NAME"
        " driftline.dev/promote=$(date +%s)`); after the last step that annotation promotes"
        " without the offline rule.",
    )

    def pause_period(self) -> timedelta | None:
        """The pause as a timedelta; None for a step that waits for a person."""
        return None if self.pause is None else parse_duration(self.pause)


class Rollout(ApiModel):
    """Step-wise canary of each new challenger: shares rise while the analysis passes."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            # Kubernetes CEL's lists library: sorted, and no share twice, is strictly rising.
            "self.steps.map(s, s.challengerPercent).isSorted() && self.steps.all(s,"
            " self.steps.exists_one(t, t.challengerPercent == s.challengerPercent))",
            "steps' challengerPercent must rise from step to step",
        )
    )

    steps: list[RolloutStep] = Field(
        min_length=1,
        max_length=20,
        description="The steps in order; challengerPercent must rise from step to step.",
    )
    failure_limit: int = Field(
        1,
        ge=1,
        le=10,
        description="Failed analyses in a row that abort the rollout (1: the first failure).",
    )

    @model_validator(mode="after")
    def _rising(self) -> Rollout:
        percents = [step.challenger_percent for step in self.steps]
        if any(later <= earlier for earlier, later in pairwise(percents)):
            raise ValueError(f"steps' challengerPercent must rise, got {percents}")
        return self


class PrometheusSource(ApiModel):
    """A Prometheus that scrapes the router pods; its HTTP API answers the analysis's queries."""

    url: str = Field(
        pattern=TRACKING_URI,
        description="Base URL of the Prometheus HTTP API (http://prometheus.monitoring:9090).",
    )
    selector: str | None = Field(
        None,
        max_length=500,
        pattern=r'^[a-zA-Z_][a-zA-Z0-9_]*(=|!=|=~|!~)"[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*(=|!=|=~|!~)"[^"]*")*$',
        description="PromQL label matchers of the router's series, without braces; unset:"
        ' namespace="<namespace>",model_deployment="<name>" (the chart\'s ServiceMonitor).',
    )


class Analysis(ApiModel):
    """Gates every analysis of a rollout step checks, on the step's window so far.

    Health gates read the router's figures; behaviour gates (prediction PSI, KS, positive rate)
    read the inference log and run only when the operator has one (DRIFTLINE_HEALTH_LOG_STORE).
    """

    interval: str = Field(
        "30s", pattern=PAUSE, description="How often a step is analysed (90s, 5m)."
    )
    min_requests: int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="Challenger requests a step needs before it can pass (fewer: inconclusive,"
        " the step holds).",
    )
    max_error_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Highest challenger error rate (5xx, timeouts, unreachable as the router saw"
        " them).",
    )
    max_error_rate_increase: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Highest challenger error rate above the champion's on the same window.",
    )
    max_latency_p95_ms: float = Field(
        250, gt=0, description="Highest challenger p95 upstream latency, milliseconds."
    )
    max_latency_p95_increase_ms: float = Field(
        50,
        ge=0,
        description="Highest challenger p95 latency above the champion's on the same window,"
        " milliseconds (an increase rather than a ratio: at a few milliseconds a ratio is noise).",
    )
    max_prediction_psi: float = Field(
        0.2,
        ge=0,
        description="Highest PSI of the challenger's predicted probabilities against the"
        " champion's on the same window (needs the operator's inference log).",
    )
    max_prediction_ks: float = Field(
        0.15,
        ge=0,
        le=1,
        description="Highest two-sample KS statistic between the two variants' probabilities.",
    )
    max_positive_rate_difference: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Highest difference between the two variants' shares of positive decisions.",
    )
    min_shadow_agreement: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Lowest share of shadowed requests on which both variants decide the same"
        " (with traffic.shadowPercent).",
    )
    max_shadow_probability_difference: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Highest mean absolute difference of the two variants' probabilities on the"
        " same shadowed requests.",
    )

    prometheus: PrometheusSource | None = Field(
        None,
        description="Read the router's figures from this Prometheus; unset: the operator"
        " scrapes the router pods' /metrics itself.",
    )

    def interval_period(self) -> timedelta:
        """The analysis interval as a timedelta."""
        return parse_duration(self.interval)


class ModelDeploymentSpec(ApiModel):
    """What to serve; the operator never writes it."""

    model: ModelRef
    serving: Serving = nested(Serving, "How each variant's inference pods run.")
    router: Router = nested(
        Router, "The canary router behind the stable Service named after this resource."
    )
    traffic: Traffic = nested(Traffic, "How requests are split between champion and challenger.")
    promotion: Promotion = nested(Promotion, "When the challenger replaces the champion.")
    rollout: Rollout | None = Field(
        None,
        description="Step-wise canary of each new challenger; unset: traffic.challengerPercent"
        " holds until promotion.",
    )
    analysis: Analysis = nested(
        Analysis, "Gates every analysis of a rollout step checks, on the step's window so far."
    )
    logging: Logging | None = None
