"""The drift baseline (``baseline.json``): what live data is compared against.

Written by the trainer for every model version (``driftline.baseline_builder``), read by drift
checks and by serving, whose drift sketches count into its bins (so this module needs nothing
but pydantic). Per numeric feature: the quantile bin edges from training data and the training
share in each bin, plus a bounded random sample for KS tests; per categorical feature: the
share of each category; the same for the predicted probabilities of held-out data.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict

BASELINE_VERSION = 1


class NumericReference(BaseModel):
    """Quantile bins and a bounded sample of one numeric variable."""

    model_config = ConfigDict(frozen=True)

    edges: tuple[float, ...]
    proportions: tuple[float, ...]
    sample: tuple[float, ...]
    count: int
    null_fraction: float


class CategoricalReference(BaseModel):
    """Category shares of one categorical variable (nulls under the missing token)."""

    model_config = ConfigDict(frozen=True)

    proportions: dict[str, float]
    count: int


class Baseline(BaseModel):
    """The drift reference of one model version."""

    model_config = ConfigDict(frozen=True)

    baseline_version: int = BASELINE_VERSION
    bins: int
    sample_size: int
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    prediction: NumericReference

    def to_json(self) -> str:
        """Serialise as the ``baseline.json`` artifact."""
        return json.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, text: str) -> Baseline:
        """Parse a ``baseline.json`` artifact."""
        return cls.model_validate(json.loads(text))
