"""The one duration parser of specs and options: ``90s``, ``15m``, ``1h``, ``2d`` (pure).

The CRD's patterns (``LOOKBACK``, ``COOLDOWN`` in driftline.api.v1alpha1) admit its integer
subset; people at the command line may also write decimals (``1.5h``) or bare seconds (``90``).
"""

from __future__ import annotations

import re
from datetime import timedelta

# A number (decimals allowed) and a unit; a bare number is seconds.
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, allow_zero: bool = False) -> timedelta:
    """``90``, ``90s``, ``1.5m``, ``6h`` or ``2d`` as a timedelta.

    Raises ValueError naming the text when it is not a duration, or is zero and
    ``allow_zero`` is False (a window of nothing), or exceeds what a timedelta holds. Where
    zero is refused the message says "not a positive duration" for any text refused, so a
    caller's users meet one wording.
    """
    wanted = "duration" if allow_zero else "positive duration"
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a {wanted}: {text!r} (use 90s, 15m, 1h or 2d)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0 and not allow_zero:
        raise ValueError(f"not a {wanted}: {text!r} (use 90s, 15m, 1h or 2d)")
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:
        raise ValueError(f"duration too long: {text!r}") from exc
