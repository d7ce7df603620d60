"""``DriftPolicy`` spec types: scheduled drift and performance checks, retraining."""

from __future__ import annotations

from datetime import timedelta

from pydantic import ConfigDict, Field, model_validator

from driftline.api.k8s_types import (
    ApiModel,
    Image,
    ResourceRequirements,
    cel,
    nested,
    resources_field,
)
from driftline.api.v1alpha1.model_deployment_types import MODEL_DEPLOYMENT_NAME
from driftline.durations import parse_duration
from driftline.job_contracts import DriftThresholds, PerformanceMetric, PerformanceRule

# Durations as integer and unit. A lookback of zero selects no rows, so it must be positive;
# a cooldown of zero means "no cooldown". At most nine digits: 999999999d fits a timedelta.
LOOKBACK = r"^[1-9][0-9]{0,8}[smhd]$"
COOLDOWN = r"^(0|[1-9][0-9]{0,8})[smhd]$"
# Five cron fields with values in range (minute hour day-of-month month day-of-week, numbers
# only, Sunday is 0), or a @descriptor: what the CronJob API accepts.
_MIN = r"[0-5]?[0-9]"
_HOUR = r"[01]?[0-9]|2[0-3]"
_DOM = r"0?[1-9]|[12][0-9]|3[01]"
_MONTH = r"0?[1-9]|1[0-2]"
_DOW = r"0?[0-6]"


def _cron_field(value: str) -> str:
    item = rf"(\*|({value})(-({value}))?)(/[1-9][0-9]?)?"
    return rf"{item}(,{item})*"


CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
    + " ".join(_cron_field(v) for v in (_MIN, _HOUR, _DOM, _MONTH, _DOW))
    + ")$"
)
_RULE = DriftThresholds()


class ModelDeploymentRef(ApiModel):
    """The ModelDeployment (same namespace) whose champion is checked."""

    name: str = Field(
        max_length=52, pattern=MODEL_DEPLOYMENT_NAME, description="ModelDeployment name."
    )


class Window(ApiModel):
    """Which logged predictions are compared with the baseline."""

    lookback: str = Field(
        "1h",
        pattern=LOOKBACK,
        description="Rows newer than this (90s, 15m, 1h, 2d); more than zero.",
    )
    min_samples: int = Field(
        _RULE.min_samples, ge=1, description="Fewer rows means insufficient data, not drift."
    )


class Thresholds(ApiModel):
    """The drift decision rule (defaults: ``driftline.job_contracts.DriftThresholds``)."""

    psi: float = Field(_RULE.psi, gt=0, description="Feature PSI above which a feature drifted.")
    p_value: float = Field(
        _RULE.p_value, gt=0, lt=1, description="Benjamini-Hochberg false discovery rate."
    )
    prediction_psi: float = Field(
        _RULE.prediction_psi, gt=0, description="Prediction PSI above which predictions drifted."
    )


class Performance(ApiModel):
    """Realised performance on labelled traffic (POST /feedback), judged at every check.

    A breach retrains exactly like drift (same cooldown, same single Job): when the upper end
    of the metric's 95% interval on the champion's labelled rows lies below the limit, the
    higher of ``floor`` and the version's training test score minus ``maxDrop``.
    """

    model_config = ConfigDict(
        json_schema_extra=cel("has(self.floor) || has(self.maxDrop)", "set floor, maxDrop or both")
    )

    metric: PerformanceMetric = Field(
        "roc_auc",
        description="roc_auc, average_precision, accuracy, precision, recall or f1 (accuracy"
        " and the last three at the served threshold).",
    )
    floor: float | None = Field(None, gt=0, le=1, description="Breach below this value.")
    max_drop: float | None = Field(
        None, gt=0, lt=1, description="Breach below the version's training test score minus this."
    )
    lookback: str = Field(
        "1d",
        pattern=LOOKBACK,
        description="Predictions served this long before the check (labels arrive late).",
    )
    min_labels: int = Field(
        200, ge=1, description="Fewer labelled rows means insufficient labels, not a breach."
    )

    @model_validator(mode="after")
    def _a_limit(self) -> Performance:
        if self.floor is None and self.max_drop is None:
            raise ValueError("set floor, maxDrop or both")
        return self

    def rule(self) -> PerformanceRule:
        """The rule the drift-check Job receives, as one object."""
        return PerformanceRule(
            metric=self.metric,
            floor=self.floor,
            max_drop=self.max_drop,
            lookback_seconds=parse_duration(self.lookback).total_seconds(),
            min_labels=self.min_labels,
        )


