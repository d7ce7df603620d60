"""Ground truth end to end: labels posted through the router (and loaded from files) land once
in SQLite and PostgreSQL, and the performance check scores them as scikit-learn does."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest
import sqlalchemy as sa
from mlflow import MlflowClient
from sklearn import metrics

from driftline.inference_log import FEEDBACK, count_rows, engine_for
from tests.integration.conftest import Served
from tests.integration.postgres import PostgresServer
from tests.integration.serving_helpers import metric
from tests.processes import wait_for

pytestmark = pytest.mark.integration
MODEL = "adult-income"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, postgres: PostgresServer, tmp_path_factory) -> str:
    """A fresh inference log: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('feedback') / 'log.db'}"
    return postgres.fresh_database("feedback_test")


@pytest.fixture(scope="module")
def served(start_server, store: str) -> tuple[Served, Served]:
    """Two inference servers on one store (two writers) and a router in front of the first."""
    env = {"DRIFTLINE_MAX_FEEDBACK": "500"}
    first = start_server("serve", "--log-store", store, env=env)
    second = start_server("serve", "--log-store", store, env=env)
    router = start_server("router", "--champion", first.url, ready="/health")
    return router, second


@pytest.fixture(scope="module")
def answered(served, store: str, adult: pd.DataFrame) -> pd.DataFrame:
    """300 Adult rows predicted through the router, with their true labels and the answers."""
    router, _ = served
    sample = adult.sample(300, random_state=11).reset_index(drop=True)
    features = json.loads(sample.drop(columns=["income"]).to_json(orient="records"))
    records = [{"features": f, "request_id": f"fb-{i}"} for i, f in enumerate(features)]
    with httpx.Client(base_url=router.url, timeout=30) as client:
        answer = client.post("/predict/batch", json={"records": records})
    assert answer.status_code == 200, answer.text
    predictions = pd.DataFrame(answer.json()["predictions"])
    predictions["label"] = sample["income"].astype(int)
    # Labels come after the rows are written (within a flush interval); a label for an id not
    # yet written is refused like a typo, which a test further down shows.
    engine = engine_for(store)
    wait_for(lambda: count_rows(engine, MODEL) == 300, 30, "predictions not logged")
    engine.dispose()
    return predictions


def _feedback(store: str) -> pd.DataFrame:
    engine = engine_for(store)
    with engine.connect() as connection:
        frame = pd.read_sql(sa.select(FEEDBACK), connection)
    engine.dispose()
    return frame


@pytest.fixture(scope="module")
def all_labelled(served, answered: pd.DataFrame, store: str) -> list[dict]:
    """Every one of the 300 requests given its true label (once more), written."""
    router, _ = served
    labels = _labels(answered, slice(0, 300))
    assert httpx.post(router.url + "/feedback", json={"labels": labels}).status_code == 202
    wait_for(
        lambda: len(_feedback(store)) == 300 and _labels_match(store, labels),
        30,
        "labels not written",
    )
    return labels


def _labels_match(store: str, labels: list[dict]) -> bool:
    table = _feedback(store).set_index("request_id")["label"]
    return all(table.get(item["request_id"]) == item["label"] for item in labels)


def _labels(answered: pd.DataFrame, rows: slice) -> list[dict]:
    part = answered.iloc[rows]
    return [
        {"request_id": r, "label": int(y)}
        for r, y in zip(part["request_id"], part["label"], strict=True)
    ]


