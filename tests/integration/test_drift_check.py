"""drift-check and retrain-if-drifted through the real CLI, a real MLflow server and a real log.

A model is trained and made champion of its own registered model; its ONNX graph scores Adult
rows that are written to SQLite inference logs (normal traffic, drifted traffic) with
``driftline.inference_log.insert_batch``, exactly as serving writes them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from driftline.coercion import to_model_frame
from driftline.drift_report import DriftReport
from driftline.inference_log import LogRecord, create_schema, engine_for, insert_batch
from driftline.registry import ModelRegistry
from driftline.schema import FeatureSchema
from driftline_training.onnx_export import onnx_probabilities, onnx_session
from tests.processes import free_port

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class DriftModel:
    name: str
    version: str
    folder: Path
    schema: FeatureSchema

    def probabilities(self, rows: pd.DataFrame):
        session = onnx_session((self.folder / "model.onnx").read_bytes())
        return onnx_probabilities(session, to_model_frame(rows, self.schema), self.schema)


@pytest.fixture(scope="module")
def drift_model(driftline_module, mlflow_server, tmp_path_factory) -> DriftModel:
    name = f"drift-{uuid.uuid4().hex[:8]}"
    trained = driftline_module(
        "train", "--register", name, "--alias", "champion", "--folds", "2", "--json"
    )
    assert trained.code == 0, trained.stderr
    folder = Path(
        download_artifacts(
            run_id=trained.json["run_id"],
            artifact_path="driftline",
            dst_path=str(tmp_path_factory.mktemp("artifacts")),
            tracking_uri=mlflow_server.uri,
        )
    )
    schema = FeatureSchema.from_json((folder / "feature_schema.json").read_text())
    return DriftModel(name, trained.json["version"], folder, schema)


def write_log(path: Path, model: DriftModel, rows: pd.DataFrame) -> str:
    """Log ``rows`` as the champion's traffic of the last ten minutes; the store's URL."""
    url = f"sqlite:///{path}"
    engine = engine_for(url)
    create_schema(engine)
    probabilities = model.probabilities(rows)
    features = json.loads(rows[model.schema.names].to_json(orient="records"))
    now = time.time()
    records = [
        LogRecord(
            ts=now - 600 + i * 0.1,
            model=model.name,
            version=model.version,
            variant="champion",
            request_id=f"req-{i}",
            features=row,
            prediction=int(p >= 0.5),
            probability=float(p),
            latency_ms=1.0,
        )
        for i, (row, p) in enumerate(zip(features, probabilities, strict=True))
    ]
    insert_batch(engine, records)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def stores(drift_model, adult: pd.DataFrame, tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("logs")
    young = adult[adult["age"].between(20, 29)]
    return {
        "normal": write_log(folder / "normal.db", drift_model, adult.sample(2000, random_state=21)),
        "drifted": write_log(
            folder / "drifted.db", drift_model, young.sample(2000, random_state=22)
        ),
    }


def assert_one_line_error(result, code: int, text: str) -> None:
    assert result.code == code, (result.code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("driftline: error: "), result.stderr
    assert text in lines[0]


def test_live_check_on_normal_traffic_finds_no_drift_and_logs_the_run(
    driftline_module, drift_model, stores, mlflow_server, tmp_path: Path
) -> None:
    result = driftline_module(
        "drift-check", "--model", drift_model.name, "--log-store", stores["normal"],
        "--lookback", "1h", "--json", "--output-dir", str(tmp_path),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    summary = result.json
    assert (summary["status"], summary["drifted"]) == ("no_drift", False), summary["reason"]
    assert summary["samples"]["current"] == 2000
    assert summary["samples"]["reference"] > 30_000
    assert len(summary["features"]) == 14 and summary["features_omitted"] == 0
    assert summary["prediction"]["checked"] and summary["prediction"]["drifted"] is False
    report = DriftReport.model_validate_json((tmp_path / "report.json").read_text())
    assert report.source["version"] == drift_model.version
    assert report.source["mode"] == "live"
    assert "<!doctype html>" in (tmp_path / "report.html").read_text()

    client = MlflowClient(mlflow_server.uri)
    run = client.get_run(summary["report"]["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == "driftline-drift"
    assert run.data.metrics["drifted"] == 0.0
    assert run.data.metrics["psi_age"] == pytest.approx(
        next(f.psi for f in report.features if f.name == "age")
    )
    assert {"report.json", "report.html"} <= {
        a.path for a in client.list_artifacts(run.info.run_id)
    }


def test_live_check_on_drifted_traffic_names_the_culprits(
    driftline_module, drift_model, stores, tmp_path: Path
) -> None:
    termination = tmp_path / "termination-log"
    result = driftline_module(
        "drift-check", "--model", drift_model.name, "--version", drift_model.version,
        "--log-store", stores["drifted"], "--last", "2000", "--json",
        "--output-dir", str(tmp_path / "report"), "--termination-log", str(termination),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    summary = result.json
    assert summary["drifted"] is True and summary["status"] == "drift"
    assert summary["features"][0]["name"] == "age" and summary["features"][0]["drifted"]
    assert {"age", "marital_status"} <= {f["name"] for f in summary["features"] if f["drifted"]}
    assert summary["prediction"]["drifted"] is True
    written = termination.read_bytes()
    assert len(written) <= 4096
    assert json.loads(written) == {k: v for k, v in summary.items() if k != "report"}

    few = driftline_module(
        "drift-check", "--model", drift_model.name, "--log-store", stores["drifted"],
        "--last", "100", "--json", "--output-dir", str(tmp_path / "few"),
    )  # fmt: skip
    assert few.code == 0, few.stderr
    assert few.json["status"] == "insufficient_data" and few.json["drifted"] is None
    assert few.json["reason"] == "insufficient data: current has 100 rows < min_samples 500"


def test_files_mode_with_and_without_a_model(
    driftline_module, drift_model, adult: pd.DataFrame, tmp_path: Path
) -> None:
    reference = adult.iloc[:20_000].assign(score=drift_model.probabilities(adult.iloc[:20_000]))
    young = adult[adult["age"] < 30].iloc[:3000]
    current = young.assign(score=drift_model.probabilities(young))
    reference.to_csv(tmp_path / "reference.csv", index=False)
    current.to_parquet(tmp_path / "current.parquet")
    common = ["--reference", str(tmp_path / "reference.csv"), "--current"]
    scored = driftline_module(
        "drift-check", *common, str(tmp_path / "current.parquet"),
        "--schema", str(drift_model.folder / "feature_schema.json"),
        "--prediction-column", "score", "--json", "--output-dir", str(tmp_path / "a"),
    )  # fmt: skip
    assert scored.code == 0, scored.stderr
    assert scored.json["drifted"] and scored.json["features"][0]["name"] == "age"
    assert scored.json["prediction"]["checked"] and scored.json["prediction"]["drifted"]
    assert scored.json["samples"] == {"reference": 20_000, "current": 3000}
    # The fixture's server is configured, so files mode logs to MLflow too.
    assert scored.json["report"]["mlflow_run_id"]

    same = driftline_module(
        "drift-check", *common, str(tmp_path / "reference.csv"), "--target", "income",
        "--json", "--output-dir", str(tmp_path / "b"),
    )  # fmt: skip
    assert same.code == 0, same.stderr
    names = {f["name"] for f in same.json["features"]}
    # Types inferred from the reference; the target is left out, the score column is a feature.
    assert "income" not in names and "score" in names and len(names) == 15
    assert same.json["drifted"] is False
    assert not same.json["prediction"]["checked"]
    assert "no model" in same.json["prediction"]["note"]


def test_errors_are_one_line_with_an_exit_code(
    driftline_module, drift_model, stores, tmp_path: Path
) -> None:
    bad_schema = tmp_path / "schema.json"
    bad_schema.write_text("{}")
    empty_store = tmp_path / "empty.db"
    empty_store.touch()
    live = ["drift-check", "--model", drift_model.name, "--log-store"]
    cases = [
        (["drift-check", "--reference", str(tmp_path / "absent.csv"), "--current", "x.csv"],
         3, f"data file not found: {tmp_path / 'absent.csv'}"),
        (["drift-check", "--reference", str(bad_schema), "--current", str(bad_schema)],
         3, "unsupported data file type '.json'"),
        (["drift-check", "--model", "no-such-model", "--log-store", stores["normal"]],
         6, "no registered model 'no-such-model'"),
        ([*live, stores["normal"], "--version", "99"], 6, "has no version '99'"),
        ([*live, f"sqlite:///{tmp_path / 'absent.db'}"], 8, "inference log store not found"),
        ([*live, f"sqlite:///{empty_store}"], 8, "no such table"),
        ([*live, f"postgresql://driftline@127.0.0.1:{free_port()}/log"],
         8, "cannot read the inference log at postgresql://driftline@127.0.0.1"),
        ([*live, stores["normal"], "--reference", "a.csv"], 2, "not both"),
        ([*live, stores["normal"], "--lookback", "soon"], 2, "not a positive duration"),
        ([*live, stores["normal"], "--p-value", "2"], 2, "--p-value: Input should be less than 1"),
        (["drift-check"], 2, "--log-store (live mode)"),
    ]  # fmt: skip
    for args, code, text in cases:
        assert_one_line_error(driftline_module(*args), code, text)


def test_schema_file_errors_name_the_file(driftline_module, tmp_path: Path, adult) -> None:
    adult.iloc[:1000].to_csv(tmp_path / "a.csv", index=False)
    bad = tmp_path / "schema.json"
    bad.write_text('{"features": 3}')
    result = driftline_module(
        "drift-check", "--reference", str(tmp_path / "a.csv"), "--current",
        str(tmp_path / "a.csv"), "--schema", str(bad),
    )  # fmt: skip
    assert_one_line_error(result, 3, f"cannot read the schema {bad}")
    text = tmp_path / "text.csv"
    adult.iloc[:1000].assign(age="old").to_csv(text, index=False)
    mismatch = driftline_module(
        "drift-check", "--reference", str(tmp_path / "a.csv"), "--current", str(text)
    )
    assert_one_line_error(mismatch, 4, "current data: age: 'old' (row 0) is not a number")


def test_retrain_if_drifted_registers_a_challenger_only_on_drift(
    driftline_module, drift_model, stores, mlflow_server, tmp_path: Path
) -> None:
    window = ["--model", drift_model.name, "--lookback", "1h", "--folds", "2", "--json"]
    calm = driftline_module(
        "retrain-if-drifted", *window, "--log-store", stores["normal"],
        "--output-dir", str(tmp_path / "calm"),
    )  # fmt: skip
    assert calm.code == 0, calm.stderr
    assert calm.json["retrained"] is False and calm.json["drift"]["drifted"] is False

    termination = tmp_path / "termination-log"
    result = driftline_module(
        "retrain-if-drifted", *window, "--log-store", stores["drifted"],
        "--output-dir", str(tmp_path / "drift"), "--termination-log", str(termination),
    )  # fmt: skip
    assert result.code == 0, result.stderr
    out = result.json
    assert out["drift"]["drifted"] is True and out["retrained"] is True
    assert out["alias"] == "challenger" and out["model_name"] == drift_model.name
    assert out["metrics"]["roc_auc"] > 0.9
    registry = ModelRegistry(MlflowClient(mlflow_server.uri, mlflow_server.uri))
    assert registry.alias_version(drift_model.name, "challenger") == out["version"]
    assert registry.alias_version(drift_model.name, "champion") == drift_model.version
    assert int(out["version"]) > int(drift_model.version)
    brief = json.loads(termination.read_bytes())
    assert len(termination.read_bytes()) <= 4096
    assert brief["retrained"] is True and brief["version"] == out["version"]
