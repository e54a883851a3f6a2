#!/usr/bin/env bash
# Is a night complete? Prints one line per result set that is missing or failed and exits 1 when
# any is; exits 0 (printing nothing) when the night holds every expected set, each benchmarked with
# exit status 0. .ci/nightly.mk's report (title), gate and archive (label) all ask this one script.
#
# A set is DIR/cpu or DIR/gpu; it has results when it holds a result JSON (not a suite manifest or a
# spec); its benchmarks' exit status is DIR/<set>/bench-exit.txt, written by nightly-cpu/nightly-gpu
# (a set with results but no status file is treated as failed: its status is unknown).
#
# Usage: .ci/nightly-sets.sh NIGHTLY_DIR EXPECT_GPU     (EXPECT_GPU: yes or no; the CPU set is always expected)
set -uo pipefail
[[ $# -eq 2 ]] || { echo "nightly-sets: error: usage: nightly-sets.sh NIGHTLY_DIR yes|no" >&2; exit 2; }
dir="$1"
expect_gpu="$2"
[[ "$expect_gpu" == yes || "$expect_gpu" == no ]] || { echo "nightly-sets: error: EXPECT_GPU must be yes or no, got '$expect_gpu'" >&2; exit 2; }

incomplete=0
check() {
    local set="$1" name="$2" expected="$3" results code
    results="$(find "$dir/$set" -maxdepth 2 -name '*.json' ! -name suite.json ! -path '*/specs/*' -print -quit 2>/dev/null)"
    if [[ -z "$results" ]]; then
        if [[ "$expected" == yes ]]; then
            echo "the $name result set is missing ($dir/$set has no results): the night is incomplete"
            incomplete=1
        fi
        return
    fi
    code="$(cat "$dir/$set/bench-exit.txt" 2>/dev/null || echo unknown)"
    if [[ "$code" != 0 ]]; then
        echo "the $name benchmarks exited with status $code (a failed check or run): the $name result set is incomplete"
        incomplete=1
    fi
}
check cpu CPU yes
check gpu GPU "$expect_gpu"
exit "$incomplete"
