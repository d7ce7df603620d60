"""Building the drift baseline (``baseline.json``) from training data and held-out scores.

Per numeric feature: the quantile bin edges and the training share in each bin, plus a bounded
random sample for KS tests; per categorical feature: the share of each category; the same for
the predicted probabilities of held-out data. The format itself is ``driftline.baseline``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from driftline.baseline import Baseline, CategoricalReference, NumericReference
from driftline.coercion import to_model_frame
from driftline.schema import FeatureKind, FeatureSchema
from driftline.stattests import bin_proportions, quantile_edges


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
