# Two entry points: `make demo` and `make test`. Each builds its own virtual environment.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-torch test-long test-lowest lint typecheck pytest bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python examples/quickstart.py

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/pytest -q

test: lint typecheck pytest

# The tensor tests need torch, a large install, so they are a target of their own (CI runs it;
# without torch they skip, saying why). TORCH is what pip installs: a pinned release by default;
# on a machine without a GPU torch's CPU-only wheels are much smaller, e.g.
#   make test-torch TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.13.0
$(BIN)/.torch-installed: $(BIN)/.installed
	$(BIN)/python -m pip install -q $(TORCH)
	touch $@

test-torch: $(BIN)/.torch-installed
	$(BIN)/pytest -q -p no:cacheprovider tests/test_torch.py tests/test_properties.py \
		tests/test_bad_inputs.py tests/test_drift_windows.py

# The long run of the property tests: 10,000 examples each (12-14 minutes on 2 cores), from a
# fixed seed so that CI is reproducible; `make test-long SEED=...` explores other examples.
SEED ?= 20261127
test-long: $(BIN)/.installed
	INFERWATCH_PROPERTY_EXAMPLES=10000 $(BIN)/pytest -q -p no:cacheprovider --timeout=3600 \
		--hypothesis-seed=$(SEED) tests/test_properties.py tests/test_bad_inputs.py

# The lowest versions: every runtime dependency pinned to the lowest release its floor in
# pyproject.toml allows (.ci/lowest_constraints.py), in a venv of its own; the test tools float.
LOWEST ?= .venv-lowest
$(LOWEST)/bin/.installed: pyproject.toml .ci/lowest_constraints.py
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q --upgrade pip packaging
	$(LOWEST)/bin/python .ci/lowest_constraints.py > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install -q -c $(LOWEST)/constraints.txt -e '.[dev]'
	touch $@

test-lowest: $(LOWEST)/bin/.installed
	$(LOWEST)/bin/python -m pip list --format=freeze | grep -i -E '^(opentelemetry-(api|sdk)|numpy|pandas|pydantic)=='
	$(LOWEST)/bin/pytest -q -p no:cacheprovider

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/python -m pip install -q -e '.[dev,benchmark]'
	touch $@

bench: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_monitor.py
	$(BIN)/python benchmarks/bench_threads.py
	$(BIN)/python benchmarks/bench_export_queue.py
	$(BIN)/python benchmarks/bench_signals.py
	$(BIN)/python benchmarks/bench_query.py
	$(BIN)/python benchmarks/bench_logs.py
	$(BIN)/python benchmarks/bench_drift.py
	$(BIN)/python benchmarks/bench_validation.py
	$(BIN)/python benchmarks/bench_feedback.py
	$(BIN)/python benchmarks/bench_ranking.py
	$(BIN)/python benchmarks/bench_alerts.py
	$(BIN)/python benchmarks/bench_alert_firing.py
	$(BIN)/python benchmarks/bench_privacy.py
	$(BIN)/python benchmarks/bench_faults.py

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache
