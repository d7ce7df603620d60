"""Explanations and importances credit the feature that produced each pipeline column.

The oracle never reads column names: a column belongs to the feature whose values make it move
when every other feature is held fixed (probing the fitted transformer), and the reference
contribution of a feature is XGBoost's ``pred_contribs`` summed over those columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost

from driftline.attribution import output_sources, sum_by_feature
from driftline.coercion import derive_schema, to_model_frame
from driftline.schema import FeatureSchema
from driftline_serving.runtimes import NativePredictor
from driftline_training.pipeline import XGBParams, build_pipeline
from driftline_training.training import TrainConfig, train_model

TOLERANCE = 1e-5
SMALL = XGBParams(learning_rate=0.3, colsample_bytree=1.0).with_rounds(40)


def owners_by_response(preprocess, frame: pd.DataFrame, schema: FeatureSchema) -> list[str]:
    """The feature behind each output column, found by varying one feature at a time.

    ``frame`` must hold every category the transformer was fitted on (its training rows).
    """
    width = preprocess.transform(frame.iloc[:1]).shape[1]
    owners: list[str | None] = [None] * width
    for name in schema.names:
        values = frame[name].drop_duplicates().to_numpy()[:200]
        probe = pd.concat([frame.iloc[[0]]] * len(values), ignore_index=True)
        probe[name] = values
        moved = np.flatnonzero(np.ptp(preprocess.transform(probe), axis=0) > 0)
        for column in moved:
            assert owners[column] is None, f"column {column} moves with two features"
            owners[column] = name
    assert None not in owners, "a column moves with no feature"
    return [str(o) for o in owners]


def reference_contributions(
    pipeline, frame: pd.DataFrame, schema: FeatureSchema, fitted_on: pd.DataFrame
) -> pd.DataFrame:
    """``pred_contribs`` (log-odds, bias dropped) summed per feature by the probed owners."""
    preprocess = pipeline.named_steps["preprocess"]
    booster = pipeline.named_steps["classifier"].get_booster()
    matrix = xgboost.DMatrix(preprocess.transform(frame))
    contribs = booster.predict(matrix, pred_contribs=True)[:, :-1]
    owners = np.array(owners_by_response(preprocess, fitted_on, schema))
    return pd.DataFrame(
        {name: contribs[:, owners == name].sum(axis=1) for name in schema.names},
        index=frame.index,
    )


def explained(pipeline, frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """What the server's explainer answers, every feature (not only the top ones)."""
    rows = frame[schema.names].astype(object).to_numpy().tolist()
    answers = NativePredictor(pipeline, schema).contributions(rows, top=len(schema.names))
    table = [{e["feature"]: e["contribution"] for e in answer} for answer in answers]
    return pd.DataFrame(table, index=frame.index).reindex(columns=schema.names)


def fitted(frame: pd.DataFrame, target: str):
    schema = derive_schema(frame, target)
    x = to_model_frame(frame, schema)
    pipeline = build_pipeline(schema, SMALL, seed=0, threads=1)
    pipeline.fit(x, frame[target].to_numpy())
    return pipeline, schema, x


def test_explanations_match_pred_contribs_on_adult(adult: pd.DataFrame) -> None:
    pipeline, schema, x = fitted(adult.sample(8000, random_state=3), "income")
    rows = to_model_frame(adult.sample(300, random_state=4), schema)
    expected = reference_contributions(pipeline, rows, schema, fitted_on=x)
    got = explained(pipeline, rows, schema)
    # Every feature is named for every row, with the sum of its own columns.
    assert list(got.columns[got.isna().any()]) == [], "features never named"
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=TOLERANCE)
    assert got["education_num"].abs().max() > 0.1


def test_output_sources_follow_the_fitted_transformer(adult: pd.DataFrame) -> None:
    pipeline, schema, x = fitted(adult.sample(4000, random_state=5), "income")
    preprocess = pipeline.named_steps["preprocess"]
    assert output_sources(preprocess) == owners_by_response(preprocess, x, schema)


