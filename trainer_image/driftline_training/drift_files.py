"""Files-mode drift checks: a reference table against a current one, both streamed.

The baseline is built from the reference as a trainer builds it; the decision is
``driftline.drift.decide``, as in live mode (``driftline_training.drift_check``).

Both tables are read in record batches of ``BATCH_ROWS`` rows, only the columns the check
needs (Parquet through pyarrow's page-wise reader, CSV through pandas' chunked reader), named
and cleaned as ``adult.load_table`` names them and typed through ``driftline.coercion``. The
current table never sits in memory whole: each batch is typed, counted over the baseline's
bins into a drift-sketch bucket (``bucket_from_frame``) and merged into a ``WindowSketch``, so
PSI and the chi-squared and missing-share tests are the row-level ones and the KS tests see a
uniform sample of ``CURRENT_SAMPLE_ROWS`` rows. The reference is kept compactly
(``_ReferenceColumn``), because the schema and the baseline's exact quantile edges need all
its values, and freed before the current table is read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from driftline.baseline import Baseline, CategoricalReference, NumericReference
from driftline.baseline_builder import numeric_reference
from driftline.coercion import FeatureValueError, coerce_column, derive_schema
from driftline.drift_window import WindowSummary
from driftline.schema import MISSING_CATEGORY, FeatureKind, FeatureSchema, FeatureSpec
from driftline.sketch import KEY_BITS, BucketChunk, WindowSketch, sketch_layout
from driftline.sketch_frames import bucket_from_frame
from driftline_training.adult import normalise
from driftline_training.contracts import read_schema
from driftline_training.drift_check import DriftInputs, model_frame
from driftline_training.errors import DataSourceError, DriftInputError

T = TypeVar("T")

# Rows per record batch in files mode: large enough that per-batch work (pandas, a bucket's
# numpy) is amortised, small enough that a batch of wide rows stays a few tens of MB.
BATCH_ROWS = 65_536
# Rows of the current table's uniform sample for the KS tests: its CDF is within 0.0043 of all
# rows' (95%, DKW), small beside the 5,000-value reference sample's 0.019, so the tests lose
# almost no power. 100,000 rows of (key, numeric features, probability) in float32: ~3 MB.
CURRENT_SAMPLE_ROWS = 100_000
# derive_schema's default null_slack: the reference's schema tolerates its null share plus this.
NULL_SLACK = 0.05
# The current sample's keys draw from a stream of their own: the reference's KS sample draws
# from default_rng(seed) itself.
_KEY_STREAM = 1
# What load_table passes pandas for CSV: Adult's " ?" cells are missing.
_CSV_OPTIONS: dict[str, Any] = {"skipinitialspace": True, "na_values": ["?"]}


@dataclass(frozen=True)
class FilesOptions:
    """How files mode reads the reference: schema, ignored columns, baseline resolution."""

    schema: Path | None = None
    target: str | None = None
    prediction_column: str | None = None
    bins: int = 10
    sample_size: int = 5000
    seed: int = 0


@dataclass(frozen=True)
class _Table:
    """A table to stream: its column names and a reader of batches of some of them.

    ``batches(names)`` yields non-empty frames of exactly ``names``, indexed by the rows' labels
    in the table (row numbers for files), so errors name the row as a whole read would.
    """

    columns: tuple[str, ...]
    batches: Callable[[Sequence[str]], Iterator[pd.DataFrame]]


def files_inputs(reference: Path, current: Path, options: FilesOptions) -> DriftInputs:
    """Stream two tables; the baseline is built from the reference like a trainer builds it.

    The files are CSV or Parquet, named and typed as ``adult.load_table`` reads them, but read
    ``BATCH_ROWS`` rows and only the needed columns at a time. Memory: the current side holds a
    batch and its sample whatever its size; the reference is kept compactly (see
    ``_ReferenceColumn``: ~8 bytes a value). Raises DataSourceError for a file that cannot be
    read, DriftInputError for tables that do not fit (a missing column, a value its column's
    type cannot take, an empty reference). The KS tests compare on the float32 grid of the
    window's sample (``drift_window.NumericWindow.grid``).
    """
    source = {"mode": "files", "reference": str(reference), "current": str(current)}
    tables = _file_table(reference), _file_table(current)
    return _table_inputs(*tables, options, source)


def _table_inputs(
    reference: _Table, current: _Table, options: FilesOptions, source: dict[str, str]
) -> DriftInputs:
    """Both modes of files input: columns checked, reference kept, schema, baseline, window."""
    prediction = options.prediction_column
    schema = read_schema(options.schema) if options.schema is not None else None
    ignored = [c for c in (options.target, prediction) if c and c in reference.columns]
    if schema is not None:
        names = schema.names
    else:
        # Kinds come from the reference, by the rules every reader shares (driftline.coercion).
        names = [c for c in reference.columns if c not in ignored]
    wanted = _needed(names, prediction)
    for side, table in (("reference", reference), ("current", current)):
        absent = [name for name in wanted if name not in table.columns]
        if absent:
            raise DriftInputError(f"{side} data lacks columns: {', '.join(absent)}")
    columns, ref_proba, rows = _read_reference(reference, names, prediction)
    if not rows:
        raise DriftInputError("reference data has no rows: nothing to compare against")
    if schema is None:
        target = options.target if options.target in ignored else None
        try:
            specs = tuple(columns[name].spec() for name in names)
        except FeatureValueError as exc:
            raise DriftInputError(f"reference data: {exc}") from exc
        schema = FeatureSchema(features=specs, target=target)
    if schema.target:
        source = {**source, "target": f"{schema.target} (left out)"}
    note = ""
    if not prediction:
        note = "no model in files mode (name a probability column with --prediction-column)"
    baseline = _reference_baseline(schema, columns, ref_proba, rows, options)
    del columns  # the reference's values: the current side needs only the baseline
    window = _current_window(current, baseline, schema, prediction, options.seed)
    return DriftInputs(
        baseline=baseline,
        window=window,
        prediction_note=note,
        source={**source, "read": "stream"},
    )


def _read_reference(
    table: _Table, names: Sequence[str], prediction: str | None
) -> tuple[dict[str, _ReferenceColumn], npt.NDArray[np.float64], int]:
    """The reference's feature columns kept, its probabilities and its row count.

    With no probability column the probabilities are ``[0.0]``: build_baseline always wants
    some, and with no model they are never compared.
    """
    columns = {name: _ReferenceColumn(name) for name in names}
    probabilities = []
    rows = 0
    for batch in table.batches(_needed(names, prediction)):
        if prediction:
            probabilities.append(_probabilities(batch[prediction], "reference", prediction))
        for name, column in columns.items():
            try:
                column.add(batch[name])
            except TypeError as exc:
                # Parquet lists or structs: no kind of feature holds them.
                raise DriftInputError(f"reference data: {name}: {exc}") from exc
        rows += len(batch)
    if not prediction:
        return columns, np.zeros(1), rows
    return columns, np.concatenate(probabilities) if probabilities else np.zeros(0), rows


def _needed(names: Sequence[str], prediction: str | None) -> list[str]:
    """The columns a side is read for: the features, then the probability column if named."""
    return list(dict.fromkeys([*names, *([prediction] if prediction else [])]))


def _reference_baseline(
    schema: FeatureSchema,
    columns: dict[str, _ReferenceColumn],
    probabilities: npt.NDArray[np.float64],
    rows: int,
    options: FilesOptions,
) -> Baseline:
    """What ``build_baseline`` builds from the whole reference, built from its kept columns.

    Equal to it, value for value: the same typing, the same quantile edges over every value,
    and the same random draws in the same order for the KS samples (numeric features in
    schema order, then the probabilities). Exact edges need every value, so the reference is
    kept whole, compactly; it is the training table of a model, while the current table is
    the one that grows with traffic. Raises DriftInputError for a value its type cannot take.
    """
    rng = np.random.default_rng(options.seed)
    numeric: dict[str, NumericReference] = {}
    categorical: dict[str, CategoricalReference] = {}
    try:
        for spec in schema.features:
            column = columns[spec.name]
            if spec.kind is FeatureKind.NUMERIC:
                values = column.numbers(spec)
                numeric[spec.name] = numeric_reference(
                    values, options.bins, options.sample_size, rng
                )
            else:
                counts = column.category_counts(spec)
                categorical[spec.name] = CategoricalReference(
                    proportions={c: n / rows for c, n in sorted(counts.items())}, count=rows
                )
    except FeatureValueError as exc:
        raise DriftInputError(f"reference data: {exc}") from exc
    return Baseline(
        bins=options.bins,
        sample_size=options.sample_size,
        numeric=numeric,
        categorical=categorical,
        prediction=numeric_reference(probabilities, options.bins, options.sample_size, rng),
    )


class _ReferenceColumn:
    """One reference column as read, kept compactly until the schema and baseline need it.

    Batches read as numpy numbers stay arrays (8 bytes a value). Anything else (text, pandas
    categoricals, nullable extension types) is dictionary-encoded: each distinct value once,
    in order of first appearance with the row label it first appeared at, and an int32 code a
    row (-1 missing). Typing (``driftline.coercion``) then runs once per distinct value rather
    than once per row, with the same result: its rules take one value at a time, and a value's
    first row is the row its first error would name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows = 0
        self._labels: list[pd.Index] = []
        self._arrays: list[npt.NDArray[Any]] = []
        # None while every batch read as plain numbers.
        self._codes: list[npt.NDArray[np.int32]] | None = None
        self._values: list[Any] = []
        self._position: dict[Any, int] = {}
        self._first: list[Any] = []

    def add(self, column: pd.Series) -> None:
        """Keep one batch of the column. Raises TypeError for values that cannot be hashed."""
        if self._codes is None and _plain_numbers(column):
            self._arrays.append(column.to_numpy())
        else:
            if self._codes is None:
                self._codes = []
                for labels, array in zip(self._labels, self._arrays, strict=True):
                    self._encode(pd.Series(array, index=labels))
                self._arrays = []
            self._encode(column)
        self._labels.append(column.index)
        self.rows += len(column)

    def _encode(self, column: pd.Series) -> None:
        assert self._codes is not None
        codes, uniques = pd.factorize(column)  # uniques in order of appearance, -1 missing
        # Codes count up in order of appearance: a value first appears where their running
        # maximum steps up (no sort needed).
        first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
        lookup = np.full(len(uniques) + 1, -1, dtype=np.int32)
        for j, value in enumerate(np.asarray(uniques, dtype=object)):
            at = self._position.get(value)
            if at is None:
                at = self._position[value] = len(self._values)
                self._values.append(value)
                self._first.append(column.index[first[j]])
            lookup[j] = at
        self._codes.append(lookup[codes])

    def _index(self) -> pd.Index:
        return self._labels[0].append(self._labels[1:]) if self._labels else pd.RangeIndex(0)

    def _joined_codes(self) -> npt.NDArray[np.int32]:
        assert self._codes is not None
        if len(self._codes) != 1:
            self._codes = [np.concatenate(self._codes) if self._codes else np.zeros(0, np.int32)]
        return self._codes[0]

    def _lookup(self) -> npt.NDArray[np.object_]:
        """The distinct values, then None for the code -1."""
        lookup = np.empty(len(self._values) + 1, dtype=object)
        lookup[:-1] = self._values
        return lookup

    def whole(self) -> pd.Series:
        """Every row, as read (decoded: object values when the column was encoded)."""
        if self._codes is None:
            values = np.concatenate(self._arrays) if self._arrays else np.zeros(0)
            return pd.Series(values, index=self._index(), name=self.name)
        codes = self._joined_codes()
        return pd.Series(self._lookup()[codes], index=self._index(), dtype=object, name=self.name)

    def distinct(self) -> pd.Series:
        """The distinct present values (object), indexed by the row each first appeared at."""
        index = pd.Index(self._first, dtype=object)
        return pd.Series(self._lookup()[:-1], index=index, dtype=object, name=self.name)

    def spec(self) -> FeatureSpec:
        """The column's spec as ``derive_schema`` derives it from the whole column.

        Plain numbers are derived from the whole array (vectorised). Encoded columns are
        derived from their distinct values, which decide kind, categories and bounds alike,
        and the null share is counted over the rows; only a column mixing numbers and other
        text is derived from every row, since its kind depends on how many rows hold each.
        Raises FeatureValueError as derive_schema does.
        """
        if self._codes is None:
            return _derived(self.whole())
        distinct = self.distinct()
        if _mixes_numbers_and_text(distinct):
            return _derived(self.whole())
        spec = _derived(distinct)
        typed = coerce_column(distinct, FeatureSpec(name=self.name, kind=spec.kind))
        codes = self._joined_codes()
        per_value = np.bincount(codes[codes >= 0], minlength=len(self._values))
        nulls = int((codes < 0).sum()) + int(per_value[typed.isna().to_numpy()].sum())
        share = nulls / self.rows
        return spec.model_copy(
            update={
                "nullable": share > 0,
                "max_null_fraction": min(1.0, share + NULL_SLACK) if share > 0 else 0.0,
            }
        )

    def numbers(self, spec: FeatureSpec) -> npt.NDArray[np.float64]:
        """The column typed as the numeric ``spec``, row by row (NaN missing).

        Raises FeatureValueError naming the first row whose value is not a number.
        """
        if self._codes is None:
            whole: npt.NDArray[np.float64] = coerce_column(self.whole(), spec).to_numpy(np.float64)
            return whole
        typed = coerce_column(self.distinct(), spec).to_numpy(dtype=np.float64)
        return np.append(typed, np.nan)[self._joined_codes()]

    def category_counts(self, spec: FeatureSpec) -> dict[str, int]:
        """Rows per category once typed as the categorical ``spec`` (missing as its token)."""
        if self._codes is None:
            typed = coerce_column(self.whole(), spec).fillna(MISSING_CATEGORY)
            return {str(k): int(v) for k, v in typed.value_counts(sort=False).items()}
        labels = coerce_column(self.distinct(), spec).fillna(MISSING_CATEGORY)
        codes = self._joined_codes()
        per_value = np.bincount(codes[codes >= 0], minlength=len(self._values))
        counts: dict[str, int] = {}
        missing = int((codes < 0).sum())
        for label, count in zip([*labels, MISSING_CATEGORY], [*per_value, missing], strict=True):
            if count:
                counts[str(label)] = counts.get(str(label), 0) + int(count)
        return counts


