"""What a reconcile returns to the wiring module: the status to write and Events to post."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driftline.job_contracts import VariantPerformance

# (Normal | Warning, CamelCase reason, message)
Event = tuple[str, str, str]


@dataclass
class Outcome:
    """A status patch (``None`` values delete a field) and the Events to post."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    # Per-feature PSI of a drift check read in this reconcile, exported as metrics.
    drift_scores: dict[str, float] = field(default_factory=dict)
    # Each variant's performance from a check read in this reconcile (None: none read).
    performance: list[VariantPerformance] | None = None
