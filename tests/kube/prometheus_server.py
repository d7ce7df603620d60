"""A real Prometheus server for the rollout tests that read the router's figures through it.

Built from the Go module proxy with the tier's other binaries (scripts/build-kube-bins.sh),
started on loopback with a one-second scrape of the given targets, each with the labels the
chart's ServiceMonitor gives router targets (namespace, model_deployment).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import free_port, stop, wait_http


@contextmanager
def prometheus(
    bin_dir: Path, workdir: Path, targets: dict[str, dict[str, str]], port: int | None = None
) -> Iterator[str]:
    """Prometheus on ``port`` (a free one by default) scraping each ``host:port`` of
    ``targets`` (with its labels) every second; yields its base URL, stops it on exit."""
    scrape = {
        "job_name": "router",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [
            {"targets": [target], "labels": labels} for target, labels in targets.items()
        ],
    }
    config = workdir / "prometheus.yml"
    # JSON is YAML: no YAML writer needed for a config this small.
    config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}))
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(bin_dir / "prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_http(url + "/-/ready", process, log, timeout=60)
        yield url
    finally:
        stop(process)
