"""The rule that decides whether a challenger beats the champion (pure).

Two forms. Unpaired: each version's own test score, from its own training run (``compare``).
Paired: both versions scored on the same rows, the challenger's training run having measured
the difference with its 95% interval (``compare_paired``); the challenger wins only when the
interval's lower end beats ``min_delta``, so a copy of the champion (difference 0) never does.
"""

from __future__ import annotations

from dataclasses import dataclass

# Direction of every metric the trainer logs: True when larger is better.
GREATER_IS_BETTER: dict[str, bool] = {
    "roc_auc": True,
    "average_precision": True,
    "f1": True,
    "precision": True,
    "recall": True,
    "accuracy": True,
    "log_loss": False,
    "brier": False,
}


@dataclass(frozen=True)
class ComparisonRule:
    """Challenger must beat the champion on ``metric`` by at least ``min_delta``."""

    metric: str = "roc_auc"
    min_delta: float = 0.005

    def __post_init__(self) -> None:
        """Reject metrics whose direction is unknown."""
        if self.metric not in GREATER_IS_BETTER:
            known = ", ".join(sorted(GREATER_IS_BETTER))
            raise ValueError(f"unknown promotion metric {self.metric!r}; known: {known}")


@dataclass(frozen=True)
class Comparison:
    """The decision and the figures behind it."""

    metric: str
    champion: float
    challenger: float
    improvement: float
    min_delta: float
    challenger_wins: bool
    # Paired comparisons only: the improvement's 95% interval, and the rows both were scored on.
    low: float | None = None
    high: float | None = None
    dataset: str | None = None
    rows: int | None = None

    def describe(self) -> str:
        """The comparison in one line: both scores, the improvement and, paired, its interval."""
        text = (
            f"{self.metric} {self.champion:.4f} -> {self.challenger:.4f} ({self.improvement:+.4f}"
        )
        if self.low is not None and self.high is not None:
            text += (
                f", 95% interval {self.low:+.4f} to {self.high:+.4f}, paired on {self.rows}"
                f" {self.dataset} rows"
            )
        return text + ")"


def compare(rule: ComparisonRule, champion: float, challenger: float) -> Comparison:
    """Improvement is oriented so that positive always means the challenger is better."""
    sign = 1.0 if GREATER_IS_BETTER[rule.metric] else -1.0
    improvement = sign * (challenger - champion)
    return Comparison(
        rule.metric,
        champion,
        challenger,
        improvement,
        rule.min_delta,
        improvement >= rule.min_delta,
    )


def compare_paired(
    rule: ComparisonRule,
    champion: float,
    challenger: float,
    difference: tuple[float, float],
    dataset: str,
    rows: int,
) -> Comparison:
    """A paired comparison, oriented like ``compare``.

    ``difference`` is the (low, high) interval of challenger minus champion on the same
    ``rows`` of ``dataset`` (``recent`` holdout or ``test`` split). The challenger wins when
    the oriented lower end exceeds ``rule.min_delta`` (strictly).
    """
    sign = 1.0 if GREATER_IS_BETTER[rule.metric] else -1.0
    low, high = sorted((sign * difference[0], sign * difference[1]))
    return Comparison(
        rule.metric,
        champion,
        challenger,
        sign * (challenger - champion),
        rule.min_delta,
        low > rule.min_delta,
        low=low,
        high=high,
        dataset=dataset,
        rows=rows,
    )
