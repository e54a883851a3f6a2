# The nightly pipeline, locally and in CI (.github/workflows/nightly.yml runs the same targets).
# Included by the top-level Makefile, which defines PY, TFPARITY and RESULTS_DIR; the container
# benchmarks bench-cpu / bench-gpu come from docker/docker.mk and write under $(RESULTS_DIR).
#
#   make nightly                 bench-cpu (+ bench-gpu when nvidia-smi sees a GPU), report, gate, archive
#   make nightly-report          report over the result sets in $(NIGHTLY_DIR) (always exits 0)
#   make nightly-gate            tfparity compare (+ --baseline: the newest passing history entry, a suspected
#                                speed/memory regression re-run NIGHTLY_CONFIRM times first); 1 on FAIL
#   make nightly-archive         add this night's result sets to $(HISTORY_DIR)
#
# One nightly = one stamp; it is exported so that the sub-makes below agree on it.
ifndef NIGHTLY_STAMP
NIGHTLY_STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
endif
export NIGHTLY_STAMP

NIGHTLY_DIR ?= $(RESULTS_DIR)/nightly/$(NIGHTLY_STAMP)
NIGHTLY_REPORT_DIR ?= $(NIGHTLY_DIR)/report
HISTORY_DIR ?= $(RESULTS_DIR)/history
NIGHTLY_LABEL ?= nightly
NIGHTLY_MARGIN_PP ?= 1.0
# Confirm before failing: a suspected speed or memory regression is re-run this many times with the
# current code (same backend, on this machine) into $(NIGHTLY_DIR)/<set>-confirm-<stamp>/, and the gate
# fails only if the regression persists on all runs pooled (tfparity compare --confirm). 0 turns it off
# (e.g. where the gate runs on another machine than the benchmarks: its runs would not be comparable).
# Speed gates decide from 4 runs per side up (5 recommended): run the benchmarks with SEEDS >= 5 or
# DOCKER_RUN_ARGS="--repeats 5" (README "Statistics": the run count the measured noise needs).
NIGHTLY_CONFIRM ?= 5
NIGHTLY_CONFIRM_ARG = $(if $(filter-out 0,$(NIGHTLY_CONFIRM)), --confirm $(NIGHTLY_CONFIRM))
# Result sets of this night: one directory per machine (cpu/, gpu/); whichever exist.
NIGHTLY_SETS = $(wildcard $(NIGHTLY_DIR)/cpu $(NIGHTLY_DIR)/gpu)
# The regression baseline: the newest history entry that passed its gate (empty on the first night).
NIGHTLY_BASELINE = $(shell $(TFPARITY) history $(HISTORY_DIR) --latest --label $(NIGHTLY_LABEL) 2>/dev/null)
# A GPU is used when the NVIDIA driver answers; anything else means a CPU-only nightly.
NIGHTLY_HAVE_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)

.PHONY: nightly nightly-cpu nightly-gpu nightly-report nightly-gate nightly-archive

nightly:
	$(MAKE) nightly-cpu
ifeq ($(NIGHTLY_HAVE_GPU),yes)
	$(MAKE) nightly-gpu
else
	@echo "nightly: no GPU (nvidia-smi failed or is missing): skipping bench-gpu"
endif
	$(MAKE) nightly-report
	@status=0; $(MAKE) nightly-gate || status=$$?; \
	if [ $$status -eq 0 ]; then label=$(NIGHTLY_LABEL); else label=$(NIGHTLY_LABEL)-failed; fi; \
	$(MAKE) nightly-archive NIGHTLY_ARCHIVE_LABEL=$$label && exit $$status

nightly-cpu:
	$(MAKE) bench-cpu RESULTS_DIR=$(NIGHTLY_DIR)/cpu

nightly-gpu:
	$(MAKE) bench-gpu RESULTS_DIR=$(NIGHTLY_DIR)/gpu

nightly-report:
	@test -n "$(NIGHTLY_SETS)" || { echo "nightly-report: no result sets in $(NIGHTLY_DIR) (cpu/, gpu/)" >&2; exit 2; }
	$(TFPARITY) report $(NIGHTLY_SETS) -o $(NIGHTLY_REPORT_DIR) --margin-pp $(NIGHTLY_MARGIN_PP) \
	  $(if $(wildcard $(HISTORY_DIR)),--history $(HISTORY_DIR)) \
	  $(if $(NIGHTLY_BASELINE),--baseline $(NIGHTLY_BASELINE))

# Agreement across all paths of the night, then each machine's set against the same machine's set
# in the baseline entry (a history entry holds cpu/ and gpu/ like $(NIGHTLY_DIR)). Every compare
# runs, so the log shows all failures; the target fails if any of them does.
nightly-gate:
	@test -n "$(NIGHTLY_SETS)" || { echo "nightly-gate: no result sets in $(NIGHTLY_DIR) (cpu/, gpu/)" >&2; exit 2; }
	@status=0; baseline="$(NIGHTLY_BASELINE)"; \
	echo "$(TFPARITY) compare $(NIGHTLY_SETS) --margin-pp $(NIGHTLY_MARGIN_PP)"; \
	$(TFPARITY) compare $(NIGHTLY_SETS) --margin-pp $(NIGHTLY_MARGIN_PP) || status=1; \
	if [ -z "$$baseline" ]; then echo "nightly-gate: no passing history entry in $(HISTORY_DIR): no regression baseline"; fi; \
	for set in $(NIGHTLY_SETS); do \
	  name=$$(basename $$set); \
	  if [ -n "$$baseline" ] && [ -d "$$baseline/$$name" ]; then \
	    echo "$(TFPARITY) compare $$set --baseline $$baseline/$$name --margin-pp $(NIGHTLY_MARGIN_PP)$(NIGHTLY_CONFIRM_ARG)"; \
	    $(TFPARITY) compare $$set --baseline $$baseline/$$name --margin-pp $(NIGHTLY_MARGIN_PP)$(NIGHTLY_CONFIRM_ARG) || status=1; \
	  fi; \
	done; \
	exit $$status

NIGHTLY_ARCHIVE_LABEL ?= $(NIGHTLY_LABEL)
nightly-archive:
	@test -n "$(NIGHTLY_SETS)" || { echo "nightly-archive: no result sets in $(NIGHTLY_DIR) (cpu/, gpu/)" >&2; exit 2; }
	$(TFPARITY) history $(HISTORY_DIR) --add $(NIGHTLY_SETS) --label $(NIGHTLY_ARCHIVE_LABEL) --stamp $(NIGHTLY_STAMP)
