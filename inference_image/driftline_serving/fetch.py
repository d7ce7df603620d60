"""Fetching a model version's files from MLflow, in a process of its own.

The MLflow client costs ~130 MB of memory once imported, three times what the server needs to
answer requests. So the server runs this module as a child process (as an init container would
in Kubernetes), and loads only the files it writes: ``model.onnx``, ``feature_schema.json``,
``threshold.json``, ``baseline.json`` (the bins drift sketches count into), the MLflow model
folder and ``version.json``.

Usage: python -m driftline_serving.fetch --model NAME (--version V | --alias A) --dest DIR
Prints one JSON object: {"model", "version", "dir"}; exits 1 with a one-line reason on error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from driftline import artifacts
from driftline.registry_conventions import CHAMPION

VERSION_FILE = "version.json"
MODEL_FOLDER = "mlflow-model"


def fetch(
    tracking_uri: str, name: str, version: str | None, alias: str, dest: Path
) -> dict[str, str]:
    """Resolve the version and download its serving files into ``dest``."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    from driftline.mlflow_binding import bind_mlflow
    from driftline.registry import ModelRegistry

    # The HTTP bounds come from the parent's environment (see loader._fetch).
    bind_mlflow(tracking_uri, {})
    registry = ModelRegistry(MlflowClient(tracking_uri, tracking_uri))
    resolved = version or registry.alias_version(name, alias)
    if resolved is None:
        raise LookupError(f"model {name!r} has no alias {alias!r}")
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(registry.download(name, resolved, artifacts.ARTIFACT_DIR, tmp))
        for path in (artifacts.ONNX_MODEL, artifacts.FEATURE_SCHEMA, artifacts.THRESHOLD):
            (dest / Path(path).name).write_bytes((folder / Path(path).name).read_bytes())
        baseline = folder / Path(artifacts.BASELINE).name
        # Optional: a version without one is served without drift sketches.
        if baseline.exists():
            (dest / baseline.name).write_bytes(baseline.read_bytes())
    # The version's source is the logged model (models:/m-...), resolved by the tracking store.
    download_artifacts(
        artifact_uri=registry.source(name, resolved),
        dst_path=str(dest / MODEL_FOLDER),
    )
    info = {"model": name, "version": resolved, "dir": str(dest)}
    (dest / VERSION_FILE).write_text(json.dumps(info))
    return info


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of the fetching child process."""
    parser = argparse.ArgumentParser(prog="python -m driftline_serving.fetch")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version")
    parser.add_argument("--alias", default=CHAMPION)
    parser.add_argument("--dest", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        info = fetch(args.tracking_uri, args.model, args.version, args.alias, args.dest)
    except Exception as exc:  # the parent turns this line into a "not ready" reason
        print(f"{type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
