from pathlib import Path

import pandas as pd
import pytest

from driftline_training.adult import (
    CATEGORICAL,
    COLUMNS,
    EXPECTED_ROWS,
    NUMERIC,
    TARGET,
    load_adult,
    load_table,
    normalise,
)
from driftline_training.errors import DataSourceError


def test_adult_has_the_documented_shape(adult: pd.DataFrame) -> None:
    assert len(adult) == EXPECTED_ROWS
    assert list(adult.columns) == [*COLUMNS, TARGET]
    assert sorted(NUMERIC + CATEGORICAL) == sorted(COLUMNS)
    assert set(adult[TARGET].unique()) == {0, 1}
    # 11,687 of 48,842 people earn more than 50K in the UCI files.
    assert int(adult[TARGET].sum()) == 11_687
    for name in NUMERIC:
        assert pd.api.types.is_integer_dtype(adult[name]), name


def test_question_marks_become_missing_values(adult: pd.DataFrame) -> None:
    assert adult["workclass"].isna().sum() == 2_799
    assert not (adult[CATEGORICAL] == "?").any().any()
    assert adult["age"].isna().sum() == 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_local_files_round_trip(adult: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    sample = adult.sample(500, random_state=0).reset_index(drop=True)
    path = tmp_path / f"adult{suffix}"
    if suffix == ".csv":
        sample.to_csv(path, index=False)
    else:
        sample.to_parquet(path)
    loaded = load_adult(str(path), tmp_path)
    pd.testing.assert_frame_equal(loaded, sample, check_dtype=False)


def test_openml_style_frames_are_normalised(adult: pd.DataFrame) -> None:
    raw = adult.head(50).rename(columns=lambda c: c.replace("_", "-"))
    raw = raw.assign(**{"class": raw.pop(TARGET).map({1: ">50K", 0: "<=50K"})})
    normalised = normalise(raw)
    assert list(normalised.columns) == [*COLUMNS, TARGET]
    assert normalised[TARGET].tolist() == adult[TARGET].head(50).tolist()


def test_missing_or_unsupported_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="not found"):
        load_table(tmp_path / "absent.csv")
    bad = tmp_path / "data.xlsx"
    bad.write_text("x")
    with pytest.raises(DataSourceError, match="unsupported"):
        load_table(bad)
