"""A real MLflow tracking server (SQLite backend, local artifact store) on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import free_port, stop, wait_http


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    root: Path


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    if mlflow is None:
        raise RuntimeError(
            "the mlflow command is not installed next to this Python: run make install"
        )
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = root / "server.log"
    command = [
        mlflow,
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, log, timeout=90)
        yield MlflowServer(f"http://127.0.0.1:{port}", root)
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


@pytest.fixture(scope="module")
def driftline_module(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory):
    """Run the real ``driftline`` console script against the test server."""
    workdir = tmp_path_factory.mktemp("cli")
    executable = Path(sys.executable).parent / "driftline"

    def run(*args: str, timeout: float = 300) -> CliResult:
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