def _plain_numbers(column: pd.Series) -> bool:
    """Numbers or booleans in a numpy dtype: kept as an array, typed without per-value work."""
    return isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf"


def _derived(column: pd.Series) -> FeatureSpec:
    """``derive_schema``'s spec of one column (no target, no fixed kinds)."""
    return derive_schema(column.to_frame(), None).features[0]


def _mixes_numbers_and_text(distinct: pd.Series) -> bool:
    """Whether some present values read as numbers and others do not (with no booleans).

    Then derive_schema's kind depends on how many rows hold each (numeric when every value
    reads as a number, refused when text is under half of them, categorical otherwise), so
    the whole column must be derived. Reads values as that rule does: text stripped, blank
    text missing, booleans making the column categorical whatever their count.
    """
    present = [v.strip() if isinstance(v, str) else v for v in distinct]
    present = [v for v in present if v != ""]
    if any(isinstance(v, bool | np.bool_) for v in present):
        return False
    numbers = int(pd.to_numeric(pd.Series(present, dtype=object), errors="coerce").notna().sum())
    return 0 < numbers < len(present)


def _current_window(
    table: _Table,
    baseline: Baseline,
    schema: FeatureSchema,
    prediction: str | None,
    seed: int,
) -> WindowSummary:
    """The current table reduced batch by batch into one drift sketch, then summarised.

    Each batch is typed (``to_model_frame``), counted over the baseline's bins with a uniform
    key a row (``bucket_from_frame``) and merged into a ``WindowSketch`` that keeps the
    ``CURRENT_SAMPLE_ROWS`` rows of smallest key: counts exact, the KS sample a uniform one of
    the table (all of it when it is smaller). Memory is a batch and the sample, whatever the
    table's size. The summary's window is a sketch whose buckets are the batches.
    """
    layout = sketch_layout(baseline)
    merged = WindowSketch(layout, CURRENT_SAMPLE_ROWS)
    rng = np.random.default_rng([seed, _KEY_STREAM])
    for batch in table.batches(_needed(schema.names, prediction)):
        probabilities = None
        if prediction:
            probabilities = _probabilities(batch[prediction], "current", prediction)
        typed = model_frame(batch, schema, "current")
        # Steps of 2**-KEY_BITS, as serving's keys: float32 holds them exactly, all below 1.
        keys = rng.integers(0, 2**KEY_BITS, len(batch)) / 2**KEY_BITS
        bucket = bucket_from_frame(
            layout, typed, probabilities, keys, sample_rows=CURRENT_SAMPLE_ROWS
        )
        merged.merge(BucketChunk.of([bucket], layout.digest, "files"))
    summary = merged.summary()
    window = summary.window.model_copy(update={"pods": 0, "bucket_seconds": None})
    # With no probability column every row was counted missing: there is no model to compare.
    return dataclasses.replace(
        summary, prediction=summary.prediction if prediction else None, window=window
    )


