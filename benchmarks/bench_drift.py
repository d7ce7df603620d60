"""Drift check on 1M vs 1M rows x 14 Adult features: Driftline beside Evidently's DataDriftPreset.

UCI Adult is resampled with replacement to 1M reference rows and 1M current rows (the current
sample favours people under 35 three to one: a covariate shift in age, marital status and
relationship) and written once to Parquet. Each side then runs in its own process: it loads both
files (timed apart), resets its peak-RSS mark, and runs its check. Reported per side: load and
check wall time, peak RSS of the whole process (``os.wait4``), and the check's own peak (the
kernel's VmHWM, reset after loading) above what the loaded frames already held.

Driftline runs what ``driftline drift-check --reference --current`` runs after loading: schema
inference, the baseline (10 quantile bins, 5,000-value KS sample), PSI + KS / chi-squared per
feature, Benjamini-Hochberg, the report. Evidently 0.7 needs pandas < 3, so it gets its own
venv (~/.cache/driftline/evidently-venv, created on first use) and runs
``DataDriftPreset(method="psi")`` with the same 0.2 threshold.
Usage: python benchmarks/bench_drift.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
EVIDENTLY_VENV = Path.home() / ".cache" / "driftline" / "evidently-venv"
PSI_THRESHOLD = 0.2
EVIDENTLY_PINS = ["evidently==0.7.*", "pandas<3", "pyarrow"]
# The data folder's column list: Evidently's venv cannot import driftline to read Adult's.
COLUMNS_FILE = "columns.json"


def make_data(folder: Path, rows: int) -> None:
    import numpy as np

    from driftline_cli.settings import CliSettings
    from driftline_training.adult import CATEGORICAL, NUMERIC, load_adult

    (folder / COLUMNS_FILE).write_text(json.dumps({"numeric": NUMERIC, "categorical": CATEGORICAL}))
    adult = load_adult("auto", CliSettings().data_dir)[NUMERIC + CATEGORICAL]
    # Object columns keep the files readable by pandas 2 (Evidently's venv) and pandas 3 alike.
    adult = adult.astype({c: object for c in CATEGORICAL})
    rng = np.random.default_rng(0)
    reference = adult.iloc[rng.integers(0, len(adult), rows)].reset_index(drop=True)
    weights = np.where(adult["age"].to_numpy() < 35, 3.0, 1.0)
    current_index = rng.choice(len(adult), rows, p=weights / weights.sum())
    current = adult.iloc[current_index].reset_index(drop=True)
    reference.to_parquet(folder / "reference.parquet")
    current.to_parquet(folder / "current.parquet")


def evidently_python() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    probe = [str(python), "-c", "import evidently, pandas; assert pandas.__version__ < '3'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"creating {EVIDENTLY_VENV} (pip install {' '.join(EVIDENTLY_PINS)})", flush=True)
    subprocess.run(["python3.11", "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *EVIDENTLY_PINS], check=True)
    return python


def measure(python: Path, side: str, folder: Path) -> dict:
    """Run one side in a fresh process; its own figures plus wall time and peak RSS from outside."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(python), __file__, "--child", side, "--data", str(folder)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    stdout = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"the {side} run failed (status {status})")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    result["process_wall_seconds"] = round(time.perf_counter() - started, 2)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    return result


def child(side: str, folder: Path) -> None:
    """Load both files, reset the peak mark, run the check; print one JSON line."""
    started = time.perf_counter()
    columns = json.loads((folder / COLUMNS_FILE).read_text())
    check = {"driftline": driftline_check, "evidently": evidently_check}[side]
    load, run = check(columns["numeric"], columns["categorical"])
    reference, current = load(folder / "reference.parquet"), load(folder / "current.parquet")
    loaded = time.perf_counter()
    rss_loaded = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    psi = run(reference, current)
    done = time.perf_counter()
    result = {
        "side": side,
        "load_seconds": round(loaded - started, 2),
        "check_seconds": round(done - loaded, 2),
        "rss_after_load_mb": round(rss_loaded / 1024, 1),
        "check_peak_above_loaded_mb": round((_status_kb("VmHWM") - rss_loaded) / 1024, 1),
        "psi": {name: round(value, 3) for name, value in psi.items()},
        # Evidently's rule is PSI alone; Driftline's adds a significant test (BH).
        "psi_above_threshold": sorted(name for name, value in psi.items() if value > PSI_THRESHOLD),
    }
    print(json.dumps(result))


def driftline_check(numeric: list[str], categorical: list[str]):
    # The column lists go unused: like `driftline drift-check`, Driftline infers the types.
    from driftline.job_contracts import DriftThresholds
    from driftline_training.adult import load_table
    from driftline_training.drift_check import FilesOptions, frames_inputs, run_check

    def run(reference, current) -> dict[str, float]:
        inputs = frames_inputs(reference, current, FilesOptions(), {"mode": "files"})
        report = run_check(inputs, DriftThresholds(psi=PSI_THRESHOLD))
        return {f.name: f.psi for f in report.features}

    return load_table, run


def evidently_check(numeric: list[str], categorical: list[str]):
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)

    def run(reference, current) -> dict[str, float]:
        report = Report([DataDriftPreset(method="psi", threshold=PSI_THRESHOLD)])
        snapshot = report.run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        return {
            m["config"]["column"]: float(m["value"])
            for m in snapshot.dict()["metrics"]
            if m["config"]["type"].endswith(":ValueDrift")
        }

    return pd.read_parquet, run


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["driftline", "evidently"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    evidently = evidently_python()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(folder, args.rows)
        runs = [measure(Path(sys.executable), "driftline", folder)]
        runs.append(measure(evidently, "evidently", folder))
    ours, theirs = runs
    for run in runs:
        print(
            f"{run['side']:<10} check {run['check_seconds']:6.2f} s"
            f"  (load {run['load_seconds']:.2f} s)  peak RSS {run['peak_rss_mb']:7.1f} MB"
            "  check peak above loaded data"
            f" {run['check_peak_above_loaded_mb']:6.1f} MB  PSI > {PSI_THRESHOLD}:"
            f" {', '.join(run['psi_above_threshold'])}",
            flush=True,
        )
    summary = {
        "benchmark": "drift",
        "rows": args.rows,
        "features": len(ours["psi"]),
        "cpus": os.cpu_count(),
        "runs": runs,
        "check_time_ratio": round(theirs["check_seconds"] / max(ours["check_seconds"], 1e-9), 1),
        "peak_rss_ratio": round(theirs["peak_rss_mb"] / ours["peak_rss_mb"], 1),
        "goal": {"check_seconds": 2, "check_peak_mb": 400},
    }
    print(
        f"Evidently / Driftline: {summary['check_time_ratio']}x the check time,"
        f" {summary['peak_rss_ratio']}x the peak RSS (goal: check <= 2 s, <= 400 MB)"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "drift.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
