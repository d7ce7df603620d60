from driftline_serving.settings import ServingSettings


def test_serving_settings_take_a_tracking_uri_from_the_caller(monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DRIFTLINE_TRACKING_URI", raising=False)
    # `driftline serve --tracking-uri` passes it by name: it used to be dropped silently.
    assert ServingSettings(tracking_uri="http://mlflow:5000").tracking_uri == "http://mlflow:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-env:5000")
    assert ServingSettings().tracking_uri == "http://from-env:5000"
