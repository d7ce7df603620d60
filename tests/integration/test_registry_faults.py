"""Registry faults: interrupted promotions, a fresh store, unreachable MLflow, bad log stores."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from driftline.promotion import ComparisonRule
from driftline.registry import ModelRegistry, PromotionConflictError
from tests.integration.conftest import CliResult
from tests.integration.test_train_and_registry import fresh_model, race_promotions
from tests.processes import free_port

pytestmark = pytest.mark.integration

DRIFTLINE = str(Path(sys.executable).parent / "driftline")
LEASE = 10.0  # the holder stops writing after 5 s: ample even on a loaded machine


class FailAfterClaim:
    """An MlflowClient whose first call after a generation claim fails, as a 503 would."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self._claimed = False
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._claimed and not self.failed and name != "delete_experiment":
                self.failed = True
                raise MlflowException(
                    "injected: 503 Service Unavailable", error_code="INTERNAL_ERROR"
                )
            result = method(*args, **kwargs)
            if name == "create_experiment" and "driftline-locks/" in str(args[0]):
                self._claimed = True
            return result

        return call


def registry(uri: str, client: Any = None) -> ModelRegistry:
    return ModelRegistry(client or MlflowClient(uri, uri), claim_seconds=LEASE)


def test_a_promotion_interrupted_after_its_claim_does_not_block_later_ones(
    driftline_module, champion_run, challenger_run, mlflow_server, monkeypatch
) -> None:
    name = fresh_model(driftline_module, champion_run, challenger_run)
    faulty = FailAfterClaim(MlflowClient(mlflow_server.uri, mlflow_server.uri))
    with pytest.raises(MlflowException, match="injected"):
        registry(mlflow_server.uri, faulty).promote(name, ComparisonRule(), force=True)
    assert faulty.failed
    # While the claim is young it may still be live: refused, and the message says until when.
    with pytest.raises(PromotionConflictError, match=r"taken over after 10s"):
        registry(mlflow_server.uri).promote(name, ComparisonRule(), force=True)
    time.sleep(LEASE + 0.5)
    monkeypatch.setenv("DRIFTLINE_PROMOTION_CLAIM_SECONDS", str(LEASE))
    retried = driftline_module("promote", name, "--force", "--json")
    assert retried.code == 0, retried.stderr
    assert (retried.json["previous_champion"], retried.json["champion"]) == ("1", "2")
    assert registry(mlflow_server.uri).champion_history(name) == ["1", "2"]
    # The next generation is an ordinary one again: rollback works at once.
    rolled = driftline_module("rollback", name, "--json")
    assert rolled.code == 0 and rolled.json["champion"] == "1", rolled.stderr


def test_an_interrupted_rollback_does_not_block_a_later_promotion(
    driftline_module, champion_run, challenger_run, mlflow_server
) -> None:
    """Sibling: the same stale claim, left by a rollback instead of a promotion."""
    name = fresh_model(driftline_module, champion_run, challenger_run)
    assert driftline_module("promote", name, "--force").code == 0
    faulty = FailAfterClaim(MlflowClient(mlflow_server.uri, mlflow_server.uri))
    with pytest.raises(MlflowException, match="injected"):
        registry(mlflow_server.uri, faulty).rollback(name)
    time.sleep(LEASE + 0.5)
    move = registry(mlflow_server.uri).rollback(name)
    assert (move.previous_champion, move.champion) == ("2", "1")


def test_racing_takeovers_of_a_stale_claim_move_the_alias_once(
    driftline_module, champion_run, challenger_run, mlflow_server
) -> None:
    """Sibling: two callers finding the same abandoned claim; exactly one takes it over."""
    name = fresh_model(driftline_module, champion_run, challenger_run)
    faulty = FailAfterClaim(MlflowClient(mlflow_server.uri, mlflow_server.uri))
    with pytest.raises(MlflowException):
        registry(mlflow_server.uri, faulty).promote(name, ComparisonRule(), force=True)
    time.sleep(LEASE + 0.5)
    outcomes = race_promotions(lambda: registry(mlflow_server.uri), name)
    assert any(isinstance(o, PromotionConflictError) for o in outcomes), outcomes
    assert registry(mlflow_server.uri).champion_history(name) == ["1", "2"]


