"""The router when a variant cannot serve: real uvicorn processes (and a fake upstream) on loopback.

A challenger that cannot answer (refused, reset, timed out, not ready, or a proxy's 502/504) has
its share answered by the champion, counted by reason; a 4xx the request itself caused is the
challenger's answer and goes back to the client. A champion that cannot serve gives a 503 within
the upstream timeout.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from driftline.api.v1alpha1 import Analysis, AnalysisResult
from driftline_operator.analysis import Predictions, analyse, behaviour_gates, shadow_gates
from driftline_operator.prediction_log import PredictionLog
from driftline_operator.router_scrape import http_get
from driftline_operator.traffic import (
    Counts,
    TrafficWindow,
    VariantWindow,
    difference,
    parse_router_metrics,
)
from driftline_serving.split import choose
from tests.integration.conftest import Served
from tests.integration.fake_upstream import FakeUpstream
from tests.integration.serving_helpers import metric, rows
from tests.processes import free_port, wait_for

pytestmark = pytest.mark.integration

TIMEOUT = 1.0  # the routers' upstream timeout here, seconds
SLACK = 1.5  # what a loaded shared test machine may add to an answer, seconds
FALLBACKS = "driftline_router_fallbacks_total"

StartRouter = Callable[..., Served]


@pytest.fixture(scope="module")
def champion(start_server) -> Served:
    """A real inference server with the registered champion."""
    return start_server("serve")


@pytest.fixture(scope="module")
def not_ready(start_server) -> Served:
    """A real inference server that stays not ready: its model does not exist."""
    return start_server("serve", "--model", "no-such-model", ready="/health")


@pytest.fixture(scope="module")
def record(adult: pd.DataFrame) -> dict:
    return rows(adult, 1)[0]


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def start_router(start_server) -> StartRouter:
    def start(
        champion: str,
        challenger: str | None = None,
        split_bps: int = 10_000,
        timeout: float = TIMEOUT,
    ) -> Served:
        args = ["router", "--champion", champion, "--split-bps", str(split_bps)]
        if challenger is not None:
            args += ["--challenger", challenger]
        env = {"DRIFTLINE_ROUTER_UPSTREAM_TIMEOUT_SECONDS": str(timeout)}
        # /ready: the path of the router Deployment's readiness probe (builders/router.py).
        return start_server(*args, env=env, ready="/ready")

    return start


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_a_not_ready_challengers_share_is_answered_by_the_champion_and_counted(
    start_router: StartRouter, champion: Served, not_ready: Served, record: dict
) -> None:
    # The premise: the challenger process is up and answers 503 model_not_ready itself.
    direct = httpx.post(not_ready.url + "/predict", json={"features": record})
    assert (direct.status_code, direct.json()["error"]) == (503, "model_not_ready")
    router = start_router(champion.url, not_ready.url, split_bps=5000)
    ids = [f"id-{n}" for n in range(100)]
    with httpx.Client(base_url=router.url) as client:
        answers = [client.post("/predict", json={"features": record, "request_id": i}) for i in ids]
        assert [a.status_code for a in answers] == [200] * len(ids)
        assert {a.json()["variant"] for a in answers} == {"champion"}
        assert {a.headers["x-driftline-variant"] for a in answers} == {"champion"}
        to_challenger = [i for i in ids if choose(i, 5000) == "challenger"]
        batch = client.post(
            "/predict/batch",
            json={"records": [{"features": record}] * 3},
            headers={"x-request-id": to_challenger[0]},
        )
        assert batch.status_code == 200, batch.text
        assert batch.headers["x-driftline-variant"] == "champion"
        metrics = client.get("/metrics").text
    assert metric(metrics, FALLBACKS + '{reason="unavailable"}') == len(to_challenger) + 1 > 1
    assert metric(metrics, FALLBACKS) == len(to_challenger) + 1


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("close", "unreachable"),  # accepts the connection, then closes it without answering
        ("garbage", "unreachable"),  # answers something that is not HTTP
        ("hang", "timeout"),  # answers after the timeout (here: never)
        ("502", "bad_gateway"),  # a proxy in front of the challenger cannot reach it
        ("503", "unavailable"),
        ("504", "timeout"),  # a proxy in front of the challenger timed out
    ],
)
def test_a_challenger_that_cannot_serve_falls_back_to_the_champion(
    start_router: StartRouter,
    champion: Served,
    fake: FakeUpstream,
    record: dict,
    behaviour: str,
    reason: str,
) -> None:
    fake.behaviour = behaviour
    router = start_router(champion.url, fake.url)
    with httpx.Client(base_url=router.url, timeout=30) as client:
        for n in range(3):
            started = time.monotonic()
            answer = client.post("/predict", json={"features": record, "request_id": f"r{n}"})
            assert answer.status_code == 200, answer.text
            assert answer.json()["variant"] == "champion"
            assert time.monotonic() - started < TIMEOUT + SLACK
        metrics = client.get("/metrics").text
    assert fake.requests >= 3
    assert metric(metrics, f'{FALLBACKS}{{reason="{reason}"}}') == 3
    assert metric(metrics, FALLBACKS) == 3
    assert metric(metrics, 'driftline_router_requests_total{variant="champion"}') == 3


def test_a_pooled_connection_that_stops_answering_costs_one_timeout_not_two(
    start_router: StartRouter, champion: Served, fake: FakeUpstream, record: dict
) -> None:
    timeout = 2.5  # long enough that two timeouts cannot pass for one plus slack
    router = start_router(champion.url, fake.url, timeout=timeout)
    with httpx.Client(base_url=router.url, timeout=30) as client:
        first = client.post("/predict", json={"features": record})
        assert first.json()["variant"] == "challenger"  # the router now pools this connection
        fake.behaviour = "hang"
        started = time.monotonic()
        answer = client.post("/predict", json={"features": record})
        elapsed = time.monotonic() - started
    assert answer.json()["variant"] == "champion"
    # A timed-out request is not retried on a fresh connection: that would double the wait.
    assert timeout <= elapsed < timeout + SLACK


def test_a_4xx_the_request_caused_is_the_challengers_answer(
    start_server, start_router: StartRouter, champion: Served, record: dict
) -> None:
    challenger = start_server("serve", "--variant", "challenger")
    router = start_router(champion.url, challenger.url)
    with httpx.Client(base_url=router.url) as client:
        invalid = client.post("/predict", json={"features": {**record, "age": "old"}})
        malformed = client.post("/predict", content=b"{not json")
        missing = client.post("/predict/batch", json={"records": []})
        metrics = client.get("/metrics").text
    assert (invalid.status_code, invalid.json()["field"]) == (422, "features.age")
    assert malformed.status_code == 400
    assert missing.status_code == 422
    for answer in (invalid, malformed, missing):
        assert answer.headers["x-driftline-variant"] == "challenger"
    assert metric(metrics, FALLBACKS) == 0
    assert metric(metrics, 'driftline_router_requests_total{variant="challenger"}') == 3


@pytest.mark.parametrize("kind", ["dead", "hang", "garbage"])
def test_a_champion_that_cannot_be_reached_gives_a_clear_503_in_time(
    start_router: StartRouter, fake: FakeUpstream, record: dict, kind: str
) -> None:
    fake.behaviour = kind
    router = start_router(dead_url() if kind == "dead" else fake.url)
    started = time.monotonic()
    answer = httpx.post(router.url + "/predict", json={"features": record}, timeout=30)
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert answer.status_code == 503
    assert answer.json()["error"] == "upstream_unavailable"
    assert "champion" in answer.json()["message"]


def test_a_not_ready_champion_answers_its_own_503(
    start_router: StartRouter, not_ready: Served, record: dict
) -> None:
    # Also when the challenger could not serve either: the client sees why nothing answered.
    router = start_router(not_ready.url, dead_url())
    with httpx.Client(base_url=router.url) as client:
        answer = client.post("/predict", json={"features": record})
        metrics = client.get("/metrics").text
    assert (answer.status_code, answer.json()["error"]) == (503, "model_not_ready")
    assert metric(metrics, FALLBACKS + '{reason="unreachable"}') == 1


def test_sigterm_drains_with_connection_close_then_stops(
    start_server, champion: Served, record: dict
) -> None:
    """What a pod behind a Service does on SIGTERM (DRIFTLINE_DRAIN_SECONDS, set by the
    operator): answer on, closing keep-alive connections, and stop when the drain ends."""
    env = {"DRIFTLINE_DRAIN_SECONDS": "2"}
    router = start_server("router", "--champion", champion.url, env=env, ready="/ready")
    body = {"features": record}
    with httpx.Client(base_url=router.url) as client:
        before = client.post("/predict", json=body)
        assert before.status_code == 200 and before.headers.get("connection") != "close"
        router.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        time.sleep(0.5)
        during = client.post("/predict", json=body)
        assert during.status_code == 200, during.text
        assert during.headers["connection"] == "close"
    # uvicorn re-raises the signal it caught once it has shut down: "killed by SIGTERM".
    assert router.process.wait(timeout=15) == -signal.SIGTERM, router.output()
    assert 1.5 <= time.monotonic() - started < 10


def router_counts(router: Served) -> dict[str, Counts]:
    """The router's per-variant counters, read as the operator's scrape reads them."""
    return parse_router_metrics(http_get(router.url + "/metrics", 5.0))


def analysed_window(
    router: Served, before: dict[str, Counts], gates: Analysis
) -> tuple[dict[str, VariantWindow], AnalysisResult]:
    counts = difference({"router": router_counts(router)}, {"router": before})
    variants = {variant: VariantWindow.of(c) for variant, c in counts.items()}
    return variants, analyse(gates, TrafficWindow(1.0, variants), "now")


def failed_gates(result: AnalysisResult) -> set[str]:
    return {gate.name for gate in result.gates or [] if gate.verdict == "Failed"}


def test_the_routers_figures_catch_a_failing_then_a_slow_challenger(
    start_router: StartRouter, champion: Served, fake: FakeUpstream, record: dict
) -> None:
    """Rollout analysis on what a real router counted: errors by variant, then p95 latency."""
    fake.fail_every = 5  # a FAKE challenger answering 500 to every fifth request
    router = start_router(champion.url, fake.url, split_bps=5000)
    gates = Analysis(min_requests=40, max_latency_p95_ms=100, max_latency_p95_increase_ms=50)
    before = router_counts(router)
    with httpx.Client(base_url=router.url) as client:
        answers = [
            client.post("/predict", json={"features": record, "request_id": f"f-{n}"})
            for n in range(200)
        ]
    variants, result = analysed_window(router, before, gates)
    challenger, champion_seen = variants["challenger"], variants["champion"]
    # The challenger's own 500s go back to the client, and its error rate shows them.
    assert challenger.errors == sum(a.status_code == 500 for a in answers) == fake.requests // 5
    assert challenger.requests == fake.requests > 40
    assert champion_seen.requests == 200 - challenger.requests and champion_seen.errors == 0
    assert failed_gates(result) == {"errorRate", "errorRateIncrease"}, result
    # Healthy again but slow: the p95 latency gates catch it, not the error ones.
    fake.fail_every, fake.delay = 0, 0.15
    before = router_counts(router)
    with httpx.Client(base_url=router.url, timeout=5) as client:
        for n in range(120):
            client.post("/predict", json={"features": record, "request_id": f"s-{n}"})
    variants, result = analysed_window(router, before, gates)
    p95 = variants["challenger"].latency_p95_ms
    assert p95 is not None and 150 <= p95 <= 250, variants
    assert variants["challenger"].errors == 0
    assert failed_gates(result) == {"latencyP95Ms", "latencyP95IncreaseMs"}, result


def test_the_inference_log_shows_a_challenger_whose_probabilities_shifted(
    driftline_module, start_server, champion_run: dict, adult: pd.DataFrame, tmp_path: Path
) -> None:
    """Two real inference servers behind a real router, both logging to one SQLite inference
    log: a challenger trained on labels where half the negatives were flipped to positive
    predicts much higher probabilities on the same traffic, and the behaviour gates read from
    the log name it. (Every row is kept, so the challenger's feature ranges stay Adult's.)"""
    skewed = adult.copy()
    flipped = skewed[skewed["income"] == 0].sample(frac=0.5, random_state=0).index
    skewed.loc[flipped, "income"] = 1
    data = tmp_path / "skewed.csv"
    skewed.to_csv(data, index=False)
    trained = driftline_module(
        "train", "--data", str(data), "--seed", "3", "--folds", "2",
        "--register", "adult-skewed", "--json",
    )  # fmt: skip
    assert trained.code == 0, trained.stderr
    store = f"sqlite:///{tmp_path / 'log.db'}"
    since = datetime.now(UTC) - timedelta(seconds=1)
    champion = start_server("serve", "--log-store", store, "--variant", "champion")
    challenger = start_server(
        "serve", "--model", "adult-skewed", "--version", trained.json["version"],
        "--log-store", store, "--variant", "challenger",
    )  # fmt: skip
    router = start_server(
        "router", "--champion", champion.url, "--challenger", challenger.url,
        "--split-bps", "5000", ready="/ready",
    )  # fmt: skip
    with httpx.Client(base_url=router.url) as client:
        for n, record in enumerate(rows(adult, 1600, seed=5)):
            answer = client.post("/predict", json={"features": record, "request_id": f"b{n}"})
            assert answer.status_code == 200, answer.text
    log = PredictionLog(store)

    def logged() -> tuple[Predictions, Predictions] | None:
        now = datetime.now(UTC)
        ours = log.predictions("adult-skewed", trained.json["version"], since, now)
        theirs = log.predictions("adult-income", str(champion_run["version"]), since, now)
        return (theirs, ours) if ours.count + theirs.count == 1600 else None

    theirs, ours = wait_for(logged, 30, "the servers did not log every prediction")
    assert 600 < ours.count < 1000
    gates = Analysis(min_requests=100)
    shifted = {g.name: g for g in behaviour_gates(gates, theirs, ours)}
    failed = {name for name, gate in shifted.items() if gate.verdict == "Failed"}
    assert failed == {"predictionPsi", "predictionKs", "positiveRateDifference"}, shifted
    assert float(np.mean(ours.probabilities)) > float(np.mean(theirs.probabilities)) + 0.05
    # The control: the champion's own predictions, split in two, predict alike.
    half = theirs.count // 2
    first = Predictions(theirs.probabilities[:half], theirs.decisions[:half])
    second = Predictions(theirs.probabilities[half:], theirs.decisions[half:])
    alike = behaviour_gates(gates, first, second)
    assert {g.verdict for g in alike} == {"Passed"}, alike


def test_shadow_copies_are_logged_paired_and_never_waited_for(
    start_server, fake: FakeUpstream, adult: pd.DataFrame, tmp_path: Path
) -> None:
    """Shadow 100%, split 0: every answer is the champion's; the challenger (a second real
    server) logs each copy as variant shadow under the same request id; a challenger that
    hangs costs the champion path nothing."""
    store = f"sqlite:///{tmp_path / 'log.db'}"
    since = datetime.now(UTC) - timedelta(seconds=1)
    champion = start_server("serve", "--log-store", store, "--variant", "champion")
    challenger = start_server("serve", "--log-store", store, "--variant", "challenger")
    router = start_server(
        "router", "--champion", champion.url, "--challenger", challenger.url,
        "--shadow-bps", "10000", ready="/ready",
    )  # fmt: skip
    records = rows(adult, 300, seed=9)
    with httpx.Client(base_url=router.url) as client:
        answers = [
            client.post("/predict", json={"features": r, "request_id": f"s{n}"})
            for n, r in enumerate(records)
        ]
        assert {a.json()["variant"] for a in answers} == {"champion"}
    log = PredictionLog(store)

    def both_logged() -> tuple[Predictions, Predictions] | None:
        now = datetime.now(UTC)
        theirs = log.predictions("adult-income", answers[0].json()["version"], since, now)
        # Both servers serve the same version: the shadow rows are the challenger's. Each server
        # flushes its own buffer (and retries a write SQLite's lock refused): wait for both.
        if theirs.shadow is None or int(theirs.shadow.sum()) < len(records):
            return None
        if theirs.count - int(theirs.shadow.sum()) < len(records):
            return None
        shadow = theirs.shadow
        mine = [i for i in range(theirs.count) if not shadow[i]]
        own = [i for i in range(theirs.count) if shadow[i]]
        ids = theirs.request_ids
        return (
            Predictions(theirs.probabilities[mine], theirs.decisions[mine],
                        tuple(ids[i] for i in mine), np.zeros(len(mine), dtype=bool)),
            Predictions(theirs.probabilities[own], theirs.decisions[own],
                        tuple(ids[i] for i in own), np.ones(len(own), dtype=bool)),
        )  # fmt: skip

    champion_rows, shadow_rows = wait_for(both_logged, 30, "the shadow copies were not logged")
    assert sorted(shadow_rows.request_ids) == sorted(f"s{n}" for n in range(len(records)))
    paired = {
        g.name: g for g in shadow_gates(Analysis(min_requests=100), champion_rows, shadow_rows)
    }
    assert paired["shadowAgreement"].value == 1.0 and paired["shadowAgreement"].verdict == "Passed"
    assert paired["shadowProbabilityDifference"].value == 0.0
    counted = httpx.get(router.url + "/metrics").text
    answered = 'driftline_router_shadow_requests_total{outcome="answered"}'
    assert metric(counted, answered) == len(records)
    # A challenger that never answers: the champion path does not wait for the copies.
    fake.behaviour = "hang"
    hanging = start_server(
        "router", "--champion", champion.url, "--challenger", fake.url, "--shadow-bps", "10000",
        env={"DRIFTLINE_ROUTER_UPSTREAM_TIMEOUT_SECONDS": "30"}, ready="/ready",
    )  # fmt: skip
    started = time.monotonic()
    with httpx.Client(base_url=hanging.url, timeout=60) as client:
        codes = [
            client.post(
                "/predict", json={"features": records[n], "request_id": f"h{n}"}
            ).status_code
            for n in range(20)
        ]
    assert codes == [200] * 20
    # Twenty answers while every copy hangs for the 30 s timeout: nothing waited on them.
    assert time.monotonic() - started < 15
    assert fake.requests >= 1
