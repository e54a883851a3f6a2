# The nightly pipeline, locally and in CI (.github/workflows/nightly.yml runs the same targets).
# Included by the top-level Makefile, which defines PY, TFPARITY and RESULTS_DIR; the container
# benchmarks (bench-cpu, probe-cpu, bench-gpu-paths) come from docker/docker.mk.
#
#   make nightly          the CPU set (+ the GPU set when a GPU is expected), report, gate, archive;
#                         a failed or missing set never stops the report, the gate or the archive
#   make nightly-cpu      the seed suite and its numerics probe in CPU containers   -> $(NIGHTLY_DIR)/cpu
#   make nightly-gpu      every GPU path (fp32, tf32, mixed fp16, XLA, compiled loop) and the GPU
#                         probes in GPU containers                                  -> $(NIGHTLY_DIR)/gpu
#   make nightly-report   report over the sets that have results (titled INCOMPLETE when one is missing)
#   make nightly-gate     fails when an expected set is missing or failed, on a FAIL verdict, or on a
#                         regression against the newest passing history entry (a suspected speed/memory
#                         regression is re-run NIGHTLY_CONFIRM times first)
#   make nightly-archive  add the night to $(HISTORY_DIR), labelled nightly (complete, gate passed),
#                         nightly-failed (gate failed) or nightly-incomplete (a set missing or failed);
#                         only `nightly` entries are ever a regression baseline
#
# Whether a GPU set is expected: NIGHTLY_EXPECT_GPU=yes|no|auto (auto, the default: yes when
# `nvidia-smi -L` lists a GPU). The workflow's compare job says yes: it always has a GPU job.
#
NIGHTLY_MK_DIR := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))

# One nightly = one stamp; it is exported so that the sub-makes below agree on it.
ifndef NIGHTLY_STAMP
NIGHTLY_STAMP := $(shell date -u +%Y%m%dT%H%M%SZ)
endif
export NIGHTLY_STAMP

NIGHTLY_EXPECT_GPU ?= auto
ifeq ($(NIGHTLY_EXPECT_GPU),auto)
NIGHTLY_GPU_EXPECTED := $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes || echo no)
else ifneq ($(filter $(NIGHTLY_EXPECT_GPU),yes no),)
NIGHTLY_GPU_EXPECTED := $(NIGHTLY_EXPECT_GPU)
else
$(error NIGHTLY_EXPECT_GPU must be yes, no or auto, got '$(NIGHTLY_EXPECT_GPU)')
endif
export NIGHTLY_GPU_EXPECTED

NIGHTLY_DIR ?= $(RESULTS_DIR)/nightly/$(NIGHTLY_STAMP)
NIGHTLY_REPORT_DIR ?= $(NIGHTLY_DIR)/report
HISTORY_DIR ?= $(RESULTS_DIR)/history
NIGHTLY_LABEL ?= nightly
NIGHTLY_MARGIN_PP ?= 1.0
# The gate's outcome for the archive label: success or failure (the workflow passes its gate step's).
NIGHTLY_GATE_OUTCOME ?= success
# Result sets of this night that hold results (cpu/, gpu/); a set directory with only its status file
# (a GPU check that failed before any run) is not a result set.
NIGHTLY_SETS = $(foreach s,cpu gpu,$(if $(filter-out %/suite.json,$(wildcard $(NIGHTLY_DIR)/$(s)/*.json \
  $(NIGHTLY_DIR)/$(s)/*/*.json)),$(NIGHTLY_DIR)/$(s)))
NIGHTLY_INCOMPLETE = bash $(NIGHTLY_MK_DIR)nightly-sets.sh $(NIGHTLY_DIR) $(NIGHTLY_GPU_EXPECTED)
# Confirm before failing: a suspected speed or memory regression is re-run this many times with the
# current code (same backend, on this machine) into $(NIGHTLY_DIR)/<set>-confirm-<stamp>/, and the gate
# fails only if the regression persists on all runs pooled (tfparity compare --confirm). 0 turns it off
# (e.g. where the gate runs on another machine than the benchmarks: its runs would not be comparable).
# Speed gates decide from 4 runs per side up (5 recommended): run the benchmarks with SEEDS >= 5 or
# DOCKER_RUN_ARGS="--repeats 5" (README "Statistics": the run count the measured noise needs).
NIGHTLY_CONFIRM ?= 5
NIGHTLY_CONFIRM_ARG = $(if $(filter-out 0,$(NIGHTLY_CONFIRM)), --confirm $(NIGHTLY_CONFIRM))
# The regression baseline: the newest history entry that passed its gate (empty on the first night).
NIGHTLY_BASELINE = $(shell $(TFPARITY) history $(HISTORY_DIR) --latest --label $(NIGHTLY_LABEL) 2>/dev/null)

