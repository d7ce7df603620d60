"""Training-serving skew: per-feature two-sample tests between any two frames."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from driftline.coercion import to_model_frame
from driftline.schema import FeatureSchema
from driftline.stattests import DEFAULT_TESTS, STAT_TESTS, TestResult


@dataclass(frozen=True)
class FeatureSkew:
    """The test result for one feature."""

    feature: str
    result: TestResult


def skew_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: FeatureSchema,
    *,
    alpha: float = 0.05,
) -> list[FeatureSkew]:
    """Compare each schema feature of two frames: KS for numeric, chi-squared for categorical.

    Results are ordered by p-value, most significant first, so the likely culprits lead.
    """
    ref = to_model_frame(reference, schema)
    cur = to_model_frame(current, schema)
    out = []
    for spec in schema.features:
        test = STAT_TESTS[DEFAULT_TESTS[spec.kind]]
        out.append(FeatureSkew(spec.name, test.function(ref[spec.name], cur[spec.name], alpha)))
    return sorted(out, key=lambda s: (s.result.p_value, -s.result.statistic))
