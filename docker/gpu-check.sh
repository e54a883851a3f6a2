#!/usr/bin/env bash
# `make gpu-check`: validate a GPU host in minutes and print one verdict.
#
#   1. tfparity docker check-gpu: builds or reuses tfparity:gpu, then TensorFlow in it must see the
#      GPU and run a matmul and an XLA function there (else: one line naming the cause, and stop);
#   2. one short epoch of every GPU path plus the numerics probes (docker/gpu-paths.sh);
#   3. the same on the CPU path (the reference; --backend local by default, CPU_BACKEND=docker for the
#      CPU container);
#   4. tfparity report + tfparity compare over cpu/ and gpu/, then the verdict line:
#      gpu-check: PASS|WARN|FAIL (...) -- report: DIR/report/report.html
#
# Usage: docker/gpu-check.sh DIR    env: TFPARITY, PY, GPUS, CPU_BACKEND, GPU_CHECK_MODEL (default
#        batchnorm), GPU_CHECK_EPOCHS (default 1), GPU_CHECK_DATASET (default mnist-5k)
# Exit 0 on PASS or WARN, 1 on FAIL (a failed step, a failed run or a FAIL check).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ $# -eq 1 ]] || { echo "gpu-check: error: usage: gpu-check.sh DIR" >&2; exit 2; }
dir="$1"
read -r -a cli <<<"${TFPARITY:?set TFPARITY to the tfparity command}"
py="${PY:-python3}"
model="${GPU_CHECK_MODEL:-batchnorm}"
epochs="${GPU_CHECK_EPOCHS:-1}"
dataset="${GPU_CHECK_DATASET:-mnist-5k}"
gpus=()
[[ -n "${GPUS:-}" ]] && gpus=(--gpus "$GPUS")
start=$SECONDS

if ! "${cli[@]}" docker check-gpu "${gpus[@]}"; then
    echo "gpu-check: FAIL (the GPU check failed: the line above names the cause; nothing was run)"
    exit 1
fi
status=0
WHAT="--model $model --epochs $epochs" PROBE_WHAT="--model $model" DATASET="$dataset" SEEDS="" \
    bash "$here/gpu-paths.sh" "$dir/gpu" || status=1
cpu=(--backend "${CPU_BACKEND:-local}" --device cpu --dataset "$dataset" --model "$model" --results-dir "$dir/cpu")
"${cli[@]}" run "${cpu[@]}" --epochs "$epochs" || status=1
"${cli[@]}" run "${cpu[@]}" --mode probe || status=1
"${cli[@]}" report "$dir/cpu" "$dir/gpu" -o "$dir/report" --title "tfparity gpu-check" >/dev/null || status=1
"${cli[@]}" compare "$dir/cpu" "$dir/gpu" --json >"$dir/compare.json" 2>"$dir/compare.err"
"$py" - "$dir" "$status" "$((SECONDS - start))" <<'PY'
import json, pathlib, sys
out, failed_step, took = pathlib.Path(sys.argv[1]), sys.argv[2] != "0", sys.argv[3]
try:
    comparison = json.loads((out / "compare.json").read_text())
except (OSError, ValueError):
    error = (out / "compare.err").read_text().strip().splitlines()
    print(f"gpu-check: FAIL (tfparity compare could not run: {error[-1] if error else 'no output'}) [{took} s]")
    sys.exit(1)
counts = comparison["counts"]
verdict = "FAIL" if failed_step else comparison["verdict"]
note = "; a step or run failed (see above)" if failed_step else ""
print(f"gpu-check: {verdict} ({counts['PASS']} PASS, {counts['WARN']} WARN, {counts['FAIL']} FAIL checks over "
      f"{', '.join(comparison['groups'])}{note}) -- report: {out / 'report' / 'report.html'} [{took} s]")
sys.exit(1 if verdict == "FAIL" else 0)
PY
