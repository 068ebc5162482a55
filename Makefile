# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: run test venv model lint typecheck pytest bench clean test-fast screenshots

# The venv: torch first (the CPU build on this machine's disk), then the pinned lock file.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)

# Trains only when models/ holds no model for the current nlu_data/ (fast otherwise).
model: $(STAMP)
	$(BIN)/callpilot train

run: model
	$(BIN)/callpilot run --host 127.0.0.1 --port 8080

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

# The edit-test loop (about two minutes): every test but those marked slow in tests/conftest.py (models, servers,
# browsers, SIP peers, Rasa); `make test` still runs everything.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow and not rasa"

# The pages' screenshots in docs/screenshots/ (README), taken by the desk and floor browser test.
screenshots: model
	CALLPILOT_SCREENSHOTS=1 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/test_browser_floor.py

bench: model
	$(BIN)/python bench/nlu_benchmark.py

clean:
	rm -rf $(VENV) build results

include rasa.mk
