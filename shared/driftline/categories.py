"""The categorical typing rule of ``driftline.coercion`` for one value at a time (no pandas).

Serving's drift sketches count categories one request at a time in an image without pandas,
and must count them as a drift check's ``to_model_frame`` types logged rows; both use this.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class CategoryCanonicaliser:
    """The categorical rule of ``coerce_column`` for one value at a time.

    Serving's drift sketches count categories one request at a time and must count them as a
    drift check's ``to_model_frame`` would type them, so both go through this one rule.
    """

    def __init__(self, categories: tuple[str, ...] | None) -> None:
        """Compile the lookups of ``categories`` (a schema's, or None for any)."""
        self._by_number, self._by_word = _category_lookups(categories)
        self._known = frozenset(categories or ())

    def __call__(self, value: Any) -> str | None:
        """The category ``value`` stands for; None for blank text (missing)."""
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, bool | np.bool_):
            word = str(bool(value))
            return self._by_word.get(word.lower(), word)
        if isinstance(value, int | float | np.integer | np.floating):
            text = _number_text(value)
            return text if text in self._known else self._by_number.get(float(value), text)
        return str(value)


def _category_lookups(
    categories: tuple[str, ...] | None,
) -> tuple[dict[float, str], dict[str, str]]:
    """Categories by the number they spell and by lower-case text, where exactly one does."""
    by_number: dict[float, list[str]] = {}
    by_word: dict[str, list[str]] = {}
    for category in categories or ():
        by_word.setdefault(category.lower(), []).append(category)
        try:
            number = float(category)
        except ValueError:
            continue
        if math.isfinite(number):
            by_number.setdefault(number, []).append(category)
    # Two categories spelling one number ("1" and "01") or one word ("Yes", "yes"): a value read
    # as a number or a boolean cannot tell them apart, so it keeps its own spelling.
    return (
        {n: c[0] for n, c in by_number.items() if len(c) == 1},
        {w: c[0] for w, c in by_word.items() if len(c) == 1},
    )


def _number_text(value: Any) -> str:
    number = float(value)
    if math.isfinite(number) and number == int(number):
        return str(int(number))
    return str(value)
