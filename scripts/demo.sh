#!/usr/bin/env bash
# The main job on the embedded defaults: the whole Driftline loop with local processes.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/demo.py
