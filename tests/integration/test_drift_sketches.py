"""Drift sketches end to end: real servers count their traffic, the real CLI merges it.

Two inference servers (two pods) share one store, SQLite or PostgreSQL, with two-second
buckets. Their sketches, merged by ``driftline drift-check --read sketch``, must give the PSI,
chi-squared and missing-share results of ``--read rows`` on the same requests exactly, and KS
within the bound the report states. A server logging a quarter of its rows logs exactly the
ids the hash picks, sketches every request, and its feedback path tells an id sampled out
from one never served.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from driftline.inference_log import DRIFT_SKETCH, INFERENCE_LOG, engine_for
from driftline_serving.fetch import fetch
from driftline_serving.split import logged
from tests.integration.postgres import PostgresServer
from tests.processes import wait_for

pytestmark = pytest.mark.integration
MODEL = "adult-income"
SKETCH_ENV = {"DRIFTLINE_SKETCH_BUCKET_SECONDS": "2", "DRIFTLINE_SKETCH_SAMPLE_ROWS": "64"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, postgres: PostgresServer, tmp_path_factory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sketch') / 'log.db'}"
    return postgres.fresh_database("sketch_test")


def _features(adult: pd.DataFrame, n: int, seed: int) -> list[dict]:
    sample = adult.drop(columns=["income"]).sample(n, random_state=seed)
    return json.loads(sample.to_json(orient="records"))


def _sketched_requests(store: str, version: str) -> int:
    engine = engine_for(store)
    try:
        with engine.connect() as connection:
            query = sa.select(sa.func.coalesce(sa.func.sum(DRIFT_SKETCH.c.requests), 0)).where(
                DRIFT_SKETCH.c.version == version
            )
            return int(connection.execute(query).scalar_one())
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def traffic(start_server, store: str, adult: pd.DataFrame) -> str:
    """1,600 Adult requests (half of them people under 30) over two pods and ~6 s."""
    pods = [
        start_server("serve", "--log-store", store, env={**SKETCH_ENV, "DRIFTLINE_POD_NAME": n})
        for n in ("pod-a", "pod-b")
    ]
    version = httpx.get(pods[0].url + "/ready").json()["version"]
    young = adult[adult["age"] < 30]
    features = _features(adult, 800, 1) + _features(young, 800, 2)
    for batch in range(8):
        chunk = features[batch * 200 : (batch + 1) * 200]
        records = [{"features": f, "request_id": f"sk-{batch}-{i}"} for i, f in enumerate(chunk)]
        answer = httpx.post(
            pods[batch % 2].url + "/predict/batch", json={"records": records}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        time.sleep(0.8)
    wait_for(lambda: _sketched_requests(store, version) == 1600, 30, "buckets not written")
    return version


def _check(driftline_module, store: str, version: str, read: str, out: Path) -> dict:
    result = driftline_module(
        "drift-check", "--model", MODEL, "--version", version, "--log-store", store,
        "--lookback", "10m", "--read", read, "--output-dir", str(out), "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    return json.loads((out / "report.json").read_text())


def test_merged_sketches_of_two_pods_equal_the_rows(
    driftline_module, traffic: str, store: str, tmp_path: Path
) -> None:
    rows = _check(driftline_module, store, traffic, "rows", tmp_path / "rows")
    sketch = _check(driftline_module, store, traffic, "sketch", tmp_path / "sketch")
    assert rows["window"]["mode"] == "rows" and sketch["window"]["mode"] == "sketch"
    window = sketch["window"]
    assert window["rows"] == 1600 and window["pods"] == 2 and window["buckets"] >= 4
    assert window["bucket_seconds"] == 2
    assert sketch["samples"] == rows["samples"]
    bound = window["ks_error"]
    assert 0 < bound < 0.2
    for a, b in zip(rows["features"], sketch["features"], strict=True):
        assert a["name"] == b["name"]
        assert b["psi"] == pytest.approx(a["psi"], rel=1e-9)
        if a["test"] == "chi2":
            assert b["statistic"] == pytest.approx(a["statistic"], rel=1e-9)
        else:
            assert abs(b["statistic"] - a["statistic"]) <= bound, a["name"]
    assert sketch["prediction"]["psi"] == pytest.approx(rows["prediction"]["psi"], rel=1e-6)
    # Half the window is people under 30: both reads name age.
    assert "age" in {f["name"] for f in rows["features"] if f["drifted"]}
    assert "age" in {f["name"] for f in sketch["features"] if f["drifted"]}


@pytest.fixture(scope="module")
def sampled(start_server, tmp_path_factory, adult: pd.DataFrame) -> tuple[str, str, list[str]]:
    """A server logging a quarter of its rows, and the 400 ids it answered."""
    store = f"sqlite:///{tmp_path_factory.mktemp('sampled') / 'log.db'}"
    env = {**SKETCH_ENV, "DRIFTLINE_LOG_SAMPLE_RATE": "0.25"}
    pod = start_server("serve", "--log-store", store, env=env)
    ids = [f"s-{i}" for i in range(400)]
    records = [
        {"features": f, "request_id": i} for f, i in zip(_features(adult, 400, 3), ids, strict=True)
    ]
    answer = httpx.post(pod.url + "/predict/batch", json={"records": records}, timeout=30)
    assert answer.status_code == 200, answer.text
    version = answer.json()["predictions"][0]["version"]
    wait_for(lambda: _sketched_requests(store, version) == 400, 30, "buckets not written")
    return pod.url, store, ids


def test_a_sampled_log_holds_exactly_the_hashed_ids_and_sketches_count_all(sampled) -> None:
    _, store, ids = sampled
    engine = engine_for(store)
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(INFERENCE_LOG.c.request_id, INFERENCE_LOG.c.sample_rate)
        ).all()
    engine.dispose()
    expected = {i for i in ids if logged(i, 0.25)}
    assert {r for r, _ in stored} == expected
    assert 60 < len(expected) < 140
    assert {rate for _, rate in stored} == {0.25}


def test_feedback_tells_a_sampled_out_id_from_one_never_served(sampled) -> None:
    url, _, ids = sampled
    kept = next(i for i in ids if logged(i, 0.25))
    left = next(i for i in ids if not logged(i, 0.25))
    never = next(f"x-{n}" for n in range(1000) if logged(f"x-{n}", 0.25))
    body = {"labels": [{"request_id": kept, "label": 1}, {"request_id": left, "label": 0}]}
    answer = httpx.post(url + "/feedback", json=body)
    assert (answer.status_code, answer.json()) == (202, {"accepted": 1, "unsampled": 1})
    unknown = httpx.post(url + "/feedback", json={"request_id": never, "label": 1})
    assert unknown.status_code == 422 and unknown.json()["field"] == "request_id"


def test_auto_reads_sketches_when_rows_were_sampled(driftline_module, sampled, tmp_path) -> None:
    _, store, _ = sampled
    result = driftline_module(
        "drift-check", "--model", MODEL, "--log-store", store, "--lookback", "10m",
        "--output-dir", str(tmp_path), "--json", "--min-samples", "100",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["window"]["mode"] == "sketch" and report["window"]["rows"] == 400
    assert report["source"]["read"] == "sketch"
    rows = driftline_module(
        "drift-check", "--model", MODEL, "--log-store", store, "--lookback", "10m", "--read",
        "rows", "--output-dir", str(tmp_path / "rows"), "--min-samples", "50",
    )  # fmt: skip
    assert rows.code == 0, rows.stderr
    assert "a 25.00% hash sample of the requests" in rows.stdout


@pytest.mark.parametrize("corrupt", ["renamed feature", "not json"])
def test_a_baseline_that_does_not_fit_costs_the_sketches_never_serving(
    start_server, mlflow_server, tmp_path: Path, adult: pd.DataFrame, corrupt: str
) -> None:
    folder = tmp_path / "model"
    fetch(mlflow_server.uri, MODEL, None, "champion", folder)
    baseline = folder / "baseline.json"
    if corrupt == "not json":
        baseline.write_text("{")
    else:
        baseline.write_text(baseline.read_text().replace('"age"', '"years"'))
    pod = start_server("serve", env={"DRIFTLINE_MODEL_DIR": str(folder)})
    records = [{"features": f} for f in _features(adult, 5, 4)]
    answer = httpx.post(pod.url + "/predict/batch", json={"records": records}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert "no drift sketches" in pod.output()
