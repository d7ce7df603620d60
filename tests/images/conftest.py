"""The images tier reuses the integration tier's MLflow server and trained champion."""

from tests.integration.conftest import champion_run, driftline_module, mlflow_server

__all__ = ["champion_run", "driftline_module", "mlflow_server"]