def test_labels_through_the_router_land_once_and_repeats_are_counted(
    served, answered, store
) -> None:
    router, _ = served
    labels = _labels(answered, slice(0, 200))
    with httpx.Client(base_url=router.url, timeout=30) as client:
        single = client.post("/feedback", json=labels[0])
        assert single.status_code == 202, single.text
        assert single.json() == {"accepted": 1, "unsampled": 0}
        batch = client.post("/feedback", json={"labels": labels})
        assert (batch.status_code, batch.json()) == (202, {"accepted": 200, "unsampled": 0})
        # The same batch again, with one label corrected: still one row a request.
        labels[5] = {**labels[5], "label": 1 - labels[5]["label"]}
        assert client.post("/feedback", json={"labels": labels}).status_code == 202
    wait_for(lambda: _feedback(store)["deliveries"].sum() == 401, 30, "repeats not all counted")
    table = _feedback(store).set_index("request_id")
    assert len(table) == 200
    assert table.loc[labels[0]["request_id"], "deliveries"] == 3
    assert table.loc[labels[7]["request_id"], "deliveries"] == 2
    assert table.loc[labels[5]["request_id"], "label"] == labels[5]["label"]
    assert (table["arrived"] <= table["updated"]).all()


def test_racing_writers_keep_one_row_a_request(served, answered, store) -> None:
    router, second = served
    labels = _labels(answered, slice(200, 300))
    outcomes: list[int] = []

    def post(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(5):
                outcomes.append(client.post("/feedback", json={"labels": labels}).status_code)

    threads = [threading.Thread(target=post, args=(url,)) for url in (router.url, second.url) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [202] * 20
    ids = [label["request_id"] for label in labels]

    def raced() -> pd.DataFrame:
        table = _feedback(store)
        return table[table["request_id"].isin(ids)]

    wait_for(lambda: raced()["deliveries"].sum() == 2000, 60, "racing deliveries not all counted")
    raced_rows = raced()
    assert len(raced_rows) == 100
    assert (raced_rows["deliveries"] == 20).all()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"request_id": "never-served", "label": 1}, 422, "request_id"),
        ({"labels": [{"request_id": "fb-1", "label": 0}, {"request_id": "nope", "label": 1}]},
         422, "labels[1].request_id"),
        ({"request_id": "fb-1", "label": 2}, 422, "label"),
        ({"request_id": "fb-1", "label": True}, 422, "label"),
        ({"request_id": "fb-1"}, 422, "label"),
        ({"label": 1}, 422, "request_id"),
        ({"request_id": "fb 1", "label": 1}, 422, "request_id"),
        ({"request_id": "fb-1", "label": 1, "extra": 1}, 422, "extra"),
        ({"labels": []}, 422, "labels"),
        ({"labels": [{"request_id": "fb-1", "label": 1}] * 501}, 422, "labels"),
        ([1, 2], 422, "body"),
    ],
)  # fmt: skip
def test_bad_feedback_is_a_4xx_naming_the_field(served, answered, body, status, field) -> None:
    router, second = served
    for url in (router.url, second.url):
        answer = httpx.post(url + "/feedback", json=body, timeout=30)
        assert answer.status_code == status, answer.text
        assert answer.json()["field"] == field


def test_malformed_and_oversized_feedback(served) -> None:
    router, _ = served
    assert httpx.post(router.url + "/feedback", content=b"{nope").status_code == 400
    huge = b'{"labels": [' + b'{"request_id": "fb-1", "label": 1},' * 40_000 + b"]}"
    assert httpx.post(router.url + "/feedback", content=huge).status_code == 413


def test_feedback_does_not_count_as_prediction_traffic(served, answered) -> None:
    router, _ = served
    before = metric(httpx.get(router.url + "/metrics").text, "driftline_router_upstream_requests")
    httpx.post(router.url + "/feedback", json=_labels(answered, slice(0, 1))[0])
    after = metric(httpx.get(router.url + "/metrics").text, "driftline_router_upstream_requests")
    assert after == before


