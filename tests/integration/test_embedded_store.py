"""Every command that talks to MLflow, on the embedded store, from another working directory.

MLflow falls back to ``sqlite:///mlflow.db`` in the working directory wherever the process-wide
URIs are unset; ``register`` used to fail there ("Logged model ... not found") and leave that
file behind. Nothing may be written outside ``DRIFTLINE_HOME``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from driftline.inference_log import create_schema, engine_for
from tests.integration.test_registry_faults import DRIFTLINE, run_cli
from tests.processes import free_port, stop, wait_http

pytestmark = pytest.mark.integration


def test_every_mlflow_command_on_the_embedded_store_writes_only_under_its_home(
    tmp_path: Path,
) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DRIFTLINE_"))}
    env["DRIFTLINE_HOME"] = str(home)

    def cli(*args: str) -> dict:
        result = run_cli(*args, "--json", env=env, cwd=cwd)
        assert result.code == 0, (args, result.stderr)
        assert list(cwd.iterdir()) == [], args
        return result.json

    trained = cli("train", "--folds", "2", "--register", "embedded")
    # The first version of a model with no champion becomes its champion.
    assert (trained["version"], trained["alias"]) == ("1", "champion")
    run_id = trained["run_id"]
    second = cli("register", "embedded", "--run-id", run_id, "--alias", "challenger")
    assert second["version"] == "2"
    explicit = cli(
        "register", "embedded", "--run-id", run_id, "--tracking-uri", f"sqlite:///{home}/mlflow.db"
    )
    assert (explicit["version"], explicit["alias"]) == ("3", None)
    assert len(cli("models", "embedded")["versions"]) == 3
    assert cli("promote", "embedded", "--force")["champion"] == "2"
    assert cli("rollback", "embedded")["champion"] == "1"
    log_store = f"sqlite:///{home}/log.db"
    create_schema(engine_for(log_store))
    checked = cli("drift-check", "--model", "embedded", "--log-store", log_store, "--last", "10")
    assert checked["status"] == "insufficient_data"

    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        served = subprocess.Popen(
            [DRIFTLINE, "serve", "--model", "embedded", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", served, log, timeout=300)
    finally:
        stop(served)
    assert list(cwd.iterdir()) == []
