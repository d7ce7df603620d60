"""Standard status conditions (Ready, Progressing, Degraded) as pure list updates.

``lastTransitionTime`` only changes when a condition's status flips, as the Kubernetes API
conventions ask, so a resync that finds nothing new leaves status byte-for-byte the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"


@dataclass(frozen=True)
class Condition:
    """One condition to set: type, True/False/Unknown, CamelCase reason and a message."""

    type: str
    status: bool | None
    reason: str
    message: str = ""

    def status_text(self) -> str:
        """The API's string form of ``status``."""
        return {True: "True", False: "False", None: "Unknown"}[self.status]


def rfc3339(moment: datetime) -> str:
    """A timestamp as Kubernetes writes them (UTC, seconds, ``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime:
    """The inverse of ``rfc3339``."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def set_conditions(
    current: list[dict[str, Any]] | None,
    updates: list[Condition],
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """``current`` with each of ``updates`` set; other conditions are kept as they were."""
    by_type = {c["type"]: dict(c) for c in current or []}
    for update in updates:
        previous = by_type.get(update.type)
        status = update.status_text()
        changed = previous is None or previous.get("status") != status
        by_type[update.type] = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message[:1000],
            "observedGeneration": generation,
            "lastTransitionTime": rfc3339(now)
            if changed or previous is None
            else previous.get("lastTransitionTime", rfc3339(now)),
        }
    return sorted(by_type.values(), key=lambda c: str(c["type"]))


def condition_status(conditions: list[dict[str, Any]] | None, type_: str) -> str | None:
    """The status string of one condition, or None when it is not set."""
    for condition in conditions or []:
        if condition.get("type") == type_:
            return str(condition.get("status"))
    return None


def degraded_status(
    obj: dict[str, Any], reason: str, message: str, now: datetime
) -> dict[str, Any]:
    """Status for a reconcile that could not finish: Degraded, everything else left as is."""
    status = obj.get("status") or {}
    generation = obj["metadata"].get("generation", 0)
    updates = [Condition(DEGRADED, True, reason, message)]
    return {"conditions": set_conditions(status.get("conditions"), updates, generation, now)}
