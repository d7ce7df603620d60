"""Prediction runtimes: ONNX Runtime (the fast path) and the native sklearn pipeline.

Both take validated rows (values in schema order) and return positive-class probabilities, so
the server does not care which one runs. Explanations always use the native XGBoost booster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from driftline.attribution import output_sources, sum_by_feature
from driftline.schema import FeatureKind, FeatureSchema

Rows = Sequence[Sequence[Any]]


class Predictor(Protocol):
    """Anything that turns rows into probabilities."""

    def predict(self, rows: Rows) -> npt.NDArray[np.float64]:
        """Positive-class probability of each row."""
        ...


class OnnxPredictor:
    """The whole pipeline as one ONNX graph, one ``[n, 1]`` input per feature."""

    def __init__(self, model: bytes, schema: FeatureSchema, threads: int) -> None:
        """Create the session; ``threads`` bounds intra-op parallelism (1 suits one request)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._inputs = [
            (spec.name, np.float32 if spec.kind is FeatureKind.NUMERIC else object)
            for spec in schema.features
        ]
        self._output = "probabilities"

    def predict(self, rows: Rows) -> npt.NDArray[np.float64]:
        """Run the graph on the rows."""
        count = len(rows)
        feeds = {
            name: np.fromiter((row[i] for row in rows), dtype=dtype, count=count).reshape(-1, 1)
            for i, (name, dtype) in enumerate(self._inputs)
        }
        (probabilities,) = self._session.run([self._output], feeds)
        return np.asarray(probabilities[:, 1], dtype=np.float64)


class NativePredictor:
    """The sklearn pipeline as logged to MLflow (slower: DataFrame per call)."""

    def __init__(self, pipeline: Any, schema: FeatureSchema) -> None:
        """Wrap a fitted pipeline."""
        self._pipeline = pipeline
        self._schema = schema

    def frame(self, rows: Rows) -> Any:
        """Rows as the DataFrame the pipeline was fitted on."""
        import pandas as pd

        frame = pd.DataFrame(list(rows), columns=self._schema.names)
        for name in self._schema.by_kind(FeatureKind.NUMERIC):
            frame[name] = frame[name].astype("float64")
        return frame

    def predict(self, rows: Rows) -> npt.NDArray[np.float64]:
        """``predict_proba`` of the pipeline."""
        proba = self._pipeline.predict_proba(self.frame(rows))
        return np.asarray(proba[:, 1], dtype=np.float64)

    def contributions(self, rows: Rows, top: int) -> list[list[dict[str, float | str]]]:
        """Top ``top`` features of each row by absolute XGBoost contribution to the log-odds.

        A feature's contribution is ``pred_contribs`` summed over the columns the fitted
        preprocessing made from it (``output_sources``); every feature is ranked, 0.0 included.
        Returns one list of ``{"feature", "contribution"}`` per row, largest magnitude first.
        """
        import xgboost

        preprocess = self._pipeline.named_steps["preprocess"]
        booster = self._pipeline.named_steps["classifier"].get_booster()
        matrix = xgboost.DMatrix(preprocess.transform(self.frame(rows)))
        # Last column of pred_contribs is the bias; the others follow the transformer's output.
        contributions = booster.predict(matrix, pred_contribs=True)[:, :-1]
        names = self._schema.names
        totals = sum_by_feature(contributions, output_sources(preprocess), names)
        out = []
        for row in totals:
            ranked = sorted(zip(names, row.tolist(), strict=True), key=lambda kv: -abs(kv[1]))
            out.append([{"feature": name, "contribution": value} for name, value in ranked[:top]])
        return out
