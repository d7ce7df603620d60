import numpy as np
import pandas as pd
import pytest

from driftline.coercion import derive_schema
from driftline.validation import validate_frame


@pytest.fixture(scope="module")
def schema(adult: pd.DataFrame):
    return derive_schema(adult, "income")


def checks(report) -> set[tuple[str, str]]:
    return {(v.check, v.column) for v in report.violations}


def test_the_data_passes_its_own_schema(adult, schema) -> None:
    report = validate_frame(adult, schema)
    assert report.ok, report.render()


def test_missing_columns_are_named(adult, schema) -> None:
    report = validate_frame(adult.drop(columns=["age", "income"]), schema)
    assert checks(report) == {("required", "age"), ("required", "income")}
    assert "age: column is missing" in report.render()


def test_a_value_of_the_wrong_type_is_reported_with_the_first_bad_value(adult, schema) -> None:
    age = adult["age"].astype(object)
    age[7] = "forty"
    bad = adult.assign(age=age, sex=np.arange(len(adult)))
    report = validate_frame(bad, schema)
    assert checks(report) == {("dtype", "age"), ("categories", "sex")}
    (dtype,) = [v for v in report.violations if v.check == "dtype"]
    assert dtype.message == "'forty' (row 7) is not a number"


def test_types_a_reader_guessed_are_not_violations(adult, schema) -> None:
    # Numbers read as text are the same numbers.
    guessed = adult.assign(age=adult["age"].astype(str), hours_per_week=adult["hours_per_week"])
    assert validate_frame(guessed, schema).ok


def test_null_fraction_over_the_limit(adult, schema) -> None:
    bad = adult.copy()
    bad.loc[bad.sample(frac=0.3, random_state=1).index, "occupation"] = pd.NA
    assert checks(validate_frame(bad, schema)) == {("nulls", "occupation")}


def test_out_of_range_and_unknown_categories(adult, schema) -> None:
    bad = adult.copy()
    bad.loc[:9, "age"] = -5
    bad.loc[:199, "race"] = "Martian"
    report = validate_frame(bad, schema)
    assert checks(report) == {("range", "age"), ("categories", "race")}
    assert "10 value(s) outside" in report.render()
    assert "0.41% of rows in 1 unknown categories: 'Martian'" in report.render()


def test_rare_unknown_categories_are_tolerated(adult, schema) -> None:
    rare = adult.copy()
    rare.loc[:2, "race"] = "Martian"
    assert validate_frame(rare, schema).ok
    assert not validate_frame(rare, schema, max_unknown_fraction=0.0).ok


def test_target_must_be_binary(adult, schema) -> None:
    assert checks(validate_frame(adult.assign(income=2), schema)) == {("target", "income")}


def test_empty_data(adult, schema) -> None:
    assert not validate_frame(adult.head(0), schema).ok


def test_rare_values_past_the_range_pass_and_a_new_sign_never_does(adult, schema) -> None:
    age = next(spec for spec in schema.features if spec.name == "age")
    past = adult.copy()
    past.loc[:3, "age"] = int(age.maximum) + 1  # 4 of 48,842 rows, older than training saw
    assert validate_frame(past, schema).ok
    many = adult.copy()
    many.loc[:199, "age"] = int(age.maximum) + 1
    assert checks(validate_frame(many, schema)) == {("range", "age")}
    negative = adult.copy()
    negative.loc[:0, "age"] = -1
    assert checks(validate_frame(negative, schema)) == {("range", "age")}
