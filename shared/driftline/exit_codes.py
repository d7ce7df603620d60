"""Exit codes of ``driftline`` commands: the contract between the CLI, its Jobs and the operator.

A Job's exit code says which kind of failure it met; the operator (``promoter``) and people
reading ``kubectl get pods`` rely on the same numbers.
"""

from __future__ import annotations

UNEXPECTED = 1
USAGE = 2
DATA_SOURCE = 3
DATA_INVALID = 4
QUALITY_GATE = 5
REGISTRY = 6
MLFLOW_UNAVAILABLE = 7
LOG_STORE = 8
# The Kubernetes API server refused the request, is unreachable, or the object is missing.
KUBERNETES = 9
# Stopped by Ctrl-C (SIGINT): the shell's 128 + signal number.
INTERRUPTED = 130
