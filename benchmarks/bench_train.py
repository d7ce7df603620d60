"""Full training runs (split, 5-fold CV, fit, ONNX export and parity, MLflow logging).

Each seed runs `driftline train --no-register --json` in a fresh process against a throwaway
embedded MLflow store; wall time and the child's peak RSS are measured from outside.
Usage: python benchmarks/bench_train.py --seeds 0 1 2 42
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def run_once(seed: int) -> dict:
    driftline = Path(sys.executable).parent / "driftline"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "DRIFTLINE_HOME": home}
        env.pop("MLFLOW_TRACKING_URI", None)
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(driftline), "train", "--seed", str(seed), "--no-register", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        stdout = process.stdout.read() if process.stdout else b""
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"training with seed {seed} failed (status {status})")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    return {
        "seed": seed,
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "test_roc_auc": round(result["metrics"]["roc_auc"], 5),
        "cv_roc_auc_mean": round(result["cv"]["roc_auc"]["mean"], 5),
        "trees": result["rounds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        run = run_once(seed)
        runs.append(run)
        print(
            f"seed {seed:>3}: {run['wall_seconds']:6.1f} s  peak RSS {run['peak_rss_mb']:7.1f} MB"
            f"  test AUC-ROC {run['test_roc_auc']:.4f}  CV {run['cv_roc_auc_mean']:.4f}"
            f"  trees {run['trees']}",
            flush=True,
        )
    summary = {
        "benchmark": "train",
        "cpus": os.cpu_count(),
        "runs": runs,
        "mean_test_roc_auc": round(statistics.mean(r["test_roc_auc"] for r in runs), 5),
        "max_wall_seconds": max(r["wall_seconds"] for r in runs),
        "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "goal_wall_seconds": 60,
    }
    print(
        f"mean test AUC-ROC {summary['mean_test_roc_auc']:.4f}; slowest run"
        f" {summary['max_wall_seconds']:.1f} s (goal <= 60 s); peak RSS"
        f" {summary['max_peak_rss_mb']:.0f} MB"
    )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "train.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