class RetrainData(ApiModel):
    """Recent labelled traffic the training Job learns from, besides its reference data.

    The labelled requests (inference log joined with POST /feedback labels) served within
    ``recentLookback``: the newest ``holdoutFraction`` is held out, never trained on, and both
    the champion and the new model are scored on it (and on the reference's test split); the
    paired difference with its 95% interval is what promotion then judges.
    """

    recent_lookback: str = Field(
        "7d", pattern=LOOKBACK, description="Requests served this long before the training."
    )
    holdout_fraction: float = Field(
        0.3, gt=0, lt=1, description="Newest share held out from training, for the comparison."
    )
    min_labels: int = Field(
        200, ge=2, description="Fewer labelled requests are not used (reference data only)."
    )


class Retrain(ApiModel):
    """Retraining on a breach."""

    enabled: bool = Field(
        True, description="Create a training Job on a drift or performance breach."
    )
    cooldown: str = Field(
        "6h", pattern=COOLDOWN, description="Least time between two training Jobs."
    )
    image: Image | None = Field(
        None,
        description="Image running `driftline train`; unset: the operator's trainer image"
        " (DRIFTLINE_TRAINER_IMAGE, the chart's images.trainer).",
    )
    args: list[str] = Field(
        default_factory=list,
        description="Extra arguments of `driftline train` (for example --data-file).",
        json_schema_extra={
            "default": [],
            "items": {"type": "string", "description": "One argument."},
        },
    )
    data: RetrainData | None = Field(
        None,
        description="Also learn from recent labelled traffic (needs the ModelDeployment's"
        " logging.storeRef); unset: the reference data only.",
    )
    active_deadline_seconds: int = Field(3600, ge=60, description="Training Job time limit.")
    resources: ResourceRequirements = resources_field(
        {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "Requests and limits of the training container.",
    )

    def cooldown_period(self) -> timedelta:
        """The least time between two training Jobs (zero: none)."""
        return parse_duration(self.cooldown, allow_zero=True)


class DriftPolicySpec(ApiModel):
    """What to check and when; the operator never writes it."""

    model_deployment_ref: ModelDeploymentRef
    schedule: str = Field(
        "*/15 * * * *",
        max_length=100,
        pattern=CRON,
        description="Cron schedule of the drift-check CronJob (five fields, or @hourly,"
        " @daily...).",
        json_schema_extra=cel(
            "self.findAll('[0-9]+-[0-9]+').all(r, int(r.split('-')[0]) <= int(r.split('-')[1]))",
            "a cron range must not end before it starts",
        ),
    )
    image: Image | None = Field(
        None,
        description="Image running `driftline drift-check`; unset: the operator's trainer image.",
    )
    window: Window = nested(Window, "Which logged predictions are compared with the baseline.")
    thresholds: Thresholds = nested(Thresholds, "The drift decision rule.")
    performance: Performance | None = Field(
        None, description="Judge realised performance on labelled traffic too; unset: off."
    )
    retrain: Retrain = nested(Retrain, "Retraining on a breach.")

    def drift_thresholds(self) -> DriftThresholds:
        """The decision rule the drift-check Job receives, as one object."""
        return DriftThresholds(
            psi=self.thresholds.psi,
            p_value=self.thresholds.p_value,
            prediction_psi=self.thresholds.prediction_psi,
            min_samples=self.window.min_samples,
        )
