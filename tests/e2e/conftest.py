"""The end-to-end tier: the whole Driftline loop in real pods on the local cluster.

One session brings the cluster up (tests/cluster's fixture), imports the four images built by
``make images``, creates the database Secret and installs the chart with its in-cluster MLflow
server and PostgreSQL. A cluster, an image or a release that fails is a test failure with the
logs attached, never a skip. Tests run in file order and share the release.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from driftline.inference_log import INFERENCE_LOG
from tests.cluster.conftest import LocalCluster, local_cluster  # noqa: F401  (session fixture)
from tests.e2e import kit

NAMESPACE = "driftline-e2e"
RELEASE = "driftline"
DB_SECRET = "driftline-db"
MODEL = "adult-income"
# The ModelDeployment under test; its stable Service (the router) carries the same name.
MD = "adult-income"
MLFLOW_URL = f"http://{RELEASE}-mlflow.{NAMESPACE}:5000"
POSTGRES_HOST = f"{RELEASE}-postgresql"
# Small requests: the control plane, CoreDNS, metrics-server, MLflow, PostgreSQL, two variants,
# the router, a drift check and a training Job share two cores.
CHART_VALUES = {
    # Two replicas: one acts, the other waits to take over (kopf peering).
    "operator.replicas": "2",
    "operator.settings.resolveIntervalSeconds": "5",
    "operator.settings.driftPollSeconds": "5",
    "operator.settings.retryDelaySeconds": "5",
    "operator.healthLogStore.secretName": DB_SECRET,
    "mlflow.enabled": "true",
    "mlflow.resources.requests.cpu": "100m",
    "mlflow.backendStore.type": "postgresql",
    "mlflow.backendStore.postgresql.host": POSTGRES_HOST,
    "mlflow.backendStore.postgresql.user": "postgres",
    "mlflow.backendStore.postgresql.passwordSecret.name": DB_SECRET,
    "mlflow.backendStore.postgresql.sslMode": "disable",
    "postgresql.enabled": "true",
    "postgresql.passwordSecret.name": DB_SECRET,
}


@dataclass
class Release:
    """The installed chart: its namespace, the database password and the session's clock."""

    ns: kit.Namespace
    password: str
    started: float

    def log_store_url(self, host: str) -> str:
        """The inference log's SQLAlchemy URL on ``host`` (Service name or cluster IP)."""
        return f"postgresql+psycopg://postgres:{self.password}@{host}:5432/driftline"

    def router_url(self) -> str:
        """The stable Service as the host reaches it (cluster IP over the bridge)."""
        return f"http://{self.ns.cluster_ip(MD)}"

    def log_rows(self, prefix: str) -> int:
        """Rows of the in-cluster inference log whose request id starts with ``prefix``."""
        engine = sa.create_engine(self.log_store_url(self.ns.cluster_ip(POSTGRES_HOST)))
        try:
            with engine.connect() as conn:
                like = INFERENCE_LOG.c.request_id.like(f"{prefix}%")
                return int(conn.execute(sa.select(sa.func.count()).where(like)).scalar_one())
        finally:
            engine.dispose()

    def progress(self, text: str) -> None:
        """A progress line with the session's elapsed time."""
        kit.step(text, self.started)


@pytest.fixture(scope="session")
def release(local_cluster: LocalCluster) -> Iterator[Release]:  # noqa: F811
    """The chart installed with MLflow and PostgreSQL, every pod ready."""
    started = time.monotonic()
    for ref, seconds in kit.import_images(kit.IMAGES).items():
        kit.step(f"imported {ref} in {seconds:.1f}s", started)
    ns = kit.Namespace(local_cluster, NAMESPACE)
    local_cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    password = secrets.token_hex(16)
    rel = Release(ns, password, started)
    ns.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": DB_SECRET},
            "stringData": {"password": password, "url": rel.log_store_url(POSTGRES_HOST)},
        }
    )
    values = ",".join(f"{k}={v}" for k, v in CHART_VALUES.items())
    chart = str(kit.REPO_ROOT / "charts" / "driftline")
    try:
        kit.helm(
            local_cluster, "install", RELEASE, chart, "-n", NAMESPACE, "--set", values,
            "--wait", "--timeout", "6m", timeout=420,
        )  # fmt: skip
    except AssertionError as exc:
        pods = ns.kubectl("get", "pods", "-o", "wide")
        logs = ns.logs(f"app.kubernetes.io/instance={RELEASE}")
        raise AssertionError(f"{exc}\n{pods}\n{logs}") from exc
    rel.progress("chart installed: operator, MLflow (PostgreSQL backend), PostgreSQL ready")
    yield rel


@pytest.fixture(scope="session")
def adult_test() -> pd.DataFrame:
    """UCI Adult's test split (features only), from the data cache ``make data`` fills."""
    from driftline_cli.settings import CliSettings
    from driftline_training.adult import TARGET, load_adult

    frame = load_adult("auto", Path(CliSettings().data_dir))
    return frame.drop(columns=[TARGET]).tail(16_000).reset_index(drop=True)


@pytest.fixture(scope="session")
def records(adult_test: pd.DataFrame) -> list[dict[str, Any]]:
    """The first 500 test rows as JSON-ready records: the payloads of every load loop."""
    return kit.feature_records(adult_test.head(500))
