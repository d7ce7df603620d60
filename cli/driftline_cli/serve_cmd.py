"""``driftline serve`` and ``driftline router``: run the inference server or the canary router."""

from __future__ import annotations

import argparse
from typing import Any

from driftline.exit_codes import USAGE
from driftline.registry_conventions import VARIANTS
from driftline_cli.settings import CliSettings


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of ``serve`` and ``router``; unset ones fall back to DRIFTLINE_* settings."""
    parser.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000 if name == "serve" else 8080)
    if name == "serve":
        parser.add_argument("--model", help="registered model (adult-income)")
        version = parser.add_mutually_exclusive_group()
        version.add_argument("--version", help="model version to serve")
        version.add_argument("--alias", help="alias to resolve at start (champion)")
        parser.add_argument(
            "--runtime", choices=["onnx", "native"], help="onnx (default) or native"
        )
        parser.add_argument("--log-store", help="sqlite:///... or postgresql://... inference log")
        parser.add_argument("--variant", choices=VARIANTS, help="variant label")
        parser.add_argument("--max-batch", type=int, help="records per batch call (1000)")
    else:
        parser.add_argument("--champion", required=True, help="champion base URL")
        parser.add_argument("--challenger", help="challenger base URL")
        parser.add_argument("--split-bps", type=int, default=0, help="challenger share (bps)")
        parser.add_argument(
            "--shadow-bps",
            type=int,
            default=0,
            help="share of champion requests also sent to the challenger, answer unused (bps)",
        )
        parser.add_argument("--split-file", help="file holding the split; re-read when it changes")


def run(args: argparse.Namespace, settings: CliSettings) -> int:
    """Run the server until interrupted."""
    from pydantic import ValidationError

    from driftline_cli.output import fail
    from driftline_serving.drain import serve

    try:
        app = _serve_app(args, settings) if args.command == "serve" else _router_app(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        return fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", USAGE)
    except ValueError as exc:  # an unusable --log-store
        return fail(str(exc), USAGE)
    config = {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_level": "info",
    }
    serve(app, config, settings.drain_seconds)
    return 0


def _serve_app(args: argparse.Namespace, settings: CliSettings) -> Any:
    from driftline.inference_log import open_store
    from driftline_serving.app import create_app
    from driftline_serving.loader import load_model
    from driftline_serving.settings import ServingSettings

    overrides = {
        "model_name": args.model,
        "model_version": args.version,
        "model_alias": args.alias,
        "tracking_uri": settings.tracking_uri,
        "runtime": args.runtime,
        "log_store": args.log_store,
        "variant": args.variant,
        "max_batch": args.max_batch,
    }
    serving = ServingSettings(**{k: v for k, v in overrides.items() if v is not None})
    url = serving.log_store_url()
    try:
        store = open_store(url, serving.log_retention_days)
    except ValueError as exc:
        raise ValueError(f"--log-store {url}: {exc}") from exc
    return create_app(serving, load_model, store)


def _router_app(args: argparse.Namespace) -> Any:
    from pathlib import Path

    from driftline_serving.router import create_router
    from driftline_serving.settings import RouterSettings

    return create_router(
        RouterSettings(
            champion_url=args.champion,
            challenger_url=args.challenger,
            split_bps=args.split_bps,
            shadow_bps=args.shadow_bps,
            split_file=Path(args.split_file) if args.split_file else None,
        )
    )
