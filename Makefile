# The two commands a newcomer needs are `make run` and `make test`; `make check` is the gate's static half.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install install-runtime run test check lint typecheck layers workflows bandit deploy rules audit format lock clean openapi runtimes

# Two installs into one virtualenv: `make run` needs the runtime dependencies only; the
# tests and checks add the development toolchain (ziglang, Playwright, linters: ~1 GB).
# Each installs a lock in requirements/ with every hash checked and `--no-deps` (a lock is
# whole: the venv's first pip, older than the lock's, mistakes `coverage[toml]` for an
# unpinned requirement if it resolves), then our own two projects (the client in client/, the
# server) editable, without dependencies or build isolation (their build backend is in the
# lock), then `pip check`: the lock holds all they need.
RUNTIME_STAMP := $(VENV)/.runtime-stamp
RUNTIME_LOCK := requirements/runtime.txt
DEV_LOCK := requirements/dev.txt
PIP := $(BIN)/python -m pip
INSTALL_OURS = $(PIP) install --quiet --no-deps --no-build-isolation -e ./client -e . && $(PIP) check

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "WasmWiz needs Python 3.11 or newer")'
	@$(PYTHON) -m venv $(VENV) || { echo "Creating the virtualenv failed. On Debian: apt-get install python3-venv"; exit 1; }

$(RUNTIME_STAMP): pyproject.toml client/pyproject.toml $(RUNTIME_LOCK) | $(BIN)/python
	@echo "Installing WasmWiz and its runtime dependencies into $(VENV) (once, about a minute)…"
	@$(PIP) install --quiet --require-hashes --no-deps -r $(RUNTIME_LOCK)
	@$(INSTALL_OURS)
	@touch $(RUNTIME_STAMP)

$(STAMP): pyproject.toml client/pyproject.toml $(DEV_LOCK) | $(BIN)/python
	@echo "Installing WasmWiz with the development toolchain into $(VENV) (once, a few minutes)…"
	@$(PIP) install --quiet --require-hashes --no-deps -r $(DEV_LOCK)
	@$(INSTALL_OURS)
	@touch $(STAMP) $(RUNTIME_STAMP)

install: $(STAMP)

install-runtime: $(RUNTIME_STAMP)

run: install-runtime
	$(BIN)/wasmwiz db upgrade
	$(BIN)/wasmwiz demo
	$(BIN)/wasmwiz serve

# Branch coverage, failing under the floor in pyproject.toml; reports land in reports/.
# The self-test (tests/ci/) narrows a run with TESTS=… and COVERAGE=….
# Two passes: the tests that measure what the server spends (marked `serial`, see
# tests/conftest.py) run alone, untraced: coverage's tracer multiplied their in-process
# loops' time up to five times, and skewed what they measure; then the rest on
# TEST_WORKERS processes (pytest-xdist), which coverage measures against the floor. A pass
# with nothing selected (exit status 5, a narrowed run) is not a failure.
COVERAGE ?= --cov --cov-report=term-missing:skip-covered --cov-report=xml:reports/coverage.xml
TEST_WORKERS ?= 4
# After a failed pass: the stacks of any test process that crashed or hung (tests/fixtures/faults.py).
FAULTS = $(BIN)/python -m tests.fixtures.faults

test: install
	@rm -f .coverage .coverage.* reports/faults-*.log
	$(BIN)/pytest -m serial --junitxml=reports/junit-serial.xml $(TESTS) || [ $$? -eq 5 ] || { $(FAULTS); exit 1; }
	$(BIN)/pytest -m "not serial" -n $(TEST_WORKERS) $(COVERAGE) --junitxml=reports/junit.xml $(TESTS) || [ $$? -eq 5 ] || { $(FAULTS); exit 1; }

# The gate's static half. Each stage is a target of its own, so it can be run (and broken) alone.
check: lint typecheck layers workflows bandit deploy rules

lint: install
	$(BIN)/ruff check src client tests bench .ci runtimes
	$(BIN)/ruff format --check src client tests bench .ci runtimes

typecheck: install
	$(BIN)/mypy
	$(BIN)/mypy --strict .ci/audit.py .ci/release_check.py runtimes/build.py bench

layers: install
	$(BIN)/lint-imports

# Container and cluster files, checked offline: hadolint, the Compose spec schema vendored by
# check-jsonschema, and the Kubernetes OpenAPI schemas shipped in kubernetes-validate.
KUBERNETES_VERSION ?= 1.33.0
deploy: install
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
	$(BIN)/kubernetes-validate --strict --quiet -k $(KUBERNETES_VERSION) deploy/kubernetes/*.yaml deploy/kubernetes/tools/*.yaml

# The Prometheus rules, checked and unit-tested by promtool on synthetic series
# (deploy/prometheus/tests/); promtool comes with Debian's prometheus package, which
# .ci/run installs when it is missing.
PROMTOOL ?= promtool
rules:
	@command -v $(PROMTOOL) >/dev/null || { echo "promtool not found: it comes with Prometheus (on Debian: apt-get install --no-install-recommends prometheus; .ci/run does it)"; exit 1; }
	$(PROMTOOL) check rules deploy/prometheus/recording.yaml deploy/prometheus/alerts.yaml
	$(PROMTOOL) test rules deploy/prometheus/tests/*.yaml

workflows: install
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml

bandit: install
	$(BIN)/bandit -c pyproject.toml -r src client/src --severity-level medium --quiet

# Known vulnerabilities in the pinned dependencies (docs/development.md: where advisories come from).
audit: install
	$(BIN)/python .ci/audit.py

format: install
	$(BIN)/ruff check --fix src client tests bench .ci runtimes
	$(BIN)/ruff format src client tests bench .ci runtimes

# Rebuild the bundled language runtimes in src/wasmwiz/runtimes/ from their pinned sources
# (docs/runtimes.md); `runtimes/build.py --check` proves the committed files are its output.
runtimes: install
	$(BIN)/python runtimes/build.py

# Regenerate the committed OpenAPI document after changing a route (a test fails until you do).
openapi: install
	$(BIN)/wasmwiz openapi --output docs/openapi.json

# Re-pin after changing a dependency in pyproject.toml or client/pyproject.toml: uv
# resolves once for Python 3.11+ on every platform and writes each file's hashes. Pins
# already locked stay unless a pyproject rules them out; `make lock UPGRADE=--upgrade`
# moves them all.
# The dev lock takes the runtime lock as constraints, so the two agree on what they share.
LOCK = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--no-emit-package wasmwiz --no-emit-package wasmwiz-client \
	--custom-compile-command "make lock" $(UPGRADE)
lock: | $(BIN)/python
	@$(PIP) install --quiet --require-hashes --no-deps -r $(DEV_LOCK)
	$(LOCK) requirements/lock.in -o $(RUNTIME_LOCK)
	$(LOCK) requirements/lock.in --group pyproject.toml:dev -c $(RUNTIME_LOCK) -o $(DEV_LOCK)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
