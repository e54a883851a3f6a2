#!/usr/bin/env bash
# Every GPU path, one `tfparity run` each (a failing path never hides the others), then the numerics
# probe of each GPU precision. The one list of GPU paths: used by `make bench-gpu-paths` (the GPU
# nightly) and `make gpu-check`. The GPU check must have passed before (`tfparity docker check-gpu`).
#
#   fp32       --precision fp32          TF32 off (fp32 means fp32)
#   tf32       --precision tf32          TF32 on (Ampere and newer)
#   mixed      --precision mixed         mixed_float16 with loss scaling (the GPU's mixed policy)
#   xla        --precision fp32 --xla on
#   compiled   --preset fast             the compiled multi-step loop (XLA, 64 steps per call)
#   probe      --mode probe for fp32, tf32 and mixed: one batch against float64
#
# Usage: docker/gpu-paths.sh RESULTS_DIR     env: TFPARITY (the CLI), DATASET, SEEDS, GPUS, WHAT (models
#        and epochs, default "--suite seed"), PROBE_WHAT (default "--suite seed"), EXTRA (more run options)
# Exit 0 when every run passed, 1 when any failed (all of them ran).
set -uo pipefail
[[ $# -eq 1 ]] || { echo "gpu-paths: error: usage: gpu-paths.sh RESULTS_DIR" >&2; exit 2; }
results="$1"
read -r -a cli <<<"${TFPARITY:?set TFPARITY to the tfparity command}"
read -r -a what <<<"${WHAT:---suite seed}"
read -r -a probe_what <<<"${PROBE_WHAT:---suite seed}"
read -r -a extra <<<"${EXTRA:-}"
common=(--backend docker --device gpu --dataset "${DATASET:-mnist}" --results-dir "$results")
[[ -n "${SEEDS:-}" ]] && common+=(--seeds "$SEEDS")
[[ -n "${GPUS:-}" ]] && common+=(--gpus "$GPUS")

declare -A paths=(
    [fp32]="--precision fp32"
    [tf32]="--precision tf32"
    [mixed]="--precision mixed"
    [xla]="--precision fp32 --xla on"
    [compiled]="--preset fast"
)
status=0
failed=()
for name in fp32 tf32 mixed xla compiled; do
    read -r -a args <<<"${paths[$name]}"
    echo "gpu-paths: $name: ${cli[*]} run ${args[*]} ${what[*]}"
    "${cli[@]}" run "${common[@]}" "${args[@]}" "${what[@]}" "${extra[@]}" || { status=1; failed+=("$name"); }
done
for precision in fp32 tf32 mixed; do
    echo "gpu-paths: probe $precision"
    "${cli[@]}" run "${common[@]}" --mode probe --precision "$precision" "${probe_what[@]}" "${extra[@]}" \
        || { status=1; failed+=("probe-$precision"); }
done
((status == 0)) || echo "gpu-paths: failed: ${failed[*]}" >&2
exit "$status"
