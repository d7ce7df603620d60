import numpy as np
import pandas as pd
import pytest

from driftline.baseline import Baseline
from driftline.baseline_builder import build_baseline
from driftline.coercion import derive_schema
from driftline.schema import MISSING_CATEGORY
from driftline.stattests import bin_proportions, quantile_edges


def test_deciles_of_a_continuous_variable() -> None:
    values = np.arange(1000, dtype=float)
    edges = quantile_edges(values, 10)
    assert edges.size == 9
    assert bin_proportions(values, edges) == pytest.approx([0.1] * 10)


def test_ties_collapse_bins() -> None:
    values = np.array([0.0] * 900 + [5.0] * 100)
    assert quantile_edges(values, 10).tolist() == [0.0]
    assert bin_proportions(values, np.array([0.0])).tolist() == [0.9, 0.1]


def test_baseline_of_adult(adult: pd.DataFrame) -> None:
    schema = derive_schema(adult, "income")
    proba = np.random.default_rng(0).uniform(size=3000)
    baseline = build_baseline(adult, proba, schema, sample_size=2000)
    assert set(baseline.numeric) | set(baseline.categorical) == set(schema.names)
    age = baseline.numeric["age"]
    assert len(age.sample) == 2000 and age.count == len(adult)
    assert sum(age.proportions) == pytest.approx(1.0)
    assert len(age.proportions) == len(age.edges) + 1
    workclass = baseline.categorical["workclass"].proportions
    assert workclass[MISSING_CATEGORY] == pytest.approx(adult["workclass"].isna().mean())
    assert sum(baseline.prediction.proportions) == pytest.approx(1.0)
    assert Baseline.from_json(baseline.to_json()) == baseline
