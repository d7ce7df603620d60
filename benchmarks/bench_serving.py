"""Serving throughput, latency and memory: `driftline serve` against `mlflow models serve`.

Same model version, one worker each, wrk over loopback at 1 and 16 connections, in one run:
- driftline serve, ONNX runtime, validation + metrics + inference log to SQLite;
- the same with the inference log in PostgreSQL (Debian's server, started here);
- mlflow models serve (the sklearn pipeline through pyfunc);
- the router in front of driftline serve (its overhead is the p50 difference at 1 connection);
- the router with a challenger (a second driftline serve) and shadow traffic at 0% and 100%:
  the champion path's p50/p99 side by side (the copies share the machine's cores).
Needs wrk (apt-get install wrk). Uses the embedded store in .driftline (trains a champion when
there is none). Writes benchmarks/results/serving.json.
"""

from __future__ import annotations

import json
import os
import re
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


def main() -> None:
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
