# Everything installs from the project's own pinned files: a fresh machine needs python3, npm and make.
VENV   := .venv
PY     := $(VENV)/bin/python
# checkov, in a venv of its own: its pins (boto3, pydantic, ...) are not the main venv's.
SCAN   := .venv-scan
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export MOTO_EC2_LOAD_DEFAULT_AMIS := false

.PHONY: setup demo demo-eks test campaign bench compare lint synth screenshot clean

setup: $(VENV)/.installed $(SCAN)/.installed node_modules/.installed .jq

$(VENV)/.installed: pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(SCAN)/.installed: requirements-scan.lock
	python3 -m venv $(SCAN)
	$(SCAN)/bin/python -m pip install -q --require-hashes -r requirements-scan.lock
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The simulated control container runs the real SSM documents, which use jq as Bottlerocket's does.
.jq:
	@command -v jq >/dev/null || { apt-get update -qq && apt-get install -y -qq jq >/dev/null; }
	@touch $@

demo: setup
	$(PY) -m sim.demo

# The same pipeline on the nodes of a simulated EKS cluster: cordon, evictions within budgets, uncordon.
demo-eks: setup
	$(PY) -m sim.demo_eks

test: setup
	$(PY) -m pytest

# The seeded fault campaign (20 runs): minutes, so apart from `make test`.
campaign: setup
	$(PY) -m pytest -m slow tests/campaign

# The same seeded runs on an idle and on a saturated machine: their outcome records must be identical.
compare: setup
	$(PY) bench/load_compare.py demo demo-eks bench:100 bench:1000 eks:100

bench: setup
	$(PY) bench/rollout_bench.py
	$(PY) bench/eks_bench.py

# The README's picture of a report: the demo writes one per rollout, headless Chromium (Debian's) takes the
# third act's prod rollout (an alarm mid-bake, the wave rolled back). Flags as for a machine with no network.
REPORT := reports/1.27.1-prod.html
screenshot: setup .chromium
	$(PY) -m sim.demo --reports reports
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
	  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir=$$(mktemp -d) \
	  --window-size=1280,1500 --screenshot=docs/report.png file://$(CURDIR)/$(REPORT)

.chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .

synth: setup
	npx cdk synth --quiet

clean:
	rm -rf $(VENV) $(SCAN) node_modules cdk.out .jq .chromium reports
