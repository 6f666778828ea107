# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/cryptodb
STAMP  := $(VENV)/.installed
COMPAT := $(VENV)/compat-duckdb14
DEMO   := build/demo/crypto.duckdb
PYTEST_ARGS ?=

.PHONY: demo test bench docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# DuckDB 1.4 beside the main install, only to prove older clients can read our catalog files.
$(COMPAT): | $(STAMP)
	$(PY) -m pip install -q --no-deps --target $(COMPAT) 'duckdb==1.4.*' || echo "duckdb 1.4 unavailable: the compatibility test will be skipped"

demo: $(STAMP)
	rm -rf build/demo
	$(CLI) --db $(DEMO) generate --ticks 1000000 --seed 7
	$(CLI) --db $(DEMO) info
	$(CLI) --db $(DEMO) run research
	$(CLI) --db $(DEMO) run backtest

test: $(STAMP) $(COMPAT)
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/run_all.py

docs: $(STAMP)
	$(PY) -c "from cryptodb.udfs.listing import markdown; print(markdown())" > docs/kernels.md

clean:
	rm -rf build .pytest_cache
