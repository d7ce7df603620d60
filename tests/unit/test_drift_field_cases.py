"""Drift checks on inputs replayed from real-world failure reports (tests/cases/), and siblings.

Each right value comes from the issue that handed the case; siblings share its cause.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftline.baseline_builder import build_baseline
from driftline.coercion import derive_schema, to_model_frame
from driftline.drift import check_drift
from driftline.drift_report import DriftReport, FeatureDrift
from driftline.job_contracts import DriftThresholds
from driftline.schema import FeatureKind, FeatureSchema, FeatureSpec
from driftline_training.drift_check import run_check
from driftline_training.drift_files import FilesOptions, files_inputs
from driftline_training.errors import DriftInputError

CASES = Path(__file__).parents[1] / "cases"
THRESHOLDS = DriftThresholds()


def files_check(reference: Path, current: Path, **options: object) -> DriftReport:
    return run_check(files_inputs(reference, current, FilesOptions(**options)), THRESHOLDS)


def feature(report: DriftReport, name: str) -> FeatureDrift:
    (found,) = [f for f in report.features if f.name == name]
    return found


def test_category_codes_with_a_blank_cell_are_not_unseen() -> None:
    case = CASES / "category-codes-with-blank"
    report = files_check(
        case / "codes-reference.csv",
        case / "codes-current.csv",
        schema=case / "codes-schema.json",
    )
    region = feature(report, "region")
    shares = {b.label: (round(b.reference * 1000), round(b.current * 1000)) for b in region.bins}
    # Reference [214, 199, 196, 209, 182]; current [230, 189, 203, 196, 181] plus one missing
    # value, which the reference never had.
    assert shares == {
        "1": (214, 230),
        "2": (199, 189),
        "3": (196, 203),
        "4": (209, 196),
        "5": (182, 181),
        "(unseen)": (0, 1),
    }
    assert round(region.psi, 4) == 0.0048
    assert round(region.p_value, 3) == 0.795
    assert not region.drifted and report.drifted is False


def test_the_same_codes_without_a_schema_are_compared_as_the_same_values() -> None:
    case = CASES / "category-codes-with-blank"
    report = files_check(case / "codes-reference.csv", case / "codes-current.csv")
    assert feature(report, "region").kind is FeatureKind.NUMERIC
    assert report.drifted is False


def test_codes_with_leading_zeros_read_as_integers(tmp_path: Path) -> None:
    # The sibling with a schema whose categories are "01".."05": the reader turns them into 1..5.
    case = CASES / "category-codes-with-blank"
    schema = FeatureSchema.from_json((case / "codes-schema.json").read_text())
    zero_padded = tuple(f"0{c}" for c in schema.feature("region").categories or ())
    region = schema.feature("region").model_copy(update={"categories": zero_padded})
    path = tmp_path / "schema.json"
    path.write_text(FeatureSchema(features=(region, schema.feature("x"))).to_json())
    report = files_check(case / "codes-reference.csv", case / "codes-current.csv", schema=path)
    labels = [b.label for b in feature(report, "region").bins]
    assert labels == ["01", "02", "03", "04", "05", "(unseen)"]
    assert round(feature(report, "region").psi, 4) == 0.0048


def test_a_reference_column_with_no_values_is_reported_not_testable() -> None:
    case = CASES / "empty-reference-column"
    report = files_check(case / "reference-y-all-empty.csv", case / "current.csv")
    x, y = feature(report, "x"), feature(report, "y")
    assert round(x.p_value, 3) == 0.888 and not x.drifted
    assert y.note == "the reference has no values" and y.test == "none" and not y.drifted
    assert report.drifted is False
    assert "not testable: y (the reference has no values)" in report.reason
    assert report.max_psi == max(f.psi for f in report.features if f.name != "y")
    assert report.ranked_features()[-1].name == "y"


def test_a_categorical_reference_column_with_no_values_is_not_testable() -> None:
    spec = FeatureSpec(name="c", kind=FeatureKind.CATEGORICAL, nullable=True, max_null_fraction=1)
    schema = FeatureSchema(features=(spec,))
    reference = pd.DataFrame({"c": [None] * 600}, dtype=object)
    current = to_model_frame(pd.DataFrame({"c": ["a", "b"] * 300}), schema)
    baseline = build_baseline(reference, np.zeros(1), schema)
    report = check_drift(baseline, current, None, THRESHOLDS)
    assert feature(report, "c").note == "the reference has no values"
    assert report.drifted is False


def test_a_reference_file_with_a_header_only_is_a_data_error(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_text("x,y\n")
    with pytest.raises(DriftInputError, match="reference data has no rows"):
        files_check(header, CASES / "empty-reference-column" / "current.csv")


def test_a_numeric_column_with_a_stray_token_names_the_column_and_the_token(
    tmp_path: Path,
) -> None:
    current = pd.read_csv(CASES / "empty-reference-column" / "current.csv")
    current["x"] = current["x"].astype(object)
    current.loc[17, "x"] = "#REF!"
    path = tmp_path / "current.csv"
    current.to_csv(path, index=False)
    with pytest.raises(
        DriftInputError, match=r"^current data: x: '#REF!' \(row 17\) is not a number"
    ):
        files_check(CASES / "empty-reference-column" / "reference-y-all-empty.csv", path)


def test_the_label_is_left_out_by_default(adult: pd.DataFrame, tmp_path: Path) -> None:
    reference, current = tmp_path / "reference.csv", tmp_path / "current.csv"
    adult.iloc[:3000].to_csv(reference, index=False)
    adult.iloc[3000:6000].to_csv(current, index=False)
    left_out = files_check(reference, current, target="income")
    assert "income" not in {f.name for f in left_out.features}
    assert left_out.source["target"] == "income (left out)"
    assert "income" in {f.name for f in files_check(reference, current).features}


def split_adult(adult: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, FeatureSchema]:
    schema = derive_schema(adult, "income")
    shuffled = adult.sample(frac=1.0, random_state=3).reset_index(drop=True)
    return shuffled.iloc[:20000], shuffled.iloc[20000:30000].reset_index(drop=True), schema


def missing_check(reference: pd.DataFrame, current: pd.DataFrame, schema: FeatureSchema):
    baseline = build_baseline(reference, np.zeros(1), schema)
    return check_drift(baseline, to_model_frame(current, schema), None, THRESHOLDS)


def test_a_numeric_feature_whose_values_go_missing_is_flagged_and_named(adult) -> None:
    reference, current, schema = split_adult(adult)
    # 30% of the ages go missing at random: the present ages keep their distribution.
    current.loc[current.sample(frac=0.3, random_state=1).index, "age"] = np.nan
    report = missing_check(reference, current, schema)
    age = feature(report, "age")
    assert age.p_adjusted is not None and age.p_adjusted > 0.05  # KS alone sees nothing
    assert age.missing is not None
    assert (round(age.missing.reference, 3), round(age.missing.current, 3)) == (0.0, 0.3)
    assert age.missing.p_adjusted is not None and age.missing.p_adjusted < 1e-10
    assert age.drifted and report.drifted
    assert "age: missing 0.0% -> 30.0%" in report.reason
    assert [f.name for f in report.features if f.drifted] == ["age"]


def test_a_numeric_feature_whose_missing_values_disappear_is_flagged(adult) -> None:
    reference, current, schema = split_adult(adult)
    reference = reference.copy()
    reference.loc[reference.sample(frac=0.3, random_state=2).index, "hours_per_week"] = np.nan
    schema = derive_schema(reference, "income")
    report = missing_check(reference, current, schema)
    hours = feature(report, "hours_per_week")
    assert hours.missing is not None and hours.drifted
    assert "hours_per_week: missing 30.0% -> 0.0%" in report.reason


def test_an_unchanged_missing_share_raises_no_alarm(adult) -> None:
    reference, current, schema = split_adult(adult)
    reference, current = reference.copy(), current.copy()
    for frame, seed in ((reference, 4), (current, 5)):
        frame.loc[frame.sample(frac=0.1, random_state=seed).index, "age"] = np.nan
    schema = derive_schema(reference, "income")
    report = missing_check(reference, current, schema)
    age = feature(report, "age")
    assert age.missing is not None and age.missing.p_adjusted is not None
    assert age.missing.p_adjusted > 0.05 and not age.drifted
    assert report.drifted is False
    # Features with no nulls on either side add no missing-share test to the family.
    assert feature(report, "fnlwgt").missing is None
