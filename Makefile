# The two commands a newcomer needs are `make run` and `make test`; `make check` is the gate's static half.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test check lint typecheck layers workflows bandit deploy audit format lock clean openapi

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "WasmWiz needs Python 3.11 or newer")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "Creating the virtualenv failed. On Debian: apt-get install python3-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/wasmwiz db upgrade
	$(BIN)/wasmwiz demo
	$(BIN)/wasmwiz serve

# Branch coverage, failing under the floor in pyproject.toml; reports land in reports/.
# The self-test (tests/ci/) narrows a run with TESTS=… and COVERAGE=….
COVERAGE ?= --cov --cov-report=term-missing:skip-covered --cov-report=xml:reports/coverage.xml
test: install
	$(BIN)/pytest $(COVERAGE) --junitxml=reports/junit.xml $(TESTS)

# The gate's static half. Each stage is a target of its own, so it can be run (and broken) alone.
check: lint typecheck layers workflows bandit deploy

lint: install
	$(BIN)/ruff check src tests bench .ci
	$(BIN)/ruff format --check src tests bench .ci

typecheck: install
	$(BIN)/mypy
	$(BIN)/mypy --strict .ci/audit.py .ci/release_check.py

layers: install
	$(BIN)/lint-imports

# Container and cluster files, checked offline: hadolint, the Compose spec schema vendored by
# check-jsonschema, and the Kubernetes OpenAPI schemas shipped in kubernetes-validate.
KUBERNETES_VERSION ?= 1.33.0
deploy: install
	$(BIN)/hadolint Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
	$(BIN)/kubernetes-validate --strict --quiet -k $(KUBERNETES_VERSION) deploy/kubernetes/*.yaml

workflows: install
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/pre-commit validate-config .pre-commit-config.yaml

bandit: install
	$(BIN)/bandit -c pyproject.toml -r src --severity-level medium --quiet

# Known vulnerabilities in the pinned dependencies (docs/development.md: where advisories come from).
audit: install
	$(BIN)/python .ci/audit.py

format: install
	$(BIN)/ruff check --fix src tests bench .ci
	$(BIN)/ruff format src tests bench .ci

# Regenerate the committed OpenAPI document after changing a route (a test fails until you do).
openapi: install
	$(BIN)/wasmwiz openapi --output docs/openapi.json

# Re-pin every dependency after changing pyproject.toml: installs are reproducible from constraints.txt.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^pip==' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
