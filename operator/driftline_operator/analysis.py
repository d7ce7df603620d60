"""Analysis of one rollout step (pure): the challenger's health and behaviour against its gates.

Health comes from the router's figures (``traffic``); behaviour from the predictions both
variants logged in the same window (``behaviour_gates``). Each gate compares a figure of the
step's window with a bound of ``spec.analysis`` and says Passed, Failed or Inconclusive. Too few
challenger requests make a gate inconclusive rather than passed, with one exception that makes
a broken challenger fail fast: errors already beyond the error budget of the minimum sample
(``maxErrorRate x minRequests``) fail at once, however few requests were sent. Gates against
the champion pass when the champion served nothing in the window (the last step sends it no
traffic), saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftline.api.v1alpha1 import Analysis, AnalysisResult, Gate
from driftline.registry_conventions import CHALLENGER, CHAMPION
from driftline.stattests import ks_statistic, sample_psi
from driftline_operator.traffic import TrafficWindow, VariantWindow

BEHAVIOUR_GATES = ("predictionPsi", "predictionKs", "positiveRateDifference")
SHADOW_GATES = ("shadowAgreement", "shadowProbabilityDifference")


@dataclass(frozen=True)
class Predictions:
    """What one variant predicted in the window, row by row in the same order.

    Probabilities, 0/1 decisions, request ids, and whether the row answered a shadow copy.
    """

    probabilities: npt.NDArray[np.float64]
    decisions: npt.NDArray[np.float64]
    request_ids: tuple[str, ...] = ()
    shadow: npt.NDArray[np.bool_] | None = None

    @property
    def count(self) -> int:
        """Number of predictions."""
        return int(self.probabilities.size)


def shadow_pairs(champion: Predictions, challenger: Predictions) -> tuple[Predictions, Predictions]:
    """The champion's and the challenger's predictions on the same shadowed requests, aligned.

    A challenger row answering a shadow copy is paired with the champion's row of the same
    request id; rows without a partner are left out, and so are ids logged more than once on
    either side (clients choose request ids; a reused one cannot say which rows belong).
    """
    index = {rid: i for i, rid in enumerate(champion.request_ids)}
    once = _unique(champion.request_ids) & _unique(challenger.request_ids)
    shadow = challenger.shadow if challenger.shadow is not None else np.zeros(0, dtype=bool)
    ours = [
        i
        for i, rid in enumerate(challenger.request_ids)
        if shadow[i] and rid in index and rid in once
    ]
    theirs = [index[challenger.request_ids[i]] for i in ours]
    return (
        Predictions(champion.probabilities[theirs], champion.decisions[theirs]),
        Predictions(challenger.probabilities[ours], challenger.decisions[ours]),
    )


def analyse(
    spec: Analysis, window: TrafficWindow, time: str, behaviour: list[Gate] | None = None
) -> AnalysisResult:
    """Every gate on ``window``, then the ``behaviour`` gates, and the verdict over them.

    ``time`` (RFC 3339) is when the analysis ran.
    """
    challenger, champion = window.variant(CHALLENGER), window.variant(CHAMPION)
    gates = [
        _requests(spec, challenger),
        _error_rate(spec, challenger),
        _error_rate_increase(spec, challenger, champion),
        _latency(spec, challenger),
        _latency_increase(spec, challenger, champion),
        *(behaviour or []),
    ]
    return AnalysisResult(
        time=time, verdict=verdict(gates), window_seconds=round(window.seconds, 1), gates=gates
    )


def _unique(ids: tuple[str, ...]) -> set[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for rid in ids:
        (repeated if rid in seen else seen).add(rid)
    return seen - repeated


def behaviour_gates(spec: Analysis, champion: Predictions, challenger: Predictions) -> list[Gate]:
    """Model-behaviour gates: how differently the challenger predicts on the same window.

    PSI of the challenger's probabilities over ten quantile bins of the champion's, the KS
    statistic between the two, and the difference of their positive rates. Inconclusive while
    either side has fewer than ``minRequests`` predictions; passed, saying so, when the champion
    predicted nothing (a 100% step).
    """
    bounds = (
        spec.max_prediction_psi,
        spec.max_prediction_ks,
        spec.max_positive_rate_difference,
    )
    if challenger.count and not champion.count:
        return [
            Gate(name=n, threshold=b, verdict="Passed", message="champion served no requests")
            for n, b in zip(BEHAVIOUR_GATES, bounds, strict=True)
        ]
    fewest = min(champion.count, challenger.count)
    if fewest < spec.min_requests:
        why = (
            f"predictions logged: champion {champion.count}, challenger {challenger.count};"
            f" needs {spec.min_requests} each"
        )
        return [
            Gate(name=n, threshold=b, verdict="Inconclusive", message=why)
            for n, b in zip(BEHAVIOUR_GATES, bounds, strict=True)
        ]
    psi = sample_psi(champion.probabilities, challenger.probabilities)
    ks = ks_statistic(champion.probabilities, challenger.probabilities)
    rates = float(np.mean(champion.decisions)), float(np.mean(challenger.decisions))
    difference = abs(rates[1] - rates[0])
    measured = (
        (psi, f"PSI of challenger vs champion probabilities {psi:.4f}"),
        (ks, f"KS statistic of challenger vs champion probabilities {ks:.4f}"),
        (difference, f"positive rate challenger {rates[1]:.4f} vs champion {rates[0]:.4f}"),
    )
    return [
        Gate(
            name=name,
            value=round(value, 6),
            threshold=bound,
            verdict="Passed" if value <= bound else "Failed",
            message=f"{text} vs at most {bound:g}",
        )
        for name, bound, (value, text) in zip(BEHAVIOUR_GATES, bounds, measured, strict=True)
    ]


def shadow_gates(spec: Analysis, champion: Predictions, challenger: Predictions) -> list[Gate]:
    """Paired gates on shadowed requests: agreement of decisions, distance of probabilities.

    Both on the very same inputs; inconclusive below ``minRequests`` pairs.
    """
    theirs, ours = shadow_pairs(champion, challenger)
    bounds = (spec.min_shadow_agreement, spec.max_shadow_probability_difference)
    if challenger.count and not champion.count:
        # A 100% step: nothing goes to the champion, so nothing is shadowed.
        return [
            Gate(name=n, threshold=b, verdict="Passed", message="champion served no requests")
            for n, b in zip(SHADOW_GATES, bounds, strict=True)
        ]
    if ours.count < spec.min_requests:
        why = f"shadowed pairs logged {ours.count}, needs {spec.min_requests}"
        return [
            Gate(name=n, threshold=b, verdict="Inconclusive", message=why)
            for n, b in zip(SHADOW_GATES, bounds, strict=True)
        ]
    agreement = float(np.mean(theirs.decisions == ours.decisions))
    difference = float(np.mean(np.abs(theirs.probabilities - ours.probabilities)))
    return [
        Gate(
            name="shadowAgreement",
            value=round(agreement, 6),
            threshold=bounds[0],
            verdict="Passed" if agreement >= bounds[0] else "Failed",
            message=f"same decision on {agreement:.4f} of {ours.count} shadowed requests vs at"
            f" least {bounds[0]:g}",
        ),
        Gate(
            name="shadowProbabilityDifference",
            value=round(difference, 6),
            threshold=bounds[1],
            verdict="Passed" if difference <= bounds[1] else "Failed",
            message=f"mean |probability difference| {difference:.4f} on {ours.count} shadowed"
            f" requests vs at most {bounds[1]:g}",
        ),
    ]


def unmeasured(names: tuple[str, ...], reason: str) -> list[Gate]:
    """Gates that could not be measured this time (a source down): inconclusive, with why."""
    return [Gate(name=name, verdict="Inconclusive", message=reason[:300]) for name in names]


def inconclusive(reason: str, time: str, behaviour: list[Gate] | None = None) -> AnalysisResult:
    """An analysis without the router's figures (``reason``), with any ``behaviour`` gates."""
    gates = [Gate(name="metrics", verdict="Inconclusive", message=reason[:300]), *(behaviour or [])]
    return AnalysisResult(time=time, verdict=verdict(gates), gates=gates)


