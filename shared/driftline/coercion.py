"""Feature values as the schema defines them, whatever dtype a file reader guessed.

CSV and Parquet readers guess a column's dtype from its cells: one blank cell turns integer
codes into floats (``1`` becomes ``1.0``), one stray token turns numbers into text, ``True``
cells become booleans and ``01`` becomes ``1``. Every reader of feature data (training, the
files and live modes of the drift check, validation) types its frame here, through
``coerce_column``, so the value a feature takes depends on the schema, never on the guess. A
value that cannot be taken as the schema says raises ``FeatureValueError`` naming the column and
the first bad value: nothing is re-labelled silently. ``derive_schema`` infers a schema with the
same rules when none is given.

Rules (pandera's ``coerce=True`` is the model, with the guesses of pandas undone):

- numeric: numbers as float64; booleans as 1.0 and 0.0; text is stripped, blank text is
  missing, other text must parse as a number.
- categorical: text is stripped, blank text is missing; a number read from a file is written
  without a spurious ``.0`` (``1.0`` -> ``"1"``) and, when the schema lists categories, takes
  the category it equals as a number (``1`` -> ``"01"``); a boolean takes the category it
  names, ignoring case (``True`` -> ``"true"``). Missing values stay missing.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from driftline.categories import CategoryCanonicaliser
from driftline.schema import MISSING_CATEGORY, FeatureKind, FeatureSchema, FeatureSpec

# How much of a value an error message shows.
SHOWN_CHARS = 40


class FeatureValueError(ValueError):
    """A value that the schema's type for its column cannot take.

    ``column`` names the feature, ``value`` is the first offending cell as read and ``row`` its
    index label in the frame; ``detail`` is the message without the column's name.
    """

    def __init__(self, column: str, value: Any, row: Hashable, expected: str) -> None:
        shown = repr(value)
        if len(shown) > SHOWN_CHARS:
            shown = shown[: SHOWN_CHARS - 3] + "..."
        self.detail = f"{shown} (row {row}) is not {expected}"
        super().__init__(f"{column}: {self.detail}")
        self.column = column
        self.value = value
        self.row = row


def coerce_column(column: pd.Series, spec: FeatureSpec) -> pd.Series:
    """``column`` typed as ``spec`` says: float64 (NaN missing) or object of str (None missing).

    Same index and length as ``column``. Raises ``FeatureValueError`` on the first value that
    is not a number for a numeric feature.
    """
    if spec.kind is FeatureKind.NUMERIC:
        return _numeric(column, spec.name)
    return _categorical(column, spec.categories)


def to_model_frame(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Select and type the feature columns the way the model pipeline expects them.

    Numeric columns become float64 (nulls stay NaN: XGBoost has native missing-value handling);
    categorical columns become Python strings with nulls mapped to ``MISSING_CATEGORY``. Raises
    ``KeyError`` for an absent feature column and ``FeatureValueError`` as ``coerce_column``.
    """
    out: dict[str, pd.Series] = {}
    for spec in schema.features:
        typed = coerce_column(frame[spec.name], spec)
        out[spec.name] = (
            typed if spec.kind is FeatureKind.NUMERIC else typed.fillna(MISSING_CATEGORY)
        )
    return pd.DataFrame(out, index=frame.index)


