# The two commands of the README:
#   make demo   set up .venv (if missing), install, run the headline rows on the synthetic data (cpu preset):
#               direct transfer, SBase, SBase+DCDFA, LF², the oracle; one seed; prints the table
#   make test   set up .venv (if missing), install, run the unit tests and the notebooks (ci preset)
# and:
#   make ladder every ablation row over SEEDS (JOBS single-threaded processes at once: pretrainings, then rows) ->
#               runs/ladder-$(PRESET)/results.md and results.csv (ROWS=oracle,direct,sbase,... for a subset;
#               GAP=2 for the harder pair -> runs/ladder-$(PRESET)-gap2)
#   make ladder-real  the ladder on a real target: CUHK03 cut by camera pairs (REAL_SOURCE=real: its cameras 1-2;
#               synthetic: the synthetic A) -> runs/ladder-$(PRESET)-cuhk03 or -syn2cuhk03
#   make bench  every benchmark script at small sizes (minutes on a CPU)
#   make gpu-check  on a lent GPU: step time/memory, clustering, resume, batch per 16/40 GB -> outputs/gpu_check (< 8 min on an H100)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PRESET ?= cpu
SEEDS  ?= 0 1 2 3 4
JOBS   ?= 2
ROWS   ?=
# GAP=2: the ladder on the harder synthetic pair (the generator's style gap 2; docs/results.md, "A harder
# pair") in data/synthetic-gap2 -> runs/ladder-$(PRESET)-gap2; GAP=1 is the default pair
GAP    ?= 1
GAP_SUFFIX := $(if $(filter-out 1 1.0,$(GAP)),-gap$(GAP))
# CPU_ISA=avx2: cap torch's CPU kernels (ATen, oneDNN, MKL) at AVX2, as on an AVX2-only CPU, which prints
# other numbers than an AVX-512 one for the same seed (README, "Numbers across CPU types"); empty: the machine's own.
# Its runs go to runs/demo-$(PRESET)-avx2, runs/ladder-$(PRESET)-avx2.
CPU_ISA ?=
ISA_ENV_avx2 := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
ifneq ($(CPU_ISA),)
ifeq ($(ISA_ENV_$(CPU_ISA)),)
$(error CPU_ISA=$(CPU_ISA): expected avx2 or nothing)
endif
endif
RUN    := $(ISA_ENV_$(CPU_ISA)) $(PY)
ISA_SUFFIX := $(if $(CPU_ISA),-$(CPU_ISA))
empty  :=
space  := $(empty) $(empty)
comma  := ,

.PHONY: setup setup-dev demo test bench gpu-check ladder ladder-real results-bn clean-runs

# setup: the package and what it runs with (make demo, ladder, bench); setup-dev adds the test and notebook
# tools (pytest, nbval, jupyterlab, papermill, nbconvert: make test, make docs)
setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

# INSTALLER=uv (the default): pip puts uv into the venv and uv installs the project: it downloads wheels in
# parallel, and torch's are several GB (docs/development.md, "Installing": 27 s against pip's 103 s for the
# torch pair). The caps pip is configured with (PIP_CONSTRAINT, pip's global.constraint) and its index are
# passed on, so uv picks the releases pip would. Where uv cannot be had or fails, pip installs (a line says
# so). INSTALLER=pip: pip alone, as before.
INSTALLER ?= uv
ifeq ($(filter uv pip,$(INSTALLER)),)
$(error INSTALLER=$(INSTALLER): expected uv or pip)
endif
# read when an install runs (not on every make call: pip takes a second to start)
pip_conf   = $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.$(1)='\(.*\)'$$/\1/p")
PIP_CAPS   = $(sort $(call pip_conf,constraint))
PIP_INDEX  = $(firstword $(call pip_conf,index-url))
UV_ARGS    = --quiet --python $(PY) $(foreach c,$(PIP_CAPS),--constraint $(c)) \
             $(if $(PIP_INDEX),--default-index $(PIP_INDEX))
