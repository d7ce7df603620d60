"""Analysis of one rollout step (pure): the challenger's online health against its gates.

Each gate compares a figure of the step's window with a bound of ``spec.analysis`` and says
Passed, Failed or Inconclusive. Too few challenger requests make a gate inconclusive rather
than passed, with one exception that makes a broken challenger fail fast: errors already
beyond the error budget of the minimum sample (``maxErrorRate x minRequests``) fail at once,
however few requests were sent. Gates against the champion pass when the champion served
nothing in the window (the last step sends it no traffic), saying so.
"""

from __future__ import annotations

from driftline.api.v1alpha1 import Analysis, AnalysisResult, Gate
from driftline.registry_conventions import CHALLENGER, CHAMPION
from driftline_operator.traffic import TrafficWindow, VariantWindow


def analyse(spec: Analysis, window: TrafficWindow, time: str) -> AnalysisResult:
    """Every gate on ``window``, in order, and the verdict over them (``verdict``).

    ``time`` (RFC 3339) is when the analysis ran.
    """
    challenger, champion = window.variant(CHALLENGER), window.variant(CHAMPION)
    gates = [
        _requests(spec, challenger),
        _error_rate(spec, challenger),
        _error_rate_increase(spec, challenger, champion),
        _latency(spec, challenger),
        _latency_increase(spec, challenger, champion),
    ]
    return AnalysisResult(
        time=time, verdict=verdict(gates), window_seconds=round(window.seconds, 1), gates=gates
    )


def inconclusive(reason: str, time: str) -> AnalysisResult:
    """An analysis that could not measure anything (no router figures), with the reason."""
    gate = Gate(name="metrics", verdict="Inconclusive", message=reason[:300])
    return AnalysisResult(time=time, verdict="Inconclusive", gates=[gate])


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