def test_a_first_version_becomes_champion_and_promotion_without_one_says_so(
    driftline_module, champion_run, challenger_run
) -> None:
    name = f"adult-{uuid.uuid4().hex[:8]}"
    first = driftline_module("register", name, "--run-id", champion_run["run_id"], "--json")
    assert first.code == 0 and first.json["alias"] == "champion", first.stderr
    second = driftline_module("register", name, "--run-id", challenger_run["run_id"], "--json")
    assert second.code == 0 and second.json["alias"] is None, second.stderr

    # A model whose only version was registered as challenger has no champion to compare with.
    lone = f"adult-{uuid.uuid4().hex[:8]}"
    made = driftline_module(
        "register", lone, "--run-id", challenger_run["run_id"], "--alias", "challenger"
    )
    assert made.code == 0, made.stderr
    text = driftline_module("promote", lone)
    assert text.code == 0, text.stderr
    assert "no champion to compare with: the roc_auc rule was not applied" in text.stdout
    lone_json = f"adult-{uuid.uuid4().hex[:8]}"
    driftline_module(
        "register", lone_json, "--run-id", challenger_run["run_id"], "--alias", "challenger"
    )
    promoted = driftline_module("promote", lone_json, "--json")
    assert promoted.json["note"] == "no champion to compare with: the roc_auc rule was not applied"
    assert promoted.json["comparison"] is None and promoted.json["previous_champion"] is None


def test_a_forced_promotion_says_it_overrode_the_rule(
    driftline_module, champion_run, challenger_run
) -> None:
    """Sibling: a promotion that did not apply the rule's verdict must say so as well."""
    name = fresh_model(driftline_module, champion_run, challenger_run)
    forced = driftline_module("promote", name, "--force", "--min-delta", "0.5", "--json")
    assert forced.code == 0, forced.stderr
    assert forced.json["note"].startswith("forced: version 2 does not beat champion 1 on roc_auc")


def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 900) -> CliResult:
    done = subprocess.run(
        [DRIFTLINE, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize(
    "args",
    [
        ("models",),
        ("promote", "--force"),
        ("rollback",),
        ("register", "--run-id", "0123456789abcdef"),
        ("train", "--folds", "2"),
        ("drift-check", "--log-store", "sqlite:///unused.db", "--last", "10"),
    ],
    ids=lambda a: a[0],
)
def test_an_unreachable_mlflow_is_one_line_within_seconds(args: tuple[str, ...], tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DRIFTLINE_"))}
    env["DRIFTLINE_HOME"] = str(tmp_path / "home")
    refused = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run_cli(*args, "--tracking-uri", refused, env=env, cwd=tmp_path, timeout=120)
    elapsed = time.monotonic() - started
    assert result.code == 7, result.stderr
    assert result.stderr.splitlines() == [
        f"driftline: error: MLflow at {refused} is unreachable: connection refused"
    ]
    # Python start-up and imports take a few seconds on a loaded machine; MLflow's own
    # retries used to add about four minutes.
    assert elapsed < 25, elapsed


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("sqlite:////proc/no-such-dir/log.db", "No such file or directory"),
        ("sqlite:////proc/log.db", "unable to open database file"),
        ("sqlite:////etc/hostname/log.db", "File exists"),
        ("nosuch://store", "Can't load plugin: sqlalchemy.dialects:nosuch"),
    ],
)
def test_an_unusable_log_store_stops_serve_with_one_line(url: str, reason: str, tmp_path) -> None:
    result = run_cli("serve", "--log-store", url, env=dict(os.environ), cwd=tmp_path, timeout=120)
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"driftline: error: --log-store {url}: cannot open the inference log: {reason}"
    ]