# $(call install,<pip arguments>)
# (pip is upgraded only where it installs the project: the venv's own pip can install uv)
install = $(if $(filter uv,$(INSTALLER)),\
  { $(PY) -m pip install --quiet uv && $(VENV)/bin/uv pip install $(UV_ARGS) $(1); } || \
  { echo "uv could not install $(1): installing with pip"; $(PIP_INSTALL) $(1); },\
  $(PIP_INSTALL) $(1))
PIP_INSTALL = $(PY) -m pip install --quiet --upgrade pip && $(PY) -m pip install --quiet

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call install,-e .)
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(call install,-e '.[dev]')
	@touch $@

demo: setup
	$(RUN) -m reid_uda_lib demo --preset $(PRESET) --data data/synthetic --out runs/demo-$(PRESET)$(ISA_SUFFIX)

# the notebooks' kernels inherit these: the ci preset, cpu's recipe cut short (a notebook opened by hand trains cpu)
# and the solutions switch (each exercise checks its reference answer, and a wrong one fails the test)
test: setup-dev
	REID_UDA_NOTEBOOK_PRESET=ci REID_UDA_SOLUTIONS=1 \
	  $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

# Small sizes: every script finishes in a few minutes on a 2-core CPU (the README's figures use the
# full sizes: see benchmarks/README.md). BENCH_DEVICE=cuda runs the torch side on a GPU. A script that misses
# its target exits 1; make reports it ("ignored") and runs the others, so every figure is printed.
BENCH_DEVICE ?= cpu
bench: setup
	-$(RUN) benchmarks/bench_evaluation.py --device $(BENCH_DEVICE)
	-$(RUN) benchmarks/bench_jaccard.py --quick --repeats 1 --device $(BENCH_DEVICE)
	-$(RUN) benchmarks/bench_kmeans.py --n 3000 --k 150 --ids 175 --device $(BENCH_DEVICE)
	-$(RUN) benchmarks/bench_step.py --methods sbase,dcdfa,lf2 --arch resnet18 --height 128 --width 64 --batch 32 \
	  --rounds 3 --device $(BENCH_DEVICE)
	-$(RUN) benchmarks/bench_throughput.py --steps 3 --loader-batches 10 --device $(BENCH_DEVICE)
	-$(RUN) benchmarks/bench_bn_groups.py --rounds 3 --device $(BENCH_DEVICE)
	-$(RUN) benchmarks/bench_maxpool.py

# One prepared measurement of the GPU path (benchmarks/gpu_check.py, docs/training.md "GPU figures"): under
# --budget-s 450 by construction; writes gpu_check.json and .md into GPU_OUT. On a machine without this venv
# (a lent GPU: offline, torch already installed) GPU_PY=python3 runs the checkout uninstalled, without setup;
# COMMIT=<sha> records the commit where the copied tree has no .git.
GPU_PY  ?= $(PY)
GPU_OUT ?= outputs/gpu_check
COMMIT  ?=
gpu-check: $(if $(filter $(PY),$(GPU_PY)),setup)
	$(GPU_PY) benchmarks/gpu_check.py --device cuda --out $(GPU_OUT) $(if $(COMMIT),--commit $(COMMIT))

# Every row over the seeds on the synthetic pair: JOBS single-threaded processes at once, each seed's
# pretraining first, then one process per row (on a 2-core machine this beats one 2-thread process after
# another); each seed's rows share its pretrained model in runs/ladder-$(PRESET)/seed<S>/pretrain. Run it again after a stop: finished stages are reused.
ladder: setup
	$(RUN) -m reid_uda_lib ladder --preset $(PRESET) --synthetic data/synthetic$(GAP_SUFFIX) --gap $(GAP) --quiet \
	  --seeds $(subst $(space),$(comma),$(strip $(SEEDS))) --jobs $(JOBS) $(if $(ROWS),--rows $(ROWS)) \
	  --out runs/ladder-$(PRESET)$(GAP_SUFFIX)$(ISA_SUFFIX)

