"""The performance check over 1M labelled rows: wall time and peak memory.

A SQLite inference log of ``--rows`` predictions (real Adult feature rows as JSON, so a row is
as wide as a served one) is built once under ~/.cache/driftline/bench-performance/, with a
label for each of ``--labelled`` of them: 90% served by a champion version, 10% by a
challenger, probabilities from Beta(2, 5) and labels drawn from them. Each round runs
``driftline performance-check --json`` in a fresh process, timed from start to exit, with the
peak RSS of the whole process (``os.wait4``); a second child times the store read (the join)
and the scoring apart.
Usage: python benchmarks/bench_performance.py [--rows 1000000] [--labelled 1000000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
CACHE = Path.home() / ".cache" / "driftline" / "bench-performance"
MODEL = "adult-income"
# The whole window: rows are stamped within the last day of the cache's creation, and the
# check looks back far enough to hold them however old the cache is.
LOOKBACK = "3650d"


def build_store(path: Path, rows: int, labelled: int) -> None:
    import numpy as np

    from driftline.inference_log import (
        Feedback,
        LogRecord,
        create_schema,
        engine_for,
        insert_batch,
        upsert_feedback,
    )
    from driftline_cli.settings import CliSettings
    from driftline_training.adult import CATEGORICAL, NUMERIC, load_adult

    adult = load_adult("auto", CliSettings().data_dir)[NUMERIC + CATEGORICAL]
    features = json.loads(adult.to_json(orient="records"))
    rng = np.random.default_rng(0)
    probability = rng.beta(2, 5, rows)
    label = (rng.random(rows) < probability).astype(int)
    challenger = rng.random(rows) < 0.1
    start = time.time() - 86_400
    engine = engine_for(f"sqlite:///{path}")
    create_schema(engine)
    chunk = 50_000
    for first in range(0, rows, chunk):
        records = [
            LogRecord(
                start + i * 86_400 / rows, MODEL, "2" if challenger[i] else "1",
                "challenger" if challenger[i] else "champion", f"bench-{i}",
                features[i % len(features)], int(probability[i] >= 0.4), float(probability[i]),
                1.0,
            )
            for i in range(first, min(rows, first + chunk))
        ]  # fmt: skip
        insert_batch(engine, records)
        labels = [
            Feedback(r.ts + 3600.0, MODEL, r.request_id, int(label[first + j]))
            for j, r in enumerate(records)
            if first + j < labelled
        ]
        upsert_feedback(engine, labels)
    engine.dispose()


def store_path(rows: int, labelled: int) -> Path:
    path = CACHE / f"log-{rows}-{labelled}.db"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        started = time.perf_counter()
        build_store(partial, rows, labelled)
        partial.rename(path)
        print(f"built {path} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB of the whole process, and its stdout."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed ({status}): {out[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out


def child(url: str) -> None:
    """Time the join and the scoring apart (printed as one JSON line)."""
    from driftline.inference_log import engine_for, read_labelled
    from driftline.performance import assess

    started = time.perf_counter()
    rows = read_labelled(engine_for(url), MODEL, since=0.0, until=time.time() + 1)
    read = time.perf_counter() - started
    started = time.perf_counter()
    groups = assess(
        rows.version, rows.variant, rows.probability, rows.prediction, rows.label,
        rows.arrived - rows.ts, min_labels=200,
    )  # fmt: skip
    scored = time.perf_counter() - started
    print(json.dumps({"read_seconds": read, "assess_seconds": scored, "groups": len(groups)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--labelled", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    url = f"sqlite:///{store_path(args.rows, args.labelled)}"
    driftline = str(Path(sys.executable).parent / "driftline")
    command = [driftline, "performance-check", "--log-store", url, "--lookback", LOOKBACK]
    rounds = []
    for number in range(1, args.rounds + 1):
        wall, peak, out = run_measured([*command, "--json"])
        report = json.loads(out.strip().splitlines()[-1])
        _, _, parts = run_measured([sys.executable, __file__, "--child", url])
        split = json.loads(parts.strip().splitlines()[-1])
        result = {
            "round": number,
            "cli_wall_seconds": round(wall, 2),
            "cli_peak_rss_mb": round(peak, 1),
            "read_seconds": round(split["read_seconds"], 2),
            "assess_seconds": round(split["assess_seconds"], 2),
            "labelled": sum(g["labelled"] for g in report["groups"]),
            "auc_champion": report["groups"][0]["realised"]["roc_auc"],
        }
        rounds.append(result)
        print(
            f"round {number}: performance-check over {result['labelled']:,} labelled rows"
            f" {wall:.2f} s, peak RSS {peak:.0f} MB (join {split['read_seconds']:.2f} s,"
            f" scoring {split['assess_seconds']:.2f} s)",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    output = RESULTS / "performance.json"
    output.write_text(
        json.dumps({"rows": args.rows, "labelled": args.labelled, "rounds": rounds}, indent=2)
        + "\n"
    )
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