def derive_schema(
    frame: pd.DataFrame,
    target: str | None,
    *,
    range_margin: float = 0.1,
    null_slack: float = 0.05,
    kinds: Mapping[str, FeatureKind] | None = None,
) -> FeatureSchema:
    """Derive a schema from (training) data.

    ``kinds`` fixes the kind of the columns it names (a contract's, such as the champion's
    schema, so codes "1".."5" stay categorical). Any other column is numeric when every present
    value reads as a number (booleans do not), so integer codes with a blank cell stay numeric
    and the same column read as text does too; a column of mostly numbers with a few other
    tokens raises ``FeatureValueError`` naming the first token, since its kind cannot be told
    (pass a schema). A column with no values at all is numeric, unbounded and fully nullable:
    nothing can be learned or tested from it.

    Numeric bounds are the observed range widened by ``range_margin`` of its span on each side
    (and never below zero for non-negative features), so that plausible unseen values pass while
    unit or sign errors do not. The tolerated null fraction is the observed one plus
    ``null_slack``.
    """
    specs = []
    for name in frame.columns:
        if name == target:
            continue
        column = frame[name]
        kind = (kinds or {}).get(str(name)) or _inferred_kind(column, str(name))
        typed = coerce_column(column, FeatureSpec(name=str(name), kind=kind))
        null_fraction = float(typed.isna().mean())
        nullable = null_fraction > 0
        max_null = min(1.0, null_fraction + null_slack) if nullable else 0.0
        base = FeatureSpec(name=str(name), kind=kind, nullable=nullable, max_null_fraction=max_null)
        if kind is FeatureKind.NUMERIC:
            specs.append(_numeric_bounds(base, typed, range_margin))
        else:
            categories = tuple(sorted(typed.dropna().unique()))
            specs.append(base.model_copy(update={"categories": categories}))
    return FeatureSchema(features=tuple(specs), target=target)


def _inferred_kind(column: pd.Series, name: str) -> FeatureKind:
    """Numeric when every present value reads as a number; booleans are categories.

    A column of mostly numbers with a few other tokens raises ``FeatureValueError`` naming the
    first token: the reader said text because of them, and the kind cannot be told.
    """
    if pd.api.types.is_bool_dtype(column):
        return FeatureKind.CATEGORICAL
    if pd.api.types.is_numeric_dtype(column):
        return FeatureKind.NUMERIC
    present = _blank_as_missing(column).dropna()
    if present.map(lambda v: isinstance(v, bool | np.bool_)).any():
        return FeatureKind.CATEGORICAL
    not_numbers = pd.to_numeric(present, errors="coerce").isna()
    if not not_numbers.any():
        return FeatureKind.NUMERIC
    if not_numbers.mean() < 0.5:
        raise _first(present, not_numbers, name, "a number, though most of the column is")
    return FeatureKind.CATEGORICAL


def _numeric_bounds(base: FeatureSpec, typed: pd.Series, range_margin: float) -> FeatureSpec:
    values = typed.dropna().to_numpy(dtype=float)
    if values.size == 0:
        return base
    low, high = float(values.min()), float(values.max())
    span = high - low
    lower = low - range_margin * span
    if low >= 0:
        lower = max(0.0, lower)
    return base.model_copy(
        update={
            "integer": bool(np.all(np.mod(values, 1) == 0)),
            "minimum": lower,
            "maximum": high + range_margin * span,
        }
    )


def _numeric(column: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.astype("float64")
    values = _blank_as_missing(column)
    # Booleans in an object column (a CSV with a blank among True/False cells) count as 1 and 0.
    values = values.map(lambda v: float(v) if isinstance(v, bool | np.bool_) else v)
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = numbers.isna() & values.notna()
    if bad.any():
        raise _first(column, bad, name, "a number")
    return numbers


def _first(column: pd.Series, bad: pd.Series, name: str, expected: str) -> FeatureValueError:
    """The error for the first value of ``column`` where ``bad`` holds."""
    position = int(np.argmax(bad.to_numpy()))
    return FeatureValueError(name, column.iloc[position], column.index[position], expected)


def _categorical(column: pd.Series, categories: tuple[str, ...] | None) -> pd.Series:
    canonical = CategoryCanonicaliser(categories)
    # Each distinct value is typed once: a million rows hold a handful of categories.
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    mapped = np.array([canonical(v) for v in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=column.index, name=column.name, dtype=object)


def _blank_as_missing(column: pd.Series) -> pd.Series:
    """Object values, text stripped, blank text as None."""
    return column.astype(object).map(lambda v: (v.strip() or None) if isinstance(v, str) else v)
