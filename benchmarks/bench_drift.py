"""Drift checks at scale: files mode on 1M vs 1M rows beside Evidently, and a fleet's window.

Files. UCI Adult is resampled with replacement to 1M reference rows and 1M current rows (the
current sample favours people under 35 three to one: a covariate shift in age, marital status
and relationship) and written once to Parquet. Each side then runs in its own process and
reads both files. Driftline streams them inside its check, as ``driftline drift-check
--reference --current`` does (``drift_files.files_inputs``: record batches of the needed
columns, the current table reduced into a drift sketch), so its load time is its imports and
its check time includes reading. Evidently loads both tables with pandas first (timed apart),
then runs ``DataDriftPreset(method="psi")`` with the same 0.2 threshold. Evidently 0.7 needs
pandas < 3, so it gets its own venv (~/.cache/driftline/evidently-venv, created on first use).
Reported per side: load and check wall time, peak RSS of the whole process (``os.wait4``),
and the check's own peak (the kernel's VmHWM, reset after loading) above what it held then.

Fleet. A 60-minute window of one model version served by 1,000 pods: 60,000 one-minute drift
sketch buckets of ~16,667 requests each, a billion predictions, in a SQLite store (and in
PostgreSQL, Debian's, started for the run, unless --no-postgres). Twenty distinct buckets are
counted by ``driftline.sketch.Sketcher`` from resampled Adult rows with a deterministic score
as the probability, then stored cycling through them under other pod names and bucket starts
(the merged sample repeats rows: figures of time and memory, not of statistics). Generation is
not timed. A fresh process then reads, merges and decides the window through
``drift_check.merged_sketches``, the function live checks use; its imports (scipy included)
are timed apart; wall time and peak RSS of the whole process come from ``os.wait4``.

Usage: python benchmarks/bench_drift.py [--rows 1000000] [--pods 1000] [--minutes 60]
       [--no-postgres]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
EVIDENTLY_VENV = Path.home() / ".cache" / "driftline" / "evidently-venv"
PSI_THRESHOLD = 0.2
EVIDENTLY_PINS = ["evidently==0.7.*", "pandas<3", "pyarrow"]
# The data folder's column list: Evidently's venv cannot import driftline to read Adult's.
COLUMNS_FILE = "columns.json"
# The fleet's window, written by the parent for the child: model, version, since, until.
FLEET_FILE = "fleet.json"
FLEET_BASELINE = "fleet-baseline.json"
FLEET_MODEL, FLEET_VERSION, FLEET_VARIANT = "adult-income", "1", "champion"
FLEET_PREDICTIONS = 1_000_000_000
# Distinct buckets counted for real; the stored ones cycle through them.
DISTINCT_BUCKETS = 20
INSERT_ROWS = 2_000


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


def generate(step: str, folder: Path, *args: str) -> None:
    """Run a data-generating step in a process of its own.

    The parent stays small: Linux starts a forked child's peak RSS (what ``os.wait4``
    reports) at its parent's RSS, so a parent holding the generated tables would inflate
    every measured child's figure to its own.
    """
    command = [sys.executable, __file__, "--child", step, "--data", str(folder), *args]
    subprocess.run(command, check=True)


def measure(python: Path, side: str, folder: Path, *args: str) -> dict:
    """Run one side in a fresh process; its own figures plus wall time and peak RSS from outside."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(python), __file__, "--child", side, "--data", str(folder), *args],
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
    rss_loaded, peak_loading = _status_kb("VmRSS"), _status_kb("VmHWM")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    psi = run(reference, current)
    done = time.perf_counter()
    result = {
        "side": side,
        "load_seconds": round(loaded - started, 2),
        "check_seconds": round(done - loaded, 2),
        "total_seconds": round(done - started, 2),
        "rss_after_load_mb": round(rss_loaded / 1024, 1),
        "check_peak_above_loaded_mb": round((_status_kb("VmHWM") - rss_loaded) / 1024, 1),
        # A cross-check of os.wait4's figure from inside: the kernel's VmHWM, before and after
        # the reset.
        "own_peak_rss_mb": round(max(peak_loading, _status_kb("VmHWM")) / 1024, 1),
        "psi": {name: round(value, 3) for name, value in psi.items()},
        # Evidently's rule is PSI alone; Driftline's adds a significant test (BH).
        "psi_above_threshold": sorted(name for name, value in psi.items() if value > PSI_THRESHOLD),
    }
    print(json.dumps(result))


def driftline_check(numeric: list[str], categorical: list[str]):
    # The column lists go unused: like `driftline drift-check`, Driftline infers the types.
    from driftline.job_contracts import DriftThresholds
    from driftline_training.drift_check import run_check
    from driftline_training.drift_files import FilesOptions, files_inputs

    def run(reference: Path, current: Path) -> dict[str, float]:
        # Streams both files: reading is part of the check, nothing is loaded before it.
        inputs = files_inputs(reference, current, FilesOptions())
        report = run_check(inputs, DriftThresholds(psi=PSI_THRESHOLD))
        return {f.name: f.psi for f in report.features}

    return (lambda path: path), run


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


