"""cluster-down restores the host even when cluster-up was killed half way (a CI timeout, a
closed terminal), and cluster-up recovers from such leftovers on its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from tests.cluster.conftest import DOWN, DOWN_TIMEOUT, MARKERS, UP, UP_TIMEOUT, run_script
from tests.cluster.hoststate import HostState, describe, unstable_sysctls

pytestmark = pytest.mark.cluster

ETCD_PORT = 12379  # scripts/cluster/common.sh


def start_and_kill_up(after_line: str, timeout: float = 300) -> str:
    """Start cluster-up, SIGKILL it (and only it) once it prints ``after_line``; its output."""
    process = subprocess.Popen(
        ["bash", str(UP)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        for line in process.stdout:
            seen.append(line)
            if after_line in line:
                break
            assert time.monotonic() < deadline, "cluster-up too slow:\n" + "".join(seen)
        else:
            raise AssertionError(f"cluster-up ended before {after_line!r}:\n" + "".join(seen))
    finally:
        # The script only: the components it started keep running, as after a real kill.
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    return "".join(seen)


def test_down_restores_the_host_after_a_killed_up() -> None:
    result, _ = run_script(DOWN, DOWN_TIMEOUT)
    assert result.returncode == 0, result.stdout
    unstable = unstable_sysctls()
    before = HostState.take(MARKERS, unstable)

    start_and_kill_up("node driftline-node Ready")
    during = HostState.take(MARKERS, unstable)
    assert before.diff(during), "the killed cluster-up left nothing running: nothing tested"

    result, seconds = run_script(DOWN, DOWN_TIMEOUT)
    assert result.returncode == 0, result.stdout
    print(f"\ncluster-down after a killed cluster-up: {seconds:.1f}s")
    changes = before.diff(HostState.take(MARKERS, unstable))
    assert not changes, "the host differs after cluster-down:\n" + describe(changes)


def test_up_clears_leftovers_of_a_killed_run_itself() -> None:
    unstable = unstable_sysctls()
    before = HostState.take(MARKERS, unstable)
    start_and_kill_up("kube-apiserver ready")
    try:
        result, seconds = run_script(UP, UP_TIMEOUT)
        assert result.returncode == 0, result.stdout
        assert "leftovers of an earlier run found" in result.stdout, result.stdout
        print(f"\ncluster-up over leftovers: {seconds:.1f}s")
    finally:
        result, _ = run_script(DOWN, DOWN_TIMEOUT)
    assert result.returncode == 0, result.stdout
    changes = before.diff(HostState.take(MARKERS, unstable))
    assert not changes, "the host differs after cluster-down:\n" + describe(changes)


def test_a_failed_start_fails_with_the_component_logs_and_restores_the_host() -> None:
    """etcd cannot bind its port: cluster-up must stop at once, print etcd's log, tear down."""
    unstable = unstable_sysctls()
    before = HostState.take(MARKERS, unstable)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", ETCD_PORT))
        blocker.listen()
        result, seconds = run_script(UP, UP_TIMEOUT)
    assert result.returncode == 1, result.stdout
    assert "etcd exited while waiting" in result.stdout, result.stdout
    assert "logs/etcd.log" in result.stdout and "address already in use" in result.stdout
    assert seconds < 60, f"a failed start took {seconds:.0f}s to be reported"
    print(f"\nfailed cluster-up reported and cleaned in {seconds:.1f}s")
    changes = before.diff(HostState.take(MARKERS, unstable))
    assert not changes, "the host differs after a failed cluster-up:\n" + describe(changes)
