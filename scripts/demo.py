"""The whole Driftline loop on one machine, with the embedded defaults (run by `make demo`).

train v1 -> champion; train v2 -> challenger; serve both behind the router at a 10% split;
traffic from Adult, then from a shifted sub-population; the drift check finds it and names the
features; retraining registers a new challenger; promote; roll back. Every process started here
is stopped before the script exits. State lives in .driftline/demo (wiped at the start).
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
        step("1. train v1 on UCI Adult (seed 42) and make it champion")
        v1 = cli(env, "train", "--alias", "champion")
        facts.append(("trained champion", trained(v1)))
        step("2. train v2 (seed 7, 3 folds) and make it challenger")
        v2 = cli(env, "train", "--seed", "7", "--folds", "3", "--alias", "challenger")
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

        adult = load_adult_rows()
        normal = adult[:3000]
        step("4. 3,000 requests from Adult through the router")
        normal_counts = send(router, normal, "normal")
        facts.append(("traffic from Adult", describe(normal_counts)))
        check = cli(env, "drift-check", "--log-store", LOG_STORE, "--last", "2500")
        facts.append(("drift check after it", verdict(check)))

        step("5. 3,000 requests from a shifted sub-population: people under 30")
        young = [r for r in adult if r["age"] < 30][:3000]
        shifted_counts = send(router, young, "shifted")
        facts.append(("traffic, people under 30", describe(shifted_counts)))
        check = cli(env, "drift-check", "--log-store", LOG_STORE, "--last", "2500")
        facts.append(("drift check after it", verdict(check)))

        step("6. retrain because of the drift: a new challenger")
        retrain = cli(env, "retrain-if-drifted", "--log-store", LOG_STORE, "--last", "2500")
        retrained = f"version {retrain['version']} registered as challenger"
        facts.append(("retrain-if-drifted", retrained if retrain["retrained"] else "no drift"))

        step("7. promote the challenger (the rule first, then a manual override if it says no)")
        promoted = cli(env, "promote", check=False)
        refusal = promoted.get("error")
        if refusal is not None:
            promoted = cli(env, "promote", "--force")
        facts += promotion_facts(refusal, promoted)
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


def load_adult_rows() -> list[dict[str, Any]]:
    """Adult rows (without the label), shuffled, as JSON-ready dicts."""
    from driftline_cli.settings import CliSettings
    from driftline_training.adult import TARGET, load_adult

    frame = load_adult("auto", CliSettings().data_dir).sample(frac=1.0, random_state=11)
    rows: list[dict[str, Any]] = json.loads(frame.drop(columns=[TARGET]).to_json(orient="records"))
    return rows


def send(router: str, rows: list[dict[str, Any]], tag: str) -> Counter[str]:
    """POST each row to the router with a request id; count the variants that answered."""
    counts: Counter[str] = Counter()
    for n, row in enumerate(rows):
        body = json.dumps({"features": row, "request_id": f"{tag}-{n}"}).encode()
        request = urllib.request.Request(
            router + "/predict", body, {"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            counts[json.loads(answer.read())["variant"]] += 1
    time.sleep(1.0)  # the servers flush their inference logs in the background
    return counts


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


def promotion_facts(refusal: str | None, move: dict[str, Any]) -> list[tuple[str, str]]:
    """The promotion lines: the rule's verdict in full, then the move and whether it was forced.

    ``refusal`` is the rule's error line from `driftline promote` (None when the rule accepted);
    ``move`` is what the promotion that happened (forced after a refusal) reported.
    """
    if refusal is None:
        return [("promote: the rule accepted", moved(move))]
    reason = refusal.removeprefix("driftline: error: ")
    return [
        ("promote: the rule refused", reason),
        ("promote --force", f"{moved(move)}: a manual override of the rule's refusal"),
    ]


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