def fleet_score(frame):
    """A deterministic probability of >50K from a few features (a stand-in for a model)."""
    import numpy as np

    z = (
        (frame["age"].to_numpy() - 38) / 10
        + (frame["education_num"].to_numpy() - 10) / 3
        + (frame["hours_per_week"].to_numpy() - 40) / 15
        + np.log1p(frame["capital_gain"].to_numpy()) / 4
        - 1.5
    )
    return 1 / (1 + np.exp(-z))


def make_fleet(folder: Path, pods: int, minutes: int, stores: list[str]) -> dict:
    """Write the fleet's window into each store URL, and what a reader needs into FLEET_FILE.

    ``DISTINCT_BUCKETS`` buckets of ``FLEET_PREDICTIONS / (pods * minutes)`` requests each are
    counted as serving counts them (``Sketcher.add``, one request at a time, values as the
    validator hands them over), then ``pods * minutes`` rows are stored cycling through them.
    """
    import numpy as np
    import pandas as pd

    from driftline.baseline_builder import build_baseline
    from driftline.coercion import derive_schema
    from driftline.inference_log import SketchRecord, create_schema, engine_for, insert_sketches
    from driftline.schema import MISSING_CATEGORY, FeatureKind
    from driftline.sketch import Sketcher, random_key, sketch_layout
    from driftline_cli.settings import CliSettings
    from driftline_training.adult import TARGET, load_adult

    adult = load_adult("auto", CliSettings().data_dir)
    schema = derive_schema(adult, TARGET)
    features = adult[schema.names]
    baseline = build_baseline(features, fleet_score(features), schema)
    (folder / FLEET_BASELINE).write_text(baseline.to_json())
    layout = sketch_layout(baseline)
    requests = round(FLEET_PREDICTIONS / (pods * minutes))
    rng = np.random.default_rng(1)
    source = random.Random(1)
    kinds = [spec.kind for spec in schema.features]
    distinct = []
    for _ in range(DISTINCT_BUCKETS):
        rows = features.iloc[rng.integers(0, len(features), requests)]
        sketcher = Sketcher(layout, schema, bucket_seconds=60)
        for row, p in zip(rows.itertuples(index=False), fleet_score(rows), strict=True):
            values = [
                (math.nan if pd.isna(v) else float(v))
                if kind is FeatureKind.NUMERIC
                else (MISSING_CATEGORY if pd.isna(v) else v)
                for v, kind in zip(row, kinds, strict=True)
            ]
            sketcher.add(0.0, random_key(source), values, float(p), int(p >= 0.5))
        (sealed,) = sketcher.seal()
        distinct.append(sealed)
    # The last `minutes` whole minutes: day partitions (PostgreSQL) exist around now.
    since = math.floor(time.time() / 60) * 60 - minutes * 60
    records = [
        SketchRecord(
            model=FLEET_MODEL,
            version=FLEET_VERSION,
            variant=FLEET_VARIANT,
            pod=f"adult-income-{pod:04d}",
            layout=layout.digest,
            bucket=dataclasses.replace(
                distinct[(pod * minutes + minute) % DISTINCT_BUCKETS], start=since + 60.0 * minute
            ),
        )
        for pod in range(pods)
        for minute in range(minutes)
    ]
    for url in stores:
        engine = engine_for(url)
        create_schema(engine)
        for start in range(0, len(records), INSERT_ROWS):
            insert_sketches(engine, records[start : start + INSERT_ROWS])
        engine.dispose()
    plan = {
        "model": FLEET_MODEL,
        "version": FLEET_VERSION,
        "since": since,
        "until": since + 60.0 * minutes,
        "pods": pods,
        "minutes": minutes,
        "requests_per_bucket": requests,
        "bucket_bytes": len(distinct[0].counts) + len(distinct[0].sample),
    }
    (folder / FLEET_FILE).write_text(json.dumps(plan))
    return plan


