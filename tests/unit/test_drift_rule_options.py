"""The drift Job's decision rule on its command line: one typed object, per-field overrides."""

from __future__ import annotations

import argparse

import pytest

from driftline.exit_codes import USAGE
from driftline.job_contracts import DriftThresholds
from driftline_cli.drift_cmd import decision_rule, run
from driftline_cli.main import build_parser
from driftline_cli.settings import CliSettings


def parse(*args: str) -> argparse.Namespace:
    return build_parser().parse_args(["drift-check", "--log-store", "x", *args])


def test_the_rule_travels_as_one_object_and_an_option_overrides_its_field() -> None:
    rule = DriftThresholds(psi=0.3, p_value=0.01, prediction_psi=0.25, min_samples=300)
    assert decision_rule(parse("--thresholds", rule.model_dump_json(), "--lookback", "15m")) == (
        rule,
        900.0,
    )
    overridden, _ = decision_rule(parse("--thresholds", rule.model_dump_json(), "--p-value", "0.1"))
    assert overridden == rule.model_copy(update={"p_value": 0.1})
    # With nothing named, DriftThresholds' defaults and a one-hour window apply.
    assert decision_rule(parse()) == (DriftThresholds(), 3600.0)
    # The DriftPolicy's own spelling reads too (pValue, predictionPsi, minSamples).
    camel = '{"psi": 0.3, "pValue": 0.01, "predictionPsi": 0.25, "minSamples": 300}'
    assert decision_rule(parse("--thresholds", camel))[0] == rule
    assert decision_rule(parse("--min-samples", "7", "--last", "10")) == (
        DriftThresholds(min_samples=7),
        None,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--thresholds", '{"p_value": 1}'), "--thresholds: p_value: Input should be less than 1"),
        (("--thresholds", '{"psi": 0.2, "alpha": 1}'), "--thresholds: alpha: Extra inputs are"),
        (("--thresholds", "{"), "--thresholds: Invalid JSON"),
        (("--thresholds", '{"pvalue": 0.1}'), "--thresholds: pvalue: Extra inputs are"),
        (("--thresholds", '{"psi": Infinity}'), "--thresholds: psi: Input should be a finite"),
        (("--thresholds", '{"min_samples": true}'), "--thresholds: min_samples: Input should be"),
        (("--thresholds", '{"min_samples": 2.5}'), "--thresholds: min_samples: Input should be"),
        (("--p-value", "2"), "--p-value: Input should be less than 1"),
        (("--min-samples", "0"), "--min-samples: Input should be greater than or equal to 1"),
        (("--lookback", "soon"), "--lookback: not a positive duration: 'soon'"),
        (("--lookback", "0h"), "--lookback: not a positive duration: '0h'"),
    ],
)
def test_a_refused_rule_is_one_line_naming_the_option(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        decision_rule(parse(*args))
    assert str(refused.value).startswith(message), refused.value
    assert "\n" not in str(refused.value)


def test_a_summary_from_a_newer_check_with_one_more_threshold_still_reads() -> None:
    newer = '{"psi": 0.2, "p_value": 0.05, "prediction_psi": 0.2, "min_samples": 5, "min_ks": 1}'
    assert DriftThresholds.model_validate_json(newer) == DriftThresholds(min_samples=5)


def test_sketches_of_a_row_count_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any store or registry is touched: exit 2 and one line."""
    args = parse("--last", "5", "--read", "sketch")
    assert run(args, CliSettings()) == USAGE
    err = capsys.readouterr().err.strip()
    assert "--read sketch covers a --lookback" in err and "\n" not in err