def _file_table(path: Path) -> _Table:
    """A CSV or Parquet file opened for streaming, its columns as ``adult.load_table`` names them.

    Only the header (Parquet: the schema) is read here. Batches go through ``adult.normalise``
    like a whole read and carry row numbers as labels. CSV is read by pandas' chunked reader
    with load_table's options, so cells are guessed as load_table guesses them (pyarrow's CSV
    reader fixes a column's type from the first block, fails on a later cell that does not
    fit, and has no ``skipinitialspace``); a chunk's guess can differ from a whole file's (a
    chunk without a blank keeps integers), which ``driftline.coercion`` undoes. Raises
    DataSourceError as load_table does, for the header now and for a batch when it is read.
    """
    if not path.exists():
        raise DataSourceError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    reader: Callable[[list[str]], Iterator[pd.DataFrame]]
    try:
        if suffix in {".parquet", ".pq"}:
            raw, reader = _parquet_reader(path)
        elif suffix in {".csv", ".txt"}:
            raw, reader = _csv_reader(path)
        else:
            raise DataSourceError(f"unsupported data file type {suffix!r}: use .csv or .parquet")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc
    read_as = _normalised_names(path, raw)

    def batches(names: Sequence[str]) -> Iterator[pd.DataFrame]:
        # One column at least, so that the rows are counted when no column is needed.
        wanted = list(dict.fromkeys(read_as[name] for name in names)) or raw[:1]
        offset = 0
        for frame in _guarded(path, reader(wanted)):
            frame = normalise(frame)
            frame.index = pd.RangeIndex(offset, offset + len(frame))
            offset += len(frame)
            if len(frame):
                yield frame[list(names)]

    return _Table(tuple(read_as), batches)


