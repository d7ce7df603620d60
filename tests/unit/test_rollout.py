"""The step-wise rollout: router figures, analysis gates and the state machine (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from driftline.api.v1alpha1 import Analysis, AnalysisResult, Gate, Rollout, RolloutStatus
from driftline_operator.analysis import (
    Predictions,
    analyse,
    behaviour_gates,
    shadow_gates,
    shadow_pairs,
)
from driftline_operator.conditions import rfc3339
from driftline_operator.metrics import operator_metrics
from driftline_operator.rollout import (
    Requests,
    Transition,
    advance,
    analysis_due,
    challenger_percent,
    plan_of,
)
from driftline_operator.traffic import (
    Counts,
    TrafficWindow,
    VariantWindow,
    baselines,
    difference,
    histogram_quantile,
    parse_router_metrics,
)

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
PLAN = Rollout.model_validate(
    {
        "steps": [
            {"challengerPercent": 10, "pause": "60s"},
            {"challengerPercent": 50, "pause": "60s"},
            {"challengerPercent": 100, "pause": "60s"},
        ],
        "failureLimit": 2,
    }
)
NO_REQUESTS = Requests()
GATES = Analysis(min_requests=100, max_error_rate=0.01, max_latency_p95_ms=100)

PAGE = """\
# TYPE driftline_router_upstream_requests_total counter
driftline_router_upstream_requests_total{variant="champion"} 900.0
driftline_router_upstream_requests_total{variant="challenger"} 100.0
# TYPE driftline_router_upstream_errors_total counter
driftline_router_upstream_errors_total{reason="server_error",variant="challenger"} 3.0
driftline_router_upstream_errors_total{reason="timeout",variant="challenger"} 2.0
driftline_router_upstream_errors_total{reason="timeout",variant="champion"} 0.0
# TYPE driftline_router_upstream_latency_seconds histogram
driftline_router_upstream_latency_seconds_bucket{le="0.01",variant="challenger"} 50.0
driftline_router_upstream_latency_seconds_bucket{le="0.1",variant="challenger"} 90.0
driftline_router_upstream_latency_seconds_bucket{le="+Inf",variant="challenger"} 100.0
driftline_router_upstream_latency_seconds_count{variant="challenger"} 100.0
driftline_router_upstream_latency_seconds_sum{variant="challenger"} 3.0
"""


def window(challenger: VariantWindow, champion: VariantWindow | None = None) -> TrafficWindow:
    variants = {"challenger": challenger}
    if champion is not None:
        variants["champion"] = champion
    return TrafficWindow(60.0, variants)


def test_a_router_page_parses_into_per_variant_counts() -> None:
    counts = parse_router_metrics(PAGE)
    assert counts["challenger"].requests == 100 and counts["challenger"].errors == 5
    assert counts["champion"].requests == 900 and counts["champion"].errors == 0
    assert counts["challenger"].buckets == {0.01: 50, 0.1: 90, math.inf: 100}


def test_histogram_quantile_interpolates_as_prometheus_does() -> None:
    buckets = {0.01: 50.0, 0.1: 90.0, math.inf: 100.0}
    # rank 50 ends the first bucket; rank 70 is halfway through the second.
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.01)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.055)
    # A rank in +Inf answers the highest finite bound.
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.95, {0.1: 0.0, math.inf: 0.0}) is None


def test_a_window_is_the_difference_of_two_scrapes_and_survives_a_restart() -> None:
    then = {"a": {"challenger": Counts(10, 1, {1.0: 10}), "champion": Counts(50, 0, {1.0: 50})}}
    now = {
        "a": {"challenger": Counts(30, 4, {1.0: 30}), "champion": Counts(150, 0, {1.0: 150})},
        # A pod that started after the baseline counts whole.
        "b": {"challenger": Counts(5, 0, {1.0: 5})},
    }
    moved = difference(now, then)
    assert (moved["challenger"].requests, moved["challenger"].errors) == (25, 3)
    assert moved["challenger"].buckets == {1.0: 25}
    assert moved["champion"].requests == 100
    # A restarted pod's counters start again from zero: all of it is new.
    restarted = {"a": {"challenger": Counts(7, 0, {1.0: 7})}}
    assert difference(restarted, then)["challenger"].requests == 7


def test_each_pods_baseline_is_its_first_scrape_in_the_window() -> None:
    since = T0
    before = {"a": {"challenger": Counts(1, 0, {})}}
    first = {"a": {"challenger": Counts(10, 0, {})}}  # b did not answer this scrape
    later = {"a": {"challenger": Counts(12, 0, {})}, "b": {"challenger": Counts(900, 9, {})}}
    history = [(T0 - timedelta(seconds=5), before), (T0 + timedelta(seconds=1), first)]
    assert baselines(first, {}, history[:1], since) is None  # the window starts now
    # b is old (started before the window): none of its 900 is known to be in the window.
    old = baselines(later, {"b": T0 - timedelta(hours=3)}, history, since)
    assert old is not None and difference(later, old)["challenger"].requests == 2
    # b started inside the window: all it counted is.
    new = baselines(later, {"b": T0 + timedelta(seconds=2)}, history, since)
    assert new is not None and difference(later, new)["challenger"].requests == 902


def test_a_healthy_challenger_passes_every_gate() -> None:
    result = analyse(GATES, window(VariantWindow(200, 1, 40.0), VariantWindow(1800, 9, 35.0)), "t")
    assert result.verdict == "Passed", result
    assert [g.name for g in result.gates or []] == [
        "requests", "errorRate", "errorRateIncrease", "latencyP95Ms", "latencyP95IncreaseMs",
    ]  # fmt: skip


def test_too_few_requests_is_inconclusive_not_passed() -> None:
    result = analyse(GATES, window(VariantWindow(20, 0, 10.0), VariantWindow(180, 0, 10.0)), "t")
    assert result.verdict == "Inconclusive"
    assert {g.name: g.verdict for g in result.gates or []}["requests"] == "Inconclusive"


def test_errors_beyond_the_minimum_samples_budget_fail_at_once() -> None:
    # 2 errors in 5 requests: more than 1% of the 100 requests needed can ever allow.
    result = analyse(GATES, window(VariantWindow(5, 2, 10.0), VariantWindow(45, 0, 10.0)), "t")
    assert result.verdict == "Failed"
    gate = next(g for g in result.gates or [] if g.name == "errorRate")
    assert (gate.verdict, gate.value, gate.threshold) == ("Failed", 0.4, 0.01)


def test_a_slow_or_worse_than_champion_challenger_fails_the_named_gate() -> None:
    slow = analyse(GATES, window(VariantWindow(200, 0, 180.0), VariantWindow(900, 0, 20.0)), "t")
    failed = {g.name for g in slow.gates or [] if g.verdict == "Failed"}
    assert failed == {"latencyP95Ms", "latencyP95IncreaseMs"}
    # An error rate within the absolute bound but above the champion's by more than the margin.
    gates = Analysis(min_requests=100, max_error_rate=0.2, max_error_rate_increase=0.01)
    worse = analyse(gates, window(VariantWindow(200, 10, 5.0), VariantWindow(900, 0, 5.0)), "t")
    assert {g.name for g in worse.gates or [] if g.verdict == "Failed"} == {"errorRateIncrease"}


def test_gates_against_the_champion_pass_when_it_served_nothing() -> None:
    result = analyse(GATES, window(VariantWindow(500, 0, 30.0)), "t")
    assert result.verdict == "Passed"
    margins = [g for g in result.gates or [] if g.name.endswith("Increase")]
    assert {g.message for g in margins} == {"champion served no requests"}


def analysed(verdict: str, at: datetime) -> AnalysisResult:
    gate = Gate(name="errorRate", value=0.5, threshold=0.01, verdict=verdict, message="m")
    return AnalysisResult(time=rfc3339(at), verdict=verdict, gates=[gate])


def step(
    status: RolloutStatus | None,
    now: datetime,
    *,
    auto: bool = True,
    challenger: str | None = "2",
    rejected: str | None = None,
    requests: Requests = NO_REQUESTS,
    analysis: AnalysisResult | None = None,
) -> Transition:
    return advance(
        PLAN,
        auto=auto,
        status=status,
        challenger=challenger,
        rejected=rejected,
        requests=requests,
        analysis=analysis,
        now=now,
    )


def test_a_new_challenger_starts_at_step_zero_and_advances_on_passing_analysis() -> None:
    started = step(None, T0)
    assert started.status is not None
    assert (started.status.phase, started.status.step, started.status.percent) == (
        "Progressing", 0, 10,
    )  # fmt: skip
    assert [e[1] for e in started.events] == ["RolloutStarted"]
    assert challenger_percent(started.status, "2", ready=True) == 10
    # Until the challenger's pods are available, the share stays 0.
    assert challenger_percent(started.status, "2", ready=False) == 0
    # Passing inside the pause: the step holds.
    mid = step(
        started.status,
        T0 + timedelta(seconds=30),
        analysis=analysed("Passed", T0 + timedelta(seconds=30)),
    )
    assert mid.status is not None and (mid.status.phase, mid.status.step) == ("Analysing", 0)
    # Pause over and the latest analysis passed: next step.
    later = T0 + timedelta(seconds=61)
    # Pause over, but the last verdict is from mid-step: the whole step is analysed first.
    assert analysis_due(PLAN, mid.status, "2", 30, later)
    waiting = step(mid.status, later)
    assert waiting.status is not None and (waiting.status.phase, waiting.status.step) == (
        "Analysing", 0,
    )  # fmt: skip
    moved = step(mid.status, later, analysis=analysed("Passed", later))
    assert moved.status is not None and (moved.status.step, moved.status.percent) == (1, 50)
    assert moved.status.position == "2/3" and moved.events[0][1] == "RolloutStepAdvanced"
    assert analysis_due(PLAN, moved.status, "2", 30, later)


def test_the_last_passing_step_promotes_in_auto_and_waits_in_manual() -> None:
    status = RolloutStatus(
        version="2", phase="Analysing", step=2, steps=3, position="3/3", percent=100,
        step_started_at=rfc3339(T0), failures=0, plan=plan_of(PLAN),
        last_analysis=analysed("Passed", T0 + timedelta(seconds=60)),
    )  # fmt: skip
    done = step(status, T0 + timedelta(seconds=61))
    assert done.promote and not done.force
    waiting = step(status, T0 + timedelta(seconds=61), auto=False)
    assert not waiting.promote and waiting.status is not None
    assert waiting.status.phase == "Paused" and "driftline.dev/promote" in (
        waiting.status.message or ""
    )
    asked = step(
        waiting.status, T0 + timedelta(seconds=70), auto=False, requests=Requests(promote=True)
    )
    assert asked.promote and asked.force


def test_failure_limit_failed_analyses_in_a_row_abort_and_reject() -> None:
    started = step(None, T0).status
    first = step(
        started, T0 + timedelta(seconds=10), analysis=analysed("Failed", T0 + timedelta(seconds=10))
    )
    assert first.status is not None and first.status.phase == "Analysing" and first.reject is None
    assert first.status.failures == 1 and first.events[0][1] == "AnalysisFailed"
    second = step(
        first.status,
        T0 + timedelta(seconds=20),
        analysis=analysed("Failed", T0 + timedelta(seconds=20)),
    )
    assert second.status is not None
    assert (second.status.phase, second.status.percent) == ("Aborted", 0)
    assert second.reject is not None and "errorRate: m" in second.reject
    assert [e[1] for e in second.events] == ["RolloutAborted"]
    # Aborted stays aborted, at 0%, without new Events.
    after = step(second.status, T0 + timedelta(seconds=90))
    assert after.status is not None and after.status.phase == "Aborted" and not after.events
    assert challenger_percent(after.status, "2", ready=True) == 0


def test_a_passing_analysis_resets_the_failure_count() -> None:
    started = step(None, T0).status
    first = step(
        started, T0 + timedelta(seconds=10), analysis=analysed("Failed", T0 + timedelta(seconds=10))
    )
    ok = step(
        first.status,
        T0 + timedelta(seconds=20),
        analysis=analysed("Passed", T0 + timedelta(seconds=20)),
    )
    assert ok.status is not None and ok.status.failures == 0


def test_an_inconclusive_step_holds_paused_after_its_pause() -> None:
    started = step(None, T0).status
    thin = analysed("Inconclusive", T0 + timedelta(seconds=50))
    held = step(started, T0 + timedelta(seconds=61), analysis=thin)
    assert held.status is not None and (held.status.phase, held.status.step) == ("Paused", 0)
    assert "inconclusive" in (held.status.message or "") and held.events[0][1] == "RolloutPaused"


def test_abort_and_retry_by_annotation_and_a_rejected_version_is_not_rolled_out() -> None:
    started = step(None, T0, requests=Requests(abort="old")).status
    assert started is not None and started.handled_abort == "old"  # an old request is not news
    aborted = step(started, T0 + timedelta(seconds=5), requests=Requests(abort="now"))
    assert aborted.status is not None and aborted.status.phase == "Aborted"
    assert aborted.reject is not None and "driftline.dev/abort" in aborted.reject
    retried = step(
        aborted.status, T0 + timedelta(seconds=9), requests=Requests(abort="now", retry="r1")
    )
    assert retried.clear_rejection and retried.status is not None
    assert (retried.status.phase, retried.status.step) == ("Progressing", 0)
    # A version already tagged rejected (say by an earlier rollout) is held at 0%.
    held = step(None, T0, challenger="3", rejected="p95 too high")
    assert held.status is not None and (held.status.phase, held.status.percent) == ("Aborted", 0)
    assert held.events[0][1] == "RolloutRejected" and held.reject is None


def test_a_steps_clock_waits_for_the_challengers_pods() -> None:
    started = step(None, T0).status
    later = T0 + timedelta(seconds=90)
    waiting = advance(
        PLAN, auto=True, status=started, challenger="2", rejected=None, requests=NO_REQUESTS,
        analysis=None, now=later, challenger_ready=False,
    )  # fmt: skip
    assert waiting.status is not None and waiting.status.step == 0
    assert waiting.status.step_started_at == rfc3339(later) and "pods" in (
        waiting.status.message or ""
    )


def test_a_removed_challenger_ends_the_rollout_and_only_a_promotion_stays_on_view() -> None:
    started = step(None, T0).status
    ended = step(started, T0 + timedelta(seconds=5), challenger=None)
    assert ended.status is None and ended.events[0][1] == "RolloutEnded"
    aborted = step(started, T0 + timedelta(seconds=5), requests=Requests(abort="x")).status
    assert step(aborted, T0 + timedelta(seconds=9), challenger=None).status is None
    assert started is not None
    promoted = started.model_copy(update={"phase": "Promoted"})
    assert step(promoted, T0 + timedelta(seconds=9), challenger=None).status == promoted


def test_any_edit_of_the_steps_restarts_a_running_rollout() -> None:
    started = step(None, T0).status
    assert started is not None and started.plan == "10@60s,50@60s,100@60s"
    later = T0 + timedelta(seconds=5)
    for steps in (
        [{"challengerPercent": 50, "pause": "60s"}],
        [{"challengerPercent": 20, "pause": "60s"}, {"challengerPercent": 50, "pause": "60s"},
         {"challengerPercent": 100, "pause": "60s"}],
        [{"challengerPercent": 10, "pause": "5m"}, {"challengerPercent": 50, "pause": "60s"},
         {"challengerPercent": 100, "pause": "60s"}],
    ):  # fmt: skip
        edited = Rollout.model_validate({"steps": steps})
        restarted = advance(
            edited, auto=True, status=started.model_copy(update={"step": 1}), challenger="2",
            rejected=None, requests=NO_REQUESTS, analysis=None, now=later,
        )  # fmt: skip
        assert restarted.status is not None and restarted.events[0][1] == "RolloutRestarted"
        assert restarted.status.step == 0
        assert restarted.status.percent == steps[0]["challengerPercent"]
    same = step(started, later)
    assert not [e for e in same.events if e[1] == "RolloutRestarted"]


def test_a_go_ahead_is_reported_used_only_when_it_moves_the_rollout() -> None:
    started = step(None, T0).status
    asked = step(started, T0 + timedelta(seconds=5), requests=Requests(promote=True))
    assert asked.used_promote and asked.status is not None and asked.status.step == 1
    aborted = step(started, T0 + timedelta(seconds=5), requests=Requests(abort="x")).status
    ignored = step(aborted, T0 + timedelta(seconds=9), requests=Requests(abort="x", promote=True))
    assert not ignored.used_promote


def test_invalid_step_lists_are_refused() -> None:
    refused = [
        [],
        [{"challengerPercent": 50}, {"challengerPercent": 20}],
        [{"challengerPercent": 0}],
        [{"challengerPercent": 10, "pause": "10"}],
    ]
    for steps in refused:
        with pytest.raises(ValueError):
            Rollout.model_validate({"steps": steps})


def test_the_rollout_is_exported_as_metrics() -> None:
    metrics = operator_metrics()
    started = step(None, T0).status
    assert started is not None
    failed = step(started, T0 + timedelta(seconds=5), analysis=analysed("Failed", T0)).status
    assert failed is not None
    metrics.record_rollout("ns", "md", failed.model_dump(by_alias=True))

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(
            name, {"namespace": "ns", "model_deployment": "md", **labels}
        )

    assert value("driftline_rollout_phase", phase="Analysing") == 1
    assert value("driftline_rollout_phase", phase="Aborted") == 0
    assert (
        value("driftline_rollout_step") == 1 and value("driftline_rollout_challenger_percent") == 10
    )
    assert value("driftline_rollout_gate_value", gate="errorRate") == 0.5
    assert value("driftline_rollout_gate_threshold", gate="errorRate") == 0.01
    assert value("driftline_rollout_gate_failed", gate="errorRate") == 1
    metrics.record_rollout("ns", "md", None)
    assert value("driftline_rollout_phase", phase="Analysing") == 0
    # The rollout is gone: so are its step, share and gate series (an alert on them ends).
    assert value("driftline_rollout_step") is None
    assert value("driftline_rollout_gate_failed", gate="errorRate") is None


def predictions(probabilities: np.ndarray) -> Predictions:
    return Predictions(probabilities, (probabilities >= 0.5).astype(np.float64))


def test_behaviour_gates_catch_shifted_probabilities_and_pass_alike_ones() -> None:
    rng = np.random.default_rng(7)
    champion = predictions(rng.beta(2, 5, 3000))
    alike = predictions(rng.beta(2, 5, 1000))
    shifted = predictions(np.clip(rng.beta(2, 5, 1000) + 0.15, 0, 1))
    same = {g.name: g for g in behaviour_gates(GATES, champion, alike)}
    assert [g.verdict for g in same.values()] == ["Passed"] * 3, same
    moved = {g.name: g for g in behaviour_gates(GATES, champion, shifted)}
    assert {n for n, g in moved.items() if g.verdict == "Failed"} == {
        "predictionPsi", "predictionKs", "positiveRateDifference",
    }  # fmt: skip
    psi = moved["predictionPsi"]
    assert psi.value is not None and psi.value > 0.2 and psi.threshold == 0.2
    result = analyse(GATES, window(VariantWindow(500, 0, 9.0), VariantWindow(900, 0, 9.0)), "t",
                     list(moved.values()))  # fmt: skip
    assert result.verdict == "Failed" and len(result.gates or []) == 8


def test_behaviour_gates_wait_for_enough_predictions_and_skip_an_idle_champion() -> None:
    few = behaviour_gates(GATES, predictions(np.full(50, 0.3)), predictions(np.full(500, 0.3)))
    assert {g.verdict for g in few} == {"Inconclusive"} and "champion 50" in (few[0].message or "")
    idle = behaviour_gates(GATES, predictions(np.empty(0)), predictions(np.full(500, 0.3)))
    assert {g.verdict for g in idle} == {"Passed"}
    assert {g.message for g in idle} == {"champion served no requests"}


def test_shadow_gates_pair_rows_by_request_id() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(size=400)
    champion = Predictions(p, (p >= 0.5).astype(float), tuple(f"r{i}" for i in range(400)))
    # The challenger answered copies of the even ids (shadow) and served 100 of its own.
    shadow_ids = [f"r{i}" for i in range(0, 400, 2)]
    moved = np.clip(p[::2] + 0.2, 0, 1)
    ours = np.concatenate([moved, rng.uniform(size=100)])
    challenger = Predictions(
        ours, (ours >= 0.5).astype(float), (*shadow_ids, *(f"own{i}" for i in range(100))),
        np.array([True] * 200 + [False] * 100),
    )  # fmt: skip
    theirs, paired = shadow_pairs(champion, challenger)
    assert paired.count == theirs.count == 200
    assert np.allclose(paired.probabilities, moved) and np.allclose(theirs.probabilities, p[::2])
    gates = {g.name: g for g in shadow_gates(GATES, champion, challenger)}
    assert gates["shadowProbabilityDifference"].verdict == "Failed"
    assert 0.15 < (gates["shadowProbabilityDifference"].value or 0) <= 0.2
    assert gates["shadowAgreement"].verdict == "Failed"
    thin = shadow_gates(Analysis(min_requests=500), champion, challenger)
    assert {g.verdict for g in thin} == {"Inconclusive"}


def test_a_refused_promotion_is_not_retried_until_a_person_asks() -> None:
    status = RolloutStatus(
        version="2", phase="Paused", step=2, steps=3, position="3/3", percent=100,
        step_started_at=rfc3339(T0), failures=0, promotion_refused="roc_auc below minDelta",
        plan=plan_of(PLAN),
        last_analysis=analysed("Passed", T0 + timedelta(seconds=61)),
    )  # fmt: skip
    again = step(status, T0 + timedelta(seconds=70))
    assert not again.promote and again.status is not None and again.status.phase == "Paused"
    assert "roc_auc below minDelta" in (again.status.message or "")
    forced = step(status, T0 + timedelta(seconds=75), requests=Requests(promote=True))
    assert forced.promote and forced.force
