from driftline_serving.settings import ServingSettings


def test_serving_settings_take_a_tracking_uri_from_the_caller(monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DRIFTLINE_TRACKING_URI", raising=False)
    # `driftline serve --tracking-uri` passes it by name: it used to be dropped silently.
    assert ServingSettings(tracking_uri="http://mlflow:5000").tracking_uri == "http://mlflow:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    assert ServingSettings().tracking_uri == "http://from-env:5000"


def test_mlflow_calls_are_bounded_by_default_and_configurable(monkeypatch) -> None:
    for name in ("TIMEOUT", "MAX_RETRIES", "BACKOFF_FACTOR"):
        monkeypatch.delenv(f"MLFLOW_HTTP_REQUEST_{name}", raising=False)
    # MLflow's own defaults (7 retries, factor 2, 120 s) took four minutes on a refused port.
    assert ServingSettings().mlflow_environment() == {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    }
    monkeypatch.setenv("DRIFTLINE_MLFLOW_HTTP_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    bounded = ServingSettings().mlflow_environment()
    assert bounded["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert bounded["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