def _parquet_reader(path: Path) -> tuple[list[str], Callable[[list[str]], Iterator[pd.DataFrame]]]:
    """The file's columns and a reader of record batches of some of them.

    A file is read with ``pyarrow.parquet.ParquetFile.iter_batches``, which decodes a few
    pages at a time: ``pyarrow.dataset``'s scanner decodes a whole row group first, and pandas
    writes row groups of a million rows (~170 MB decoded for Adult's 14 columns). A folder
    (pd.read_parquet reads those too) goes through the scanner. pandas index columns are left
    out: load_table drops the index.
    """
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    dataset = ds.dataset(path, format="parquet")
    described = json.loads((dataset.schema.metadata or {}).get(b"pandas", b"{}"))
    index = {c for c in described.get("index_columns", []) if isinstance(c, str)}
    raw = [name for name in dataset.schema.names if name not in index]

    def read(columns: list[str]) -> Iterator[pd.DataFrame]:
        if path.is_dir():
            batches = dataset.to_batches(
                columns=columns, batch_size=BATCH_ROWS, batch_readahead=1, fragment_readahead=1
            )
        else:
            batches = pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns)
        for batch in batches:
            # to_pandas applies the file's pandas metadata: dtypes as pd.read_parquet gives.
            yield batch.to_pandas()

    return raw, read


