"""Which input feature produced each column of the fitted preprocessing step.

Explanations (XGBoost ``pred_contribs``) and gain importances are per output column of the
``ColumnTransformer``; people read them per input feature. The mapping comes from the fitted
transformer's structure (``output_indices_``, each encoder's ``categories_``), never from
column names: names are ambiguous (``education`` is a prefix of ``education_num``; feature
``a`` with category ``b_c`` and feature ``a_b`` with category ``c`` both give ``cat__a_b_c``).

Used by the trainer (importances) and by serving's explainer, both of which hold the fitted
sklearn pipeline, so nothing extra is stored with the model version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt


def output_sources(preprocess: Any) -> list[str]:
    """The input feature behind each output column of a fitted ``ColumnTransformer``.

    Supports what ``build_pipeline`` uses and its plain variants: ``passthrough`` (or a
    one-to-one ``FunctionTransformer``, which sklearn stores in its place), ``drop`` and
    ``OneHotEncoder`` (with or without ``drop`` and infrequent categories). Input columns must
    be given by name. Returns one feature name per output column, in output order.

    Raises ``TypeError`` for any other transformer (its columns' sources are not knowable from
    its structure) and ``ValueError`` when the counts disagree with the transformer's own
    ``output_indices_`` (which would mean a transformer this function misreads).
    """
    width = max((part.stop for part in preprocess.output_indices_.values()), default=0)
    sources: list[str | None] = [None] * width
    for name, transformer, columns in preprocess.transformers_:
        part = preprocess.output_indices_[name]
        owners = _transformer_sources(transformer, _column_names(preprocess, columns))
        if len(owners) != part.stop - part.start:
            raise ValueError(
                f"transformer {name!r} gives {part.stop - part.start} columns,"
                f" its structure accounts for {len(owners)}"
            )
        sources[part] = owners
    missing = [i for i, source in enumerate(sources) if source is None]
    if missing:
        raise ValueError(f"no transformer accounts for output columns {missing[:5]}")
    return [str(source) for source in sources]


def sum_by_feature(
    values: npt.ArrayLike, sources: Sequence[str], names: Sequence[str]
) -> npt.NDArray[np.float64]:
    """Sum per-column values (last axis) into per-feature values, in ``names`` order.

    ``values`` has shape ``(..., len(sources))`` (one row of contributions, a matrix of them, or
    importances); the result has shape ``(..., len(names))``, 0.0 for a feature that produced
    no column. Raises ``ValueError`` naming a source that is not in ``names``.
    """
    position = {name: i for i, name in enumerate(names)}
    indicator = np.zeros((len(sources), len(names)))
    for column, source in enumerate(sources):
        if source not in position:
            raise ValueError(f"column {column} comes from {source!r}, which is not a feature")
        indicator[column, position[source]] = 1.0
    return np.asarray(values, dtype=np.float64) @ indicator


def _column_names(preprocess: Any, columns: Any) -> list[str]:
    """Input column names; the remainder's columns are stored as positions."""
    known = getattr(preprocess, "feature_names_in_", None)
    names = []
    for column in columns:
        if isinstance(column, str):
            names.append(column)
        elif isinstance(column, int | np.integer) and known is not None:
            names.append(str(known[column]))
        else:
            raise TypeError(f"columns must be named to be attributed, got {column!r}")
    return names


def _transformer_sources(transformer: Any, columns: list[str]) -> list[str]:
    if transformer == "drop" or not columns:
        # sklearn keeps a transformer given no columns unfitted; it produces nothing.
        return []
    if isinstance(transformer, str):
        if transformer == "passthrough":
            return columns
        raise TypeError(f"unknown transformer {transformer!r}")
    if getattr(transformer, "feature_names_out", None) == "one-to-one":
        # A FunctionTransformer that declares column i out comes from column i in; sklearn
        # stores "passthrough" as one of these in transformers_.
        return columns
    if hasattr(transformer, "categories_") and hasattr(transformer, "drop_idx_"):
        return _one_hot_sources(transformer, columns)
    raise TypeError(f"cannot attribute the columns of {type(transformer).__name__}")


def _one_hot_sources(encoder: Any, columns: list[str]) -> list[str]:
    """One name per one-hot column: categories, less the dropped one, infrequent ones merged."""
    try:
        infrequent = encoder.infrequent_categories_
    except AttributeError:  # the encoder was fitted without infrequent grouping
        infrequent = [None] * len(columns)
    owners = []
    for i, column in enumerate(columns):
        count = len(encoder.categories_[i])
        if infrequent[i] is not None:
            # The infrequent categories share one output column.
            count -= len(infrequent[i]) - 1
        if encoder.drop_idx_ is not None and encoder.drop_idx_[i] is not None:
            count -= 1
        owners += [column] * count
    return owners
