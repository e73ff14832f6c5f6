# Two commands (see README): `make demo` sets up and runs the main job; `make test` the tests.
# Each creates its own virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

# PyTorch 2.13.0 is the CPU wheel on these machines; the package itself asks for a range.
TORCH := torch==2.13.0

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[cpu,media]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev,cpu,media]"
	@# The camera page is tested in Debian's headless Chromium (Playwright drives it; no download).
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -qq chromium >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || true
	@command -v chromium >/dev/null || echo "note: no chromium; the browser test will be skipped"
	@# palmbrush deploy vendors the pinned onnxruntime-web from npm (build time only)
	@command -v npm >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -qq npm >/dev/null || true
	@$(BIN)/palmbrush deploy --install-runtime >/dev/null || \
		echo "note: no onnxruntime-web (needs npm); the deploy tests will be skipped"
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/palmbrush demo --style starry-night -o palmbrush-demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

test: lint
	$(BIN)/python -m pytest -n 2 -q -rs

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/runtime.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