@pytest.mark.usefixtures("all_labelled")
def test_performance_check_equals_scikit_learn_on_the_joined_rows(
    answered, store, driftline_module
) -> None:
    result = driftline_module(
        "performance-check", "--log-store", store, "--min-labels", "100", "--json"
    )
    assert result.code == 0, result.stderr
    (group,) = result.json["groups"]
    assert (group["served"], group["labelled"], group["status"]) == (300, 300, "ok")
    # What the clients saw, scored by scikit-learn: independent of the store's join.
    y, p, yhat = answered["label"], answered["probability"], answered["prediction"]
    expected = {
        "roc_auc": metrics.roc_auc_score(y, p),
        "accuracy": metrics.accuracy_score(y, yhat),
        "f1": metrics.f1_score(y, yhat),
        "log_loss": metrics.log_loss(y, p),
        "brier": metrics.brier_score_loss(y, p),
        "average_precision": metrics.average_precision_score(y, p),
    }
    for name, value in expected.items():
        assert group["realised"][name]["value"] == pytest.approx(value, abs=1e-9), name
    assert group["label_delay_seconds"]["p50"] > 0


def test_a_labels_file_loads_known_ids_and_names_the_unknown(
    served, answered, store, driftline_module, tmp_path: Path
) -> None:
    labels = pd.DataFrame([*_labels(answered, slice(0, 3)), {"request_id": "ghost", "label": 0}])
    path = tmp_path / "labels.csv"
    labels.to_csv(path, index=False)
    before = _feedback(store).set_index("request_id")["deliveries"]
    result = driftline_module("feedback", "--file", str(path), "--log-store", store)
    assert result.code == 4
    assert "1 request id(s)" in result.stderr and "ghost" in result.stderr
    after = _feedback(store).set_index("request_id")["deliveries"]
    assert "ghost" not in after.index
    for request_id in labels["request_id"][:3]:
        assert after[request_id] == before[request_id] + 1