def verdict(gates: list[Gate]) -> str:
    """Failed if any gate failed, else Inconclusive if any was, else Passed."""
    verdicts = {gate.verdict for gate in gates}
    for worst in ("Failed", "Inconclusive"):
        if worst in verdicts:
            return worst
    return "Passed"


def failed_summary(result: AnalysisResult) -> str:
    """The failed gates' messages in one line (what an abort reports)."""
    failed = [f"{g.name}: {g.message}" for g in result.gates or [] if g.verdict == "Failed"]
    return "; ".join(failed) or "no gate failed"


def _enough(spec: Analysis, challenger: VariantWindow) -> bool:
    return challenger.requests >= spec.min_requests


def _requests(spec: Analysis, challenger: VariantWindow) -> Gate:
    enough = _enough(spec, challenger)
    return Gate(
        name="requests",
        value=challenger.requests,
        threshold=spec.min_requests,
        verdict="Passed" if enough else "Inconclusive",
        message=f"challenger requests {challenger.requests}"
        f" {'>=' if enough else '<'} {spec.min_requests}",
    )


def _error_rate(spec: Analysis, challenger: VariantWindow) -> Gate:
    budget = spec.max_error_rate * spec.min_requests
    rate = challenger.error_rate
    message = (
        f"challenger error rate {rate:.4f} ({challenger.errors}/{challenger.requests})"
        f" vs at most {spec.max_error_rate}"
    )
    if challenger.errors > budget and rate > spec.max_error_rate:
        state = "Failed"
    elif not _enough(spec, challenger):
        state = "Inconclusive"
    else:
        state = "Passed"
    return Gate(
        name="errorRate",
        value=round(rate, 6),
        threshold=spec.max_error_rate,
        verdict=state,
        message=message,
    )


