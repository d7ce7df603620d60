"""The drift report: in full for people (report.json, report.html), as a summary for the operator.

Pure data and formatting: ``driftline.drift`` fills a report, ``summary`` shrinks it to a
``DriftCheckSummary`` (``driftline.job_contracts``) that fits in a pod's termination message
(4 KiB) and in ``DriftPolicy`` status.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from driftline.job_contracts import (
    TERMINATION_MESSAGE_MAX_BYTES,
    DriftCheckSummary,
    DriftThresholds,
    FeatureSummary,
    MissingSummary,
    PredictionSummary,
)
from driftline.schema import FeatureKind

# The summary is the drift Job's termination message, so it has that message's bound.
SUMMARY_MAX_BYTES = TERMINATION_MESSAGE_MAX_BYTES
# A feature name or reason longer than this is cut in the summary, so one cannot fill it alone.
SUMMARY_MAX_TEXT = 200


class DriftStatus(StrEnum):
    """The answer of one check. Too little data is its own answer, never "no drift"."""

    DRIFT = "drift"
    NO_DRIFT = "no_drift"
    INSUFFICIENT_DATA = "insufficient_data"


class BinShare(BaseModel):
    """One bin or category: its share of the reference and of the current data."""

    model_config = ConfigDict(frozen=True)

    label: str
    reference: float
    current: float


class MissingShare(BaseModel):
    """A numeric feature's missing share on both sides, tested on its own.

    KS compares present values only, so a null rate moving from 0% to 30% would go unseen;
    this two-proportion test sits in the same Benjamini-Hochberg family as the others.
    """

    model_config = ConfigDict(frozen=True)

    reference: float
    current: float
    p_value: float
    p_adjusted: float | None


class FeatureDrift(BaseModel):
    """One feature's statistics and decision.

    ``reference`` names what each test compared against, because the baseline keeps bins and a
    bounded sample rather than the training data: ``{"psi": "baseline.bins (10)", "ks":
    "baseline.sample (5000)"}``.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: FeatureKind
    test: str
    statistic: float | None
    psi: float
    p_value: float | None
    p_adjusted: float | None
    reference: dict[str, str]
    drifted: bool
    current_count: int
    bins: tuple[BinShare, ...] = ()
    missing: MissingShare | None = None
    note: str = Field("", description="Why the feature was not tested, when it was not.")

    @property
    def testable(self) -> bool:
        """Whether a test ran; an untested feature never drifts and ranks last."""
        return not self.note


class PredictionDrift(BaseModel):
    """Drift of the predicted probabilities (PSI and KS), or why it was not checked."""

    model_config = ConfigDict(frozen=True)

    checked: bool
    note: str = ""
    test: str = "ks"
    psi: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    reference: dict[str, str] = Field(default_factory=dict)
    drifted: bool | None = None
    bins: tuple[BinShare, ...] = ()


class DriftWindow(BaseModel):
    """What the current side of a check was read from, and how exact its statistics are.

    ``rows`` mode reads every logged row. ``sketch`` mode merges the drift sketches inference
    pods wrote (``driftline.sketch``): counts are exact, so PSI and the chi-squared and
    missing-share tests equal their row-level values; the KS tests see a weighted sample of
    ``ks_sample`` rows whose CDF is within ``ks_error`` of all rows' (95%, Dvoretzky-Kiefer-
    Wolfowitz at the effective size ``ks_effective``; 0 when the sample is every row), and so
    is their statistic.
    """

    model_config = ConfigDict(frozen=True)

    mode: Literal["rows", "sketch"]
    rows: int = Field(description="Rows (requests) the window holds.")
    buckets: int = Field(0, description="Sketch buckets merged (pods x time buckets).")
    pods: int = Field(0, description="Pods whose buckets were merged.")
    bucket_seconds: float | None = None
    rows_per_bucket: float | None = Field(None, description="Mean requests one bucket holds.")
    ks_sample: int | None = Field(None, description="Rows of the merged sample the KS tests saw.")
    ks_effective: float | None = Field(
        None, description="Kish's effective size of that weighted sample, (sum w)^2 / sum w^2."
    )
    ks_error: float | None = Field(
        None, description="DKW bound of the sample's CDF (95%); 0 when it holds every row."
    )
    skipped_buckets: int = Field(0, description="Buckets of another layout, left out.")
    positive_rate: float | None = Field(
        None, description="Share of the window's requests predicted positive (sketches)."
    )
    sample_rate: float | None = Field(
        None, description="Rows mode on a sampled log: the lowest rate its rows were logged at."
    )


def window_text(window: DriftWindow) -> str:
    """One line on how the current side was read, for the CLI and the HTML report."""
    if window.mode == "rows":
        if window.sample_rate is not None:
            return (
                f"{window.rows:,} logged rows, a {window.sample_rate:.2%} hash sample of the"
                " requests (--read sketch counts them all)"
            )
        return f"{window.rows:,} logged rows, read one by one (exact)"
    parts = [f"{window.rows:,} requests from {window.buckets:,} sketch buckets"]
    if window.pods:
        parts.append(f"{window.pods} pod(s)")
    if window.rows_per_bucket is not None:
        parts.append(f"{window.rows_per_bucket:,.0f} requests a bucket")
    line = ", ".join(parts) + "; counts exact"
    if window.ks_sample is not None:
        bound = "exact" if not window.ks_error else f"CDF within {window.ks_error:.3f} (95%)"
        line += f"; KS on a {window.ks_sample:,}-row sample ({bound})"
        if window.ks_effective is not None and window.ks_effective < 0.99 * window.ks_sample:
            line += f", effective size {window.ks_effective:,.0f}"
    if window.skipped_buckets:
        line += f"; {window.skipped_buckets} bucket(s) of another baseline left out"
    return line


