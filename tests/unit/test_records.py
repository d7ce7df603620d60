import math

import pandas as pd
import pytest

from driftline.coercion import derive_schema
from driftline.schema import MISSING_CATEGORY
from driftline_serving.errors import InvalidInputError
from driftline_serving.records import REQUEST_KEYS, RecordValidator, check_keys


@pytest.fixture(scope="module")
def validator(adult: pd.DataFrame) -> RecordValidator:
    return RecordValidator(derive_schema(adult, "income"))


@pytest.fixture()
def features(adult: pd.DataFrame) -> dict:
    row = adult.iloc[0].drop("income").to_dict()
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def test_a_valid_record(validator, features) -> None:
    record = validator.record({"features": features, "request_id": "r-1"}, "", None)
    assert record.request_id == "r-1"
    assert record.values[0] == 39.0 and record.values[1] == "State-gov"
    assert record.unknown == ()


def test_request_id_from_header_or_generated(validator, features) -> None:
    assert validator.record({"features": features}, "", "hdr").request_id == "hdr"
    generated = validator.record({"features": features}, "", None).request_id
    assert len(generated) == 32


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda f: f.pop("age"), "features.age", "is required"),
        (lambda f: f.update(colour="red"), "features.colour", "is not a feature"),
        (lambda f: f.update(age="39"), "features.age", "must be a number, got str"),
        (lambda f: f.update(age=True), "features.age", "must be a number, got bool"),
        (lambda f: f.update(age=math.nan), "features.age", "finite"),
        (lambda f: f.update(age=math.inf), "features.age", "finite"),
        (lambda f: f.update(fnlwgt=1.5e306), "features.fnlwgt", "32-bit floats"),
        (lambda f: f.update(age=-4), "features.age", "outside the range"),
        (lambda f: f.update(age=None), "features.age", "got null"),
        (lambda f: f.update(sex=1), "features.sex", "must be a string, got int"),
        (lambda f: f.update(sex=None), "features.sex", "got null"),
    ],
)
def test_bad_values_name_the_field(validator, features, change, field, message) -> None:
    change(features)
    with pytest.raises(InvalidInputError, match=message) as caught:
        validator.record({"features": features}, "", None)
    assert caught.value.field == field


def test_nullable_and_unknown_categories(validator, features) -> None:
    features.update(workclass=None, occupation="Astronaut")
    record = validator.record({"features": features}, "", None)
    assert record.values[1] == MISSING_CATEGORY
    assert record.unknown == ("occupation",)


def test_batch_paths_and_top_level_keys(validator, features) -> None:
    features.pop("sex")
    with pytest.raises(InvalidInputError) as caught:
        validator.record({"features": features}, "records[7].", None)
    assert caught.value.field == "records[7].features.sex"
    with pytest.raises(InvalidInputError) as caught:
        check_keys({"features": {}, "extra": 1}, REQUEST_KEYS)
    assert caught.value.field == "extra"
    with pytest.raises(InvalidInputError):
        check_keys([1, 2], REQUEST_KEYS)
    for bad_id in ("", "\x1f", "a b", "café", "x" * 201, 7):
        with pytest.raises(InvalidInputError, match="1 to 200 visible ASCII") as caught:
            validator.record(
                {"features": features | {"sex": "Male"}, "request_id": bad_id}, "", None
            )
        assert caught.value.field == "request_id"


def test_numbers_past_the_training_range_are_served_and_flagged(validator, features) -> None:
    age = next(spec for spec in validator.schema.features if spec.name == "age")
    features.update(age=age.maximum + 5)
    record = validator.record({"features": features}, "", None)
    assert record.values[0] == age.maximum + 5
    assert record.unknown == ("age",)
    features.update(age=-1)
    with pytest.raises(InvalidInputError, match="never negative in training"):
        validator.record({"features": features}, "", None)
