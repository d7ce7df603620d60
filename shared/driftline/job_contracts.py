"""What the operator and its Jobs tell each other, as typed, versioned messages (pure).

The operator passes a drift check its decision rule as one ``DriftThresholds`` object; the
check answers with a ``DriftCheckSummary`` and a training Job with a ``TrainingResult``, both
in the Pod's termination message (Kubernetes keeps 4 KiB of it). Writer and reader use these
same models, so a field renamed on one side fails a test instead of a reconcile.
"""

from __future__ import annotations

from typing import Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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
