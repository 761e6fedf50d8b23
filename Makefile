# The README's commands. Each target creates the virtualenv and installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test test-fast run lint load bench browser clean

# `make run` needs only the runtime (requirements.txt); `make test` adds the dev tools. pip
# prints its progress: the first install downloads torch (~1 min), nothing is hidden.
# `make test-fast` skips the tests marked slow (training subprocesses, torchrun, OpenVINO,
# browser walks, load, torch.compile): a few minutes on 2 cores; `make test` (CI) runs them all.
# The package itself is installed editable and without dependencies (requirements.txt has
# them, pinned): .venv/bin/img2img exists and runs the checkout's code.
$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check --no-deps -e .
	touch $@

$(VENV)/.installed: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

browser:  ## Debian's chromium for the browser tests (Playwright never downloads a browser)
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium (browser tests will skip)"; fi; }

test: $(VENV)/.installed browser  ## install everything, run the whole test suite
	$(PY) -m pytest

test-fast: $(VENV)/.installed  ## the fast tier: everything not marked slow
	$(PY) -m pytest -m "not slow"

run: $(VENV)/.runtime  ## install the runtime, serve the app on http://127.0.0.1:7860
	$(PY) app.py

bench: $(VENV)/.installed  ## speed vs the eager fp32 reference: inference, training, app, CLI, tiles (JSON + bench/RESULTS.md)
	$(PY) bench/bench_inference.py --batch8 --compile
	$(PY) bench/bench_train.py --compile
	$(PY) bench/bench_app.py
	$(PY) bench/bench_cli.py
	$(PY) bench/bench_tiles.py

load: $(VENV)/.installed  ## 20 concurrent clients x 5 requests against the app (bench/RESULTS.md)
	$(PY) bench/load_test.py --clients 20 --requests 5

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts *.egg-info
