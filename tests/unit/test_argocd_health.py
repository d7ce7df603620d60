"""The Argo CD health checks (Lua) shipped with the chart, run on sample statuses.

Argo CD runs a health script with the object as the global ``obj`` and reads the table it
returns; lupa's LuaJIT speaks the same Lua 5.1 as Argo CD's gopher-lua.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lupa import LuaRuntime

ARGOCD = Path(__file__).resolve().parents[2] / "charts" / "driftline" / "files" / "argocd"


def health(script: str, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) the script returns for ``obj``."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute((ARGOCD / script).read_text())
    return str(result["status"]), str(result["message"])


def condition(type_: str, status: str, reason: str = "R", message: str = "m") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


READY = condition("Ready", "True", message="every variant is available")
NOT_DEGRADED = condition("Degraded", "False")


@pytest.mark.parametrize(
    ("status", "expected", "words"),
    [
        (None, "Progressing", "Waiting for the operator"),
        ({"observedGeneration": 2, "conditions": [READY, NOT_DEGRADED]}, "Healthy", "available"),
        ({"observedGeneration": 1, "conditions": [READY]}, "Progressing", "generation 2"),
        ({"observedGeneration": 2, "conditions": [
            condition("Ready", "False"),
            condition("Degraded", "True", "MlflowUnavailable", "MLflow down"),
        ]}, "Degraded", "MlflowUnavailable: MLflow down"),
        ({"observedGeneration": 2, "conditions": [READY, NOT_DEGRADED],
          "rollout": {"phase": "Aborted", "message": "errorRate: 0.4 vs at most 0.01"}},
         "Degraded", "Rollout aborted: errorRate: 0.4"),
        ({"observedGeneration": 2, "conditions": [READY, NOT_DEGRADED],
          "rollout": {"phase": "Paused", "message": "waiting for driftline.dev/promote"}},
         "Suspended", "driftline.dev/promote"),
        ({"observedGeneration": 2, "conditions": [READY, NOT_DEGRADED],
          "rollout": {"phase": "Analysing", "message": "step 2/4: 25%"}},
         "Progressing", "step 2/4"),
        ({"observedGeneration": 2, "conditions": [READY, NOT_DEGRADED],
          "rollout": {"phase": "Promoted", "message": "version 3 promoted"}},
         "Healthy", "available"),
        ({"observedGeneration": 2, "conditions": [
            condition("Ready", "False", message="waiting for challenger"), NOT_DEGRADED,
        ]}, "Progressing", "waiting for challenger"),
    ],
    ids=["no-status", "ready", "stale-generation", "degraded", "aborted", "paused", "analysing",
         "promoted", "rolling-out"],
)  # fmt: skip
def test_model_deployment_health(status: dict[str, Any] | None, expected: str, words: str) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "md", "generation": 2}}
    if status is not None:
        obj["status"] = status
    got, message = health("modeldeployment-health.lua", obj)
    assert got == expected and words in message, (got, message)


@pytest.mark.parametrize(
    ("status", "expected", "words"),
    [
        (None, "Progressing", "Waiting"),
        ({"conditions": [condition("Ready", "True", message="drift check on '0 * * * *'")]},
         "Healthy", "drift check on"),
        ({"conditions": [condition("Ready", "True")],
          "lastCheck": {"drifted": True, "reason": "age PSI 0.41"}}, "Healthy", "age PSI 0.41"),
        ({"conditions": [condition("Ready", "True")],
          "lastCheck": {"drifted": False, "performance": {"status": "breach",
                                                          "reason": "roc_auc 0.61 below 0.85"}}},
         "Healthy", "Performance breach: roc_auc 0.61"),
        ({"conditions": [condition("Ready", "True"),
                         condition("Degraded", "True", "TrainingFailed", "exit 5")]},
         "Degraded", "TrainingFailed: exit 5"),
    ],
    ids=["no-status", "scheduled", "drift-found", "performance-breach", "training-failed"],
)  # fmt: skip
def test_drift_policy_health(status: dict[str, Any] | None, expected: str, words: str) -> None:
    obj: dict[str, Any] = {"metadata": {"name": "dp", "generation": 1}}
    if status is not None:
        obj["status"] = status
    got, message = health("driftpolicy-health.lua", obj)
    assert got == expected and words in message, (got, message)