# A real target (docs/results.md, "A real target"): CUHK03 (REAL_TAR, Market layout; ../shared/data/README.md)
# extracted into data/real/cuhk03 and cut by camera pairs, which share no identity: the target B is cameras
# 5-10 (753 train images, 87 identities), the real source A cameras 1-2 (4,346 images, 449 identities);
# cameras 3-4 are the validation target (data/real/cuhk03-pairval/B) on which REAL_SET was chosen (tools/eps_scan.py:
# the first round's labels with the highest ARI over all images, outliers as singletons): DBSCAN's eps 0.5 and
# LF²'s M = 0.2 x B's 753 train images = 151. The real source's pretraining is the preset's (8 passes over A).
# REAL_SOURCE=synthetic adapts the synthetic A (generated if missing) to the same B.
REAL_TAR    ?= ../shared/data/cuhk03.tar
REAL_SOURCE ?= real
REAL_SEEDS  ?= 0 1 2
REAL_SET    ?= --set uda.eps=0.5 --set lf2.n_clusters=151
REAL_SRC_real      := data/real/cuhk03-pair/A
REAL_SRC_synthetic := data/synthetic/A
REAL_OUT_real      := cuhk03
REAL_OUT_synthetic := syn2cuhk03
ifeq ($(REAL_SRC_$(REAL_SOURCE)),)
$(error REAL_SOURCE=$(REAL_SOURCE): expected real or synthetic)
endif
ladder-real: setup data/real/cuhk03-pair/split.json data/real/cuhk03-pairval/split.json \
             $(if $(filter synthetic,$(REAL_SOURCE)),data/synthetic/A/bounding_box_train)
	$(RUN) -m reid_uda_lib ladder --preset $(PRESET) --source $(REAL_SRC_$(REAL_SOURCE)) \
	  --target data/real/cuhk03-pair/B $(REAL_SET) --quiet \
	  --seeds $(subst $(space),$(comma),$(strip $(REAL_SEEDS))) --jobs $(JOBS) $(if $(ROWS),--rows $(ROWS)) \
	  --out runs/ladder-$(PRESET)-$(REAL_OUT_$(REAL_SOURCE))$(ISA_SUFFIX)

data/real/cuhk03/bounding_box_train:
	$(if $(wildcard $(REAL_TAR)),,$(error REAL_TAR=$(REAL_TAR): no such file; expected CUHK03 in Market layout as a tar (../shared/data/README.md)))
	mkdir -p data/real && tar -xf $(REAL_TAR) -C data/real

data/real/cuhk03-pair/split.json: | data/real/cuhk03/bounding_box_train
	$(PY) data_scripts/split_by_cameras.py data/real/cuhk03 --out data/real/cuhk03-pair --groups 1,2:5,6,7,8,9,10 \
	  --names A,B --mode hardlink

data/real/cuhk03-pairval/split.json: | data/real/cuhk03/bounding_box_train
	$(PY) data_scripts/split_by_cameras.py data/real/cuhk03 --out data/real/cuhk03-pairval --groups 1,2:3,4 \
	  --names A,B --mode hardlink

data/synthetic/A/bounding_box_train:
	$(PY) -m reid_uda_lib synthetic --out data/synthetic --seed 0 --quiet

# BatchNorm groups on the synthetic pair: direct transfer and SBase with groups of 16 images (pretraining: 2 groups
# of the 32; SBase: 4 groups of 8 + 8 of the 32 + 32, one paper GPU's share in the 4-GPU SpCL-style trainers),
# seeds in parallel; compare with the whole-batch rows of `make ladder` (runs/ladder-$(PRESET)/results.md).
results-bn: setup
	$(RUN) -m reid_uda_lib ladder --preset $(PRESET) --synthetic data/synthetic --quiet \
	  --seeds $(subst $(space),$(comma),$(strip $(SEEDS))) --jobs $(JOBS) --rows direct,sbase \
	  --set model.bn_samples=16 --out runs/ladder-$(PRESET)-bn16$(ISA_SUFFIX)

clean-runs:
	rm -rf runs/

# The rendered copy of the notebook series (docs/): every notebook executed with the cpu preset (it trains the
# series' stages into runs/series-cpu, or reuses them), checked, saved as .ipynb and .html (DOCS_PRESET=tiny: a
# quick check of the command).
.PHONY: docs
docs: setup-dev
	$(PY) tools/render_docs.py --preset $(or $(DOCS_PRESET),cpu) --out docs
