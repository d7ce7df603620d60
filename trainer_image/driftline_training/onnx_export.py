"""Conversion of the whole fitted pipeline (preprocessing and booster) to ONNX, with parity."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pandas as pd
from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from driftline.schema import FeatureKind, FeatureSchema

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}

update_registered_converter(
    XGBClassifier,
    "XGBoostXGBClassifier",
    calculate_linear_classifier_output_shapes,
    convert_xgboost,
    options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
)


def to_onnx(pipeline: Pipeline, schema: FeatureSchema) -> bytes:
    """Serialise the fitted pipeline as one ONNX graph with one ``[None, 1]`` input per feature.

    Numeric inputs are float32 and categorical inputs strings; the output ``probabilities`` is a
    plain ``[None, 2]`` tensor (no ZipMap), which is what a fast server wants.
    """
    inputs = [
        (
            spec.name,
            FloatTensorType([None, 1])
            if spec.kind is FeatureKind.NUMERIC
            else StringTensorType([None, 1]),
        )
        for spec in schema.features
    ]
    model = convert_sklearn(
        pipeline,
        "driftline",
        initial_types=inputs,
        target_opset=TARGET_OPSET,
        options={id(pipeline.named_steps["classifier"]): {"zipmap": False}},
    )
    return bytes(model.SerializeToString())


def onnx_inputs(frame: pd.DataFrame, schema: FeatureSchema) -> dict[str, npt.NDArray[Any]]:
    """Feed a model frame (see ``to_model_frame``) to the ONNX graph: one column per input."""
    feeds: dict[str, npt.NDArray[Any]] = {}
    for spec in schema.features:
        column = frame[spec.name].to_numpy()
        dtype = np.float32 if spec.kind is FeatureKind.NUMERIC else object
        feeds[spec.name] = column.astype(dtype).reshape(-1, 1)
    return feeds


def onnx_session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime session on CPU with a bounded number of intra-op threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def onnx_probabilities(
    session: ort.InferenceSession, frame: pd.DataFrame, schema: FeatureSchema
) -> npt.NDArray[np.float64]:
    """Positive-class probabilities from the ONNX graph."""
    _, probabilities = session.run(None, onnx_inputs(frame, schema))
    return np.asarray(probabilities, dtype=np.float64)[:, 1]
