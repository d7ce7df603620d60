"""The drift baseline (``baseline.json``): what live data is compared against.

Written by the trainer for every model version, read by drift checks. Per numeric feature: the
quantile bin edges from training data and the training share in each bin, plus a bounded random
sample for KS tests; per categorical feature: the share of each category; the same for the
predicted probabilities of held-out data.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from driftline.schema import FeatureKind, FeatureSchema
from driftline.stattests import bin_proportions, quantile_edges

if TYPE_CHECKING:
    import pandas as pd

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


def numeric_reference(
    values: npt.ArrayLike, bins: int, sample_size: int, rng: np.random.Generator
) -> NumericReference:
    """Bins, shares and a bounded sample of one numeric variable."""
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    edges = quantile_edges(finite, bins)
    sample = finite if finite.size <= sample_size else rng.choice(finite, sample_size, False)
    return NumericReference(
        edges=tuple(edges.tolist()),
        proportions=tuple(bin_proportions(finite, edges).tolist()),
        sample=tuple(np.sort(sample).tolist()),
        count=int(finite.size),
        null_fraction=float(1 - finite.size / max(1, array.size)),
    )


def build_baseline(
    features: pd.DataFrame,
    probabilities: npt.ArrayLike,
    schema: FeatureSchema,
    *,
    bins: int = 10,
    sample_size: int = 5000,
    seed: int = 0,
) -> Baseline:
    """Build the baseline from training features and held-out predicted probabilities.

    Predictions come from held-out data because scores on the training rows are more extreme
    than what the model will produce on live traffic.
    """
    # Imported here: serving reads baselines (drift sketches) in an image without pandas.
    from driftline.coercion import to_model_frame

    rng = np.random.default_rng(seed)
    frame = to_model_frame(features, schema)
    numeric: dict[str, NumericReference] = {}
    categorical: dict[str, CategoricalReference] = {}
    for spec in schema.features:
        if spec.kind is FeatureKind.NUMERIC:
            numeric[spec.name] = numeric_reference(frame[spec.name], bins, sample_size, rng)
        else:
            shares: Any = frame[spec.name].value_counts(normalize=True).sort_index()
            categorical[spec.name] = CategoricalReference(
                proportions={str(k): float(v) for k, v in shares.items()}, count=len(frame)
            )
    return Baseline(
        bins=bins,
        sample_size=sample_size,
        numeric=numeric,
        categorical=categorical,
        prediction=numeric_reference(probabilities, bins, sample_size, rng),
    )
