"""The whole Driftline loop on one machine, with the embedded defaults (run by `make demo`).

train v1 -> champion; train v2 -> challenger; serve both behind the router at a 10% split;
traffic from Adult, then from a shifted sub-population, each followed a little later by the
true labels of its requests (POST /feedback); realised performance per variant next to its
estimate from the probabilities; the drift check finds the shift and names the features;
retraining learns from the reference data plus the recent labelled traffic and scores itself
against the champion on the newest, held-out part of it; the promotion rule decides on that
paired comparison (no override); a promotion is rolled back. Every process started here is
stopped before the script exits. State lives in .driftline/demo (wiped at the start).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOME = REPO / ".driftline" / "demo"
LOG_STORE = f"sqlite:///{HOME / 'inference_log.db'}"
SPLIT_BPS = 1000
# Labels arrive after the predictions (a real outcome takes days; here seconds).
LABEL_DELAY_SECONDS = 3.0
FEEDBACK_BATCH = 1000
# Adult rows kept out of every model's training data and served as traffic.
TRAFFIC_ROWS = 12_000


def main() -> int:
    """Run the loop and print what happened."""
    shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True)
    env = {**os.environ, "DRIFTLINE_HOME": str(HOME), "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("DRIFTLINE_TRACKING_URI", None)
    processes: list[subprocess.Popen[bytes]] = []
    facts: list[tuple[str, str]] = []
    try:
        # The traffic comes from Adult rows no model trains on: the reference data is the rest,
        # as in production, where served requests are new people.
        reference, rows, labels = split_adult()
        step("1. train v1 on UCI Adult less 12,000 rows kept for traffic (seed 42): champion")
        v1 = cli(env, "train", "--data", reference, "--alias", "champion")
        facts.append(("trained champion", trained(v1)))
        step("2. train v2 (seed 7, 3 folds) and make it challenger")
        v2 = cli(env, "train", "--data", reference, "--seed", "7", "--folds", "3",
                 "--alias", "challenger")  # fmt: skip
        facts.append(("trained challenger", trained(v2)))

        step(f"3. serve champion and challenger behind the router ({SPLIT_BPS / 100:.0f}% split)")
        champion = serve(env, processes, "serve", "--log-store", LOG_STORE)
        challenger = serve(
            env, processes, "serve", "--alias", "challenger", "--variant", "challenger",
            "--log-store", LOG_STORE,
        )  # fmt: skip
        split_file = HOME / "split"
        split_file.write_text(str(SPLIT_BPS))
        router = serve(
            env, processes, "router", "--champion", champion, "--challenger", challenger,
            "--split-file", str(split_file), ready="/health",
        )  # fmt: skip

        normal = list(range(3000))
        step("4. 3,000 requests from Adult through the router, their labels a moment later")
        normal_counts = send(router, rows, normal, "normal")
        facts.append(("traffic from Adult", describe(normal_counts)))
        check = cli(env, "drift-check", "--log-store", LOG_STORE, "--last", "2500")
        facts.append(("drift check after it", verdict(check)))
        post_labels(router, labels, normal, "normal")
        performance = cli(env, "performance-check", "--log-store", LOG_STORE, "--lookback", "1h",
                          "--min-labels", "100")  # fmt: skip
        facts += performance_facts(performance)

        step("5. requests from a shifted sub-population (people under 30), then their labels")
        young = [i for i, row in enumerate(rows) if row["age"] < 30 and i >= 3000][:3000]
        shifted_counts = send(router, rows, young, "shifted")
        facts.append(("traffic, people under 30", describe(shifted_counts)))
        check = cli(env, "drift-check", "--log-store", LOG_STORE, "--last", "2500")
        facts.append(("drift check after it", verdict(check)))
        post_labels(router, labels, young, "shifted")

        step("6. retrain because of the drift, on Adult plus the recent labelled traffic")
        retrain = cli(
            env, "retrain-if-drifted", "--log-store", LOG_STORE, "--last", "2500",
            "--data", reference,
            "--recent-log-store", LOG_STORE, "--recent-lookback", "1h",
        )  # fmt: skip
        facts += retrain_facts(retrain)

        step("7. promote: the rule decides on the paired comparison, no override")
        promoted = cli(env, "promote", check=False)
        facts += promotion_facts(promoted)
        if "error" not in promoted:
            step("8. roll back")
            rolled = cli(env, "rollback")
            facts.append(("rollback", moved(rolled)))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
    print("\nWhat happened")
    print(facts_table(facts))
    print("\nLook closer:")
    print(f"  MLflow UI:  {BIN / 'mlflow'} ui --backend-store-uri sqlite:///{HOME / 'mlflow.db'}")
    print(f"  reports:    {HOME / 'drift'} (HTML per drift check)")
    print("  metrics:    GET /metrics on any `driftline serve` or `driftline router`")
    return 0


def step(text: str) -> None:
    """Print a step heading."""
    print(f"\n==> {text}", flush=True)


def cli(env: dict[str, str], *args: str, check: bool = True) -> dict[str, Any]:
    """Run `driftline ... --json`; return its JSON line (or the error line when not checked)."""
    done = subprocess.run(
        [str(BIN / "driftline"), *args, "--json"], capture_output=True, text=True, env=env,
        cwd=HOME,
    )  # fmt: skip
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if check:
            raise SystemExit(f"driftline {args[0]} failed: {reason}")
        return {"error": reason}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def serve(
    env: dict[str, str], processes: list[subprocess.Popen[bytes]], *args: str, ready: str = "/ready"
) -> str:
    """Start `driftline serve|router` on a free port and wait until it is ready."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (HOME / f"{args[0]}-{port}.log").open("wb")
    process = subprocess.Popen(
        [str(BIN / "driftline"), *args, "--port", str(port)], stdout=log, stderr=log, env=env,
        cwd=HOME,
    )  # fmt: skip
    processes.append(process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + ready, timeout=2):
                print(f"    {' '.join(args[:3])} ready at {url}")
                return url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise SystemExit(f"{args[0]} did not become ready; see {log.name}")