def test_sum_by_feature_keeps_feature_order_and_zero_for_unused() -> None:
    values = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    sums = sum_by_feature(values, ["b", "a", "b"], ["a", "b", "c"])
    np.testing.assert_array_equal(sums, [[2.0, 4.0, 0.0], [5.0, 10.0, 0.0]])
    np.testing.assert_array_equal(sum_by_feature(values[0], ["b", "a", "b"], ["a", "b"]), [2, 4])
    with pytest.raises(ValueError, match="'z'"):
        sum_by_feature(values, ["b", "a", "z"], ["a", "b"])


def test_training_importances_sum_gains_by_source(adult: pd.DataFrame) -> None:
    config = TrainConfig(folds=2, params=XGBParams(n_estimators=60, early_stopping_rounds=10))
    sample = adult.sample(6000, random_state=6)
    trained = train_model(sample, "income", config, None)
    preprocess = trained.pipeline.named_steps["preprocess"]
    gains = trained.pipeline.named_steps["classifier"].feature_importances_
    # The sample holds the training split, so every category the encoder learned.
    every_row = to_model_frame(sample, trained.schema)
    owners = np.array(owners_by_response(preprocess, every_row, trained.schema))
    for name in trained.schema.names:
        assert trained.importances[name] == pytest.approx(float(gains[owners == name].sum()))
    assert trained.importances["education_num"] > 0.0


def synthetic(columns: dict[str, list], seed: int = 0, rows: int = 3000) -> pd.DataFrame:
    """Random rows whose label depends on every column, so each one earns a contribution."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.choice(values, rows) for name, values in columns.items()})
    score = np.zeros(rows)
    for i, name in enumerate(frame.columns):
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            score += (i + 1) * (column - column.mean()) / column.std()
        else:
            codes = column.map({v: k for k, v in enumerate(sorted(column.unique()))})
            score += (i + 1) * (codes - codes.mean())
    frame["label"] = (score + rng.normal(0, 1, rows) > 0).astype(int)
    return frame


SIBLINGS = {
    # A numeric name that extends a categorical one, as `education` / `education_num` in Adult.
    "prefix": {"education": ["HS", "BSc", "MSc"], "education_num": [9.0, 13.0, 14.0, 16.0]},
    # Feature `a` with category `b_c` and feature `a_b` with category `c`: both become
    # `cat__a_b_c`, so no reading of the name can tell them apart.
    "one_hot_names_collide": {"a": ["b_c", "d"], "a_b": ["c", "e", "f"]},
    # A numeric feature named like another feature's one-hot column.
    "named_like_a_one_hot_column": {"sex": ["Male", "Female"], "sex_Male": [0.0, 1.0, 2.0, 5.0]},
    # `__` inside a feature name, after a name that is its prefix up to `_`.
    "double_underscore_in_name": {"x": ["p", "q", "r"], "x__y": [1.0, 2.0, 3.0, 7.0]},
    # `__` inside category values (the missing-value token is one) and a prefix-named category.
    "double_underscore_in_category": {
        "colour": ["__missing__", "red__dark", "red"],
        "colour_red": ["y__z", "y"],
    },
}


@pytest.mark.parametrize("columns", SIBLINGS.values(), ids=SIBLINGS.keys())
def test_explanations_match_pred_contribs_when_names_mislead(columns: dict[str, list]) -> None:
    frame = synthetic(columns)
    pipeline, schema, x = fitted(frame, "label")
    expected = reference_contributions(pipeline, x.iloc[:200], schema, fitted_on=x)
    got = explained(pipeline, x.iloc[:200], schema)
    assert list(got.columns[got.isna().any()]) == [], "features never named"
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), atol=TOLERANCE)
    assert (expected.abs().max() > 0.05).all(), "every feature must matter for the test to bite"
