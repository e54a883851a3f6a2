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

stamp="$out/.complete"
if [[ "${1:-}" != "--force" && -f "$stamp" ]] && cmp -s "$stamp" <(sha256sum "$root/pyproject.toml" | cut -d' ' -f1); then
    echo "make-wheelhouse: $out is up to date ($(ls "$out"/*.whl | wc -l) wheels; --force to refresh)"
    exit 0
fi
mkdir -p "$out"
rm -f "$stamp"

reqs="$out/.requirements.txt"
cons="$out/.constraints.txt"
"$PYTHON" - "$root/pyproject.toml" >"$reqs" <<'PY'
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
"$PYTHON" -m pip freeze 2>/dev/null | grep -v -E '^(-e |tfparity[= @])| @ ' >"$cons" || true

start=$(date +%s)
# Wheels are chosen for the host interpreter, which must match the base image's (CPython 3.11 on
# bookworm): pip's --platform does not expand to older manylinux tags, so naming the target would
# miss most wheels.
pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$pyver" == "3.11" ]] || die "host python is $pyver, the bookworm base image runs 3.11; set PYTHON=python3.11"
if ! "$PYTHON" -m pip download --dest "$out" --requirement "$reqs" --constraint "$cons" \
        --only-binary=:all: --progress-bar off >"$out/.download.log" 2>&1; then
    tail -n 15 "$out/.download.log" >&2
    die "pip download failed (last lines above; full log: $out/.download.log)"
fi
sha256sum "$root/pyproject.toml" | cut -d' ' -f1 >"$stamp"
echo "make-wheelhouse: $(ls "$out"/*.whl | wc -l) wheels, $(du -sm "$out" | cut -f1) MB in $out ($(( $(date +%s) - start )) s)"
