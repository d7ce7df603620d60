"""How subcommands speak: one-line errors on stderr, text or one JSON object on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from driftline.exit_codes import UNEXPECTED


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


def write_termination_log(message: str, path: Path) -> bool:
    """Write ``message`` (a contract's JSON) where Kubernetes reads a termination message.

    On failure, print the one-line error and return False (the caller exits non-zero).
    """
    try:
        path.write_text(message)
    except OSError as exc:
        fail(f"cannot write the termination log: {exc}", UNEXPECTED)
        return False
    return True
