"""The lock behind every move of ``champion``: a claim on the model's next generation.

MLflow has no compare-and-set on aliases, but experiment names are unique in every backend
store (a deleted experiment keeps its name reserved): creating the experiment named after the
next generation succeeds for exactly one caller. The claim is deleted at once so it does not
clutter the UI.

A claim is a lease, not a lock held forever: a promotion killed after its claim (SIGKILL, a
subprocess timeout, one MLflow 5xx) never commits its generation, and without a lease every
later promotion would be refused. The holder stops writing once half the lease has passed
(``Claim.check``); a claim older than the whole lease is taken over by creating the next
``/takeover-<k>`` name, again atomically, so two callers taking over still yield one winner.
The age is measured between the server's creation time and the caller's clock, so the lease
assumes clocks within a few seconds of each other (NTP).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient


class ClaimConflictError(Exception):
    """Another caller holds a live claim on the generation, or already committed it."""


class ClaimExpiredError(Exception):
    """The caller's own claim outlived half its lease: it may have been taken over."""


@dataclass(frozen=True)
class Claim:
    """Generation ``generation`` is ours until ``deadline`` (monotonic seconds)."""

    generation: int
    deadline: float
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def check(self) -> None:
        """Raise ``ClaimExpiredError`` if the claim may no longer be ours; call before a write."""
        if self.monotonic() > self.deadline:
            raise ClaimExpiredError(
                f"generation {self.generation} was held too long; it may have been taken over"
            )


def claim_generation(
    client: MlflowClient,
    model: str,
    committed: Callable[[], int],
    lease_seconds: float,
    *,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
) -> Claim:
    """Claim generation ``committed() + 1`` of ``model``'s champion, taking over a stale claim.

    ``committed`` reads the last committed generation (a registered model tag); ``lease_seconds``
    is how long a claim stays live. Raises ``ClaimConflictError`` when another caller holds a
    live claim or committed meanwhile; MLflow errors propagate.
    """
    started = monotonic()
    generation = committed() + 1
    base = f"driftline-locks/{model}/generation-{generation}"
    attempt = 0
    while True:
        name = base if attempt == 0 else f"{base}/takeover-{attempt}"
        experiment_id = _create(client, name)
        if experiment_id is not None:
            client.delete_experiment(experiment_id)
            return Claim(generation, started + lease_seconds / 2, monotonic)
        age = clock() - _created_at(client, name)
        if age < lease_seconds:
            raise ClaimConflictError(
                f"another promotion or rollback of {model!r} is in progress or just happened"
                f" (claimed {age:.0f}s ago; a claim is taken over after {lease_seconds:g}s)"
            )
        # Stale, unless its holder finished after all: then the generation is spent.
        if committed() >= generation:
            raise ClaimConflictError(f"generation {generation} of {model!r} was just committed")
        attempt += 1


def _create(client: MlflowClient, name: str) -> str | None:
    """The new experiment's id, or None when the name is taken."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.create_experiment(name))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            return None
        raise


def _created_at(client: MlflowClient, name: str) -> float:
    """Creation time of a (possibly deleted) experiment, Unix seconds."""
    found: Any = client.get_experiment_by_name(name)
    if found is None or found.creation_time is None:
        return 0.0
    return float(found.creation_time) / 1000.0