def test_labels_file_errors_are_one_line_with_their_exit_code(
    driftline_module, store, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("request_id,label\nfb-1,1\nfb-2,yes\n")
    result = driftline_module("feedback", "--file", str(bad), "--log-store", store)
    assert result.code == 4
    assert "line 3: label 'yes' is not 0 or 1" in result.stderr
    missing = driftline_module("feedback", "--file", str(tmp_path / "no.csv"), "--log-store", store)
    assert missing.code == 3
    nowhere = f"sqlite:///{tmp_path / 'absent.db'}"
    bad.write_text("request_id,label\nfb-1,1\n")
    result = driftline_module("feedback", "--file", str(bad), "--log-store", nowhere)
    assert result.code == 8
    assert "not found" in result.stderr
    result = driftline_module("performance-check", "--log-store", nowhere)
    assert result.code == 8


def test_store_down_gives_503_to_retry_on(start_server) -> None:
    store = PostgresServer()
    try:
        store.start()
        served = start_server("serve", "--log-store", store.url)
        store.stop()
        answer = httpx.post(served.url + "/feedback", json={"request_id": "x", "label": 1})
        assert answer.status_code == 503
        assert answer.json()["error"] == "store_unavailable"
    finally:
        store.remove()


@pytest.mark.usefixtures("all_labelled")
def test_true_labels_pass_the_performance_rule(
    answered, store, driftline_module, tmp_path: Path
) -> None:
    rule = '{"floor": 0.8, "maxDrop": 0.1, "minLabels": 200, "lookbackSeconds": 3600}'
    result = driftline_module(
        "drift-check", "--log-store", store, "--lookback", "1h", "--performance", rule,
        "--output-dir", str(tmp_path / "report"), "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    judged = result.json["performance"]
    assert judged["status"] == "ok", judged
    assert judged["labelled"] == 300 and judged["low"] < judged["value"] < judged["high"]
    # The limit is the higher of the floor and the training test score minus maxDrop.
    assert judged["limit"] == max(0.8, round(judged["reference"] - 0.1, 4))
    report = json.loads(Path(result.json["report"]["json"]).read_text())
    assert report["performance"]["status"] == "ok"
    assert "<h2>Performance</h2>" in Path(result.json["report"]["html"]).read_text()


def test_a_label_flipped_window_breaches_the_performance_rule(
    start_server, driftline_module, adult: pd.DataFrame, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'flipped.db'}"
    served = start_server("serve", "--log-store", store)
    sample = adult.sample(400, random_state=23).reset_index(drop=True)
    features = json.loads(sample.drop(columns=["income"]).to_json(orient="records"))
    records = [{"features": f, "request_id": f"flip-{i}"} for i, f in enumerate(features)]
    answer = httpx.post(served.url + "/predict/batch", json={"records": records}, timeout=30)
    assert answer.status_code == 200, answer.text
    engine = engine_for(store)
    wait_for(lambda: count_rows(engine, MODEL) == 400, 30, "predictions not logged")
    flipped = [
        {"request_id": f"flip-{i}", "label": 1 - int(y)} for i, y in enumerate(sample["income"])
    ]
    assert httpx.post(served.url + "/feedback", json={"labels": flipped}).status_code == 202
    wait_for(lambda: len(_feedback(store)) == 400, 30, "labels not written")
    rule = '{"metric": "roc_auc", "floor": 0.8, "minLabels": 200}'
    result = driftline_module("drift-check", "--log-store", store, "--performance", rule, "--json")
    assert result.code == 0, result.stderr
    judged = result.json["performance"]
    assert judged["status"] == "breach" and judged["breached"] is True, judged
    assert judged["high"] < 0.8
    (variant,) = judged["variants"]
    # CBPE does not see the flip: the probabilities look as good as ever.
    assert variant["roc_auc_estimated"] > 0.8 > variant["roc_auc"]
    files = driftline_module(
        "drift-check", "--reference", "a.csv", "--current", "b.csv", "--performance", rule
    )
    assert files.code == 2 and "--performance needs live mode" in files.stderr
    bad = driftline_module("drift-check", "--log-store", store, "--performance", '{"metric": "f1"}')
    assert bad.code == 2 and "floor, maxDrop" in bad.stderr


def test_retraining_on_recent_labels_holds_the_newest_out_and_promotion_pairs(
    all_labelled, answered, store, driftline_module, mlflow_server
) -> None:
    labels = all_labelled
    result = driftline_module(
        "train", "--no-register", "--folds", "2", "--recent-log-store", store,
        "--recent-lookback", "1h", "--recent-holdout", "0.3", "--recent-min-labels", "100",
        "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    trained = result.json
    assert (trained["recent"]["train_rows"], trained["recent"]["holdout_rows"]) == (210, 90)
    comparison = trained["comparison"]["datasets"]
    assert comparison["recent"]["rows"] == 90
    auc = comparison["recent"]["metrics"]["roc_auc"]
    assert auc["low"] <= auc["difference"] <= auc["high"]
    assert comparison["test"]["rows"] > 9000

    run = trained["run_id"]
    client = MlflowClient(mlflow_server.uri)
    mlflow.set_tracking_uri(mlflow_server.uri)
    document = json.loads(mlflow.artifacts.load_text(f"runs:/{run}/driftline/recent_data.json"))
    train_ids, holdout_ids = document["train_request_ids"], document["holdout_request_ids"]
    assert not set(train_ids) & set(holdout_ids)
    assert set(train_ids) | set(holdout_ids) == {label["request_id"] for label in labels}
    # The holdout is the newest traffic: every held-out request was served after every
    # trained-on one (ids served in one batch share a time; the log keeps their order).
    served_order = list(answered["request_id"])
    assert max(served_order.index(i) for i in train_ids) < min(
        served_order.index(i) for i in holdout_ids
    )
    data = client.get_run(run).data
    assert data.params["rows_recent_train"] == "210"
    assert data.tags["driftline.paired_champion"] == trained["comparison"]["champion"]

    registered = driftline_module("register", MODEL, "--run-id", run, "--json")
    assert registered.code == 0, registered.stderr
    refused = driftline_module(
        "promote", MODEL, "--version", registered.json["version"], "--min-delta", "0.5"
    )
    assert refused.code != 0
    assert "paired on 90 recent rows" in refused.stderr and "95% interval" in refused.stderr
