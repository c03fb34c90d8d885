# The two commands of the README:
#   make demo   set up .venv (if missing), install, run the whole pipeline on the synthetic data (cpu preset)
#   make test   set up .venv (if missing), install, run the unit tests and the notebooks (ci preset)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= cpu

.PHONY: setup demo test bench clean-runs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

demo: setup
	$(PY) -m reid_uda_lib demo --preset $(PRESET) --data data/synthetic --out runs/demo-$(PRESET)

test: setup
	$(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

bench: setup
	$(PY) benchmarks/bench_evaluation.py
	$(PY) benchmarks/bench_jaccard.py

clean-runs:
	rm -rf runs/