def fleet_child(folder: Path, store: str) -> None:
    """Read, merge and decide the fleet's window in this fresh process; print one JSON line."""
    started = time.perf_counter()
    import scipy.stats  # noqa: F401  (the KS and chi-squared tests': timed with the imports)

    from driftline.baseline import Baseline
    from driftline.drift import decide
    from driftline.inference_log import engine_for
    from driftline.job_contracts import DriftThresholds
    from driftline_training.drift_check import merged_sketches
    from driftline_training.log_store import masked

    plan = json.loads((folder / FLEET_FILE).read_text())
    baseline = Baseline.from_json((folder / FLEET_BASELINE).read_text())
    engine = engine_for(store)
    imported = time.perf_counter()
    rss_imported = _status_kb("VmRSS")
    merged = merged_sketches(
        engine, baseline, plan["model"], plan["version"], plan["since"], plan["until"],
        masked(store),
    )  # fmt: skip
    read = time.perf_counter()
    report = decide(baseline, merged.summary(), DriftThresholds(psi=PSI_THRESHOLD))
    done = time.perf_counter()
    window = report.window
    assert window is not None
    result = {
        "store": store.split(":", 1)[0],
        "import_seconds": round(imported - started, 2),
        "read_merge_seconds": round(read - imported, 2),
        "decide_seconds": round(done - read, 2),
        "check_seconds": round(done - imported, 2),
        "rss_after_imports_mb": round(rss_imported / 1024, 1),
        "own_peak_rss_mb": round(_status_kb("VmHWM") / 1024, 1),
        "requests": window.rows,
        "buckets": window.buckets,
        "pods": window.pods,
        "ks_sample": window.ks_sample,
        "status": report.status.value,
    }
    print(json.dumps(result))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def files_runs(rows: int) -> dict:
    """The files comparison: data written once, then each side in a fresh process."""
    evidently = evidently_python()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate("make-data", folder, "--rows", str(rows))
        runs = [measure(Path(sys.executable), "driftline", folder)]
        runs.append(measure(evidently, "evidently", folder))
    ours, theirs = runs
    print(f"files mode, {rows:,} vs {rows:,} rows x {len(ours['psi'])} Adult features (Parquet)")
    for run in runs:
        print(
            f"  {run['side']:<10} load {run['load_seconds']:5.2f} s  check"
            f" {run['check_seconds']:5.2f} s  total {run['total_seconds']:5.2f} s"
            f"  peak RSS {run['peak_rss_mb']:7.1f} MB  check peak above loaded"
            f" {run['check_peak_above_loaded_mb']:6.1f} MB  PSI > {PSI_THRESHOLD}:"
            f" {', '.join(run['psi_above_threshold'])}",
            flush=True,
        )
    summary = {
        "rows": rows,
        "features": len(ours["psi"]),
        "runs": runs,
        "check_time_ratio": round(theirs["check_seconds"] / max(ours["check_seconds"], 1e-9), 1),
        "total_time_ratio": round(theirs["total_seconds"] / max(ours["total_seconds"], 1e-9), 1),
        "peak_rss_ratio": round(theirs["peak_rss_mb"] / ours["peak_rss_mb"], 1),
        "goal": {"peak_rss_mb": 400},
    }
    print(
        f"  Evidently / Driftline: {summary['total_time_ratio']}x the load + check time,"
        f" {summary['peak_rss_ratio']}x the peak RSS (goal: <= 400 MB for Driftline's process)"
    )
    return summary


def fleet_runs(pods: int, minutes: int, postgres: bool) -> dict:
    """The fleet's window in SQLite (and PostgreSQL), each read by a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stores = [f"sqlite:///{folder / 'fleet.db'}"]
        server = None
        if postgres:
            sys.path.insert(0, str(REPO))
            from tests.integration.postgres import PostgresServer

            server = PostgresServer()
            server.start()
            stores.append(server.url)
        try:
            started = time.perf_counter()
            store_args = [arg for store in stores for arg in ("--store", store)]
            generate(
                "make-fleet", folder, "--pods", str(pods), "--minutes", str(minutes), *store_args
            )
            plan = json.loads((folder / FLEET_FILE).read_text())
            print(f"fleet window written in {time.perf_counter() - started:.0f} s (not timed)")
            runs = [measure(Path(sys.executable), "fleet", folder, "--store", s) for s in stores]
        finally:
            if server is not None:
                server.stop()
                shutil.rmtree(server.root, ignore_errors=True)
    print(
        f"fleet: {plan['pods']} pods x {plan['minutes']} one-minute buckets of"
        f" {plan['requests_per_bucket']:,} requests ({plan['bucket_bytes']:,} bytes a bucket)"
    )
    for run in runs:
        print(
            f"  {run['store']:<10} {run['requests']:,} requests, {run['buckets']:,} buckets:"
            f" read + merge {run['read_merge_seconds']:5.2f} s  decide"
            f" {run['decide_seconds']:5.2f} s  (imports {run['import_seconds']:.2f} s)"
            f"  peak RSS {run['peak_rss_mb']:6.1f} MB  [{run['status']}]",
            flush=True,
        )
    return {**plan, "runs": runs, "goal": {"check_seconds": 2, "peak_rss_mb": 300}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pods", type=int, default=1_000)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--no-postgres", action="store_true", help="fleet in SQLite only")
    parser.add_argument("--only", choices=["files", "fleet"], help="run one of the two")
    children = ["driftline", "evidently", "fleet", "make-data", "make-fleet"]
    parser.add_argument("--child", choices=children, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", action="append", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "make-data":
        make_data(args.data, args.rows)
        return
    if args.child == "make-fleet":
        make_fleet(args.data, args.pods, args.minutes, args.store)
        return
    if args.child == "fleet":
        fleet_child(args.data, args.store[0])
        return
    if args.child:
        child(args.child, args.data)
        return
    # The machine's load beside the figures: other work on its cores slows every side.
    summary: dict = {"benchmark": "drift", "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    if args.only != "fleet":
        summary.update(files_runs(args.rows))
    if args.only != "files":
        summary["fleet"] = fleet_runs(args.pods, args.minutes, not args.no_postgres)
    summary["load_after"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "drift.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
