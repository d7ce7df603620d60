"""One typing of feature values for every reader: what a file reader guessed must not matter."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.coercion import FeatureValueError, coerce_column, derive_schema, to_model_frame
from driftline.schema import MISSING_CATEGORY, FeatureKind, FeatureSchema, FeatureSpec
from driftline.validation import validate_frame
from driftline_training.adult import load_table
from driftline_training.training import TrainConfig, train_model

CODES = FeatureSpec(
    name="region", kind=FeatureKind.CATEGORICAL, categories=("1", "2", "3", "4", "5")
)
NUMBER = FeatureSpec(name="x", kind=FeatureKind.NUMERIC, nullable=True, max_null_fraction=1.0)


def values(series: pd.Series) -> list:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in series]


def test_integer_codes_read_as_floats_keep_their_categories() -> None:
    # One blank cell makes pandas read 1..5 as 1.0..5.0.
    column = pd.Series([1.0, np.nan, 5.0, 3.0])
    assert values(coerce_column(column, CODES)) == ["1", None, "5", "3"]


def test_codes_with_leading_zeros_take_the_category_they_equal() -> None:
    spec = CODES.model_copy(update={"categories": ("01", "02", "10")})
    assert values(coerce_column(pd.Series([1, 2, 10, 7]), spec)) == ["01", "02", "10", "7"]


def test_a_number_two_categories_spell_keeps_its_own_spelling() -> None:
    # "01" and "001" both equal 1: a reader's 1 cannot say which, so it is an unseen "1".
    spec = CODES.model_copy(update={"categories": ("01", "001", "2")})
    assert values(coerce_column(pd.Series([1.0, 2.0]), spec)) == ["1", "2"]


def test_booleans_take_the_category_they_name() -> None:
    spec = CODES.model_copy(update={"categories": ("false", "true")})
    assert values(coerce_column(pd.Series([True, False]), spec)) == ["true", "false"]
    mixed = pd.Series([True, None, False], dtype=object)
    assert values(coerce_column(mixed, spec)) == ["true", None, "false"]
    free = CODES.model_copy(update={"categories": None})
    assert values(coerce_column(pd.Series([True, False]), free)) == ["True", "False"]


def test_category_text_is_stripped_and_blank_text_is_missing() -> None:
    column = pd.Series([" 2 ", "", "   ", "4"], dtype=object)
    assert values(coerce_column(column, CODES)) == ["2", None, None, "4"]


def test_numbers_read_as_text_are_numbers() -> None:
    column = pd.Series([" 42 ", "", "1e3", "-0.5", None], dtype=object)
    assert values(coerce_column(column, NUMBER)) == [42.0, None, 1000.0, -0.5, None]
    assert values(coerce_column(pd.Series([True, False]), NUMBER)) == [1.0, 0.0]


def test_a_stray_token_in_a_numeric_column_is_an_error_naming_it() -> None:
    column = pd.Series(["1", "2", "n/a?", "4", "oops"], dtype=object)
    with pytest.raises(FeatureValueError) as caught:
        coerce_column(column, NUMBER)
    assert str(caught.value) == "x: 'n/a?' (row 2) is not a number"
    assert (caught.value.column, caught.value.value, caught.value.row) == ("x", "n/a?", 2)


def test_derived_kinds_do_not_depend_on_the_dtype_guess() -> None:
    as_numbers = pd.DataFrame({"x": [1.0, np.nan, 3.0], "c": ["a", "b", None]})
    as_text = pd.DataFrame({"x": ["1", "", "3"], "c": ["a", "b", ""]}, dtype=object)
    assert derive_schema(as_numbers, None) == derive_schema(as_text, None)
    assert derive_schema(as_text, None).feature("x").kind is FeatureKind.NUMERIC


def test_a_mostly_numeric_column_with_a_stray_token_cannot_be_inferred() -> None:
    frame = pd.DataFrame({"x": ["1", "2", "3", "-", "5"]}, dtype=object)
    with pytest.raises(FeatureValueError, match=r"^x: '-' \(row 3\) is not a number"):
        derive_schema(frame, None)


def test_a_column_with_no_values_is_unbounded_and_fully_nullable() -> None:
    spec = derive_schema(pd.DataFrame({"y": [np.nan, np.nan]}), None).feature("y")
    assert spec.kind is FeatureKind.NUMERIC
    assert (spec.nullable, spec.max_null_fraction, spec.minimum, spec.maximum) == (
        True,
        1.0,
        None,
        None,
    )


def test_csv_and_parquet_of_the_same_data_give_the_same_model_frame(tmp_path: Path) -> None:
    schema = FeatureSchema(features=(CODES, NUMBER))
    csv = tmp_path / "data.csv"
    csv.write_text("region,x\n1,0.5\n,1.5\n5,\n2, 7\n")
    parquet = tmp_path / "data.parquet"
    typed = pd.DataFrame(
        {
            "region": pd.Series(["1", None, "5", "2"], dtype="string"),
            "x": pd.Series([0.5, 1.5, None, 7.0], dtype="Float64"),
        }
    )
    typed.to_parquet(parquet)
    from_csv = to_model_frame(load_table(csv), schema)
    pd.testing.assert_frame_equal(from_csv, to_model_frame(load_table(parquet), schema))
    assert from_csv["region"].tolist() == ["1", MISSING_CATEGORY, "5", "2"]


def test_live_records_with_numbers_for_codes_match_the_categories() -> None:
    # Logged features come back from JSON: a writer that kept codes as numbers still matches.
    records = [{"region": 3, "x": 1}, {"region": None, "x": None}, {"region": "4", "x": 2.5}]
    frame = to_model_frame(
        pd.DataFrame.from_records(records), FeatureSchema(features=(CODES, NUMBER))
    )
    assert frame["region"].tolist() == ["3", MISSING_CATEGORY, "4"]
    assert values(frame["x"]) == [1.0, None, 2.5]


def test_validation_takes_codes_read_as_floats_as_their_categories() -> None:
    schema = FeatureSchema(
        features=(CODES.model_copy(update={"nullable": True, "max_null_fraction": 0.5}),)
    )
    report = validate_frame(
        pd.DataFrame({"region": [1.0, np.nan, 4.0]}), schema, require_target=False
    )
    assert report.ok, report.render()


def test_training_types_columns_by_the_contract_not_the_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = 300
    region = rng.integers(1, 6, rows)
    x = rng.normal(size=rows)
    label = ((x + (region == 3)) > 0.5).astype(int)
    lines = ["region,x,y"] + [f"{r},{v:.4f},{y}" for r, v, y in zip(region, x, label, strict=True)]
    lines[1] = f",{x[0]:.4f},{label[0]}"  # one blank code: pandas reads the column as floats
    path = tmp_path / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    contract = FeatureSchema(
        features=(CODES.model_copy(update={"nullable": True, "max_null_fraction": 0.01}), NUMBER)
    )
    trained = train_model(load_table(path), "y", TrainConfig(folds=2, threads=1), contract)
    learned = trained.schema.feature("region")
    assert learned.kind is FeatureKind.CATEGORICAL
    assert learned.categories == ("1", "2", "3", "4", "5")