def _csv_reader(path: Path) -> tuple[list[str], Callable[[list[str]], Iterator[pd.DataFrame]]]:
    """The header's columns and a reader of chunks of some of them, with load_table's options."""
    raw = [str(c) for c in pd.read_csv(path, nrows=0, **_CSV_OPTIONS).columns]

    def read(columns: list[str]) -> Iterator[pd.DataFrame]:
        with pd.read_csv(path, usecols=columns, chunksize=BATCH_ROWS, **_CSV_OPTIONS) as chunks:
            yield from chunks

    return raw, read


def _normalised_names(path: Path, raw: Sequence[str]) -> dict[str, str]:
    """Each column name as ``adult.normalise`` leaves it, to the file's column it is read from.

    normalise itself runs on a one-row frame holding each column's position, so the rules stay
    its own (snake case; a ``class`` label column becomes ``income`` and replaces any other).
    Raises DataSourceError when two columns end with one name.
    """
    marked = normalise(pd.DataFrame([list(range(len(raw)))], columns=list(raw)))
    names: dict[str, str] = {}
    for name, position in zip(marked.columns, marked.iloc[0], strict=True):
        if str(name) in names:
            raise DataSourceError(f"cannot read {path}: two columns are named {name!r}")
        names[str(name)] = raw[int(position)]
    return names


def _guarded(path: Path, batches: Iterator[T]) -> Iterator[T]:
    """``batches``, a reader's error on any of them raised as DataSourceError naming ``path``."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise DataSourceError(f"cannot read {path}: {exc}") from exc
        yield batch


def _probabilities(column: pd.Series, side: str, name: str) -> npt.NDArray[np.float64]:
    try:
        return pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise DriftInputError(f"{side} data: {name} is not a probability column") from exc