def _error_rate_increase(
    spec: Analysis, challenger: VariantWindow, champion: VariantWindow
) -> Gate:
    name, bound = "errorRateIncrease", spec.max_error_rate_increase
    if champion.requests == 0:
        return Gate(
            name=name, threshold=bound, verdict="Passed", message="champion served no requests"
        )
    increase = challenger.error_rate - champion.error_rate
    state = "Passed" if increase <= bound else "Failed"
    if not _enough(spec, challenger):
        state = "Inconclusive"
    return Gate(
        name=name,
        value=round(increase, 6),
        threshold=bound,
        verdict=state,
        message=f"challenger error rate {challenger.error_rate:.4f} - champion"
        f" {champion.error_rate:.4f} = {increase:+.4f} vs at most {bound}",
    )


def _latency(spec: Analysis, challenger: VariantWindow) -> Gate:
    p95, bound = challenger.latency_p95_ms, spec.max_latency_p95_ms
    if p95 is None or not _enough(spec, challenger):
        state = "Inconclusive"
    else:
        state = "Passed" if p95 <= bound else "Failed"
    shown = "-" if p95 is None else f"{p95:.1f}"
    return Gate(
        name="latencyP95Ms",
        value=None if p95 is None else round(p95, 3),
        threshold=bound,
        verdict=state,
        message=f"challenger p95 {shown} ms vs at most {bound:g} ms",
    )


def _latency_increase(spec: Analysis, challenger: VariantWindow, champion: VariantWindow) -> Gate:
    name, bound = "latencyP95IncreaseMs", spec.max_latency_p95_increase_ms
    if champion.latency_p95_ms is None:
        return Gate(
            name=name, threshold=bound, verdict="Passed", message="champion served no requests"
        )
    if challenger.latency_p95_ms is None or not _enough(spec, challenger):
        return Gate(name=name, threshold=bound, verdict="Inconclusive", message="too few requests")
    increase = challenger.latency_p95_ms - champion.latency_p95_ms
    return Gate(
        name=name,
        value=round(increase, 3),
        threshold=bound,
        verdict="Passed" if increase <= bound else "Failed",
        message=f"challenger p95 {challenger.latency_p95_ms:.1f} ms - champion"
        f" {champion.latency_p95_ms:.1f} ms = {increase:+.1f} ms vs at most {bound:g} ms",
    )
