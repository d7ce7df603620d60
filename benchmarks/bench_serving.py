"""Serving throughput, latency and memory: `driftline serve` against `mlflow models serve`.

Same model version, one worker each, wrk over loopback at 1 and 16 connections, in one run:
- driftline serve, ONNX runtime, validation + metrics + inference log to SQLite;
- the same with the inference log in PostgreSQL (Debian's server, started here);
- mlflow models serve (the sklearn pipeline through pyfunc);
- the router in front of driftline serve (its overhead is the p50 difference at 1 connection);
- the router with a challenger (a second driftline serve) and shadow traffic at 0% and 100%:
  the champion path's p50/p99 side by side (the copies share the machine's cores);
- drift sketches on and off (DRIFTLINE_SKETCHES): two servers measured in alternating rounds,
  the throughput ratio and p50 difference per round (``--sketches-only`` runs just this and
  writes benchmarks/results/serving-sketches.json).
Needs wrk (apt-get install wrk). Uses the embedded store in .driftline (trains a champion when
there is none). Writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from driftline_training.adult import load_adult  # noqa: E402
from tests.integration.postgres import PostgresServer  # noqa: E402
from tests.processes import free_port, stop, wait_http  # noqa: E402

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
DURATION = os.environ.get("BENCH_SECONDS", "10")
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
"""


