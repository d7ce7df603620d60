#!/usr/bin/env bash
# The main job on the embedded default: train on UCI Adult, register, make champion.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

echo "==> training XGBoost on UCI Adult (seed 42, 5-fold CV), embedded MLflow store in .driftline/"
driftline train --alias champion
echo
echo "==> registered versions"
driftline models
echo
echo "Look closer:  make mlflow-ui   (then open http://127.0.0.1:5000)"
