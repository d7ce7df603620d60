import pytest

from driftline.promotion import ComparisonRule, compare


def test_greater_is_better_metric() -> None:
    rule = ComparisonRule("roc_auc", 0.005)
    assert compare(rule, 0.930, 0.936).challenger_wins
    assert not compare(rule, 0.930, 0.934).challenger_wins


def test_lower_is_better_metric_is_oriented() -> None:
    result = compare(ComparisonRule("log_loss", 0.01), 0.30, 0.28)
    assert result.improvement == pytest.approx(0.02)
    assert result.challenger_wins
    assert not compare(ComparisonRule("log_loss", 0.01), 0.28, 0.30).challenger_wins


def test_unknown_metric_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown promotion metric 'auc'"):
        ComparisonRule("auc")