def wrk(url: str, body: str, connections: int, workdir: Path) -> dict:
    script = _script(workdir, body)
    threads = str(min(2, connections))
    done = subprocess.run(
        ["wrk", "-t", threads, "-c", str(connections), "-d", f"{DURATION}s", "--latency",
         "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = done.stdout
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "connections": connections,
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def rss_mb(pid: int) -> float:
    """Resident memory of the serving process after the load."""
    text = Path(f"/proc/{pid}/status").read_text()
    return round(int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024, 1)


def start(command: list[str], url: str, ready: str, workdir: Path, env: dict) -> subprocess.Popen:
    log = workdir / f"{command[1]}-{free_port()}.log"
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    wait_http(url + ready, process, log, timeout=180)
    return process


def measure(name: str, url: str, body: str, process: subprocess.Popen, workdir: Path) -> dict:
    subprocess.run(["wrk", "-t1", "-c1", "-d2s", "-s", str(_script(workdir, body)), url],
                   capture_output=True, check=True)  # fmt: skip
    runs = [wrk(url, body, c, workdir) for c in (1, 16)]
    result = {"name": name, "runs": runs, "rss_mb": rss_mb(process.pid)}
    for run in runs:
        print(
            f"{name:<34} c={run['connections']:>2}  {run['requests_per_second']:>8.0f} req/s"
            f"  p50 {run['p50_ms']:.3f} ms  p99 {run['p99_ms']:.3f} ms  errors {run['errors']}"
            f"  RSS {result['rss_mb']:.0f} MB",
            flush=True,
        )
    return result


def _script(workdir: Path, body: str) -> Path:
    script = workdir / "warm.lua"
    script.write_text(WRK_SCRIPT.format(body=body))
    return script


def shadow_runs(
    champion: str, log_store: str, body: str, processes: list, workdir: Path, env: dict
) -> list[dict]:
    """The router with a challenger at split 0, without and with every request shadowed."""
    port = free_port()
    challenger = f"http://127.0.0.1:{port}"
    command = [str(BIN / "driftline"), "serve", "--port", str(port), "--variant", "challenger"]
    processes.append(
        start([*command, "--log-store", log_store], challenger, "/ready", workdir, env)
    )
    results = []
    for shadow in (0, 10_000):
        router_port = free_port()
        router_url = f"http://127.0.0.1:{router_port}"
        router = start(
            [str(BIN / "driftline"), "router", "--port", str(router_port), "--champion", champion,
             "--challenger", challenger, "--shadow-bps", str(shadow)],
            router_url, "/health", workdir, env,
        )  # fmt: skip
        processes.append(router)
        name = f"router, shadow {shadow // 100}%"
        results.append(measure(name, router_url + "/predict", body, router, workdir))
    return results


SKETCH_ROUNDS = 4


def sketch_overhead(body: str, workdir: Path, env: dict, processes: list) -> dict:
    """Sketches on against off: one server each, measured in alternating rounds.

    Alternating rounds (on, off, on, off) keep a drift in the machine's load from landing on
    one side; each round's ratio compares neighbours, and the median round is the figure.
    Beside it, the CPU time ``SketchSink.add`` spends per request, timed in this process on
    the same body, turned into a share of the time one request takes at 16 connections.
    """
    urls = {}
    for side, enabled in (("on", "true"), ("off", "false")):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [str(BIN / "driftline"), "serve", "--port", str(port),
                   "--log-store", f"sqlite:///{workdir / f'sketch-{side}.db'}"]  # fmt: skip
        process = start(command, url, "/ready", workdir, {**env, "DRIFTLINE_SKETCHES": enabled})
        processes.append(process)
        urls[side] = (url, process)
    rounds = []
    for _ in range(SKETCH_ROUNDS):
        measured = {}
        for side, (url, process) in urls.items():
            result = measure(f"driftline serve, sketches {side}", url + "/predict", body,
                             process, workdir)  # fmt: skip
            measured[side] = {run["connections"]: run for run in result["runs"]}
        rounds.append(
            {
                "throughput_on_over_off_c16": round(
                    measured["on"][16]["requests_per_second"]
                    / measured["off"][16]["requests_per_second"],
                    3,
                ),
                "throughput_on_over_off_c1": round(
                    measured["on"][1]["requests_per_second"]
                    / measured["off"][1]["requests_per_second"],
                    3,
                ),
                "p50_change_ms_c1": round(
                    measured["on"][1]["p50_ms"] - measured["off"][1]["p50_ms"], 3
                ),
                "runs": measured,
            }
        )
    for i, r in enumerate(rounds, 1):
        print(
            f"sketches on/off round {i}: throughput x{r['throughput_on_over_off_c16']} at c=16,"
            f" x{r['throughput_on_over_off_c1']} at c=1; p50 change at c=1"
            f" {r['p50_change_ms_c1']:+.3f} ms",
            flush=True,
        )
    median = {
        key: round(statistics.median(r[key] for r in rounds), 3)
        for key in ("throughput_on_over_off_c16", "throughput_on_over_off_c1", "p50_change_ms_c1")
    }
    per_request_us = sketch_cost_us(body)
    off_c16 = statistics.median(r["runs"]["off"][16]["requests_per_second"] for r in rounds)
    share = per_request_us * 1e-6 * off_c16
    print(
        f"sketches on/off, median of {len(rounds)} rounds: throughput"
        f" x{median['throughput_on_over_off_c16']} at c=16, p50 change at c=1"
        f" {median['p50_change_ms_c1']:+.3f} ms; counting costs {per_request_us:.1f} us a request"
        f" = {share:.1%} of a request's time at c=16 (goal: <= 3%)",
        flush=True,
    )
    return {
        "rounds": rounds,
        "median": median,
        "sketch_add_us_per_request": round(per_request_us, 2),
        "sketch_share_of_request_time_c16": round(share, 4),
        "goal": "throughput on/off >= 0.97 at c=16",
    }


def sketch_cost_us(body: str, requests: int = 50_000) -> float:
    """Microseconds ``SketchSink.add`` takes per request: the body's record, fresh ids."""
    import time
    import uuid

    from driftline.inference_log import SketchRecord
    from driftline.sketch import Sketcher, sketch_layout
    from driftline_serving.loader import load_model
    from driftline_serving.log_writer import LogWriter
    from driftline_serving.settings import ServingSettings
    from driftline_serving.sketch_sink import SketchSink

    model = load_model(ServingSettings(home=REPO / ".driftline"))
    assert model.baseline is not None, "the served version has a baseline.json"
    sink = SketchSink(
        Sketcher(sketch_layout(model.baseline), model.schema),
        LogWriter[SketchRecord](
            lambda rows: None, capacity=1, batch_rows=1, flush_seconds=1, retry_seconds=1
        ),
        model=model.name, version=model.version, variant="champion", pod="bench",
    )  # fmt: skip
    features = json.loads(body)["features"]
    records = [
        model.validator.record({"features": features}, "", uuid.uuid4().hex)
        for _ in range(requests)
    ]
    started = time.perf_counter()
    for record in records:
        sink.add(started, [record], [0.3], [0])
    return (time.perf_counter() - started) / requests * 1e6


def sketches_only() -> None:
    """Run only the sketch overhead comparison (``--sketches-only``)."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    if subprocess.run([BIN / "driftline", "models"], env=env, capture_output=True).returncode:
        subprocess.run([BIN / "driftline", "train", "--alias", "champion"], env=env, check=True)
    body = _body()
    processes: list = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            result = sketch_overhead(body, Path(tmp), env, processes)
        finally:
            for process in processes:
                stop(process)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "serving-sketches.json"
    out.write_text(json.dumps({"benchmark": "serving-sketches", "duration_seconds": int(DURATION),
                               **result}, indent=2))  # fmt: skip
    print(f"written {out}")


def _body() -> str:
    adult = load_adult("auto", Path.home() / ".cache" / "driftline" / "data")
    features = json.loads(adult.drop(columns=["income"]).head(1).to_json(orient="records"))[0]
    return json.dumps({"features": features})


def main() -> None:
    if "--sketches-only" in sys.argv[1:]:
        sketches_only()
        return
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    home = REPO / ".driftline"
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    if subprocess.run([BIN / "driftline", "models"], env=env, capture_output=True).returncode:
        subprocess.run([BIN / "driftline", "train", "--alias", "champion"], env=env, check=True)
    adult = load_adult("auto", Path.home() / ".cache" / "driftline" / "data")
    features = json.loads(adult.drop(columns=["income"]).head(1).to_json(orient="records"))[0]
    ours = json.dumps({"features": features})
    theirs = json.dumps(
        {"dataframe_split": {"columns": list(features), "data": [list(features.values())]}}
    )
    results = []
    processes = []
    store = PostgresServer()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            store.start()
            for name, log_store in (
                ("driftline serve (SQLite log)", f"sqlite:///{workdir / 'log.db'}"),
                ("driftline serve (PostgreSQL log)", store.url),
            ):
                port = free_port()
                url = f"http://127.0.0.1:{port}"
                command = [str(BIN / "driftline"), "serve", "--port", str(port)]
                process = start([*command, "--log-store", log_store], url, "/ready", workdir, env)
                processes.append(process)
                results.append(measure(name, url + "/predict", ours, process, workdir))
                if log_store.startswith("sqlite"):
                    router_port = free_port()
                    router_url = f"http://127.0.0.1:{router_port}"
                    router = start(
                        [str(BIN / "driftline"), "router", "--port", str(router_port),
                         "--champion", url],
                        router_url, "/health", workdir, env,
                    )  # fmt: skip
                    processes.append(router)
                    results.append(
                        measure(
                            "router -> driftline serve",
                            router_url + "/predict",
                            ours,
                            router,
                            workdir,
                        )
                    )
                    results += shadow_runs(url, log_store, ours, processes, workdir, env)
            sketches = sketch_overhead(ours, workdir, env, processes)
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            mlflow_env = {**env, "MLFLOW_TRACKING_URI": tracking}
            process = start(
                [str(BIN / "mlflow"), "models", "serve", "-m", "models:/adult-income@champion",
                 "--env-manager", "local", "--workers", "1", "--host", "127.0.0.1",
                 "--port", str(port)],
                url, "/ping", workdir, mlflow_env,
            )  # fmt: skip
            processes.append(process)
            results.append(
                measure("mlflow models serve", url + "/invocations", theirs, process, workdir)
            )
        finally:
            for process in processes:
                stop(process)
            store.remove()
    by_name = {r["name"]: {run["connections"]: run for run in r["runs"]} for r in results}
    ours_sqlite = by_name["driftline serve (SQLite log)"]
    mlflow = by_name["mlflow models serve"]
    summary = {
        "benchmark": "serving",
        "duration_seconds": int(DURATION),
        "results": results,
        "throughput_ratio_vs_mlflow_c1": round(
            ours_sqlite[1]["requests_per_second"] / mlflow[1]["requests_per_second"], 1
        ),
        "throughput_ratio_vs_mlflow_c16": round(
            ours_sqlite[16]["requests_per_second"] / mlflow[16]["requests_per_second"], 1
        ),
        "router_overhead_p50_ms": round(
            by_name["router -> driftline serve"][1]["p50_ms"] - ours_sqlite[1]["p50_ms"], 3
        ),
        "shadow_100_vs_0": {
            f"c{c}": {
                f"{q}_ms": [by_name[f"router, shadow {s}%"][c][f"{q}_ms"] for s in (0, 100)]
                for q in ("p50", "p99")
            }
            for c in (1, 16)
        },
        "sketch_overhead": sketches,
        "goals": {"ratio": 25, "p50_ms_c1": 0.6, "rps_c16": 2500, "rss_mb": 150, "router_ms": 0.3},
    }
    print(
        f"throughput vs mlflow models serve: x{summary['throughput_ratio_vs_mlflow_c1']} at c=1,"
        f" x{summary['throughput_ratio_vs_mlflow_c16']} at c=16;"
        f" router overhead p50 {summary['router_overhead_p50_ms']:.3f} ms"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(summary, indent=2))
    print(f"written {RESULTS / 'serving.json'}")


if __name__ == "__main__":
    main()
