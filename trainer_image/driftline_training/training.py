"""Training on a frame: split, validate, cross-validate, fit, calibrate, evaluate, export.

No MLflow here: the result is a ``TrainedModel`` value that ``tracking`` logs and registers.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from driftline.attribution import output_sources, sum_by_feature
from driftline.baseline import Baseline
from driftline.baseline_builder import build_baseline
from driftline.coercion import FeatureValueError, coerce_column, derive_schema, to_model_frame
from driftline.schema import FeatureSchema
from driftline.validation import validate_frame
from driftline_training.errors import DataValidationError, QualityGateError
from driftline_training.metrics import (
    choose_threshold,
    classification_metrics,
    confusion,
    summarise_folds,
)
from driftline_training.onnx_export import onnx_probabilities, onnx_session, to_onnx
from driftline_training.pipeline import XGBParams, build_pipeline


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run's outcome besides the data."""

    seed: int = 42
    folds: int = 5
    test_size: float = 0.2
    validation_size: float = 0.1
    target_precision: float | None = None
    params: XGBParams = field(default_factory=XGBParams)
    threads: int = 2
    parity_tolerance: float = 1e-4
    baseline_bins: int = 10
    baseline_sample: int = 5000


@dataclass(frozen=True)
class Splits:
    """The stratified train/validation/test partition."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


@dataclass(frozen=True)
class TrainedModel:
    """A fitted, evaluated and exported model with everything logged alongside it."""

    pipeline: Pipeline
    schema: FeatureSchema
    threshold: float
    rounds: int
    metrics: dict[str, float]
    validation_metrics: dict[str, float]
    cv: dict[str, dict[str, float]]
    confusion: list[list[int]]
    importances: dict[str, float]
    onnx_model: bytes
    onnx_max_abs_diff: float
    baseline: Baseline
    data_sha256: str
    rows: dict[str, int]
    # The reference's test split as typed for training (target included): the rows a paired
    # comparison with the champion scores both models on.
    test: pd.DataFrame


def split(frame: pd.DataFrame, target: str, config: TrainConfig) -> Splits:
    """Stratified train/validation/test split (70/10/20 by default), reproducible by seed.

    Raises ``DataValidationError`` when the target is absent or a class has too few rows for
    every part (and every CV fold of the training part) to hold at least one of it.
    """
    if target not in frame.columns:
        raise DataValidationError(f"data validation failed: target column {target!r} is missing")
    train_share = 1 - config.test_size - config.validation_size
    needed = math.ceil(
        max(config.folds / train_share, 1 / config.validation_size, 1 / config.test_size)
    )
    counts = frame[target].value_counts()
    found = {label: int(counts.get(label, 0)) for label in (0, 1)}
    if min(found.values()) < needed:
        raise DataValidationError(
            f"data validation failed: {target} has {found[1]} rows of class 1 and {found[0]}"
            f" of class 0; training needs at least {needed} of each"
            f" ({config.folds}-fold CV on a stratified split)"
        )
    rest, test = train_test_split(
        frame, test_size=config.test_size, stratify=frame[target], random_state=config.seed
    )
    validation_share = config.validation_size / (1 - config.test_size)
    train, validation = train_test_split(
        rest, test_size=validation_share, stratify=rest[target], random_state=config.seed
    )
    return Splits(train, validation, test)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """A sha256 of the frame's content (values, column names and order), for lineage."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def train_model(
    frame: pd.DataFrame,
    target: str,
    config: TrainConfig,
    contract: FeatureSchema | None,
    extra_train: pd.DataFrame | None = None,
) -> TrainedModel:
    """Validate the data, then fit and evaluate the model; raises a ``TrainingError`` subclass.

    ``contract`` is the schema the data must meet (for example the current champion's); the
    schema stored with the new model is derived from the training split. ``extra_train``
    (recent labelled traffic, validated like ``frame``) joins the training split only: the
    validation and test splits are ``frame``'s, as a champion trained on ``frame`` with the
    same seed had them.
    """
    extra = extra_train if extra_train is not None else frame.iloc[:0]
    if contract is not None:
        both = pd.concat([frame, extra], ignore_index=True)
        report = validate_frame(both, contract.model_copy(update={"target": target}))
        if not report.ok:
            raise DataValidationError(report.render())
        # The contract, not the reader's dtype guess, says what each column holds.
        frame, extra = (
            part.assign(
                **{spec.name: coerce_column(part[spec.name], spec) for spec in contract.features}
            )
            for part in (frame, extra)
        )
    kinds = {spec.name: spec.kind for spec in contract.features} if contract else None
    splits = split(frame, target, config)
    if len(extra):
        train = pd.concat([splits.train, extra], ignore_index=True)
        splits = Splits(train, splits.validation, splits.test)
    try:
        schema = derive_schema(splits.train, target, kinds=kinds)
        x_train, x_val, x_test = (
            to_model_frame(part, schema) for part in (splits.train, splits.validation, splits.test)
        )
    except FeatureValueError as exc:
        raise DataValidationError(f"data validation failed: {exc}") from exc
    y_train, y_val, y_test = (
        _labels(part, target) for part in (splits.train, splits.validation, splits.test)
    )

    rounds = _early_stopped_rounds(x_train, y_train, x_val, y_val, schema, config)
    cv = summarise_folds(_cross_validate(x_train, y_train, schema, rounds, config))
    pipeline = build_pipeline(
        schema, config.params.with_rounds(rounds), config.seed, config.threads
    )
    pipeline.fit(x_train, y_train)

    val_proba = pipeline.predict_proba(x_val)[:, 1]
    threshold = choose_threshold(y_val, val_proba, config.target_precision)
    test_proba = pipeline.predict_proba(x_test)[:, 1]

    onnx_model = to_onnx(pipeline, schema)
    onnx_proba = onnx_probabilities(onnx_session(onnx_model), x_test, schema)
    max_diff = float(np.max(np.abs(onnx_proba - test_proba)))
    if max_diff > config.parity_tolerance:
        raise QualityGateError(
            f"ONNX parity broken: max |p_onnx - p_sklearn| = {max_diff:.2e}"
            f" > {config.parity_tolerance:.0e}"
        )
    held_out = np.concatenate([val_proba, test_proba])
    return TrainedModel(
        pipeline=pipeline,
        schema=schema,
        threshold=threshold,
        rounds=rounds,
        metrics=classification_metrics(y_test, test_proba, threshold),
        validation_metrics=classification_metrics(y_val, val_proba, threshold),
        cv=cv,
        confusion=confusion(y_test, test_proba, threshold).tolist(),
        importances=_importances(pipeline, schema),
        onnx_model=onnx_model,
        onnx_max_abs_diff=max_diff,
        baseline=build_baseline(
            splits.train,
            held_out,
            schema,
            bins=config.baseline_bins,
            sample_size=config.baseline_sample,
            seed=config.seed,
        ),
        data_sha256=data_fingerprint(pd.concat([frame, extra], ignore_index=True)),
        rows={
            "train": len(splits.train),
            "validation": len(y_val),
            "test": len(y_test),
            "recent_train": len(extra),
        },
        test=splits.test,
    )


