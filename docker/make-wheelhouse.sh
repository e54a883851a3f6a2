#!/usr/bin/env bash
# Download every wheel the CPU image needs into docker/.wheelhouse/ (git-ignored), on the host, with
# the host's own pip configuration (index, proxy, certificates). The image then installs with
# `pip install --no-index --find-links`, so it builds with no network inside the build.
#
# Requirements come from pyproject.toml (dependencies + the `cpu` extra). When the project venv
# exists, its installed versions are used as constraints: the container then runs the same numpy,
# TensorFlow, ... as the local backend, which is what makes local-vs-docker parity meaningful.
#
# Usage: docker/make-wheelhouse.sh [--force]    (env: PYTHON = host python with pip, WHEELHOUSE)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
out="${WHEELHOUSE:-$here/.wheelhouse}"
PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
die() { echo "make-wheelhouse: error: $*" >&2; exit 2; }

mkdir -p "$out"
reqs="$out/.requirements.txt"
cons="$out/.constraints.txt"
"$PYTHON" - "$root/pyproject.toml" >"$reqs.new" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)["project"]
for req in project["dependencies"] + project["optional-dependencies"]["cpu"]:
    print(req)
# Needed to pip-install the harness itself (setuptools build backend) without an index.
print("setuptools>=64")
print("wheel")
PY
# Pin to what the host venv runs (minus the project itself and anything installed from a path/URL).
"$PYTHON" -m pip freeze 2>/dev/null | grep -v -E '^(-e |tfparity[= @])| @ ' >"$cons.new" || true

# Up to date = made from the same requirements and the same pinned versions.
stamp="$out/.complete"
key="$(cat "$reqs.new" "$cons.new" | sha256sum | cut -d' ' -f1)"
if [[ "${1:-}" != "--force" && -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
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
# (an air-gapped one with a copied wheelhouse) keeps the wheels it has.
fresh="$out/.fresh"
rm -rf "$fresh"
mkdir -p "$fresh"
if ! "$PYTHON" -m pip download --dest "$fresh" --requirement "$reqs.new" --constraint "$cons.new" \
        --only-binary=:all: --progress-bar off >"$out/.download.log" 2>&1; then
    rm -rf "$fresh" "$reqs.new" "$cons.new"
    if ls "$out"/*.whl >/dev/null 2>&1; then
        echo "make-wheelhouse: warning: pip download failed (log: $out/.download.log); keeping the existing $(ls "$out"/*.whl | wc -l) wheels" >&2
        exit 0
    fi
    tail -n 15 "$out/.download.log" >&2
    die "pip download failed (last lines above; full log: $out/.download.log)"
fi
# The image installs the newest wheel it finds: an old version must not linger.
rm -f "$stamp" "$out"/*.whl
mv "$fresh"/*.whl "$out"/
rmdir "$fresh"
mv "$reqs.new" "$reqs"
mv "$cons.new" "$cons"
echo "$key" >"$stamp"
echo "make-wheelhouse: $(ls "$out"/*.whl | wc -l) wheels, $(du -sm "$out" | cut -f1) MB in $out ($(( $(date +%s) - start )) s)"
