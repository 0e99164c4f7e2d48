# Two commands do all the set-up on a fresh Debian machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DEB_TEST_PKGS := prometheus prometheus-alertmanager chromium chromium-driver nginx-light prometheus-blackbox-exporter systemd openssl cmake g++ make
DEB_BENCH_PKGS := prometheus-blackbox-exporter nginx-light
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS ?=
# setuptools prints a 10-line "Editable installation" notice on every editable install.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: run test lint bench mutate deb-test deb-bench install install-test clean dashboards llama-server

$(STAMP): pyproject.toml
	@echo "first run: installing llm-heartbeat into $(VENV) (a minute; only once)"
	@$(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	@$(QUIET_EDITABLE) $(BIN)/pip install -q --disable-pip-version-check -e .
	@touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(QUIET_EDITABLE) $(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

install: $(STAMP)
install-test: $(TEST_STAMP)

# ARGS="--target http://gpu-7:8000" monitors a real server instead of the simulator.
run: $(STAMP)
	@$(BIN)/llm-heartbeat run --simulate-if-missing $(ARGS)

# Debian packages the tests use (promtool, amtool, Alertmanager, Chromium); installed when missing.
deb-test:
	@missing=""; for p in $(DEB_TEST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

deb-bench:
	@missing=""; for p in $(DEB_BENCH_PKGS) prometheus; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

lint: $(TEST_STAMP)
	$(BIN)/ruff check exporter tests bench grafana
	$(BIN)/ruff format --check exporter tests bench grafana
	$(BIN)/mypy

# llama.cpp's llama-server for tests/realserver, built once from llama-cpp-python's sdist into
# $${LLM_HEARTBEAT_CACHE:-~/.cache/llm-heartbeat} (several minutes on 2 cores; then instant)
llama-server: deb-test $(TEST_STAMP)
	@$(BIN)/python -m tests.realserver.build_llama_server

test: deb-test $(TEST_STAMP) llama-server
	$(BIN)/ruff check exporter tests bench grafana
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider $(ARGS)

bench: deb-bench $(TEST_STAMP)
	$(BIN)/python -m bench.scale $(ARGS)

# Mutation testing of the core modules (docs/development.md): minutes per module, not in `test`.
# ARGS="--module exporter/engine/rules.py" for one module, ARGS="--jobs 2" side by side.
mutate: $(TEST_STAMP)
	$(BIN)/python -m bench.mutate $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