def _labels(frame: pd.DataFrame, target: str) -> Any:
    return frame[target].to_numpy(dtype=np.int64)


def _early_stopped_rounds(
    x_train: pd.DataFrame,
    y_train: Any,
    x_val: pd.DataFrame,
    y_val: Any,
    schema: FeatureSchema,
    config: TrainConfig,
) -> int:
    """The number of trees chosen by early stopping on the validation split.

    The final model is refitted with exactly this many trees, so that the ONNX export (which
    converts every tree) and the sklearn model agree.
    """
    pipeline = build_pipeline(schema, config.params, config.seed, config.threads)
    preprocess = pipeline.named_steps["preprocess"].fit(x_train)
    pipeline.fit(
        x_train,
        y_train,
        classifier__eval_set=[(preprocess.transform(x_val), y_val)],
        classifier__verbose=False,
    )
    return int(pipeline.named_steps["classifier"].best_iteration) + 1


def _cross_validate(
    x: pd.DataFrame, y: Any, schema: FeatureSchema, rounds: int, config: TrainConfig
) -> list[dict[str, float]]:
    """Stratified K-fold on the training split; thresholded metrics use 0.5 on every fold."""
    folds = StratifiedKFold(n_splits=config.folds, shuffle=True, random_state=config.seed)
    results = []
    for fit_index, score_index in folds.split(x, y):
        model = build_pipeline(
            schema, config.params.with_rounds(rounds), config.seed, config.threads
        )
        model.fit(x.iloc[fit_index], y[fit_index])
        proba = model.predict_proba(x.iloc[score_index])[:, 1]
        results.append(classification_metrics(y[score_index], proba, 0.5))
    return results


def _importances(pipeline: Pipeline, schema: FeatureSchema) -> dict[str, float]:
    """Gain-based importances summed back from one-hot columns to the original features."""
    sources = output_sources(pipeline.named_steps["preprocess"])
    gains = pipeline.named_steps["classifier"].feature_importances_
    totals = sum_by_feature(gains, sources, schema.names).tolist()
    return dict(sorted(zip(schema.names, totals, strict=True), key=lambda kv: -kv[1]))
