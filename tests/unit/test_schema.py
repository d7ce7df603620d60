import math

import pandas as pd

from driftline.coercion import derive_schema, to_model_frame
from driftline.schema import MISSING_CATEGORY, FeatureKind, FeatureSchema


def test_schema_derived_from_adult(adult: pd.DataFrame) -> None:
    schema = derive_schema(adult, "income")
    assert schema.target == "income"
    assert len(schema.features) == 14
    age = schema.feature("age")
    assert age.kind is FeatureKind.NUMERIC and age.integer and not age.nullable
    # Observed 17..90 widened by 10% of the span on each side.
    assert math.isclose(age.minimum, 17 - 7.3) and math.isclose(age.maximum, 90 + 7.3)
    capital = schema.feature("capital_gain")
    assert capital.minimum == 0.0  # never below zero for a non-negative feature
    workclass = schema.feature("workclass")
    assert workclass.kind is FeatureKind.CATEGORICAL and workclass.nullable
    assert "Private" in workclass.categories
    assert 0.057 < workclass.max_null_fraction < 0.11


def test_schema_json_round_trip(adult: pd.DataFrame) -> None:
    schema = derive_schema(adult, "income")
    assert FeatureSchema.from_json(schema.to_json()) == schema


def test_model_frame_types_and_missing_token(adult: pd.DataFrame) -> None:
    schema = derive_schema(adult, "income")
    frame = to_model_frame(adult.head(2000), schema)
    assert list(frame.columns) == schema.names
    assert frame["age"].dtype == "float64"
    assert (frame["workclass"] == MISSING_CATEGORY).sum() == adult["workclass"].head(
        2000
    ).isna().sum()
    assert frame["workclass"].map(type).eq(str).all()
