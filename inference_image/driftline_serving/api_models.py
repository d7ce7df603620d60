"""Request and response models for the OpenAPI document (the hot path does not parse with them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from driftline.schema import FeatureKind, FeatureSchema
from driftline_serving.records import FLOAT32_MAX

FeatureValue = float | str | None


class PredictRequest(BaseModel):
    """One record to score."""

    features: dict[str, FeatureValue] = Field(
        description="Every feature of the model's schema, by name; no others. Numbers for "
        "numeric features (values past the training range are accepted and counted; a negative "
        "one where training had none is refused), strings for categorical ones (unknown "
        "categories are accepted and counted); null only where the schema allows it."
    )
    request_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Caller's id (visible ASCII), echoed and logged; else the X-Request-ID "
        "header or a new id.",
    )
    explain: bool = Field(False, description="Add the top feature contributions (XGBoost).")


class BatchRecord(BaseModel):
    """One record of a batch."""

    features: dict[str, FeatureValue] = Field(description="As in PredictRequest.features.")
    request_id: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")


class BatchRequest(BaseModel):
    """Up to the server's `max_batch` records (1,000 by default)."""

    records: list[BatchRecord] = Field(min_length=1)
    explain: bool = False


class Contribution(BaseModel):
    """A feature's contribution to the log-odds (one-hot columns summed per feature)."""

    feature: str
    contribution: float


class PredictResponse(BaseModel):
    """The answer for one record."""

    prediction: int = Field(description="1 when probability >= threshold (income >50K).")
    probability: float = Field(description="Positive-class probability.")
    threshold: float = Field(description="Decision threshold calibrated at training.")
    model: str = Field(description="Registered model name.")
    version: str = Field(description="Model version that answered.")
    variant: str = Field(description="champion or challenger.")
    request_id: str = Field(description="The request id, as logged.")
    explanation: list[Contribution] | None = Field(None, description="Only when explain=true.")


class BatchResponse(BaseModel):
    """Answers in request order."""

    predictions: list[PredictResponse]


class Label(BaseModel):
    """The true class of one served request."""

    request_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="The id the prediction was served under (its X-Request-ID).",
    )
    label: Literal[0, 1] = Field(description="The true class: 1 for income >50K.")


class LabelBatch(BaseModel):
    """Up to the server's `max_feedback` labels (10,000 by default)."""

    labels: list[Label] = Field(min_length=1)


class FeedbackAccepted(BaseModel):
    """Labels accepted; they are written to the feedback table within a flush interval."""

    accepted: int = Field(description="Labels stored (repeats of an id included).")
    unsampled: int = Field(
        0,
        description="Labels of requests the log sample rate left out: acknowledged, not stored"
        " (no logged prediction to join).",
    )


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(description="Error kind, e.g. invalid_input.")
    message: str = Field(description="What is wrong, in one line.")
    field: str | None = Field(None, description="The offending field's path, when there is one.")


DOC_MODELS: tuple[type[BaseModel], ...] = (
    PredictRequest,
    BatchRecord,
    BatchRequest,
    PredictResponse,
    BatchResponse,
    Label,
    LabelBatch,
    FeedbackAccepted,
    ErrorBody,
)


def features_schema(schema: FeatureSchema) -> dict[str, Any]:
    """JSON Schema of the features object of a loaded model."""
    properties: dict[str, Any] = {}
    for spec in schema.features:
        if spec.kind is FeatureKind.NUMERIC:
            prop: dict[str, Any] = {"type": "number"}
            # The one hard bound: no negative value where training had none. The training
            # range itself is documentation (values past it are served and counted).
            prop["minimum"] = -FLOAT32_MAX
            prop["maximum"] = FLOAT32_MAX
            if spec.minimum is not None and spec.minimum >= 0:
                prop["minimum"] = 0
            if spec.minimum is not None and spec.maximum is not None:
                prop["description"] = (
                    f"Training range [{spec.minimum:g}, {spec.maximum:g}]; values past it"
                    " are served and counted (driftline_out_of_range_values_total)."
                )
        else:
            prop = {"type": "string"}
            if spec.categories:
                prop["examples"] = list(spec.categories[:5])
        if spec.nullable:
            prop = {"anyOf": [prop, {"type": "null"}]}
        properties[spec.name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": schema.names,
        "additionalProperties": False,
    }
