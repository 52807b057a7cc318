# The README's two commands are `make demo` and `make test`. Each sets up what it needs itself:
# a virtualenv in .venv with the pinned dependencies (constraints.txt), and for CDK work the
# pinned CDK CLI from the npm registry in node_modules/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# The CDK's jsii runtime supports Node 22 and 24 and calls Node 20 end-of-life; it still works, and
# this quiets the banner where Node 20 is what the machine has (see README: Deploying).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30

PHONY_SUITES := test-unit test-moto test-local test-infra test-reliability test-rehearsal test-install test-bench test-fast
.PHONY: demo test $(PHONY_SUITES) rehearse-cloud audit checkov bench format synth deploy destroy node-version local-up \
	local-down clean image rehearse-image install-check

# The three distributions (geobatch, geobatch-server in lambdas/, geobatch-worker in batch_image/),
# editable, with every extra: the SDK's [local] requires the other two, which pip takes from here.
$(STAMP): pyproject.toml lambdas/pyproject.toml batch_image/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]' -e ./lambdas -e ./batch_image
	touch $(STAMP)

venv: $(STAMP)

## Runs the k-means land-cover demo in local mode (no AWS account needed).
demo: $(STAMP)
	$(BIN)/geobatch demo $(DEMO_ARGS)

## Runs the whole test suite: lint, types, security checks, then unit, moto, local end-to-end,
## browser, reliability (fault injection, API fuzzing, tenant isolation), infrastructure tests and
## every benchmark once at a tiny size (bench; the three that build the land-cover demo are marked
## `slow` and left to `make test-bench`, so the whole run stays well under 20 minutes),
## side by side on $(PYTEST_WORKERS) pytest-xdist workers (most of the suite waits on workers, leases
## and process start-ups, so 4 workers pay on 2 cores); tests sharing a fixture stay on one worker
## (tests/xdist_groups.py). PYTEST_WORKERS=0 runs it in one process. The 20 slowest tests are listed
## at the end, so a CI log shows where the time went.
PYTEST_WORKERS ?= 4
XDIST = $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadgroup)
test: $(STAMP)
	bash scripts/ensure_chromium.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy lambdas sdk batch_image
	$(BIN)/bandit -q -r lambdas sdk batch_image -ll
	$(BIN)/python scripts/export_openapi.py --check
	BIN=$(BIN) bash scripts/audit_dependencies.sh
	$(BIN)/pytest $(XDIST) -m 'not image and not slow' --durations=20 $(PYTEST_ARGS)

## One suite at a time (each is part of `make test`), in one process: every test carries exactly one
## suite marker (tests/conftest.py refuses a test without one). `make test-fast` is the quick loop:
## unit + moto. PYTEST_ARGS='-n 4 --dist loadgroup' runs a suite side by side as `make test` does.
SUITES := unit moto local infra reliability rehearsal install bench
$(addprefix test-,$(SUITES)): test-%: $(STAMP)
	$(BIN)/pytest -m $* $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m 'unit or moto' $(PYTEST_ARGS)

## Only the cloud rehearsal (part of `make test`): the synthesized stack (with its bundled Lambda asset)
## deployed into moto's CloudFormation, its Lambdas run from that asset in a Lambda-like python3.11
## interpreter, the worker under its Function's role, IAM enforced on every request
## (tests/rehearsal; first run bundles the asset and builds the runtime venv, both cached under .venv).
rehearse-cloud: $(STAMP)
	$(BIN)/pytest tests/rehearsal -m rehearsal $(PYTEST_ARGS)
## Only the install check (part of `make test`): the three wheels built, `pip install geobatch` and
## `pip install geobatch[local]` into bare venvs, the CLI and a local-mode job run from them.
install-check: $(STAMP)
	$(BIN)/python scripts/install_check.py

## Builds the worker image (batch_image/Dockerfile): Docker if its daemon answers, else buildah
## (vfs, chroot isolation; a Debian-built base where the public one cannot be pulled).
## REQUIREMENTS=file adds a Function's requirements; IMAGE=name:tag names the result.
image: $(STAMP)
	IMAGE=$(or $(IMAGE),localhost/geobatch-worker:latest) bash scripts/build_image.sh $(REQUIREMENTS)

## Opt-in: builds the image with the k-means Function's requirements and runs a land-cover tile
## job inside it, as its unprivileged user, against moto; then the worker-only image's packages,
## user, containment and SIGTERM handling (tests/image; about 3 min warm, 20+ min rebuilding layers).
rehearse-image: $(STAMP)
	$(BIN)/pytest tests/image -m image -v $(PYTEST_ARGS)

## pip-audit of the pinned dependencies (needs PyPI's vulnerability API).
audit: $(STAMP)
	$(BIN)/pip-audit --strict -r constraints.txt

## checkov on the synthesized template, from its own virtualenv (its dependencies would not fit the
## pinned tree); acknowledged checks and their reasons are in checkov.yaml. Not part of `make test`.
$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

checkov: $(STAMP) $(CHECKOV_VENV)/bin/checkov
	$(BIN)/python app.py -c 'aws:cdk:bundling-stacks=[]'
	$(CHECKOV_VENV)/bin/checkov --config-file checkov.yaml -f cdk.out/GeoBatch-dev.template.json

## Runs every benchmark at full size (each prints a table; `make test-bench` is the smoke run at a
## tiny size); see benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

node_modules/.bin/cdk: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

synth: $(STAMP) node_modules/.bin/cdk
	PATH=$(CURDIR)/$(BIN):$$PATH node_modules/.bin/cdk synth $(CDK_ARGS)

node-version:
	@node -e 'const v = process.versions.node; if (+v.split(".")[0] < 22) console.error("warning: Node " + v + " is end-of-life for the CDK (jsii supports Node 22 and 24); it still works")'

deploy: $(STAMP) node_modules/.bin/cdk node-version
	PATH=$(CURDIR)/$(BIN):$$PATH node_modules/.bin/cdk deploy $(CDK_ARGS)

destroy: $(STAMP) node_modules/.bin/cdk
	PATH=$(CURDIR)/$(BIN):$$PATH node_modules/.bin/cdk destroy $(CDK_ARGS)

local-up: $(STAMP)
	$(BIN)/geobatch local up

local-down: $(STAMP)
	$(BIN)/geobatch local down

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache test-artifacts
