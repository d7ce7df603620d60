"""How subcommands speak: one-line errors on stderr, text or one JSON object on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any


def fail(reason: str, code: int) -> int:
    """Print ``driftline: error: <reason>`` (first line only) and return the exit code."""
    line = reason.strip().splitlines()[0] if reason.strip() else "unknown error"
    print(f"driftline: error: {line}", file=sys.stderr)
    return code


def emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    """Print the human text, or the result as one JSON object on the last line."""
    if as_json:
        print(json.dumps(result, sort_keys=True, default=str))
    else:
        print(text)