class DriftReport(BaseModel):
    """The full result of one drift check."""

    model_config = ConfigDict(frozen=True)

    status: DriftStatus
    drifted: bool | None = Field(description="None when the data was insufficient.")
    reason: str
    samples: dict[str, int]
    thresholds: DriftThresholds
    features: tuple[FeatureDrift, ...]
    prediction: PredictionDrift
    max_psi: float | None
    source: dict[str, str] = Field(
        default_factory=dict, description="What was compared: mode, model, version, files."
    )
    window: DriftWindow | None = Field(None, description="How the current side was read.")

    def to_json(self) -> str:
        """Serialise as ``report.json``."""
        return self.model_dump_json(indent=2)

    def ranked_features(self) -> list[FeatureDrift]:
        """Tested features by PSI, largest first (the likely culprits lead), then untested ones."""
        return sorted(self.features, key=lambda f: (not f.testable, -f.psi))


def summary(report: DriftReport, max_bytes: int = SUMMARY_MAX_BYTES) -> DriftCheckSummary:
    """The report's decision and top offenders, at most ``max_bytes`` as ``model_dump_json()``.

    Features are ordered by PSI; the tail is dropped (and counted in ``features_omitted``) when
    the list would not fit. Statistics are rounded (PSI to 4 decimals, p-values to 3 significant
    digits) and texts cut to ``SUMMARY_MAX_TEXT`` characters, so no one entry fills the budget.
    """
    head = DriftCheckSummary(
        status=report.status.value,
        drifted=report.drifted,
        reason=report.reason[:SUMMARY_MAX_TEXT],
        samples=dict(report.samples),
        max_psi=_rounded(report.max_psi),
        thresholds=report.thresholds,
        features_checked=sum(f.testable for f in report.features),
        features_drifted=sum(f.drifted for f in report.features),
        features_omitted=0,
        features=[],
        prediction=_prediction_summary(report.prediction),
    )
    entries = [_feature_summary(f) for f in report.ranked_features()]
    # Each entry adds its own length plus a "," separator; the omitted count may grow digits.
    budget = max_bytes - _size(head) - len(str(len(entries)))
    kept = 0
    for entry in entries:
        cost = _size(entry) + 1
        if cost > budget:
            break
        budget -= cost
        kept += 1
    while True:
        out = head.model_copy(
            update={"features": entries[:kept], "features_omitted": len(entries) - kept}
        )
        if kept == 0 or _size(out) <= max_bytes:
            return out
        kept -= 1


def summary_text(out: DriftCheckSummary) -> str:
    """``out`` for people: the reason, the row counts, a table of the features, the predictions.

    Lines of at most about 80 characters; p-values are the Benjamini-Hochberg adjusted ones.
    """
    samples = ", ".join(f"{side} {rows}" for side, rows in out.samples.items())
    lines = [out.reason, f"rows: {samples}"]
    if out.features:
        lines.append(f"{'FEATURE':<20} {'TEST':<6} {'PSI':>8} {'P (BH)':>10}  DRIFT")
    for f in out.features:
        if f.note is not None:
            lines.append(f"{f.name:<20} not testable: {f.note}")
            continue
        flag = "yes" if f.drifted else "no"
        lines.append(f"{f.name:<20} {f.test:<6} {f.psi:>8.4f} {_p(f.p_adjusted):>10}  {flag}")
        if f.missing is not None:
            m = f.missing
            lines.append(
                f"{'':<20} missing {m.reference:.1%} -> {m.current:.1%}, p (BH) {_p(m.p_adjusted)}"
            )
    prediction = out.prediction
    if prediction.checked:
        lines.append(
            f"prediction: PSI {prediction.psi:.4f}, {(prediction.test or '').upper()} p"
            f" {_p(prediction.p_value)}, drifted {prediction.drifted}"
        )
    else:
        lines.append(f"prediction: not checked ({prediction.note})")
    return "\n".join(lines)


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _feature_summary(feature: FeatureDrift) -> FeatureSummary:
    missing = feature.missing
    return FeatureSummary(
        name=feature.name[:SUMMARY_MAX_TEXT],
        test=feature.test,
        # An untested feature's PSI compares against nothing (an empty reference): not shown.
        psi=_rounded(feature.psi) if feature.testable else None,
        p_value=_significant(feature.p_value),
        p_adjusted=_significant(feature.p_adjusted),
        drifted=feature.drifted,
        missing=None
        if missing is None
        else MissingSummary(
            reference=_rounded(missing.reference),
            current=_rounded(missing.current),
            p_adjusted=_significant(missing.p_adjusted),
        ),
        note=feature.note[:SUMMARY_MAX_TEXT] or None,
    )


def _prediction_summary(prediction: PredictionDrift) -> PredictionSummary:
    if not prediction.checked:
        return PredictionSummary(
            checked=False, note=prediction.note[:SUMMARY_MAX_TEXT], drifted=None
        )
    return PredictionSummary(
        checked=True,
        test=prediction.test,
        psi=_rounded(prediction.psi),
        p_value=_significant(prediction.p_value),
        drifted=prediction.drifted,
    )


def _size(value: BaseModel) -> int:
    """Bytes of ``value`` as the termination message holds it."""
    return len(value.model_dump_json().encode())


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _significant(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.3g}")
