import pytest

from driftline.promotion import ComparisonRule, compare, compare_paired


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


def test_paired_comparison_needs_the_lower_bound_above_min_delta() -> None:
    rule = ComparisonRule("roc_auc", 0.005)
    wins = compare_paired(rule, 0.90, 0.92, (0.008, 0.032), "recent", 3000)
    assert wins.challenger_wins and (wins.low, wins.high) == (0.008, 0.032)
    assert "95% interval +0.0080 to +0.0320, paired on 3000 recent rows" in wins.describe()
    # A better point estimate is not enough while the interval reaches below min_delta.
    assert not compare_paired(rule, 0.90, 0.92, (0.004, 0.036), "recent", 300).challenger_wins
    # A copy of the champion: difference 0, interval [0, 0]; never promoted, even at 0.
    copy = compare_paired(ComparisonRule("roc_auc", 0.0), 0.9, 0.9, (0.0, 0.0), "test", 9769)
    assert not copy.challenger_wins
    # Lower is better: the difference is turned round and its ends swapped.
    loss = compare_paired(ComparisonRule("log_loss", 0.001), 0.30, 0.28, (-0.03, -0.01), "test", 9)
    assert loss.improvement == pytest.approx(0.02)
    assert (loss.low, loss.high) == pytest.approx((0.01, 0.03)) and loss.challenger_wins
