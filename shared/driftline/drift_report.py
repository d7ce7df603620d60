"""The drift report: in full for people (report.json, report.html), as a summary for the operator.

Pure data and formatting: ``driftline.drift`` fills a report, ``summary`` shrinks it to what fits
in a pod's termination message (4 KiB) and in ``DriftPolicy`` status.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from driftline.schema import FeatureKind

# Kubernetes keeps at most 4096 bytes of a container's termination message.
SUMMARY_MAX_BYTES = 4096
# A feature name or reason longer than this is cut in the summary, so one cannot fill it alone.
SUMMARY_MAX_TEXT = 200


class DriftStatus(StrEnum):
    """The answer of one check. Too little data is its own answer, never "no drift"."""

    DRIFT = "drift"
    NO_DRIFT = "no_drift"
    INSUFFICIENT_DATA = "insufficient_data"


class DriftThresholds(BaseModel):
    """The decision rule's parameters (the ``DriftPolicy`` thresholds and window minimum)."""

    model_config = ConfigDict(frozen=True)

    psi: float = Field(0.2, gt=0, description="A feature's PSI must exceed this to drift.")
    p_value: float = Field(
        0.05, gt=0, lt=1, description="False discovery rate of the Benjamini-Hochberg step."
    )
    prediction_psi: float = Field(0.2, gt=0, description="PSI threshold of the predictions.")
    min_samples: int = Field(500, ge=1, description="Fewer current rows: insufficient data.")


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

    def to_json(self) -> str:
        """Serialise as ``report.json``."""
        return self.model_dump_json(indent=2)

    def ranked_features(self) -> list[FeatureDrift]:
        """Tested features by PSI, largest first (the likely culprits lead), then untested ones."""
        return sorted(self.features, key=lambda f: (not f.testable, -f.psi))


def summary(report: DriftReport, max_bytes: int = SUMMARY_MAX_BYTES) -> dict[str, Any]:
    """The report's decision and top offenders, at most ``max_bytes`` as ``json.dumps`` output.

    Features are ordered by PSI; the tail is dropped (and counted in ``features_omitted``) when
    the list would not fit.
    """
    out: dict[str, Any] = {
        "status": report.status.value,
        "drifted": report.drifted,
        "reason": report.reason[:SUMMARY_MAX_TEXT],
        "samples": dict(report.samples),
        "max_psi": _rounded(report.max_psi),
        "thresholds": report.thresholds.model_dump(),
        "features_checked": sum(f.testable for f in report.features),
        "features_drifted": sum(f.drifted for f in report.features),
        "features_omitted": 0,
        "features": [],
        "prediction": _prediction_summary(report.prediction),
    }
    entries = [_feature_summary(f) for f in report.ranked_features()]
    # Each entry adds its own length plus a ", " separator; the omitted count may grow a digit.
    budget = max_bytes - _size(out) - len(str(len(entries)))
    kept = 0
    for entry in entries:
        cost = _size(entry) + 2
        if cost > budget:
            break
        budget -= cost
        kept += 1
    out["features"] = entries[:kept]
    out["features_omitted"] = len(entries) - kept
    while _size(out) > max_bytes and out["features"]:
        out["features"].pop()
        out["features_omitted"] += 1
    return out


def _feature_summary(feature: FeatureDrift) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": feature.name[:SUMMARY_MAX_TEXT],
        "test": feature.test,
        # An untested feature's PSI compares against nothing (an empty reference): not shown.
        "psi": _rounded(feature.psi) if feature.testable else None,
        "p_value": _significant(feature.p_value),
        "p_adjusted": _significant(feature.p_adjusted),
        "drifted": feature.drifted,
    }
    if feature.missing is not None:
        out["missing"] = {
            "reference": _rounded(feature.missing.reference),
            "current": _rounded(feature.missing.current),
            "p_adjusted": _significant(feature.missing.p_adjusted),
        }
    if feature.note:
        out["note"] = feature.note[:SUMMARY_MAX_TEXT]
    return out


def _prediction_summary(prediction: PredictionDrift) -> dict[str, Any]:
    if not prediction.checked:
        return {"checked": False, "note": prediction.note[:SUMMARY_MAX_TEXT], "drifted": None}
    return {
        "checked": True,
        "test": prediction.test,
        "psi": _rounded(prediction.psi),
        "p_value": _significant(prediction.p_value),
        "drifted": prediction.drifted,
    }


def _size(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True).encode())


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _significant(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.3g}")