.PHONY: nightly nightly-cpu nightly-gpu nightly-report nightly-gate nightly-archive

nightly:
	-@$(MAKE) --no-print-directory nightly-cpu
ifeq ($(NIGHTLY_GPU_EXPECTED),yes)
	-@$(MAKE) --no-print-directory nightly-gpu
else
	@echo "nightly: no GPU expected (NIGHTLY_EXPECT_GPU=$(NIGHTLY_EXPECT_GPU); nvidia-smi lists none): a CPU-only night"
endif
	-@$(MAKE) --no-print-directory nightly-report
	@status=0; $(MAKE) --no-print-directory nightly-gate || status=$$?; \
	if [ $$status -eq 0 ]; then outcome=success; else outcome=failure; fi; \
	$(MAKE) --no-print-directory nightly-archive NIGHTLY_GATE_OUTCOME=$$outcome && exit $$status

# Each set records its benchmarks' exit status next to its results (bench-exit.txt): a failed run,
# a failed GPU check or a crash makes the set incomplete, whatever results it holds.
nightly-cpu:
	@mkdir -p $(NIGHTLY_DIR)/cpu; status=0; \
	$(MAKE) --no-print-directory -k bench-cpu probe-cpu RESULTS_DIR=$(NIGHTLY_DIR)/cpu || status=$$?; \
	echo $$status > $(NIGHTLY_DIR)/cpu/bench-exit.txt; exit $$status

nightly-gpu:
	@mkdir -p $(NIGHTLY_DIR)/gpu; status=0; \
	$(MAKE) --no-print-directory bench-gpu-paths RESULTS_DIR=$(NIGHTLY_DIR)/gpu || status=$$?; \
	echo $$status > $(NIGHTLY_DIR)/gpu/bench-exit.txt; exit $$status

nightly-report:
	@test -n "$(NIGHTLY_SETS)" || { echo "nightly-report: no result sets in $(NIGHTLY_DIR) (cpu/, gpu/)" >&2; exit 2; }
	@missing="$$($(NIGHTLY_INCOMPLETE) | paste -sd ';' -)"; \
	title="tfparity nightly $(NIGHTLY_STAMP)$${missing:+ -- INCOMPLETE: $$missing}"; \
	echo "$(TFPARITY) report $(NIGHTLY_SETS) -o $(NIGHTLY_REPORT_DIR)"; \
	$(TFPARITY) report $(NIGHTLY_SETS) -o $(NIGHTLY_REPORT_DIR) --margin-pp $(NIGHTLY_MARGIN_PP) --title "$$title" \
	  $(if $(wildcard $(HISTORY_DIR)),--history $(HISTORY_DIR)) \
	  $(if $(NIGHTLY_BASELINE),--baseline $(NIGHTLY_BASELINE))

# Completeness first (one FAIL line per missing or failed set), then agreement across all paths of
# the night, then each machine's set against the same machine's set in the baseline entry (a history
# entry holds cpu/ and gpu/ like $(NIGHTLY_DIR)). Every step runs, so the log shows all failures.
nightly-gate:
	@status=0; baseline="$(NIGHTLY_BASELINE)"; \
	missing="$$($(NIGHTLY_INCOMPLETE))" || status=1; \
	if [ -n "$$missing" ]; then echo "$$missing" | sed 's/^/nightly-gate: FAIL: /'; fi; \
	if [ -z "$(NIGHTLY_SETS)" ]; then echo "nightly-gate: FAIL: no result sets in $(NIGHTLY_DIR) (cpu/, gpu/)"; exit 1; fi; \
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

nightly-archive:
	@test -n "$(NIGHTLY_SETS)" || { echo "nightly-archive: no result sets in $(NIGHTLY_DIR) (cpu/, gpu/)" >&2; exit 2; }
	@if ! $(NIGHTLY_INCOMPLETE) >/dev/null; then label=$(NIGHTLY_LABEL)-incomplete; \
	elif [ "$(NIGHTLY_GATE_OUTCOME)" = success ]; then label=$(NIGHTLY_LABEL); \
	else label=$(NIGHTLY_LABEL)-failed; fi; \
	echo "$(TFPARITY) history $(HISTORY_DIR) --add $(NIGHTLY_SETS) --label $$label --stamp $(NIGHTLY_STAMP)"; \
	$(TFPARITY) history $(HISTORY_DIR) --add $(NIGHTLY_SETS) --label $$label --stamp $(NIGHTLY_STAMP)
