# The two commands of the README:
#   make demo   set up .venv (if missing), install, run the whole pipeline on the synthetic data (cpu preset)
#   make test   set up .venv (if missing), install, run the unit tests and the notebooks (ci preset)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= cpu
SEEDS  ?= 0 1 2
DCDFA_ROWS := sbase,dcdfa,dcdfa_cid,dcdfa_cid_rreid,dcdfa_cid_domain,sbase_dann
LF2_ROWS   := lf2_base,lf2_nofm,lf2,lf2_dcdfa

.PHONY: setup demo test bench results-dcdfa results-lf2 clean-runs

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

# Rows over seeds on the synthetic pair: one single-threaded process per seed, all seeds at once (on a 2-core
# machine this beats one 2-thread process after another), then mean ± std over the seeds. Every row of a seed
# shares that seed's pretrained model in runs/seed<S>/pretrain.
results-dcdfa: ROWS = $(DCDFA_ROWS)
results-lf2: ROWS = $(LF2_ROWS)
results-dcdfa results-lf2: setup
	$(PY) -m reid_uda_lib synthetic --out data/synthetic
	@mkdir -p runs; pids=""; for s in $(SEEDS); do \
	  echo "seed $$s: log in runs/seed$$s.$@.log"; \
	  OMP_NUM_THREADS=1 $(PY) -m reid_uda_lib demo --preset $(PRESET) --data data/synthetic --no-oracle --quiet \
	    --set seed=$$s --methods $(ROWS) --out runs/seed$$s > runs/seed$$s.$@.log 2>&1 & pids="$$pids $$!"; \
	done; for p in $$pids; do wait $$p || exit 1; done
	$(PY) -m reid_uda_lib table $(foreach s,$(SEEDS),runs/seed$(s)) --methods $(ROWS)

clean-runs:
	rm -rf runs/

# The rendered copy of the notebook series (docs/): every notebook executed with the cpu preset (it trains the
# series' stages into runs/series-cpu, or reuses them), checked, saved as .ipynb and .html (DOCS_PRESET=ci: a
# quick check of the command).
.PHONY: docs
docs: setup
	$(PY) tools/render_docs.py --preset $(or $(DOCS_PRESET),cpu) --out docs
