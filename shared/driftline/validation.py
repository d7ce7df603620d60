"""Data validation of a whole frame against a feature schema, before training or retraining.

Pure: takes a frame and a schema, returns a report. The CLI turns a failed report into a readable
listing and a non-zero exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftline.coercion import FeatureValueError, coerce_column
from driftline.schema import FeatureKind, FeatureSchema, FeatureSpec


@dataclass(frozen=True)
class Violation:
    """One failed check: which check, on which column, and what was seen."""

    check: str
    column: str
    message: str


@dataclass(frozen=True)
class ValidationReport:
    """All violations found; the data passed when there are none."""

    rows: int
    violations: tuple[Violation, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.violations

    def render(self) -> str:
        """A human-readable listing, one violation per line."""
        if self.ok:
            return f"data validation passed ({self.rows} rows)"
        lines = [f"data validation failed: {len(self.violations)} violation(s) in {self.rows} rows"]
        lines += [f"  - [{v.check}] {v.column}: {v.message}" for v in self.violations]
        return "\n".join(lines)


def validate_frame(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    *,
    require_target: bool = True,
    max_unknown_fraction: float = 0.001,
) -> ValidationReport:
    """Check required columns, dtypes, null fractions, numeric ranges and allowed categories.

    Rare unseen categories are normal in real data (Adult's one 'Holand-Netherlands' row falls
    outside most training splits) and the model ignores them, so categories unknown to the
    schema fail only when they cover more than ``max_unknown_fraction`` of the rows. Numbers
    outside the schema's range likewise, except a negative value in a feature whose range
    starts at zero or above, which always fails.
    """
    violations: list[Violation] = []
    if frame.empty:
        return ValidationReport(0, (Violation("rows", "*", "the data set has no rows"),))
    if require_target and schema.target is not None:
        violations += _check_target(frame, schema.target)
    for spec in schema.features:
        if spec.name not in frame.columns:
            violations.append(Violation("required", spec.name, "column is missing"))
            continue
        violations += _check_feature(frame[spec.name], spec, max_unknown_fraction)
    return ValidationReport(len(frame), tuple(violations))


def _check_target(frame: pd.DataFrame, target: str) -> list[Violation]:
    if target not in frame.columns:
        return [Violation("required", target, "target column is missing")]
    column = frame[target]
    if column.isna().any():
        return [Violation("nulls", target, f"{int(column.isna().sum())} null label(s)")]
    labels = set(pd.unique(column))
    if not labels <= {0, 1} or len(labels) < 2:
        shown = sorted(map(str, labels))[:5]
        return [Violation("target", target, f"expected binary labels 0/1, found {shown}")]
    return []


def _check_feature(
    column: pd.Series, spec: FeatureSpec, max_unknown_fraction: float
) -> list[Violation]:
    out: list[Violation] = []
    try:
        column = coerce_column(column, spec)
    except FeatureValueError as exc:
        return [Violation("dtype", spec.name, exc.detail)]
    null_fraction = float(column.isna().mean())
    if null_fraction > spec.max_null_fraction:
        out.append(
            Violation(
                "nulls",
                spec.name,
                f"null fraction {null_fraction:.4f} exceeds {spec.max_null_fraction:.4f}",
            )
        )
    values = column.dropna()
    if spec.kind is FeatureKind.NUMERIC:
        numbers = values.to_numpy(dtype=float)
        if not np.all(np.isfinite(numbers)):
            out.append(Violation("range", spec.name, "contains infinite values"))
            numbers = numbers[np.isfinite(numbers)]
        below = int((numbers < spec.minimum).sum()) if spec.minimum is not None else 0
        above = int((numbers > spec.maximum).sum()) if spec.maximum is not None else 0
        # A sign the feature never had (a negative age) is an error however rare; a value a
        # little past the range one training split saw (capital_loss 4356 when the split
        # reached 3900) is normal in fresh data, and rare ones pass like rare categories.
        negative = spec.minimum is not None and spec.minimum >= 0 and bool((numbers < 0).any())
        if negative or (below + above) / len(column) > max_unknown_fraction:
            out.append(
                Violation(
                    "range",
                    spec.name,
                    f"{below + above} value(s) outside [{spec.minimum}, {spec.maximum}]"
                    f" (observed [{numbers.min():g}, {numbers.max():g}])",
                )
            )
        return out
    if spec.categories is not None:
        is_unknown = ~values.isin(spec.categories)
        share = float(is_unknown.sum()) / len(column)
        if share > max_unknown_fraction:
            unknown = sorted(set(values[is_unknown]))
            shown = ", ".join(repr(u) for u in unknown[:5])
            out.append(
                Violation(
                    "categories",
                    spec.name,
                    f"{share:.2%} of rows in {len(unknown)} unknown categories: {shown}",
                )
            )
    return out
