"""Alias moves through ``driftline promote`` in a subprocess.

Promotion must use ``driftline.registry.ModelRegistry`` (its check-and-set on the champion
generation is what makes concurrent promotions move the alias once), and that needs the mlflow
client. A child process pays its ~130 MB only while it runs, which keeps the operator's own
RSS within budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from driftline import exit_codes
from driftline.api.v1alpha1 import Promotion
from driftline.promotion import Comparison
from driftline_operator.mlflow_rest import MlflowUnavailableError


class PromotionRefusedError(Exception):
    """The registry refused the move (rejected by the rule, a concurrent move, no challenger)."""


@dataclass(frozen=True)
class Promoted:
    """What moved: champion before and after, and the comparison that allowed it."""

    previous: str | None
    champion: str
    # Both scores, the improvement and, when paired, its interval: one line.
    comparison: str | None = None


def promote(
    tracking_uri: str,
    model: str,
    version: str,
    promotion: Promotion,
    *,
    force: bool,
    timeout: float,
) -> Promoted:
    """Move ``champion`` to ``version`` (and clear ``challenger``); raise on refusal."""
    argv = [
        sys.executable,
        "-m",
        "driftline_cli.main",
        "promote",
        model,
        "--version",
        version,
        "--metric",
        promotion.metric,
        "--min-delta",
        str(promotion.min_delta),
        "--tracking-uri",
        tracking_uri,
        "--json",
    ]
    if force:
        argv.append("--force")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MlflowUnavailableError(f"driftline promote took over {timeout:g}s") from exc
    message = (done.stderr.strip().splitlines() or ["no output"])[-1]
    if done.returncode == exit_codes.MLFLOW_UNAVAILABLE:
        raise MlflowUnavailableError(message)
    if done.returncode != 0:
        raise PromotionRefusedError(message)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    compared = result.get("comparison")
    return Promoted(
        result.get("previous_champion"),
        str(result.get("champion", version)),
        Comparison(**compared).describe() if compared else None,
    )
