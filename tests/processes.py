"""Starting real processes for tests: free loopback ports, readiness waits, log tails on failure."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a process log, for failure messages."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Wait until ``url`` answers 200; raise with the log tail if the process dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before {url} answered:\n{log_tail(log)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s:\n{log_tail(log)}")


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate a process (and wait), killing it if it does not stop within ``grace``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class WaitTimeout(AssertionError, TimeoutError):
    """``wait_for`` gave up; an AssertionError so pytest reports it as a test failure."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    message: str,
    interval: float = 0.25,
    fatal: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    Exceptions raised by the predicate count as "not yet", except those of the ``fatal``
    types, which propagate at once. On timeout a ``WaitTimeout``
    (both an AssertionError and a TimeoutError) is raised carrying ``message``, the last
    falsy result and the last exception, chained as ``__cause__``.
    """
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    last_result: object = None
    while True:
        try:
            result = predicate()
        except fatal:
            raise
        except Exception as exc:
            last_exc = exc
        else:
            if result:
                return result
            last_result = result
            last_exc = None
        if time.monotonic() >= deadline:
            detail = (
                f"last exception: {type(last_exc).__name__}: {last_exc}"
                if last_exc is not None
                else f"last result: {last_result!r}"
            )
            raise WaitTimeout(f"{message} (timed out after {timeout:g}s; {detail})") from last_exc
        time.sleep(interval)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mlflow_server(root: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """`mlflow server` (SQLite backend, local artifacts) on a free loopback port, ready.

    Returns the URI and the process; the caller stops it with ``stop``.
    """
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    if mlflow is None:
        raise RuntimeError("the mlflow command is not installed next to this Python: make install")
    port = free_port()
    log = root / "mlflow-server.log"
    command = [
        mlflow, "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process, log, timeout=90)
    except BaseException:
        stop(process)
        raise
    return f"http://127.0.0.1:{port}", process
