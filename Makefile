# VisionOps: two commands on a fresh clone, `make demo` and `make test`. Everything else is a helper.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.visionops-installed
PROFILE ?= quick
PIP_VERSION := 26.3
PYTEST_ARGS ?=
NOTEBOOK_ARGS ?=
# Your own data: make notebooks|demo|run SOURCE=path/to/export [FORMAT=auto|yolo|coco|voc|automl]
SOURCE ?=
FORMAT ?= auto
SOURCE_PARAMS = $(if $(SOURCE),--param source=$(abspath $(SOURCE)) --param source_format=$(FORMAT))
SOURCE_OPTS = $(if $(SOURCE),--source $(abspath $(SOURCE)) --format $(FORMAT))
# The task: make notebooks|demo|run TASK=classify (default: the data set's own; detect for synthetic data)
TASK ?=
TASK_PARAMS = $(if $(TASK),--param task=$(TASK))
TASK_OPTS = $(if $(TASK),--task $(TASK))

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing pinned dependencies into $(VENV) (first time: about 3 minutes, 7 GB)"
	$(BIN)/python -m pip install --quiet --upgrade "pip==$(PIP_VERSION)"
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev,azure]"
	@touch $@

setup: $(STAMP) ## create .venv and install the pinned stack (skipped when up to date)
	@# notebooks are committed without outputs: .gitattributes names the nbstripout filter, this defines it
	@if git rev-parse --git-dir >/dev/null 2>&1 && ! git config --get filter.nbstripout.clean >/dev/null; then \
		$(BIN)/nbstripout --install; fi

demo: setup ## set up, run notebooks 00..08 (quick profile; SOURCE=your export; TASK=classify), leave the model served, print a summary
	$(MAKE) --no-print-directory notebooks PROFILE=$(PROFILE) TASK=$(TASK) NOTEBOOK_ARGS="--param keep_endpoint=true"
	$(BIN)/visionops demo-summary

test: setup ## set up, then run every test (installs Debian's chromium for the browser tests when missing)
	scripts/ensure-chromium.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup ## ruff over src, tests and benchmarks
	$(BIN)/ruff check src tests benchmarks

run: setup ## the whole lifecycle with the CLI: make run PROFILE=smoke|quick|full [SOURCE=path/to/export] [TASK=classify]
	$(BIN)/visionops run --profile $(PROFILE) $(SOURCE_OPTS) $(TASK_OPTS)

notebooks: setup ## notebooks 00..08 with papermill into outputs/notebooks: make notebooks PROFILE=smoke|quick|full [SOURCE=path/to/export] [TASK=classify]
	$(BIN)/visionops notebooks --profile $(PROFILE) $(SOURCE_PARAMS) $(TASK_PARAMS) $(NOTEBOOK_ARGS)

lab: setup ## JupyterLab on the notebooks (installs the optional `lab` extra the first time)
	@test -x $(BIN)/jupyter-lab || $(BIN)/pip install -c requirements/constraints.txt -e '.[lab]'
	$(BIN)/jupyter lab notebooks/

mlflow-ui: setup ## open the MLflow UI on the local store (http://127.0.0.1:5000)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db --host 127.0.0.1 --port 5000

bench-train: setup ## benchmark: visionops train vs plain Ultralytics, thread fix vs default
	$(BIN)/python benchmarks/bench_train.py

bench-runner: setup ## benchmark: the lifecycle runner's own cost over a direct train step (A/B, in one process)
	$(BIN)/python benchmarks/bench_runner.py

bench-serve: setup ## benchmark: in-process vs local endpoint, ONNX Runtime vs PyTorch, 1000 requests at 8 clients
	$(BIN)/python benchmarks/bench_serve.py

bench-notebooks: setup ## benchmark: each notebook's time with papermill, smoke profile (target: <= 5 min for all six)
	$(BIN)/python benchmarks/bench_notebooks.py

bench-envs: setup ## benchmark: ONNX vs PyTorch inference environment, installed size, cold start, latency (uses PyPI)
	$(BIN)/python benchmarks/bench_envs.py

bench-sweep: setup ## benchmark: 8 sweep trials with vs without median pruning (target: <= 60 % of the time)
	$(BIN)/python benchmarks/bench_sweep.py

bench-predict: setup ## benchmark: visionops predict vs one-image endpoint requests (target >= 3x), peak RSS over 5,000 images
	$(BIN)/python benchmarks/bench_predict.py

bench-overhead: setup ## benchmark: fixed per-process cost of visionops train over plain Ultralytics, step by step, before/after
	$(BIN)/python benchmarks/bench_overhead.py

bench-classify: setup ## benchmark: quick classifier top-1 and training time, smoke notebooks 00-05 with task=classify
	$(BIN)/python benchmarks/bench_classify.py

bench-collect: setup ## benchmark: Scorer.score p50 with production data collection on vs off (target: <= +1 ms)
	$(BIN)/python benchmarks/bench_collect.py

lock: ## re-resolve every pin into requirements/constraints.txt (needs PyPI)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade "pip==$(PIP_VERSION)"
	.venv-lock/bin/python -m pip install --quiet -e ".[dev,azure,lab,onnx]"
	{ echo "# Full pin set for every extra (base, dev, azure, lab), resolved together in one pip run."; \
	  echo "# Regenerate with: make lock"; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > requirements/constraints.txt
	rm -rf .venv-lock

azure-validate: setup ## offline Azure checks, no account: Azure DevOps YAML against Microsoft's schema, then tests/azure
	$(BIN)/python scripts/ado_schema.py ado_pipelines
	$(BIN)/python -m pytest tests/azure -q $(PYTEST_ARGS)

clean: ## remove generated data and outputs (keeps .venv)
	rm -rf outputs/* data/* .ultralytics
	git checkout -- outputs/README.md data/README.md

.PHONY: help setup demo test lint run notebooks lab mlflow-ui bench-train bench-serve bench-notebooks bench-envs bench-predict lock \
	azure-validate bench-sweep bench-runner bench-classify bench-overhead bench-collect \
	clean
