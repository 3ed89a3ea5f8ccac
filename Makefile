# 乡村振兴热线: one command to run, one to test. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
# Demo data goes into the embedded SQLite default only, unless LOAD_DEMO=1.
LOAD_DEMO ?= $(if $(DATABASE_URL),0,1)
export PYTHON
export RASA_TELEMETRY_ENABLED ?= false
# `make eval-nlu` fails below this intent macro-F1 on the held-out and the blind split (issue 8's target), and below
# the second in cross-validation (a floor against regressions; README, "NLU accuracy, honestly", says why it is lower).
NLU_MIN_MACRO_F1 ?= 0.95
NLU_MIN_CV_MACRO_F1 ?= 0.945
# `make bench`: each benchmark repeats BENCH_RUNS times and reports medians. A short run:
# make bench BENCH_RUNS=1 BENCH_LEVELS=5,20 BENCH_DURATION=10
BENCH_RUNS ?= 3
BENCH_LEVELS ?= 50,200,500,1000
BENCH_DURATION ?= 60

.PHONY: help install db train run serve test lint typecheck validate clean bench bench-startup eval-nlu

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv with Python 3.10 and install everything (pinned by constraints.txt)

$(STAMP): pyproject.toml constraints.txt
	@py=$$(scripts/find-python310) || exit 1; \
	if [ ! -x $(BIN)/python ] || ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
	  rm -rf $(VENV) && "$$py" -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23,<26"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@scripts/ensure-cjk-font
	@touch $@

db: install ## create or migrate the case database; load the demo data into the embedded default
	$(BIN)/helpline db upgrade
	@if [ "$(LOAD_DEMO)" = 1 ]; then $(BIN)/helpline demo load; fi

train: install ## train the model unless models/ has one for the current data and config
	$(BIN)/helpline train

run: db ## start everything and open a console chat (Ctrl-C stops it all)
	$(BIN)/helpline serve --console

serve: db ## start the action server (5055) and the Rasa server with the REST channel (5005)
	$(BIN)/helpline serve

validate: install ## check the training data and domain
	$(BIN)/rasa data validate --domain domain.yml --data data/nlu data/rules data/stories --config config.yml

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install ## mypy on our packages
	$(BIN)/mypy

test: install validate lint typecheck ## lint, types, unit tests, integration on SQLite and on PostgreSQL+Redis, faults, log scan, NLU
	rm -rf var/test/logs
	$(BIN)/python -m pytest
	HELPLINE_TEST_BACKEND=postgres FUZZ_MESSAGES=2000 FUZZ_SENDERS=40 FUZZ_SEED=20261125 $(BIN)/python -m pytest -m servers tests/integration
	$(BIN)/python scripts/scan_logs.py var/test/logs
	$(MAKE) --no-print-directory eval-nlu

eval-nlu: install ## NLU: 5-fold CV, held-out split, entities, baseline (var/eval-nlu/report.md); gated by NLU_MIN_MACRO_F1
	rm -rf var/eval-nlu
	$(BIN)/python scripts/seeded_rasa.py test nlu --nlu data/nlu --config config.yml --cross-validation --folds 5 \
	  --out var/eval-nlu/cv
	$(BIN)/python scripts/eval_nlu.py --cv-dir var/eval-nlu/cv --out var/eval-nlu --min-macro-f1 $(NLU_MIN_MACRO_F1) \
	  --min-cv-macro-f1 $(NLU_MIN_CV_MACRO_F1)

clean: ## remove the venv, models and the embedded database
	rm -rf $(VENV) models var .pytest_cache .ruff_cache .mypy_cache

bench: install ## NLU parse, cold start, load against the stock setup; var/bench/summary.md (~35 min)
	$(BIN)/helpline train
	$(BIN)/python bench/parse.py --runs $(BENCH_RUNS)
	$(BIN)/python bench/coldstart.py --runs $(BENCH_RUNS)
	$(BIN)/python bench/load.py --runs $(BENCH_RUNS) --levels $(BENCH_LEVELS) --duration $(BENCH_DURATION) --peer stock
	$(BIN)/python bench/report.py

bench-startup: install ## median training time and model load time over 3 runs (several minutes)
	$(BIN)/python bench/startup.py --runs 3
