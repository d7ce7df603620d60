"""The model: a ColumnTransformer (numeric passthrough, one-hot categories) and XGBoost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from xgboost import XGBClassifier

from driftline.schema import FeatureKind, FeatureSchema


@dataclass(frozen=True)
class XGBParams:
    """XGBoost hyperparameters; tuned on Adult's validation split, not on its test split."""

    n_estimators: int = 2000
    learning_rate: float = 0.05
    max_depth: int = 4
    min_child_weight: float = 1.0
    subsample: float = 0.8
    colsample_bytree: float = 0.6
    reg_lambda: float = 1.0
    gamma: float = 0.0
    early_stopping_rounds: int = 100

    def with_rounds(self, rounds: int) -> XGBParams:
        """The same parameters with a fixed number of trees and no early stopping."""
        return replace(self, n_estimators=rounds, early_stopping_rounds=0)

    def as_dict(self) -> dict[str, Any]:
        """Parameters as logged to MLflow."""
        return asdict(self)


def build_pipeline(schema: FeatureSchema, params: XGBParams, seed: int, threads: int) -> Pipeline:
    """A fresh, unfitted pipeline whose columns follow the schema's order."""
    preprocess = ColumnTransformer(
        [
            ("num", "passthrough", schema.by_kind(FeatureKind.NUMERIC)),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype="float32"),
                schema.by_kind(FeatureKind.CATEGORICAL),
            ),
        ],
        verbose_feature_names_out=True,
    )
    hyper = params.as_dict()
    # XGBoost reads 0 as "stop after 0 rounds without progress"; None turns early stopping off.
    hyper["early_stopping_rounds"] = params.early_stopping_rounds or None
    classifier = XGBClassifier(
        **hyper,
        eval_metric="logloss",
        tree_method="hist",
        random_state=seed,
        n_jobs=threads,
    )
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])
