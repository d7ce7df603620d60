"""The rule that decides whether a challenger beats the champion (pure)."""

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
