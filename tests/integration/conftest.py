"""A real MLflow tracking server (SQLite backend, local artifact store) on a free loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.postgres import PostgresServer
from tests.processes import free_port, start_mlflow_server, stop, wait_http


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    root: Path


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow")
    uri, process = start_mlflow_server(root)
    try:
        yield MlflowServer(uri, root)
    finally:
        stop(process)


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict:
        return json.loads(self.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def driftline_module(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory):
    """Run the real ``driftline`` console script against the test server."""
    workdir = tmp_path_factory.mktemp("cli")
    executable = Path(sys.executable).parent / "driftline"

    def run(*args: str, timeout: float = 900) -> CliResult:
        env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.uri}
        env.pop("DRIFTLINE_TRACKING_URI", None)
        done = subprocess.run(
            [str(executable), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=workdir,
            timeout=timeout,
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture(scope="session")
def champion_run(driftline_module, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The reference run: seed 42, 5-fold CV, registered as champion of `adult-income`.

    Also carries what it wrote with ``--termination-log`` (as a training Job would).
    """
    log = tmp_path_factory.mktemp("termination") / "train"
    result = driftline_module(
        "train", "--alias", "champion", "--json", "--termination-log", str(log)
    )
    assert result.code == 0, result.stderr
    return {**result.json, "termination_log": json.loads(log.read_text())}


@pytest.fixture(scope="session")
def challenger_run(driftline_module, champion_run) -> dict:
    """A second run (seed 1, 2 folds), logged but not registered."""
    result = driftline_module("train", "--seed", "1", "--folds", "2", "--no-register", "--json")
    assert result.code == 0, result.stderr
    return result.json


@dataclass
class Served:
    """A `driftline serve` or `driftline router` process on a free loopback port."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def start_server(
    mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory, champion_run: dict
):
    """Start real uvicorn processes via the CLI (serving the champion unless told otherwise);
    all are stopped at the end of the session."""
    executable = str(Path(sys.executable).parent / "driftline")
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: str = "/ready") -> Served:
        root = tmp_path_factory.mktemp("served")
        port = free_port()
        log = root / "server.log"
        environment = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server.uri, **(env or {})}
        with log.open("wb") as out:
            process = subprocess.Popen(
                [executable, *args, "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=root,
            )
        served = Served(f"http://127.0.0.1:{port}", process, log)
        started.append(served)
        wait_http(served.url + ready, process, log, timeout=120)
        return served

    yield start
    for served in started:
        stop(served.process)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the inference log, shared by the session."""
    server = PostgresServer()
    server.start()
    yield server
    server.remove()
