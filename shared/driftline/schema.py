"""The feature schema: the contract between the trainer, the inference server and drift checks.

A schema is derived from training data (``driftline.coercion.derive_schema``) and stored with
every model version as ``feature_schema.json``. Serving validates requests against it, drift
checks use its feature kinds, and the trainer validates new data against it before retraining.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
# Categorical nulls reach the model as this token: one-hot encoders and ONNX string tensors
# have no missing value of their own.
MISSING_CATEGORY = "__missing__"


class FeatureKind(StrEnum):
    """How a feature is treated by the model and by the statistics."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class FeatureSpec(BaseModel):
    """One feature's contract: kind, value domain and tolerated nulls."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: FeatureKind
    integer: bool = Field(False, description="Numeric values are whole numbers.")
    nullable: bool = False
    max_null_fraction: float = Field(0.0, ge=0.0, le=1.0)
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] | None = Field(
        None, description="Allowed categories; None accepts any string."
    )


class FeatureSchema(BaseModel):
    """The ordered features of a model and its binary target."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = SCHEMA_VERSION
    features: tuple[FeatureSpec, ...]
    target: str | None = None

    @property
    def names(self) -> list[str]:
        """Feature names in model input order."""
        return [f.name for f in self.features]

    def by_kind(self, kind: FeatureKind) -> list[str]:
        """Names of the features of one kind, in model input order."""
        return [f.name for f in self.features if f.kind is kind]

    def feature(self, name: str) -> FeatureSpec:
        """The spec of one feature; KeyError names the feature when it is unknown."""
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(f"unknown feature {name!r}")

    def to_json(self) -> str:
        """Serialise as the ``feature_schema.json`` artifact."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSchema:
        """Parse a ``feature_schema.json`` artifact."""
        return cls.model_validate(json.loads(text))