def split_adult() -> tuple[str, list[dict[str, Any]], list[int]]:
    """Adult, shuffled, in two: a reference file and the traffic rows.

    The reference (all but ``TRAFFIC_ROWS`` rows) is what every model trains on; the kept rows
    come back without the label, JSON-ready, with their true labels beside them.
    """
    from driftline_cli.settings import CliSettings
    from driftline_training.adult import TARGET, load_adult

    frame = load_adult("auto", CliSettings().data_dir).sample(frac=1.0, random_state=11)
    traffic, reference = frame.iloc[:TRAFFIC_ROWS], frame.iloc[TRAFFIC_ROWS:]
    path = HOME / "reference.csv"
    reference.to_csv(path, index=False)
    rows: list[dict[str, Any]] = json.loads(
        traffic.drop(columns=[TARGET]).to_json(orient="records")
    )
    return str(path), rows, [int(label) for label in traffic[TARGET]]


def send(router: str, rows: list[dict[str, Any]], picked: list[int], tag: str) -> Counter[str]:
    """POST each picked row to the router with a request id; count the variants that answered."""
    counts: Counter[str] = Counter()
    for n, index in enumerate(picked):
        body = json.dumps({"features": rows[index], "request_id": f"{tag}-{n}"}).encode()
        request = urllib.request.Request(
            router + "/predict", body, {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            counts[json.loads(answer.read())["variant"]] += 1
    time.sleep(1.0)  # the servers flush their inference logs in the background
    return counts


def post_labels(router: str, labels: list[int], picked: list[int], tag: str) -> None:
    """The true labels of the requests ``send`` made, posted to the router after a delay."""
    time.sleep(LABEL_DELAY_SECONDS)
    items = [{"request_id": f"{tag}-{n}", "label": labels[i]} for n, i in enumerate(picked)]
    for start in range(0, len(items), FEEDBACK_BATCH):
        body = json.dumps({"labels": items[start : start + FEEDBACK_BATCH]}).encode()
        request = urllib.request.Request(
            router + "/feedback", body, {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
    print(f"    {len(items)} labels posted {LABEL_DELAY_SECONDS:g} s after the traffic")
    time.sleep(1.0)  # the feedback writer flushes in the background


def trained(result: dict[str, Any]) -> str:
    """A trained and registered version and its test score."""
    return f"version {result['version']}, test AUC-ROC {result['metrics']['roc_auc']:.4f}"


def describe(counts: Counter[str]) -> str:
    """How many requests each variant answered, and the challenger's share."""
    total = sum(counts.values())
    share = counts["challenger"] / total if total else 0.0
    return (
        f"{total} requests: champion answered {counts['champion']},"
        f" challenger {counts['challenger']} ({share:.1%})"
    )


def verdict(report: dict[str, Any]) -> str:
    """The drift decision and every drifted feature, worst first as the report lists them."""
    rows = report["samples"]["current"]
    drifted = [f for f in report.get("features", []) if f.get("drifted")]
    if not report["drifted"]:
        return f"no drift in the last {rows} logged rows"
    names = ", ".join(f"{f['name']} (PSI {f['psi']:.2f})" for f in drifted)
    return f"drift in the last {rows} logged rows: {names or 'prediction drift'}"


def moved(move: dict[str, Any]) -> str:
    """An alias move as text."""
    return f"champion {move['previous_champion']} -> {move['champion']}"


def performance_facts(report: dict[str, Any]) -> list[tuple[str, str]]:
    """Per version and variant: realised AUC with its interval next to the CBPE estimate."""
    facts = []
    for group in report["groups"]:
        label = f"performance v{group['version']} {group['variant']}"
        if group["realised"] is None:
            facts.append((label, f"{group['labelled']} labels: not enough to measure"))
            continue
        auc = group["realised"]["roc_auc"]
        facts.append((
            label,
            f"AUC-ROC {auc['value']:.4f} (95% {auc['low']:.4f} to {auc['high']:.4f}) on"
            f" {group['labelled']} labelled requests; estimated from the probabilities alone"
            f" {group['estimated_labelled']['roc_auc']:.4f}",
        ))  # fmt: skip
    return facts


def retrain_facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """What the retraining learnt from and how it compared with the champion, paired."""
    if not result["retrained"]:
        return [("retrain-if-drifted", "no drift: nothing trained")]
    facts = [("retrain-if-drifted", f"version {result['version']} registered as challenger")]
    recent = result.get("recent") or {}
    if "train_rows" in recent:
        facts.append((
            "trained on",
            f"Adult plus {recent['train_rows']} recent labelled requests; the newest"
            f" {recent['holdout_rows']} held out",
        ))  # fmt: skip
    comparison = result.get("comparison") or {}
    for dataset, figures in (comparison.get("datasets") or {}).items():
        auc = figures["metrics"]["roc_auc"]
        facts.append((
            f"vs champion, {dataset} rows",
            f"AUC-ROC {auc['champion']:.4f} -> {auc['challenger']:.4f} on the same"
            f" {figures['rows']} rows: {auc['difference']:+.4f} (95% {auc['low']:+.4f} to"
            f" {auc['high']:+.4f})",
        ))  # fmt: skip
    return facts


def promotion_facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The rule's verdict in full, whatever it is: the move with its comparison, or why not.

    ``result`` is `driftline promote`'s JSON, or ``{"error": <its error line>}`` on refusal.
    """
    if "error" in result:
        return [("promote: the rule refused", result["error"].removeprefix("driftline: error: "))]
    compared = result.get("comparison")
    detail = ""
    if compared:
        detail = (
            f": {compared['metric']} {compared['champion']:.4f} -> {compared['challenger']:.4f}"
        )
        if compared.get("low") is not None:
            detail += (
                f", 95% {compared['low']:+.4f} to {compared['high']:+.4f} on"
                f" {compared['rows']} {compared['dataset']} rows"
            )
    return [("promote: the rule accepted", moved(result) + detail)]


def facts_table(facts: list[tuple[str, str]], width: int = 100) -> str:
    """Two columns, label and value; a long value wraps at word boundaries under its column.

    Nothing is cut: a reason is only worth printing whole.
    """
    label_width = max((len(label) for label, _ in facts), default=0)
    indent = " " * (2 + label_width + 2)
    lines = []
    for label, value in facts:
        lines += textwrap.wrap(
            value,
            width=max(width, len(indent) + 20),
            initial_indent=f"  {label:<{label_width}}  ",
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        ) or [f"  {label}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
