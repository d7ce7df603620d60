"""What the operator and its Jobs tell each other, as typed, versioned messages (pure).

The operator passes a drift check its decision rule as one ``DriftThresholds`` object; the
check answers with a ``DriftCheckSummary`` and a training Job with a ``TrainingResult``, both
in the Pod's termination message (Kubernetes keeps 4 KiB of it). Writer and reader use these
same models, so a field renamed on one side fails a test instead of a reconcile.
"""

from __future__ import annotations

from typing import Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

# Raised when a message's layout changes incompatibly; a reader refuses other versions.
CONTRACT_VERSION: Final = 1
M = TypeVar("M", bound=BaseModel)
# Kubernetes keeps at most 4096 bytes of a container's termination message.
TERMINATION_MESSAGE_MAX_BYTES = 4096


class ContractError(ValueError):
    """A message that does not parse as its contract (a different version, a truncated text)."""


class DriftThresholds(BaseModel):
    """The drift decision rule's parameters (a ``DriftPolicy``'s thresholds and window minimum).

    Read by field name (``p_value``) or by the DriftPolicy's camelCase name (``pValue``).
    Unknown keys are ignored, so an operator reads the summary of a newer check that carries one
    more threshold; input typed by people is validated with ``extra="forbid"`` instead.
    Source: the rule of ``driftline.drift`` (PSI and a Benjamini-Hochberg corrected test).
    """

    # strict: a JSON true is not the number 1, nor 2.5 a count of rows.
    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True, strict=True
    )

    psi: float = Field(
        0.2, gt=0, allow_inf_nan=False, description="A feature's PSI must exceed this to drift."
    )
    p_value: float = Field(
        0.05, gt=0, lt=1, description="False discovery rate of the Benjamini-Hochberg step."
    )
    prediction_psi: float = Field(
        0.2, gt=0, allow_inf_nan=False, description="PSI threshold of the predictions."
    )
    min_samples: int = Field(500, ge=1, description="Fewer current rows: insufficient data.")


# Realised metrics a performance rule can watch: those where higher is better, so one rule
# (below a floor, or dropped by more than a margin) fits all of them.
PerformanceMetric = Literal[
    "roc_auc", "average_precision", "accuracy", "precision", "recall", "f1"
]  # fmt: skip


class PerformanceRule(BaseModel):
    """When realised performance breaches (a ``DriftPolicy``'s ``performance``).

    The breach is judged on the checked version's champion rows of the last
    ``lookback_seconds`` of serving: it breaches when the upper end of the metric's 95%
    interval lies below the limit, the higher of ``floor`` and the training test score minus
    ``max_drop``. At least one of them is set. Same reading rules as ``DriftThresholds``.
    """

    model_config = ConfigDict(
        frozen=True, extra="ignore", alias_generator=to_camel, populate_by_name=True, strict=True
    )

    metric: PerformanceMetric = Field("roc_auc", description="The realised metric judged.")
    floor: float | None = Field(None, gt=0, le=1, description="Breach below this value.")
    max_drop: float | None = Field(
        None, gt=0, lt=1, description="Breach below the training test score minus this."
    )
    lookback_seconds: float = Field(
        86_400.0, gt=0, allow_inf_nan=False, description="Rows served this long before now."
    )
    min_labels: int = Field(200, ge=1, description="Fewer labelled rows: insufficient labels.")

    @model_validator(mode="after")
    def _a_limit(self) -> PerformanceRule:
        if self.floor is None and self.max_drop is None:
            raise ValueError("set floor, maxDrop or both")
        return self


def _absent(value: object) -> bool:
    """An optional key with nothing to say is left out of the message rather than null."""
    return value is None


class MissingSummary(BaseModel):
    """A numeric feature's missing share on both sides and its corrected p-value."""

    reference: float | None
    current: float | None
    p_adjusted: float | None


class FeatureSummary(BaseModel):
    """One feature's result, rounded for the termination message."""

    name: str
    test: str
    psi: float | None
    p_value: float | None
    p_adjusted: float | None
    drifted: bool
    missing: MissingSummary | None = Field(None, exclude_if=_absent)
    note: str | None = Field(None, exclude_if=_absent, description="Why it was not tested.")


class PredictionSummary(BaseModel):
    """The predicted probabilities' result; ``checked`` False with a note when not tested."""

    checked: bool
    drifted: bool | None
    note: str | None = Field(None, exclude_if=_absent)
    test: str | None = Field(None, exclude_if=_absent)
    psi: float | None = Field(None, exclude_if=_absent)
    p_value: float | None = Field(None, exclude_if=_absent)


class VariantPerformance(BaseModel):
    """One version and variant's labelled performance, rounded for the termination message."""

    version: str
    variant: str
    served: int
    labelled: int
    coverage: float
    roc_auc: float | None = Field(description="Realised; None below minLabels or one class.")
    accuracy: float | None
    roc_auc_estimated: float | None = Field(description="CBPE, on every served row.")
    accuracy_estimated: float | None


class PerformanceSummary(BaseModel):
    """The performance rule's answer and each variant's figures (in the drift summary)."""

    status: Literal["breach", "ok", "insufficient_labels"]
    breached: bool | None
    reason: str
    metric: PerformanceMetric
    version: str = Field(description="The version judged (the checked one, champion rows).")
    value: float | None
    low: float | None = Field(description="Lower end of the 95% interval.")
    high: float | None = Field(description="Upper end of the 95% interval.")
    limit: float | None = Field(description="The bound the interval was judged against.")
    reference: float | None = Field(description="The version's training test score.")
    labelled: int
    variants: list[VariantPerformance]


class DriftCheckSummary(BaseModel):
    """A drift check's decision and top offenders: its termination message (<= 4 KiB)."""

    contract_version: Literal[1] = CONTRACT_VERSION
    status: Literal["drift", "no_drift", "insufficient_data"]
    drifted: bool | None
    reason: str
    samples: dict[str, int] = Field(description="Rows per side: reference and current.")
    max_psi: float | None
    thresholds: DriftThresholds
    features_checked: int
    features_drifted: int
    features_omitted: int = Field(description="Features left out to fit the 4 KiB budget.")
    features: list[FeatureSummary] = Field(description="Largest PSI first.")
    prediction: PredictionSummary
    performance: PerformanceSummary | None = Field(
        None, exclude_if=_absent, description="With a performance rule (live mode)."
    )


class TrainingResult(BaseModel):
    """What a training Job registered: its termination message."""

    contract_version: Literal[1] = CONTRACT_VERSION
    model_name: str
    version: str | None = Field(description="Registered model version; None with --no-register.")
    run_id: str
    roc_auc: float = Field(description="Test AUC-ROC of the registered model.")


def parse_message(model: type[M], text: str) -> M:
    """``text`` (a termination message) as ``model``; ContractError with one line otherwise."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "message"
        raise ContractError(
            f"{model.__name__} does not parse: {where}: {error['msg']}"
            f" ({exc.error_count()} error(s))"
        ) from exc
