"""Smoke tests of the three images, built by `make images` (scripts/build-images.sh).

Containers run with the host network on loopback, a read-only root filesystem, a tmpfs /tmp and
a non-root user, as the Helm chart runs them.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from driftline_serving.fetch import fetch
from tests.processes import free_port, wait_for

pytestmark = pytest.mark.images

VERSION = "0.1.0"
HARDENED = ["--network", "host", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL"]


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done


@pytest.mark.parametrize("image", ["operator", "trainer"])
def test_cli_images_answer_help_as_non_root(image: str) -> None:
    tag = f"driftline/{image}:{VERSION}"
    done = docker("run", "--rm", *HARDENED, tag, "--help")
    assert "usage: driftline" in done.stdout
    user = docker("image", "inspect", tag, "--format", "{{.Config.User}}").stdout.strip()
    assert user == "10001:10001"
    labels = json.loads(
        docker("image", "inspect", tag, "--format", "{{json .Config.Labels}}").stdout
    )
    assert labels["org.opencontainers.image.version"] == VERSION


def test_trainer_image_can_train_help_and_drift_check_help() -> None:
    for command in ("train", "drift-check"):
        done = docker("run", "--rm", *HARDENED, f"driftline/trainer:{VERSION}", command, "--help")
        assert f"usage: driftline {command}" in done.stdout


def test_inference_image_serves_a_fetched_model(
    champion_run: dict, mlflow_server, tmp_path: Path, adult
) -> None:
    model_dir = tmp_path / "model"
    fetch(mlflow_server.uri, "adult-income", champion_run["version"], "champion", model_dir)
    model_dir.chmod(0o755)
    for path in model_dir.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = free_port()
    name = f"driftline-smoke-{port}"
    docker(
        "run", "-d", "--name", name, *HARDENED, "-v", f"{model_dir}:/model:ro",
        "-e", "DRIFTLINE_MODEL_DIR=/model", f"driftline/inference:{VERSION}",
        "serve", "--host", "127.0.0.1", "--port", str(port),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(url + "/ready").status_code == 200, 60, "container not ready")
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        record = json.loads(adult.drop(columns=["income"]).head(1).to_json(orient="records"))[0]
        answer = httpx.post(url + "/predict", json={"features": record}).json()
        assert answer["version"] == champion_run["version"]
        assert 0.0 <= answer["probability"] <= 1.0
        time.sleep(0.5)  # let the log writer flush into the container's tmpfs store
        assert "inference log store unavailable" not in docker("logs", name).stderr
    finally:
        docker("rm", "-f", name, check=False)
