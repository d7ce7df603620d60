"""Loading one model version: fetch its files (in a child process), then build the runtimes."""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftline import artifacts
from driftline.baseline import Baseline
from driftline.schema import FeatureKind, FeatureSchema
from driftline.tracking import resolve_tracking
from driftline_serving.fetch import MODEL_FOLDER, VERSION_FILE
from driftline_serving.records import RecordValidator
from driftline_serving.runtimes import NativePredictor, OnnxPredictor, Predictor
from driftline_serving.settings import Runtime, ServingSettings

FETCH_TIMEOUT_SECONDS = 300
logger = logging.getLogger("driftline.serving")


class ModelLoadError(Exception):
    """The model version cannot be loaded; the message says why in one line."""


@dataclass
class LoadedModel:
    """A servable model version."""

    name: str
    version: str
    runtime: Runtime
    schema: FeatureSchema
    threshold: float
    predictor: Predictor
    validator: RecordValidator
    folder: Path
    native: NativePredictor | None = None
    baseline: Baseline | None = None

    @functools.cached_property
    def numeric(self) -> frozenset[str]:
        """Names of the numeric features (their unusual values are counted apart)."""
        return frozenset(s.name for s in self.schema.features if s.kind is FeatureKind.NUMERIC)

    def explainer(self) -> NativePredictor:
        """The native pipeline (loaded on first use when serving ONNX): explanations need it."""
        if self.native is None:
            self.native = NativePredictor(_load_sklearn(self.folder), self.schema)
        return self.native


def load_model(settings: ServingSettings) -> LoadedModel:
    """Load the configured version (or the alias's) with its schema, threshold and runtime.

    With ``model_dir`` set, the files are read from there (fetched beforehand, for example by
    an init container); otherwise a child process fetches them from MLflow.
    """
    folder = settings.model_dir or _fetch(settings)
    try:
        info = json.loads((folder / VERSION_FILE).read_text())
        schema = FeatureSchema.from_json((folder / Path(artifacts.FEATURE_SCHEMA).name).read_text())
        threshold = json.loads((folder / Path(artifacts.THRESHOLD).name).read_text())["threshold"]
        onnx_model = (folder / Path(artifacts.ONNX_MODEL).name).read_bytes()
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"model files in {folder} are incomplete: {exc}") from exc
    native = None
    predictor: Predictor
    if settings.runtime is Runtime.NATIVE:
        native = NativePredictor(_load_sklearn(folder), schema)
        predictor = native
    else:
        predictor = OnnxPredictor(onnx_model, schema, settings.onnx_threads)
    return LoadedModel(
        name=info["model"],
        version=str(info["version"]),
        runtime=settings.runtime,
        schema=schema,
        threshold=float(threshold),
        predictor=predictor,
        validator=RecordValidator(schema),
        folder=folder,
        native=native,
        baseline=_baseline(folder),
    )


def _baseline(folder: Path) -> Baseline | None:
    """The version's drift baseline, or None: without one it is served, just not sketched.

    Versions trained before drift sketches were fetched without ``baseline.json``; an
    unreadable one is logged, never a reason not to serve.
    """
    path = folder / Path(artifacts.BASELINE).name
    if not path.exists():
        return None
    try:
        return Baseline.from_json(path.read_text())
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0]
        logger.warning("%s is unreadable, no drift sketches: %s", path, first)
        return None


def _fetch(settings: ServingSettings) -> Path:
    target = resolve_tracking(settings.tracking_uri, settings.home)
    dest = Path(tempfile.mkdtemp(prefix="driftline-model-"))
    command = [
        sys.executable, "-m", "driftline_serving.fetch",
        "--tracking-uri", target.uri, "--model", settings.model_name,
        "--alias", settings.model_alias, "--dest", str(dest),
    ]  # fmt: skip
    if settings.model_version:
        command += ["--version", settings.model_version]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=FETCH_TIMEOUT_SECONDS,
            check=False,
            env={**os.environ, **settings.mlflow_environment()},
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelLoadError(f"fetching from {target.uri} took over {exc.timeout}s") from exc
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelLoadError(f"cannot fetch {settings.model_name!r} from {target.uri}: {reason}")
    return dest


def _load_sklearn(folder: Path) -> Any:
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(folder / MODEL_FOLDER))
