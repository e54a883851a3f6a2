#!/usr/bin/env bash
# Download every wheel an image needs, on the host, with the host's own pip configuration (index,
# proxy, certificates). The images then install with `pip install --no-index --find-links`, so they
# build with no network inside the build.
#
#   --device cpu (default)  docker/.wheelhouse/      dependencies + the `cpu` extra     (~50 wheels, 400 MB)
#   --device gpu            docker/.wheelhouse-gpu/  dependencies + the `gpu` extra     (~60 wheels, 3.4 GB)
#
# Requirements come from pyproject.toml. When the project venv exists, its installed versions are the
# constraints: the containers then run the same numpy, Keras, ... as the local backend, which is what
# makes local-vs-docker parity meaningful, and the CPU and GPU images differ only in what is
# device-specific. For the GPU wheelhouse, docker/constraints-gpu.txt adds the pins of TensorFlow's
# CUDA build and the NVIDIA wheels (TF's `and-cuda` extra gives only version ranges).
#
# A refresh starts from the wheels already there (hard links), so only what changed is downloaded;
# wheels the new resolution does not use are dropped. The result is checked to install offline
# (`pip install --dry-run --no-index`) before it replaces the old wheelhouse.
#
# Usage: docker/make-wheelhouse.sh [--device cpu|gpu] [--force]   (env: PYTHON = host python with pip, WHEELHOUSE)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
die() { echo "make-wheelhouse: error: $*" >&2; exit 2; }

device=cpu
force=0
while (($#)); do
    case "$1" in
        --device) [[ $# -ge 2 ]] || die "--device needs a value (cpu or gpu)"; device="$2"; shift 2 ;;
        --force) force=1; shift ;;
        *) die "unknown argument '$1' (usage: make-wheelhouse.sh [--device cpu|gpu] [--force])" ;;
    esac
done
case "$device" in
    cpu) out="${WHEELHOUSE:-$here/.wheelhouse}" ;;
    gpu) out="${WHEELHOUSE:-$here/.wheelhouse-gpu}" ;;
    *) die "--device must be cpu or gpu, got '$device'" ;;
esac
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi

mkdir -p "$out"
reqs="$out/.requirements.txt"
cons="$out/.constraints.txt"
"$PYTHON" - "$root/pyproject.toml" "$device" >"$reqs.new" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)["project"]
for req in project["dependencies"] + project["optional-dependencies"][sys.argv[2]]:
    print(req)
# Needed to pip-install the harness itself (setuptools build backend) without an index.
print("setuptools>=64")
print("wheel")
PY
# Pin to what the host venv runs (minus the project itself and anything installed from a path/URL).
# For the GPU wheelhouse the device-specific packages come from docker/constraints-gpu.txt instead.
"$PYTHON" -m pip freeze 2>/dev/null | grep -v -E '^(-e |tfparity[= @])| @ ' >"$cons.new" || true
if [[ "$device" == gpu ]]; then
    grep -v -i -E '^(tensorflow|tensorflow[-_]cpu|nvidia[-_][a-z0-9_-]+)==' "$cons.new" >"$cons.host" || true
    cat "$cons.host" "$here/constraints-gpu.txt" >"$cons.new"
    rm -f "$cons.host"
fi

# Up to date = made from the same requirements and the same pinned versions.
stamp="$out/.complete"
key="$(cat "$reqs.new" "$cons.new" | sha256sum | cut -d' ' -f1)"
if [[ $force == 0 && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
    rm -f "$reqs.new" "$cons.new"
    echo "make-wheelhouse: $out is up to date ($(ls "$out"/*.whl | wc -l) wheels; --force to refresh)"
    exit 0
fi
start=$(date +%s)
# Wheels are chosen for the host interpreter, which must match the base image's (CPython 3.11 on
# bookworm): pip's --platform does not expand to older manylinux tags, so naming the target would
# miss most wheels.
pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$pyver" == "3.11" ]] || die "host python is $pyver, the bookworm base image runs 3.11; set PYTHON=python3.11"
# Download next to the old wheelhouse and swap only on success: a host that cannot reach the index
# (an air-gapped one with a copied wheelhouse) keeps the wheels it has. pip reuses a wheel already in
# --dest ("File was already downloaded"), so the old wheels are linked in first.
fresh="$out/.fresh"
rm -rf "$fresh"
mkdir -p "$fresh"
if ((force == 0)); then
    for whl in "$out"/*.whl; do [[ -e "$whl" ]] && { ln "$whl" "$fresh/" 2>/dev/null || cp "$whl" "$fresh/"; }; done
fi
fail() {
    rm -rf "$fresh" "$reqs.new" "$cons.new"
    if ls "$out"/*.whl >/dev/null 2>&1; then
        echo "make-wheelhouse: warning: $1 (log: $out/.download.log); keeping the existing $(ls "$out"/*.whl | wc -l) wheels" >&2
        exit 0
    fi
    tail -n 15 "$out/.download.log" >&2
    die "$1 (last lines above; full log: $out/.download.log)"
}
"$PYTHON" -m pip download --dest "$fresh" --requirement "$reqs.new" --constraint "$cons.new" \
    --only-binary=:all: --progress-bar off >"$out/.download.log" 2>&1 || fail "pip download failed"
# Keep exactly the wheels an offline install resolves to (an old version must not linger: the key of
# the GPU deps image is made from the wheel names), and prove that the offline install resolves.
report="$fresh/.report.json"
"$PYTHON" -m pip install --dry-run --ignore-installed --no-index --find-links "$fresh" --report "$report" \
    --quiet --requirement "$reqs.new" --constraint "$cons.new" >>"$out/.download.log" 2>&1 \
    || fail "the downloaded wheels do not install offline (pip install --dry-run --no-index)"
"$PYTHON" - "$report" "$fresh" <<'PY'
import json, pathlib, sys, urllib.parse
used = {pathlib.Path(urllib.parse.unquote(urllib.parse.urlparse(item["download_info"]["url"]).path)).name
        for item in json.loads(pathlib.Path(sys.argv[1]).read_text())["install"]}
for whl in pathlib.Path(sys.argv[2]).glob("*.whl"):
    if whl.name not in used:
        whl.unlink()
PY
rm -f "$report" "$stamp" "$out"/*.whl
mv "$fresh"/*.whl "$out"/
rmdir "$fresh"
mv "$reqs.new" "$reqs"
mv "$cons.new" "$cons"
echo "$key" >"$stamp"
echo "make-wheelhouse: $(ls "$out"/*.whl | wc -l) wheels, $(du -sm "$out" | cut -f1) MB in $out ($(( $(date +%s) - start )) s)"
