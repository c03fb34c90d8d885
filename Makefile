# The two commands of the README:
#   make demo   set up .venv (if missing), install, run the whole pipeline on the synthetic data (cpu preset)
#   make test   set up .venv (if missing), install, run the unit tests and the notebooks (ci preset)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= cpu
SEEDS  ?= 0 1 2
DCDFA_ROWS := sbase,dcdfa_cid,dcdfa_cid_rreid,dcdfa_cid_domain,dcdfa,sbase_dann

.PHONY: setup demo test bench results-dcdfa clean-runs

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
	$(PY) benchmarks/bench_step.py

# DCDFA Tables 1-3 rows on the synthetic pair, one run folder per seed, then mean ± std over the seeds
results-dcdfa: setup
	for s in $(SEEDS); do $(PY) -m reid_uda_lib demo --preset $(PRESET) --data data/synthetic --no-oracle \
	    --set seed=$$s --methods $(DCDFA_ROWS) --out runs/dcdfa-s$$s --quiet || exit 1; done
	$(PY) -m reid_uda_lib table $(foreach s,$(SEEDS),runs/dcdfa-s$(s)) --methods $(DCDFA_ROWS)

clean-runs:
	rm -rf runs/
