# The two commands: `make drill` (a full rollback rehearsal on the local stack) and `make test`.
# Both install what they need: a .venv with the pinned moto and cfn-lint, the npm ASL validator,
# and Debian packages (PostgreSQL, kubectl, Chromium) when they are missing.

SHELL := /bin/bash
VENV := .venv
CARGO ?= cargo
export ROLLBACK_MOTO_SERVER ?= $(CURDIR)/$(VENV)/bin/moto_server
# A clean `make test` builds every crate once: incremental caches would add ≈ 3.6 GB to its
# ≈ 12 GB target dir and speed nothing up (a CI run's linker once died on a full disk).
# Set CARGO_INCREMENTAL=1 to keep them while iterating.
export CARGO_INCREMENTAL ?= 0

.PHONY: all test drill venv node system-deps disk-space lint unit validate conformance-fixtures engine-serve faults fuzz bench build release fmt clean package package-venv

all: test

## Python tools (moto, cfn-lint), pinned in requirements-dev.txt.
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## Debian packages the tests drive for real; installed only when missing.
APT_PACKAGES :=
ifeq ($(shell command -v kubectl),)
APT_PACKAGES += kubernetes-client
endif
ifeq ($(wildcard /usr/lib/postgresql/*/bin/initdb),)
APT_PACKAGES += postgresql
endif
ifeq ($(shell command -v chromium),)
APT_PACKAGES += chromium
endif
ifeq ($(shell command -v chromedriver),)
APT_PACKAGES += chromium-driver
endif
system-deps:
ifneq ($(strip $(APT_PACKAGES)),)
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)
endif

## The ASL validator, pinned in package-lock.json.
node: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## cfn-lint on the SAM template, asl-validator on the definition.
validate: venv node
	scripts/validate-definitions.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	CARGO=$(CARGO) scripts/long-functions.sh

unit: venv system-deps disk-space
	$(CARGO) test --workspace

## A clean `make test` needs about 9 GB for target/; say so before a linker fails on a full disk.
disk-space:
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$free" -lt 10 ]; then echo "warning: $$free GB free here; a clean make test needs about 9 GB for target/ (cargo clean frees an old one)" >&2; fi

test: venv node system-deps lint validate unit

## A full rollback rehearsal on the local stack: `make drill`, or e.g.
## `make drill DRILL_ARGS='--approve reject'`, `make drill DRILL_ARGS='--fail-at "Swap databases"'`.
DRILL_ARGS ?=
drill: venv system-deps
	$(CARGO) build --quiet -p rollbackctl
	$(CARGO) run --quiet -p rollbackctl -- drill $(DRILL_ARGS)

## Deployable Lambda artifacts (infra/DEPLOY.md): the real `sam build` of every function
## (cargo-lambda + zig), an artifact check (Linux ELF `bootstrap` of the architecture, zip ≤ 8 MB,
## sizes printed), then `sam validate --lint`. The tools are pinned in requirements-package.txt,
## in their own venv: aws-sam-cli pins boto3/click/pydantic other than moto's. Not part of
## `make test` (release builds: ≈ 46 min from cold on 2 shared cores, 13 s when cargo is up to
## date; cargo's target dir is target/package). arm64 unless the aarch64 Rust target
## cannot be added; PACKAGE_ARCH=x86_64 forces x86_64 (then deploy with Architecture=x86_64).
PACKAGE_VENV := $(VENV)/package
PACKAGE_ARCH ?=
package-venv: $(PACKAGE_VENV)/.installed
$(PACKAGE_VENV)/.installed: requirements-package.txt
	python3 -m venv $(PACKAGE_VENV)
	$(PACKAGE_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-package.txt
	touch $@

package: package-venv
	PACKAGE_VENV=$(PACKAGE_VENV) PACKAGE_ARCH=$(PACKAGE_ARCH) scripts/package-lambdas.sh

## Benchmarks that print their figures: cold start / peak RSS / zipped size of every release
## Lambda next to a Python + boto3 handler, and the engine's transitions per second vs moto.
bench: venv
	scripts/bench-lambdas.sh
	$(CARGO) bench -p rollback-engine --bench transitions

## Proof under faults at full counts: 200 random AWS/Kubernetes fault schedules and a crash at
## every state boundary (the default `make test` run is 4 schedules and 3 crash points).
faults: venv system-deps
	ROLLBACK_FAULT_RUNS=200 ROLLBACK_CRASH_EVERY=1 $(CARGO) test -p rollbackctl --test faults -- --nocapture

## Long bad-input run: 100,000 cases per fuzz target (stable driver) and per property test.
FUZZ_RUNS ?= 100000
fuzz:
	cd fuzz && $(CARGO) run --release --quiet --no-default-features --bin stable -- --runs $(FUZZ_RUNS)
	PROPTEST_CASES=$(FUZZ_RUNS) $(CARGO) test --release -p rollback-core --test properties

## The engine's conformance oracle (moto's executor) → checked-in fixtures.
conformance-fixtures: venv
	$(VENV)/bin/python local/engine/tests/conformance/record.py

## A standalone Step Functions endpoint for any definition (AWS CLI / boto3 with --endpoint-url).
engine-serve:
	$(CARGO) run -p rollback-engine -- serve --port 8083

build:
	$(CARGO) build --workspace

clean:
	$(CARGO) clean
	rm -rf $(VENV) node_modules .aws-sam
